/**
 * The authorization rules' view of the ACLs (lib/security/access.ts's AclLookup), read from the
 * store on every check: what the ACL routes just wrote counts at once. Keeping lookups cheap is
 * the store's business (the SQLite store answers from memory, emptied by every ACL write).
 */
import { EMPTY_ACLS, type AclLookup } from '../security/index.js';
import type { AclStore } from '../store/types.js';

/** The ACLs a CSS keeps in its store. */
export function storeAclLookup(store: Pick<AclStore, 'getAcl'>): AclLookup {
  return {
    objectsAcl: (org, key) => store.getAcl('objects', org, key),
    destinationsAcl: (org, key) => store.getAcl('destinations', org, key),
  };
}

/** A CSS's ACLs; an ESS keeps none (the reference's ACL functions are no-ops there). [ref rest-api §1.5] */
export function aclLookupFor(nodeType: 'CSS' | 'ESS', store: Pick<AclStore, 'getAcl'>): AclLookup {
  return nodeType === 'CSS' ? storeAclLookup(store) : EMPTY_ACLS;
}
