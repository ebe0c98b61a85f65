/**
 * Which ESS nodes an object is meant for: one node (type + id), every node of a type, an
 * explicit list, or every node of the org. Policy-addressed objects name no node themselves:
 * their destinations are set through the destinations API. [ref sync-protocol §6 Addressing]
 */
import type { MetaData } from '../model/index.js';

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
      return (meta.destinationsList ?? []).includes(`${node.destinationType}:${node.destinationID}`);
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
      return (meta.destinationsList ?? []).map((d) => {
        const [destinationType = '', destinationID = ''] = d.split(':');
        return { destinationType, destinationID };
      });
    case 'node':
      return [{ destinationType: meta.destinationType, destinationID: meta.destinationID }];
    case 'type':
    case 'all':
    case 'policy':
      return [];
  }
}
