/**
 * The fields of the INFO lines that tell an object's story (README "Logs"): the object's key
 * and, for a step about one node, that node. One home, so every line can be searched alike.
 */
import type { MetaData } from './metadata.js';

/** `{ object: 'org/type/id' }`, with `destination: 'type/id'` when one is given. */
export function objectLogFields(org: string, type: string, id: string, destination?: { type: string; id: string }): { object: string; destination?: string } {
  return { object: `${org}/${type}/${id}`, ...(destination !== undefined ? { destination: `${destination.type}/${destination.id}` } : {}) };
}

/** Whom an object is addressed to, for a log line: `type/id`, `type/*`, the list, or `*` for every node. */
export function addressedTo(meta: Pick<MetaData, 'destinationType' | 'destinationID' | 'destinationsList' | 'destinationPolicy'>): string {
  if (meta.destinationsList !== null) return meta.destinationsList.join(',');
  if (meta.destinationPolicy !== null) return 'policy';
  if (meta.destinationType === '') return '*';
  return `${meta.destinationType}/${meta.destinationID === '' ? '*' : meta.destinationID}`;
}
