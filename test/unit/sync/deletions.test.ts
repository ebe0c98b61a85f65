import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import type { MetaData } from '../../../lib/model/index.js';
import { FileBlobStore, SqliteStore, type NotificationStore, type StoredObject } from '../../../lib/store/index.js';
import { DeletionsInProgress } from '../../../lib/sync/deletions.js';
import { ObjectService } from '../../../lib/sync/object-service.js';
import { Sender } from '../../../lib/sync/sender.js';
import { SenderAcks } from '../../../lib/sync/sender-acks.js';
import { storedObject } from '../../helpers/stored-object.js';

const root = mkdtempSync(join(tmpdir(), 'edgesync-deletions-'));
let fileCount = 0;
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

const ORG = 'org1';
const NOW = 1_700_000_000_000;
let instance = 1796424756755170100n;

const key = (objectID: string, peerID: string) => ({ orgID: ORG, objectType: 'model', objectID, peerType: 'edge', peerID });

describe('a sender-side deletion while destinations may hold the object', () => {
  let store: SqliteStore;
  let notifications: NotificationStore;
  let sender: Sender;
  let acks: SenderAcks;
  let objects: ObjectService;

  beforeEach(async () => {
    const dir = join(root, `n${++fileCount}`);
    store = new SqliteStore({ path: `${dir}.db` });
    await store.init();
    const blobs = new FileBlobStore({ root: dir });
    await blobs.init();
    notifications = store.notifications();
    const deletions = new DeletionsInProgress({ store, notifications, now: () => NOW });
    sender = new Sender({ store, notifications, deletions, now: () => NOW });
    objects = new ObjectService({
      store,
      blobs,
      node: { nodeType: 'CSS', orgID: '', destinationType: '', destinationID: '' },
      maxDataChunkSize: 1 << 20,
      maxDataSize: 0,
      listener: sender,
      deletions,
    });
    acks = new SenderAcks({ store, notifications, objects, deletions, now: () => NOW });
    for (const id of ['n1', 'n2']) {
      await store.putDestination({ destinationOrgID: ORG, destinationType: 'edge', destinationID: id, communication: 'HTTP', codeVersion: '', lastPing: 1 });
    }
  });

  afterEach(async () => {
    await store.close();
  });

  /** Stores the object and queues it toward the edge nodes, as ObjectService.update does. */
  async function publish(objectID: string, meta: Partial<MetaData> = { destinationType: 'edge' }): Promise<StoredObject> {
    const obj = storedObject(ORG, objectID, ++instance, { ...meta, description: 'kept while deleting' }, { policyReceived: true });
    await store.putObject(obj);
    await sender.onObjectPublished(obj);
    return obj;
  }

  /** The node got the object and its app has it: the record is `delivered`. */
  async function deliver(obj: StoredObject, peerID: string): Promise<void> {
    expect(await acks.apply(key(obj.meta.objectID, peerID), obj.meta.instanceID, 'updated')).toBe('applied');
    expect(await acks.apply(key(obj.meta.objectID, peerID), obj.meta.instanceID, 'received')).toBe('applied');
  }

  const statuses = async (objectID: string): Promise<string[]> =>
    (await notifications.listForObject(ORG, 'model', objectID)).map((r) => `${r.peerID}:${r.deliveryStatus}`);

  it('reads as objdeleted, metadata kept and no data, until the last destination acknowledges; then it is gone', async () => {
    const obj = await publish('m1');
    await deliver(obj, 'n1');
    await deliver(obj, 'n2');
    await objects.delete(ORG, 'model', 'm1');

    expect(await objects.get(ORG, 'model', 'm1')).toBeNull();
    const shown = await objects.getOrDeleted(ORG, 'model', 'm1');
    expect(shown).toMatchObject({ status: 'objdeleted', blobId: null, dataSha256: null, policyReceived: true, lastUpdate: NOW });
    expect(shown?.meta).toEqual({ ...obj.meta, deleted: true });
    expect(await statuses('m1')).toEqual(['n1:delivered', 'n2:delivered']);

    expect(await acks.apply(key('m1', 'n1'), obj.meta.instanceID, 'ackDelete')).toBe('applied');
    expect(await statuses('m1')).toEqual(['n1:deleted', 'n2:delivered']);
    expect((await objects.getOrDeleted(ORG, 'model', 'm1'))?.status).toBe('objdeleted');

    expect(await acks.apply(key('m1', 'n2'), obj.meta.instanceID, 'ackDelete')).toBe('applied');
    expect(await objects.getOrDeleted(ORG, 'model', 'm1')).toBeNull();
    expect(await store.getDeletion(ORG, 'model', 'm1')).toBeNull();
    // The records stay until each node's app confirms (`deleted`): that is the protocol's, not the object's.
    expect(await statuses('m1')).toEqual(['n1:deleted', 'n2:deleted']);
  });

  it('is not kept when no destination was ever served the object', async () => {
    await publish('never');
    await objects.delete(ORG, 'model', 'never');
    expect(await objects.getOrDeleted(ORG, 'model', 'never')).toBeNull();
    expect(await store.getDeletion(ORG, 'model', 'never')).toBeNull();
    expect(await statuses('never')).toEqual([]);
  });

  it('takes a second delete as a no-op while it is under way', async () => {
    const obj = await publish('twice');
    await deliver(obj, 'n1');
    await objects.delete(ORG, 'model', 'twice');
    await expect(objects.delete(ORG, 'model', 'twice')).resolves.toBeUndefined();
    expect((await objects.getOrDeleted(ORG, 'model', 'twice'))?.status).toBe('objdeleted');
    expect(await statuses('twice')).toEqual(['n1:delivered']);
  });

  it('lists deletions under way with the live objects, in key order; an object published again is listed once, live', async () => {
    for (const id of ['a', 'c', 'b']) await deliver(await publish(id), 'n1');
    await objects.delete(ORG, 'model', 'b');
    await objects.delete(ORG, 'model', 'c');
    const again = await publish('c');
    const listed = await objects.listAll(ORG);
    expect(listed.map((o) => [o.meta.objectID, o.status])).toEqual([
      ['a', 'ready'],
      ['b', 'objdeleted'],
      ['c', 'ready'],
    ]);
    expect((await objects.getOrDeleted(ORG, 'model', 'c'))?.meta.instanceID).toBe(again.meta.instanceID);
    expect((await objects.listAll(ORG, 'other')).length).toBe(0);
  });

  it('ends when its records go another way: one node re-registers as new, the other acknowledges', async () => {
    const obj = await publish('m2');
    await deliver(obj, 'n1');
    await deliver(obj, 'n2');
    await objects.delete(ORG, 'model', 'm2');
    await notifications.deleteForPeer(ORG, 'edge', 'n1');
    expect((await objects.getOrDeleted(ORG, 'model', 'm2'))?.status).toBe('objdeleted');
    const unknown = { code: 5, retryInterval: 0, reason: 'not found' };
    // Feedback is only taken on the update path; the node's ackDelete ends it instead.
    expect(await acks.apply(key('m2', 'n2'), obj.meta.instanceID, 'feedback', unknown)).toBe('ignored');
    expect(await acks.apply(key('m2', 'n2'), obj.meta.instanceID, 'ackDelete')).toBe('applied');
    expect(await objects.getOrDeleted(ORG, 'model', 'm2')).toBeNull();
    expect(await store.listDeletions(ORG)).toEqual([]);
  });

  it('is shown from what the records say even when its own row outlived them', async () => {
    const obj = await publish('stale');
    await deliver(obj, 'n1');
    await objects.delete(ORG, 'model', 'stale');
    // As if the row's removal had been lost: the records no longer show a deletion under way.
    await notifications.deleteForObject(ORG, 'model', 'stale');
    expect(await store.getDeletion(ORG, 'model', 'stale')).not.toBeNull();
    expect(await objects.listAll(ORG)).toEqual([]);
    expect(await store.getDeletion(ORG, 'model', 'stale')).toBeNull();
  });
});
