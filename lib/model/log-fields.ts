/**
 * The fields of the INFO lines that tell an object's story (README "Logs"): the object's key
 * and, for a step about one node, that node. One home, so every line can be searched alike.
 */
import { createHash } from 'node:crypto';
import type { MetaData } from './metadata.js';

/**
 * `{ object: 'org/type/id' }`, with `destination: 'type/id'` when one is given and `instance`
 * (the instance id as a decimal string) when known: a line naming its instance can carry the
 * delivery's trace id (lib/log/logger.ts).
 */
export function objectLogFields(
  org: string,
  type: string,
  id: string,
  destination?: { type: string; id: string },
  instanceID?: bigint,
): { object: string; destination?: string; instance?: string } {
  return {
    object: `${org}/${type}/${id}`,
    ...(destination !== undefined ? { destination: `${destination.type}/${destination.id}` } : {}),
    ...(instanceID !== undefined ? { instance: instanceID.toString() } : {}),
  };
}

/**
 * The trace id of everything that happens to one instance of an object, on any node: the first
 * 16 bytes of SHA-256(`org/type/id/instanceID`), as 32 lower-case hex digits. Derived rather
 * than carried because the reference peers have no place for it on the wire; names never hold
 * `/`, so the input is unambiguous.
 */
export function deliveryTraceId(org: string, type: string, id: string, instanceID: bigint | string): string {
  return nonZeroHex(createHash('sha256').update(`${org}/${type}/${id}/${instanceID.toString()}`).digest().subarray(0, 16));
}

/** OpenTelemetry holds an all-zero id invalid; one in 2^128 digests would start that way. */
export function nonZeroHex(bytes: Buffer): string {
  const hex = bytes.toString('hex');
  return /^0+$/.test(hex) ? `${hex.slice(0, -1)}1` : hex;
}

/** Whom an object is addressed to, for a log line: `type/id`, `type/*`, the list, or `*` for every node. */
export function addressedTo(meta: Pick<MetaData, 'destinationType' | 'destinationID' | 'destinationsList' | 'destinationPolicy'>): string {
  if (meta.destinationsList !== null) return meta.destinationsList.join(',');
  if (meta.destinationPolicy !== null) return 'policy';
  if (meta.destinationType === '') return '*';
  return `${meta.destinationType}/${meta.destinationID === '' ? '*' : meta.destinationID}`;
}
