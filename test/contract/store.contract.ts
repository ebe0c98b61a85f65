/**
 * What every Store must do, as a jest suite that each implementation runs against itself
 * (sqlite-store.test.ts, mongo-store.test.ts). Each test gets a fresh, empty, initialized store.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { emptyMetaData, INT64_MAX, type MetaData, type ObjectStatus } from '../../lib/model/index.js';
import type { Destination, ObjectDeletion, Organization, Store, StoredObject, UploadSession } from '../../lib/store/index.js';

export interface StoreContractOptions {
  /** How to dispose of a store made by `make` (default: close it). */
  teardown?: (store: Store) => Promise<void>;
  /**
   * For persistent stores: close `store` and open a new one on the same storage. The suite
   * then also checks what must survive a restart.
   */
  reopen?: (store: Store) => Promise<Store>;
}

function metaOf(org: string, objectType: string, objectID: string, fields: Partial<MetaData> = {}): MetaData {
  return { ...emptyMetaData(), destinationOrgID: org, objectType, objectID, ...fields };
}

function objectOf(org: string, objectType: string, objectID: string, fields: Partial<StoredObject> = {}): StoredObject {
  return {
    meta: metaOf(org, objectType, objectID),
    status: 'ready', blobId: null, dataSha256: null,
    remainingConsumers: 0, remainingReceivers: 0, policyReceived: false, lastUpdate: 1_700_000_000_000,
    ...fields,
  };
}

/** Every MetaData field away from its zero value, lists and policy included. */
function fullyPopulated(org: string, objectType: string, objectID: string): StoredObject {
  return objectOf(org, objectType, objectID, {
    meta: metaOf(org, objectType, objectID, {
      destinationID: 'node-7', destinationType: 'gateway',
      destinationsList: ['gateway:node-7', 'camera:κάμερα-2'],
      destinationPolicy: {
        properties: [
          { name: 'zone', value: 'north', type: 'string' },
          { name: 'weight', value: 2.5, type: 'float' },
          { name: 'flags', value: { nested: [1, true, null] }, type: '' },
        ],
        constraints: ['zone == north', 'weight > 1'],
        services: [{ orgID: org, arch: 'arm64', serviceName: 'svc', version: '[1.0.0,2.0.0)' }],
        timestamp: 1_796_424_756_755_170_999n, // beyond 2^53, as every Go int64 stamp
      },
      expiration: '2099-01-02T03:04:05Z', version: '1.2.3', description: 'données « utiles » & <escaped>', link: 'https://example.com/x',
      inactive: true, activationTime: '2098-01-01T00:00:00Z', noData: true, metaOnly: true,
      destinationDataUri: 'file:///var/data/x', sourceDataUri: 'file:///tmp/y',
      consumers: 3, autodelete: true, originID: 'origin-1', originType: 'origin-type', deleted: true,
      instanceID: 1_796_424_756_755_170_134n, dataID: 1_796_424_756_755_170_133n,
      objectSize: 123_456_789, chunkSize: 4096, uploadChunkSize: 8192,
      hashAlgorithm: 'SHA256', publicKey: 'cHVibGlj', signature: 'c2lnbmF0dXJl', public: true, ownerID: `${org}/admin`,
    }),
    status: 'partiallyreceived', blobId: 'blob-1', dataSha256: 'ab'.repeat(32),
    remainingConsumers: 2, remainingReceivers: 1, policyReceived: true, lastUpdate: 1_700_000_000_999,
  });
}

function uploadOf(org: string, objectType: string, objectID: string, fields: Partial<UploadSession> = {}): UploadSession {
  return { orgID: org, objectType, objectID, stagingId: `staging-${objectID}`, total: 300, received: 0, chunkSize: 100, instanceID: 5n, lastUpdate: 1, ...fields };
}

function deletionOf(org: string, objectType: string, objectID: string, fields: Partial<ObjectDeletion> = {}): ObjectDeletion {
  return { meta: metaOf(org, objectType, objectID, { deleted: true }), policyReceived: false, deletedAt: 1_700_000_000_000, ...fields };
}

function orgOf(orgID: string): Organization {
  return { orgID, address: `${orgID}.example.com`, user: 'admin', password: 'scrypt$hash', lastUpdate: 1_700_000_000_000 };
}

function destinationOf(org: string, destinationType: string, destinationID: string): Destination {
  return { destinationOrgID: org, destinationType, destinationID, communication: 'http', codeVersion: '1.0', lastPing: 1_700_000_000_000 };
}

const ids = (objects: StoredObject[]): string[] => objects.map((o) => `${o.meta.objectType}/${o.meta.objectID}`);

/** Registers the suite `Store contract: <name>`. `make` returns a fresh, empty, initialized store. */
export function storeContract(name: string, make: () => Promise<Store>, options: StoreContractOptions = {}): void {
  describe(`Store contract: ${name}`, () => {
    let store: Store;

    beforeEach(async () => {
      store = await make();
    });

    afterEach(async () => {
      await (options.teardown ?? ((s: Store) => s.close()))(store);
    });

    it('answers a ping', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
    });

    describe('objects', () => {
      it('returns null for an object that was never stored', async () => {
        expect(await store.getObject('org1', 'model', 'absent')).toBeNull();
      });

      it('gives back every metadata field and the bookkeeping stored beside it', async () => {
        const obj = fullyPopulated('org1', 'model', 'm1');
        await store.putObject(obj);
        expect(await store.getObject('org1', 'model', 'm1')).toEqual(obj);
      });

      it('keeps an absent destinations list and policy as null', async () => {
        const obj = objectOf('org1', 'model', 'bare');
        await store.putObject(obj);
        const got = await store.getObject('org1', 'model', 'bare');
        expect(got?.meta.destinationsList).toBeNull();
        expect(got?.meta.destinationPolicy).toBeNull();
        expect(got).toEqual(obj);
      });

      it('keeps a policy whose lists are null', async () => {
        const meta = metaOf('org1', 'model', 'p', { destinationPolicy: { properties: null, constraints: null, services: null, timestamp: 7n } });
        await store.putObject(objectOf('org1', 'model', 'p', { meta }));
        expect((await store.getObject('org1', 'model', 'p'))?.meta.destinationPolicy).toEqual(meta.destinationPolicy);
      });

      it('stores unicode org, type and id as distinct keys', async () => {
        await store.putObject(objectOf('組織', 'Ünïcødé', '模型1', { status: 'ready' }));
        await store.putObject(objectOf('組織', 'Unicode', '模型1', { status: 'notReady' }));
        expect((await store.getObject('組織', 'Ünïcødé', '模型1'))?.status).toBe('ready');
        expect((await store.getObject('組織', 'Unicode', '模型1'))?.status).toBe('notReady');
        expect(await store.getObject('組織', 'unicode', '模型1')).toBeNull();
      });

      it('replaces the object with the same org, type and id', async () => {
        await store.putObject(fullyPopulated('org1', 'model', 'm1'));
        const replacement = objectOf('org1', 'model', 'm1', { status: 'ready', blobId: 'blob-2' });
        await store.putObject(replacement);
        expect(await store.getObject('org1', 'model', 'm1')).toEqual(replacement);
        expect(await store.countObjects()).toBe(1);
      });

      it('deletes an object and returns what was stored', async () => {
        const obj = fullyPopulated('org1', 'model', 'm1');
        await store.putObject(obj);
        expect(await store.deleteObject('org1', 'model', 'm1')).toEqual(obj);
        expect(await store.getObject('org1', 'model', 'm1')).toBeNull();
      });

      it('returns null when deleting an object that does not exist', async () => {
        expect(await store.deleteObject('org1', 'model', 'absent')).toBeNull();
      });

      it('counts the objects of every org', async () => {
        expect(await store.countObjects()).toBe(0);
        await store.putObject(objectOf('org1', 'a', '1'));
        await store.putObject(objectOf('org2', 'a', '1'));
        expect(await store.countObjects()).toBe(2);
      });
    });

    describe('deletions in progress', () => {
      it('give back the metadata, policyReceived and the time of the deletion', async () => {
        const d = deletionOf('org1', 'model', 'm1', { meta: { ...fullyPopulated('org1', 'model', 'm1').meta, deleted: true }, policyReceived: true, deletedAt: 1_700_000_000_777 });
        await store.putDeletion(d);
        expect(await store.getDeletion('org1', 'model', 'm1')).toEqual(d);
        expect(await store.getDeletion('org1', 'model', 'absent')).toBeNull();
      });

      it('are kept apart from the objects: an object and a deletion of the same key do not see each other', async () => {
        await store.putDeletion(deletionOf('org1', 'model', 'm1'));
        expect(await store.getObject('org1', 'model', 'm1')).toBeNull();
        expect(await store.countObjects()).toBe(0);
        await store.putObject(objectOf('org1', 'model', 'm1'));
        expect(await store.getDeletion('org1', 'model', 'm1')).not.toBeNull();
        await store.deleteObject('org1', 'model', 'm1');
        expect(await store.getDeletion('org1', 'model', 'm1')).not.toBeNull();
      });

      it('are replaced by key, listed by org and type in (type, id) order, and removed', async () => {
        for (const [type, id] of [['t2', 'b'], ['t1', 'z'], ['t1', 'a']]) await store.putDeletion(deletionOf('org1', type!, id!));
        await store.putDeletion(deletionOf('org2', 't1', 'a'));
        await store.putDeletion(deletionOf('org1', 't1', 'a', { deletedAt: 5 }));
        const keys = (l: ObjectDeletion[]): string[] => l.map((d) => `${d.meta.objectType}/${d.meta.objectID}`);
        expect(keys(await store.listDeletions('org1'))).toEqual(['t1/a', 't1/z', 't2/b']);
        expect(keys(await store.listDeletions('org1', 't1'))).toEqual(['t1/a', 't1/z']);
        expect((await store.getDeletion('org1', 't1', 'a'))?.deletedAt).toBe(5);
        await store.removeDeletion('org1', 't1', 'a');
        await store.removeDeletion('org1', 't1', 'absent');
        expect(keys(await store.listDeletions('org1'))).toEqual(['t1/z', 't2/b']);
        expect(keys(await store.listDeletions('org2'))).toEqual(['t1/a']);
      });

      it('go with their organization', async () => {
        await store.putOrganization(orgOf('org1'));
        await store.putDeletion(deletionOf('org1', 'a', '1'));
        await store.putDeletion(deletionOf('org2', 'a', '1'));
        await store.deleteOrganization('org1');
        expect(await store.listDeletions('org1')).toEqual([]);
        expect(await store.listDeletions('org2')).toHaveLength(1);
      });
    });

    describe('listing objects', () => {
      const statuses: [string, string, ObjectStatus][] = [
        ['t2', 'b', 'ready'],
        ['t1', 'z', 'notReady'],
        ['T3', 'a', 'ready'],
        ['t1', 'a', 'objreceived'],
        ['t2', 'a', 'notReady'],
      ];

      beforeEach(async () => {
        for (const [type, id, status] of statuses) await store.putObject(objectOf('org1', type, id, { status }));
        await store.putObject(objectOf('org2', 't1', 'other-org'));
      });

      it('lists one org ordered by type then id, byte-wise (upper case first)', async () => {
        expect(ids(await store.listObjects({ org: 'org1' }))).toEqual(['T3/a', 't1/a', 't1/z', 't2/a', 't2/b']);
      });

      it('filters by type', async () => {
        expect(ids(await store.listObjects({ org: 'org1', objectType: 't1' }))).toEqual(['t1/a', 't1/z']);
      });

      it('filters by a set of statuses', async () => {
        expect(ids(await store.listObjects({ org: 'org1', statuses: ['notReady', 'objreceived'] }))).toEqual(['t1/a', 't1/z', 't2/a']);
      });

      it('filters by type and statuses together', async () => {
        expect(ids(await store.listObjects({ org: 'org1', objectType: 't2', statuses: ['ready'] }))).toEqual(['t2/b']);
      });

      it('matches nothing with an empty list of statuses', async () => {
        expect(await store.listObjects({ org: 'org1', statuses: [] })).toEqual([]);
      });

      it('never returns objects of another org', async () => {
        expect(ids(await store.listObjects({ org: 'org2' }))).toEqual(['t1/other-org']);
        expect(await store.listObjects({ org: 'org3' })).toEqual([]);
      });

      it('returns whole stored objects', async () => {
        const full = fullyPopulated('org3', 'model', 'm1');
        await store.putObject(full);
        expect(await store.listObjects({ org: 'org3' })).toEqual([full]);
      });
    });

    describe('timed objects (maintenance jobs)', () => {
      it('lists, across orgs, the objects with an expiration or inactive with an activation time, and only those', async () => {
        const timed = (org: string, id: string, fields: Partial<MetaData>): StoredObject => objectOf(org, 'model', id, { meta: metaOf(org, 'model', id, fields) });
        const expiring = timed('org1', 'exp', { expiration: '2099-01-01T00:00:00+02:00' });
        const waiting = timed('org2', 'act', { inactive: true, activationTime: '2099-01-01T00:00:00Z' });
        await store.putObject(expiring);
        await store.putObject(waiting);
        await store.putObject(timed('org1', 'plain', {}));
        await store.putObject(timed('org1', 'manual', { inactive: true }));
        await store.putObject(timed('org1', 'active', { activationTime: '2099-01-01T00:00:00Z' }));
        const key = (o: StoredObject): string => `${o.meta.destinationOrgID}/${o.meta.objectID}`;
        expect((await store.listTimedObjects()).sort((a, b) => key(a).localeCompare(key(b)))).toEqual([expiring, waiting]);
      });
    });

    describe('referenced blob ids', () => {
      it('are the blob ids of objects plus the staging ids of uploads', async () => {
        await store.putObject(objectOf('org1', 'a', '1', { blobId: 'blob-a' }));
        await store.putObject(objectOf('org2', 'a', '2', { blobId: 'blob-b' }));
        await store.putObject(objectOf('org1', 'a', 'no-data'));
        await store.putUpload(uploadOf('org1', 'a', '3', { stagingId: 'staging-c' }));
        expect(await store.referencedBlobIds()).toEqual(new Set(['blob-a', 'blob-b', 'staging-c']));
      });

      it('are empty for an empty store', async () => {
        expect((await store.referencedBlobIds()).size).toBe(0);
      });
    });

    describe('instance ids', () => {
      it('are strictly increasing int64 nanosecond stamps, even when asked for concurrently', async () => {
        const sequential: bigint[] = [];
        for (let i = 0; i < 50; i++) sequential.push(await store.nextInstanceId());
        for (let i = 1; i < sequential.length; i++) expect(sequential[i]).toBeGreaterThan(sequential[i - 1]!);
        const concurrent = await Promise.all(Array.from({ length: 50 }, () => store.nextInstanceId()));
        expect(new Set(concurrent).size).toBe(50);
        expect(concurrent.reduce((a, b) => (a < b ? a : b))).toBeGreaterThan(sequential.at(-1)!);
        // As the reference's: beyond 2^53 (a double would round them), within a Go int64.
        for (const id of [...sequential, ...concurrent]) expect(id > 2n ** 53n && id <= INT64_MAX).toBe(true);
      });

      if (options.reopen !== undefined) {
        const reopen = options.reopen;
        it('keep increasing after the store is closed and reopened', async () => {
          let last = 0n;
          for (let i = 0; i < 20; i++) last = await store.nextInstanceId();
          store = await reopen(store);
          expect(await store.nextInstanceId()).toBeGreaterThan(last);
        });
      }
    });

    if (options.reopen !== undefined) {
      const reopen = options.reopen;
      it('keeps objects, deletions, organizations and uploads across close and reopen', async () => {
        const obj = fullyPopulated('org1', 'model', 'm1');
        await store.putObject(obj);
        await store.putDeletion(deletionOf('org1', 'model', 'gone'));
        await store.putOrganization(orgOf('org1'));
        await store.putUpload(uploadOf('org1', 'model', 'm1'));
        store = await reopen(store);
        expect(await store.getDeletion('org1', 'model', 'gone')).toEqual(deletionOf('org1', 'model', 'gone'));
        expect(await store.getObject('org1', 'model', 'm1')).toEqual(obj);
        expect(await store.getOrganization('org1')).toEqual(orgOf('org1'));
        expect(await store.getUpload('org1', 'model', 'm1')).toEqual(uploadOf('org1', 'model', 'm1'));
      });
    }

    describe('webhooks', () => {
      const hook = (url: string, objectType = 'model', orgID = 'org1') => ({ orgID, objectType, url });

      it('lists the hooks of one org and type in registration order', async () => {
        await store.addWebhook(hook('http://b.example/hook'));
        await store.addWebhook(hook('http://a.example/hook'));
        await store.addWebhook(hook('http://c.example/hook', 'other-type'));
        await store.addWebhook(hook('http://d.example/hook', 'model', 'org2'));
        expect(await store.listWebhooks('org1', 'model')).toEqual([hook('http://b.example/hook'), hook('http://a.example/hook')]);
      });

      it('lists nothing for a type without hooks', async () => {
        expect(await store.listWebhooks('org1', 'model')).toEqual([]);
      });

      it('keeps one entry when the same URL is registered twice', async () => {
        await store.addWebhook(hook('http://a.example/hook'));
        await store.addWebhook(hook('http://a.example/hook'));
        expect(await store.listWebhooks('org1', 'model')).toEqual([hook('http://a.example/hook')]);
      });

      it('removes a hook whatever the case of the URL given', async () => {
        await store.addWebhook(hook('http://A.example/Hook'));
        await store.addWebhook(hook('http://b.example/hook'));
        await store.removeWebhook(hook('HTTP://a.EXAMPLE/hook'));
        expect(await store.listWebhooks('org1', 'model')).toEqual([hook('http://b.example/hook')]);
      });

      it('removes only from the given org and type', async () => {
        await store.addWebhook(hook('http://a.example/hook'));
        await store.addWebhook(hook('http://a.example/hook', 'other-type'));
        await store.addWebhook(hook('http://a.example/hook', 'model', 'org2'));
        await store.removeWebhook(hook('http://a.example/hook'));
        expect(await store.listWebhooks('org1', 'model')).toEqual([]);
        expect(await store.listWebhooks('org1', 'other-type')).toHaveLength(1);
        expect(await store.listWebhooks('org2', 'model')).toHaveLength(1);
      });

      it('ignores the removal of a hook that is not registered', async () => {
        await expect(store.removeWebhook(hook('http://absent.example/'))).resolves.toBeUndefined();
      });
    });

    describe('organizations', () => {
      it('are stored, replaced and listed by id', async () => {
        await store.putOrganization(orgOf('org-b'));
        await store.putOrganization(orgOf('org-a'));
        const changed = { ...orgOf('org-b'), address: 'new.example.com', lastUpdate: 1_800_000_000_000 };
        await store.putOrganization(changed);
        expect(await store.getOrganization('org-b')).toEqual(changed);
        expect(await store.listOrganizations()).toEqual([orgOf('org-a'), changed]);
      });

      it('returns null for an unknown organization', async () => {
        expect(await store.getOrganization('absent')).toBeNull();
      });

      it('deletes an organization with its objects, webhooks, destinations, uploads and ACLs, returning their blob and staging ids', async () => {
        await store.putOrganization(orgOf('org1'));
        await store.putObject(objectOf('org1', 'a', '1', { blobId: 'blob-1' }));
        await store.putObject(objectOf('org1', 'b', '2', { blobId: 'blob-2' }));
        await store.putObject(objectOf('org1', 'b', 'no-data'));
        await store.addWebhook({ orgID: 'org1', objectType: 'a', url: 'http://h.example/' });
        await store.putDestination(destinationOf('org1', 'gw', 'n1'));
        await store.putUpload(uploadOf('org1', 'a', '3', { stagingId: 'staging-3' }));
        await store.addAclEntries('objects', 'org1', 'a', [{ username: 'u1', aclUserType: 'user', aclRole: 'aclWriter' }]);
        await store.addAclEntries('destinations', 'org1', '*', [{ username: 'n1', aclUserType: 'node', aclRole: 'na' }]);
        expect(await store.getAcl('objects', 'org1', 'a')).toHaveLength(1); // read once: a store that caches it must forget it

        const deleted = await store.deleteOrganization('org1');
        expect(deleted.blobIds.sort()).toEqual(['blob-1', 'blob-2']);
        expect(deleted.stagingIds).toEqual(['staging-3']);

        expect(await store.getOrganization('org1')).toBeNull();
        expect(await store.listObjects({ org: 'org1' })).toEqual([]);
        expect(await store.listWebhooks('org1', 'a')).toEqual([]);
        expect(await store.listDestinations('org1')).toEqual([]);
        expect(await store.getUpload('org1', 'a', '3')).toBeNull();
        expect(await store.referencedBlobIds()).toEqual(new Set());
        expect(await store.listAclKeys('objects', 'org1')).toEqual([]);
        expect(await store.listAclKeys('destinations', 'org1')).toEqual([]);
        expect(await store.getAcl('objects', 'org1', 'a')).toEqual([]);
      });

      it('deletes nothing of any other organization', async () => {
        for (const org of ['org1', 'org2']) {
          await store.putOrganization(orgOf(org));
          await store.putObject(objectOf(org, 'a', '1', { blobId: `blob-${org}` }));
          await store.addWebhook({ orgID: org, objectType: 'a', url: 'http://h.example/' });
          await store.putDestination(destinationOf(org, 'gw', 'n1'));
          await store.putUpload(uploadOf(org, 'a', '2', { stagingId: `staging-${org}` }));
          await store.addAclEntries('objects', org, 'a', [{ username: 'u1', aclUserType: 'user', aclRole: 'aclReader' }]);
        }
        await store.deleteOrganization('org1');
        expect(await store.listOrganizations()).toEqual([orgOf('org2')]);
        expect(ids(await store.listObjects({ org: 'org2' }))).toEqual(['a/1']);
        expect(await store.listWebhooks('org2', 'a')).toHaveLength(1);
        expect(await store.listDestinations('org2')).toHaveLength(1);
        expect(await store.getUpload('org2', 'a', '2')).not.toBeNull();
        expect(await store.referencedBlobIds()).toEqual(new Set(['blob-org2', 'staging-org2']));
        expect(await store.getAcl('objects', 'org2', 'a')).toEqual([{ username: 'u1', aclUserType: 'user', aclRole: 'aclReader' }]);
      });

      it('returns no blob or staging ids when deleting an unknown organization', async () => {
        expect(await store.deleteOrganization('absent')).toEqual({ blobIds: [], stagingIds: [] });
      });
    });

    describe('destinations', () => {
      it('are listed per org, ordered by type then id', async () => {
        await store.putDestination(destinationOf('org1', 'gw', 'n2'));
        await store.putDestination(destinationOf('org1', 'cam', 'n9'));
        await store.putDestination(destinationOf('org1', 'gw', 'n1'));
        await store.putDestination(destinationOf('org2', 'gw', 'n1'));
        expect(await store.listDestinations('org1')).toEqual([destinationOf('org1', 'cam', 'n9'), destinationOf('org1', 'gw', 'n1'), destinationOf('org1', 'gw', 'n2')]);
      });

      it('are replaced when the same ESS registers again', async () => {
        await store.putDestination(destinationOf('org1', 'gw', 'n1'));
        const again: Destination = { ...destinationOf('org1', 'gw', 'n1'), communication: 'mqtt', codeVersion: '2.0', lastPing: 1_800_000_000_000 };
        await store.putDestination(again);
        expect(await store.listDestinations('org1')).toEqual([again]);
      });

      it('are deleted one at a time, reporting whether one was registered', async () => {
        await store.putDestination(destinationOf('org1', 'gw', 'n1'));
        await store.putDestination(destinationOf('org1', 'gw', 'n2'));
        await store.putDestination(destinationOf('org2', 'gw', 'n1'));
        expect(await store.deleteDestination('org1', 'gw', 'n1')).toBe(true);
        expect(await store.deleteDestination('org1', 'gw', 'n1')).toBe(false);
        expect(await store.listDestinations('org1')).toEqual([destinationOf('org1', 'gw', 'n2')]);
        expect(await store.listDestinations('org2')).toEqual([destinationOf('org2', 'gw', 'n1')]);
      });
    });

    describe('destination last contact', () => {
      it('moves forward only, and never creates a destination', async () => {
        await store.putDestination(destinationOf('org1', 'gw', 'n1'));
        const before = (await store.getDestination('org1', 'gw', 'n1'))!.lastPing;
        expect(await store.touchDestination('org1', 'gw', 'n1', before + 1000)).toBe(true);
        expect(await store.touchDestination('org1', 'gw', 'n1', before)).toBe(true);
        expect((await store.getDestination('org1', 'gw', 'n1'))?.lastPing).toBe(before + 1000);
        expect(await store.touchDestination('org1', 'gw', 'n2', before)).toBe(false);
        expect(await store.getDestination('org1', 'gw', 'n2')).toBeNull();
      });
    });

    describe('counts across orgs (the metrics)', () => {
      const byOrgStatus = (a: { orgID: string; status: string }, b: { orgID: string; status: string }): number => `${a.orgID}/${a.status}`.localeCompare(`${b.orgID}/${b.status}`);

      it('counts objects by org and status, leaving empty groups out', async () => {
        expect(await store.countObjectsByStatus()).toEqual([]);
        await store.putObject(objectOf('org1', 'model', 'm1', { status: 'ready' }));
        await store.putObject(objectOf('org1', 'model', 'm2', { status: 'ready' }));
        await store.putObject(objectOf('org1', 'model', 'm3', { status: 'notReady' }));
        await store.putObject(objectOf('org2', 'model', 'm1', { status: 'completelyReceived' }));
        expect((await store.countObjectsByStatus()).sort(byOrgStatus)).toEqual([
          { orgID: 'org1', status: 'notReady', count: 1 },
          { orgID: 'org1', status: 'ready', count: 2 },
          { orgID: 'org2', status: 'completelyReceived', count: 1 },
        ]);
      });

      it('counts destinations per org, and those in contact since each threshold', async () => {
        expect(await store.countDestinationsSeen([1000])).toEqual([]);
        const at = (org: string, id: string, lastPing: number): Destination => ({ ...destinationOf(org, 'gw', id), lastPing });
        await store.putDestination(at('org1', 'n1', 500));
        await store.putDestination(at('org1', 'n2', 1500));
        await store.putDestination(at('org1', 'n3', 2500));
        await store.putDestination(at('org2', 'n1', 3000));
        const counts = (await store.countDestinationsSeen([1000, 2000, 3000])).sort((a, b) => a.orgID.localeCompare(b.orgID));
        expect(counts).toEqual([
          { orgID: 'org1', total: 3, seen: [2, 1, 0] },
          { orgID: 'org2', total: 1, seen: [1, 1, 1] },
        ]);
        expect((await store.countDestinationsSeen([])).sort((a, b) => a.orgID.localeCompare(b.orgID))).toEqual([
          { orgID: 'org1', total: 3, seen: [] },
          { orgID: 'org2', total: 1, seen: [] },
        ]);
      });
    });

    describe('uploads', () => {
      it('are stored, read back and replaced per object', async () => {
        const first = uploadOf('org1', 'model', 'm1', { received: 100 });
        await store.putUpload(first);
        expect(await store.getUpload('org1', 'model', 'm1')).toEqual(first);
        const restarted = uploadOf('org1', 'model', 'm1', { stagingId: 'staging-new', instanceID: 6n });
        await store.putUpload(restarted);
        expect(await store.getUpload('org1', 'model', 'm1')).toEqual(restarted);
      });

      it('return null for an object without an upload', async () => {
        expect(await store.getUpload('org1', 'model', 'absent')).toBeNull();
      });

      it('advance when the expected offset is still current', async () => {
        await store.putUpload(uploadOf('org1', 'model', 'm1', { received: 100, lastUpdate: 1 }));
        expect(await store.advanceUpload('org1', 'model', 'm1', 100, 200)).toBe(true);
        const after = await store.getUpload('org1', 'model', 'm1');
        expect(after?.received).toBe(200);
        expect(after?.lastUpdate).toBeGreaterThan(1);
      });

      it('do not advance from a stale offset, and change nothing', async () => {
        const session = uploadOf('org1', 'model', 'm1', { received: 200 });
        await store.putUpload(session);
        expect(await store.advanceUpload('org1', 'model', 'm1', 100, 200)).toBe(false);
        expect(await store.getUpload('org1', 'model', 'm1')).toEqual(session);
      });

      it('let exactly one of two concurrent advances from the same offset win', async () => {
        await store.putUpload(uploadOf('org1', 'model', 'm1', { received: 0 }));
        const results = await Promise.all([store.advanceUpload('org1', 'model', 'm1', 0, 100), store.advanceUpload('org1', 'model', 'm1', 0, 100)]);
        expect(results.filter(Boolean)).toHaveLength(1);
        expect((await store.getUpload('org1', 'model', 'm1'))?.received).toBe(100);
      });

      it('refuse to move backwards, and change nothing', async () => {
        const session = uploadOf('org1', 'model', 'm1', { received: 200 });
        await store.putUpload(session);
        await expect(store.advanceUpload('org1', 'model', 'm1', 200, 100)).rejects.toThrow();
        expect(await store.getUpload('org1', 'model', 'm1')).toEqual(session);
      });

      it('do not advance an upload that does not exist', async () => {
        expect(await store.advanceUpload('org1', 'model', 'absent', 0, 100)).toBe(false);
        expect(await store.getUpload('org1', 'model', 'absent')).toBeNull();
      });

      it('are deleted per object, a missing one being no error', async () => {
        await store.putUpload(uploadOf('org1', 'model', 'm1'));
        await store.putUpload(uploadOf('org1', 'model', 'm2'));
        await store.deleteUpload('org1', 'model', 'm1');
        await store.deleteUpload('org1', 'model', 'absent');
        expect(await store.getUpload('org1', 'model', 'm1')).toBeNull();
        expect(await store.getUpload('org1', 'model', 'm2')).not.toBeNull();
      });
    });
  });
}
