/**
 * The reference's rules for the entries of one ACL, the same for every store: an entry is a
 * (user type, username); a removal moves the last entry into the freed place (its Bolt store's
 * order, which our GET answers byte for byte). [ref boltStorage RemoveUsersFromACL]
 */
import type { StoredAclEntry } from './types.js';

type AclUser = Pick<StoredAclEntry, 'username' | 'aclUserType'>;

export const sameUser = (a: AclUser, b: AclUser): boolean => a.aclUserType === b.aclUserType && a.username === b.username;

/** Removes `users` from `held` in place, in the reference's order; @returns whether any was there. */
export function removeAclUsers(held: AclUser[], users: readonly AclUser[]): boolean {
  let changed = false;
  for (const u of users) {
    const i = held.findIndex((h) => sameUser(h, u));
    if (i === -1) continue;
    const last = held.pop();
    if (last !== undefined && i < held.length) held[i] = last;
    changed = true;
  }
  return changed;
}
