/**
 * What every AclStore must do, as a jest suite that each implementation runs against itself
 * (sqlite-store.test.ts now; the MongoDB store of issue #14 too). Each test gets a fresh,
 * empty, initialized store. The entry order is the reference's (Bolt store): an add appends, a
 * removal moves the last entry into the freed place. [ref rest-api §1.5]
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import type { AclStore, StoredAclEntry } from '../../lib/store/index.js';

export interface AclStoreContractOptions<S extends AclStore> {
  /** How to dispose of a store made by `make`. */
  teardown: (store: S) => Promise<void>;
  /** For persistent stores: close `store` and open a new one on the same storage. */
  reopen?: (store: S) => Promise<S>;
}

const writer = (username: string): StoredAclEntry => ({ username, aclUserType: 'user', aclRole: 'aclWriter' });
const reader = (username: string): StoredAclEntry => ({ username, aclUserType: 'user', aclRole: 'aclReader' });
const node = (username: string, aclRole: StoredAclEntry['aclRole'] = 'aclReader'): StoredAclEntry => ({ username, aclUserType: 'node', aclRole });
const names = (entries: StoredAclEntry[]): string[] => entries.map((e) => `${e.aclUserType}:${e.username}`);

/** Registers the suite `AclStore contract: <name>`. */
export function aclStoreContract<S extends AclStore>(name: string, make: () => Promise<S>, options: AclStoreContractOptions<S>): void {
  describe(`AclStore contract: ${name}`, () => {
    let store: S;

    beforeEach(async () => {
      store = await make();
    });

    afterEach(async () => {
      await options.teardown(store);
    });

    it('has no ACL before the first add', async () => {
      expect(await store.getAcl('objects', 'org1', 'model')).toEqual([]);
      expect(await store.listAclKeys('objects', 'org1')).toEqual([]);
    });

    it('creates an ACL with its first entries and gives them back in the order added', async () => {
      await store.addAclEntries('objects', 'org1', 'model', [writer('bob'), node('n1')]);
      await store.addAclEntries('objects', 'org1', 'model', [reader('amy')]);
      expect(await store.getAcl('objects', 'org1', 'model')).toEqual([writer('bob'), node('n1'), reader('amy')]);
    });

    it('never updates an entry already there: same user type and username keep their role', async () => {
      await store.addAclEntries('objects', 'org1', 'model', [reader('bob')]);
      await store.addAclEntries('objects', 'org1', 'model', [writer('bob'), writer('amy')]);
      expect(await store.getAcl('objects', 'org1', 'model')).toEqual([reader('bob'), writer('amy')]);
    });

    it('keeps the first of duplicates within one add', async () => {
      await store.addAclEntries('objects', 'org1', 'model', [reader('bob'), writer('bob')]);
      expect(await store.getAcl('objects', 'org1', 'model')).toEqual([reader('bob')]);
    });

    it('tells a user from a node of the same name', async () => {
      await store.addAclEntries('objects', 'org1', 'model', [reader('x'), node('x', 'aclWriter')]);
      expect(await store.getAcl('objects', 'org1', 'model')).toEqual([reader('x'), node('x', 'aclWriter')]);
      await store.removeAclEntries('objects', 'org1', 'model', [{ username: 'x', aclUserType: 'node' }]);
      expect(await store.getAcl('objects', 'org1', 'model')).toEqual([reader('x')]);
    });

    it('reads see every change at once, however often the ACL was read before', async () => {
      await store.addAclEntries('objects', 'org1', 'model', [reader('bob')]);
      for (let i = 0; i < 3; i++) expect(await store.getAcl('objects', 'org1', 'model')).toEqual([reader('bob')]);
      await store.addAclEntries('objects', 'org1', 'model', [writer('amy')]);
      expect(await store.getAcl('objects', 'org1', 'model')).toEqual([reader('bob'), writer('amy')]);
      await store.removeAclEntries('objects', 'org1', 'model', [{ username: 'bob', aclUserType: 'user' }, { username: 'amy', aclUserType: 'user' }]);
      expect(await store.getAcl('objects', 'org1', 'model')).toEqual([]);
    });

    it('gives each caller its own array: changing one changes neither the ACL nor the next answer', async () => {
      await store.addAclEntries('objects', 'org1', 'model', [reader('bob')]);
      const first = await store.getAcl('objects', 'org1', 'model');
      first.push(writer('mallory'));
      expect(await store.getAcl('objects', 'org1', 'model')).toEqual([reader('bob')]);
    });

    it('change of role: remove, then add', async () => {
      await store.addAclEntries('objects', 'org1', 'model', [reader('bob')]);
      await store.removeAclEntries('objects', 'org1', 'model', [{ username: 'bob', aclUserType: 'user' }]);
      await store.addAclEntries('objects', 'org1', 'model', [writer('bob')]);
      expect(await store.getAcl('objects', 'org1', 'model')).toEqual([writer('bob')]);
    });

    it('moves the last entry into the place of a removed one, as the reference does', async () => {
      await store.addAclEntries('objects', 'org1', 'model', ['a', 'b', 'c', 'd'].map(writer));
      await store.removeAclEntries('objects', 'org1', 'model', [{ username: 'b', aclUserType: 'user' }]);
      expect(names(await store.getAcl('objects', 'org1', 'model'))).toEqual(['user:a', 'user:d', 'user:c']);
      await store.removeAclEntries('objects', 'org1', 'model', [{ username: 'c', aclUserType: 'user' }]);
      expect(names(await store.getAcl('objects', 'org1', 'model'))).toEqual(['user:a', 'user:d']);
    });

    it('ignores the removal of an absent entry, in an ACL or without one', async () => {
      await store.addAclEntries('objects', 'org1', 'model', [writer('bob')]);
      await store.removeAclEntries('objects', 'org1', 'model', [{ username: 'amy', aclUserType: 'user' }, { username: 'bob', aclUserType: 'node' }]);
      await store.removeAclEntries('objects', 'org1', 'absent', [{ username: 'bob', aclUserType: 'user' }]);
      expect(await store.getAcl('objects', 'org1', 'model')).toEqual([writer('bob')]);
      expect(await store.listAclKeys('objects', 'org1')).toEqual(['model']);
    });

    it('deletes the ACL with its last entry', async () => {
      await store.addAclEntries('objects', 'org1', 'model', [writer('a'), writer('b')]);
      await store.removeAclEntries('objects', 'org1', 'model', [{ username: 'a', aclUserType: 'user' }, { username: 'b', aclUserType: 'user' }]);
      expect(await store.getAcl('objects', 'org1', 'model')).toEqual([]);
      expect(await store.listAclKeys('objects', 'org1')).toEqual([]);
    });

    it('adds nothing for an empty list: no ACL appears', async () => {
      await store.addAclEntries('objects', 'org1', 'model', []);
      expect(await store.listAclKeys('objects', 'org1')).toEqual([]);
    });

    it('keeps ACLs apart by org, ACL type and key; `*` is a key like any other', async () => {
      await store.addAclEntries('objects', 'org1', 'model', [writer('o1-model')]);
      await store.addAclEntries('objects', 'org1', '*', [writer('o1-all')]);
      await store.addAclEntries('destinations', 'org1', 'model', [node('d1-model', 'na')]);
      await store.addAclEntries('objects', 'org2', 'model', [writer('o2-model')]);
      await store.addAclEntries('objects', 'org1', 'Model', [writer('o1-Model')]);
      expect(await store.getAcl('objects', 'org1', 'model')).toEqual([writer('o1-model')]);
      expect(await store.getAcl('objects', 'org1', '*')).toEqual([writer('o1-all')]);
      expect(await store.getAcl('destinations', 'org1', 'model')).toEqual([node('d1-model', 'na')]);
      expect(await store.getAcl('objects', 'org2', 'model')).toEqual([writer('o2-model')]);
      expect(await store.getAcl('objects', 'org1', 'Model')).toEqual([writer('o1-Model')]);
    });

    it('lists the keys of one org and ACL type, byte-wise ordered, each once', async () => {
      for (const key of ['zeta', '*', 'Alpha', 'alpha', 'κάμερα']) await store.addAclEntries('objects', 'org1', key, [writer('a'), writer('b')]);
      await store.addAclEntries('destinations', 'org1', 'gateway', [node('n', 'na')]);
      await store.addAclEntries('objects', 'org2', 'other', [writer('a')]);
      expect(await store.listAclKeys('objects', 'org1')).toEqual(['*', 'Alpha', 'alpha', 'zeta', 'κάμερα']);
      expect(await store.listAclKeys('destinations', 'org1')).toEqual(['gateway']);
    });

    it('takes unicode and the reference name characters in org, key and username', async () => {
      await store.addAclEntries('objects', '組織', 'Ünïcødé|!@#$^*-_.~', [writer('ユーザー@例')]);
      expect(await store.getAcl('objects', '組織', 'Ünïcødé|!@#$^*-_.~')).toEqual([writer('ユーザー@例')]);
    });

    if (options.reopen !== undefined) {
      const reopen = options.reopen;
      it('keeps ACLs and their order across a restart', async () => {
        await store.addAclEntries('objects', 'org1', 'model', ['a', 'b', 'c'].map(writer));
        await store.removeAclEntries('objects', 'org1', 'model', [{ username: 'a', aclUserType: 'user' }]);
        store = await reopen(store);
        expect(names(await store.getAcl('objects', 'org1', 'model'))).toEqual(['user:c', 'user:b']);
      });
    }
  });
}
