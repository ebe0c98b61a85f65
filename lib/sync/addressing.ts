/**
 * Which ESS nodes an object is meant for: one node (type + id), every node of a type, an
 * explicit list, or every node of the org. Policy-addressed objects name no node themselves:
 * their destinations are set through the destinations API. [ref sync-protocol §6 Addressing]
 */
import { parseDestinationsListEntry, type MetaData } from '../model/index.js';

export interface NodeRef {
  destinationOrgID: string;
  destinationType: string;
  destinationID: string;
}

export type Addressing = 'node' | 'type' | 'list' | 'all' | 'policy';

export function addressingOf(meta: MetaData): Addressing {
  if (meta.destinationPolicy !== null) return 'policy';
  if (meta.destinationsList !== null) return 'list';
  if (meta.destinationType === '') return 'all';
  return meta.destinationID === '' ? 'type' : 'node';
}

/** Whether a (registered) node is one of the object's destinations. */
export function isAddressedTo(meta: MetaData, node: NodeRef): boolean {
  if (node.destinationOrgID !== meta.destinationOrgID) return false;
  switch (addressingOf(meta)) {
    case 'policy':
      return false;
    case 'list':
      return namedNodes(meta).some((n) => n.destinationType === node.destinationType && n.destinationID === node.destinationID);
    case 'all':
      return true;
    case 'type':
      return node.destinationType === meta.destinationType;
    case 'node':
      return node.destinationType === meta.destinationType && node.destinationID === meta.destinationID;
  }
}

/**
 * Objects that a node registering later must still receive are the ones addressed by type
 * or to everyone (broadcast); explicit ones were resolved when they were published.
 */
export function reachesLateRegistrations(meta: MetaData): boolean {
  const a = addressingOf(meta);
  return a === 'type' || a === 'all';
}

/**
 * The nodes an object names explicitly (a single node or a `destinationsList`); they get a
 * record even before they register. Type, broadcast and policy addressing name none.
 */
export function namedNodes(meta: MetaData): { destinationType: string; destinationID: string }[] {
  switch (addressingOf(meta)) {
    case 'list':
      return (meta.destinationsList ?? []).map((entry) => {
        const d = parseDestinationsListEntry(entry);
        return { destinationType: d.destType, destinationID: d.destID };
      });
    case 'node':
      return [{ destinationType: meta.destinationType, destinationID: meta.destinationID }];
    case 'type':
    case 'all':
    case 'policy':
      return [];
  }
}

/**
 * Whether the object's own addressing names destination type `type` (and node `id` when
 * given): the API's `destinationType`/`destinationID` filter of an object listing, which, as
 * the reference's, matches neither broadcast nor policy objects. [ref rest-api §1.2 O19]
 */
export function namesDestination(meta: MetaData, type: string, id?: string): boolean {
  if (meta.destinationType !== '') return meta.destinationType === type && (id === undefined || meta.destinationID === id);
  return namedNodes(meta).some((n) => n.destinationType === type && (id === undefined || n.destinationID === id));
}
