/**
 * One name for an ESS (a destination): its org, type and id. Every module that keys something
 * by destination uses this type and these functions; nobody joins or splits `type:id` by hand.
 */
export interface DestinationRef {
  readonly orgID: string;
  readonly destType: string;
  readonly destID: string;
}

/**
 * A map key for a destination. JSON, so an org, type or id holding a separator cannot collide
 * with another destination's key.
 */
export function destinationKey(d: DestinationRef): string {
  return JSON.stringify([d.orgID, d.destType, d.destID]);
}

/** The destination a key was made from. @throws Error for a string destinationKey did not make */
export function parseDestinationKey(key: string): DestinationRef {
  const v: unknown = JSON.parse(key);
  if (!Array.isArray(v) || v.length !== 3 || !v.every((p): p is string => typeof p === 'string')) throw new Error(`not a destination key: ${key}`);
  return { orgID: v[0]!, destType: v[1]!, destID: v[2]! };
}

/** `type/id`, as logs and the reference's user ids name a node. */
export function destinationLabel(d: Pick<DestinationRef, 'destType' | 'destID'>): string {
  return `${d.destType}/${d.destID}`;
}

export function sameDestination(a: DestinationRef, b: DestinationRef): boolean {
  return a.orgID === b.orgID && a.destType === b.destType && a.destID === b.destID;
}

/*
 * A `destinationsList` entry names a node as `type:id`, the reference's wire form (not a map
 * key: use destinationKey for those). [ref rest-api §2.2 destinationsList]
 */

/** Whether a `destinationsList` entry has the `type:id` form: exactly one `:`, nothing empty. */
export function isDestinationsListEntry(entry: string): boolean {
  return /^[^:]+:[^:]+$/.test(entry);
}

/** The node a `destinationsList` entry names; entries are checked on the way in (isDestinationsListEntry). */
export function parseDestinationsListEntry(entry: string): Pick<DestinationRef, 'destType' | 'destID'> {
  const [destType = '', destID = ''] = entry.split(':');
  return { destType, destID };
}
