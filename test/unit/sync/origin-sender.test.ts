import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { emptyMetaData, type MetaData } from '../../../lib/model/index.js';
import type { FileBlobStore, Notification, NotificationStore, SqliteStore } from '../../../lib/store/index.js';
import type { ObjectListener, ObjectService } from '../../../lib/sync/object-service.js';
import { DeletionsInProgress } from '../../../lib/sync/deletions.js';
import { OriginSender } from '../../../lib/sync/origin-sender.js';
import { cloudRecord, ESS_N1, objectServiceOf, openStores, ORG, scratchDirs } from '../../helpers/sync-fixtures.js';

const freshDir = scratchDirs('edgesync-origin-');

const ADMIN = { orgID: ORG, userID: 'admin' };
const NOW = 1_700_000_000_000;

describe('OriginSender (the ESS sending the objects its apps publish)', () => {
  let store: SqliteStore;
  let notifications: NotificationStore;
  let blobs: FileBlobStore;
  let objects: ObjectService;
  let origin: OriginSender;
  let now: number;
  /** The ObjectService's listener; null = a change made while nothing listens (before the sync started). */
  let listening: ObjectListener | null;

  beforeEach(async () => {
    const stores = await openStores(freshDir());
    ({ store, notifications, blobs } = stores);
    now = NOW;
    const deletions = new DeletionsInProgress({ store, notifications, now: () => now });
    objects = objectServiceOf(ESS_N1, stores, {
      deletions,
      maxDataChunkSize: 4,
      listener: {
        onObjectPublished: async (o) => listening?.onObjectPublished(o),
        onObjectDeleted: async (o) => listening?.onObjectDeleted(o),
      },
    });
    origin = new OriginSender({ store, notifications, objects, orgID: ORG, deletions, now: () => now });
    listening = origin;
  });

  afterEach(async () => {
    await store.close();
  });

  const publish = (objectID: string, data?: string, m: Partial<MetaData> = {}) =>
    objects.update(ORG, 'report', objectID, { meta: { ...emptyMetaData(), objectType: 'report', objectID, ...m }, data: data === undefined ? undefined : Buffer.from(data) }, ADMIN);
  const rec = (id: string): Promise<Notification | null> => cloudRecord(notifications, 'report', id);
  const owed = async (): Promise<string[]> => (await origin.owed(100)).map((r) => `${r.objectID}:${r.status}@${r.offset}`);

  it('walks update → data (offset persisted per chunk) → updated → receivedByDest → consumed: metadata kept, data and record gone', async () => {
    const obj = await publish('a', 'hello world');
    expect(await owed()).toEqual(['a:update@0']);
    const first = (await origin.owed(1))[0]!;
    expect((await origin.sendable(first))?.meta.instanceID).toBe(obj.meta.instanceID);
    const data = await origin.updateTaken(first, obj);
    expect(data?.status).toBe('data');
    expect(await origin.chunkTaken(data!, 4, 11)).toBe(true);
    // A restart: another sender on the same store resumes the push from the acked offset.
    const restarted = new OriginSender({ store, notifications, objects, orgID: ORG, now: () => now });
    expect(await owed()).toEqual(['a:data@4']);
    const resumed = (await restarted.owed(1))[0]!;
    expect(await restarted.chunkTaken(resumed, 11, 11)).toBe(true);
    expect([(await rec('a'))?.status, await owed()]).toEqual(['updated', []]);
    expect(await origin.onReceived(obj.meta)).toBe('applied');
    expect(await origin.onReceived(obj.meta)).toBe('duplicate');
    expect(await origin.onReceived({ ...obj.meta, instanceID: 1n })).toBe('stale');
    expect((await rec('a'))?.status).toBe('receivedByDest');
    expect(await origin.onConsumed(obj.meta)).toBe('applied');
    const kept = await store.getObject(ORG, 'report', 'a');
    expect([kept?.status, kept?.blobId, await blobs.list(), await rec('a')]).toEqual(['consumedByDest', null, [], null]);
    expect(await origin.onConsumed(obj.meta)).toBe('duplicate');
  });

  it('an object without data owes its metadata only; one not ready yet owes nothing until its data comes', async () => {
    const flag = await publish('n', undefined, { noData: true });
    const r = (await origin.owed(1))[0]!;
    expect((await origin.updateTaken(r, flag))?.status).toBe('updated');
    await publish('later');
    expect(await owed()).toEqual([]);
    await objects.putData(ORG, 'report', 'later', Readable.from([Buffer.from('xyz')]), { size: 3 });
    expect(await owed()).toEqual(['later:update@0']);
  });

  it('a newer instance supersedes an older one still uploading', async () => {
    const v1 = await publish('v', 'first version');
    const uploading = await origin.updateTaken((await origin.owed(1))[0]!, v1);
    await origin.chunkTaken(uploading!, 4, 13);
    const v2 = await publish('v', 'second');
    expect(await owed()).toEqual(['v:update@0']);
    expect((await rec('v'))?.instanceID).toBe(v2.meta.instanceID);
    // The older upload's next step finds the record moved on, and stops.
    expect(await origin.chunkTaken({ ...uploading!, offset: 4 }, 8, 13)).toBe(false);
    expect(await origin.sendable(uploading!)).toBeNull();
  });

  it('a failed step waits RESEND_INTERVAL; a refused resume starts the data again from 0', async () => {
    const obj = await publish('a', 'hello world');
    const r = (await origin.owed(1))[0]!;
    await origin.retryLater(r, now + 10_000);
    expect(await owed()).toEqual([]);
    now += 10_000;
    const data = (await origin.updateTaken((await origin.owed(1))[0]!, obj))!;
    await origin.chunkTaken(data, 8, 11);
    expect(await origin.restartData({ ...data, offset: 8 }, now + 1)).toBe(true);
    now += 1;
    expect(await owed()).toEqual(['a:data@0']);
  });

  it('a deletion is owed once the CSS may know the object, reads as objdeleted until the CSS takes it; the CSS app confirmation ends the pair', async () => {
    const obj = await publish('d', 'bye');
    await objects.delete(ORG, 'report', 'd');
    expect(await owed()).toEqual(['d:deletePending@0']);
    const shown = await objects.getOrDeleted(ORG, 'report', 'd');
    expect([shown?.status, shown?.meta.deleted, shown?.blobId, await objects.get(ORG, 'report', 'd')]).toEqual(['objdeleted', true, null, null]);
    // Deleting again meanwhile changes nothing.
    await objects.delete(ORG, 'report', 'd');
    expect(await owed()).toEqual(['d:deletePending@0']);
    const r = (await origin.owed(1))[0]!;
    expect(origin.deletedMetaData(r, { destinationType: 'edge', destinationID: 'n1' })).toEqual({
      objectType: 'report',
      objectID: 'd',
      destinationOrgID: ORG,
      originType: 'edge',
      originID: 'n1',
      instanceID: obj.meta.instanceID,
      dataID: obj.meta.dataID,
      deleted: true,
    });
    expect(await origin.deleteTaken(r)).toBe(true);
    expect([(await rec('d'))?.status, await owed()]).toEqual(['ackDelete', []]);
    expect(await objects.getOrDeleted(ORG, 'report', 'd')).toBeNull();
    expect(await store.listDeletions(ORG)).toEqual([]);
    expect(await origin.onDeleted(obj.meta)).toBe('applied');
    expect(await rec('d')).toBeNull();
    expect(await origin.onDeleted(obj.meta)).toBe('duplicate');
    // Never sendable (no data yet), so never sent: its deletion owes nothing.
    await publish('draft');
    await objects.delete(ORG, 'report', 'draft');
    expect(await owed()).toEqual([]);
    expect(await objects.getOrDeleted(ORG, 'report', 'draft')).toBeNull();
  });

  it('records of objects received from the CSS are not its business', async () => {
    await notifications.putNotification({
      orgID: ORG, objectType: 'model', objectID: 'from-css', peerType: 'Cloud', peerID: 'Cloud', status: 'delete',
      instanceID: 5n, dataID: 5n, deliveryStatus: 'deleted', message: '', resendAt: 0, attempts: 0, offset: 0, lastUpdate: 1,
    });
    expect(await owed()).toEqual([]);
  });

  it('after a register-new every published object is owed again, and so are unconfirmed deletions', async () => {
    const a = await publish('a', 'one');
    await origin.updateTaken((await origin.owed(1))[0]!, a);
    await publish('gone', 'two');
    await objects.delete(ORG, 'report', 'gone');
    const deletions = await origin.deletionsInFlight();
    await notifications.deleteForPeer(ORG, 'Cloud', 'Cloud');
    await origin.onRegisterNew(deletions);
    expect(await owed()).toEqual(['a:update@0', 'gone:deletePending@0']);
  });

  it('at start-up, what changed while nothing listened gets its records', async () => {
    await publish('sent', 'abc');
    listening = null;
    await publish('unheard', 'def');
    await objects.delete(ORG, 'report', 'sent');
    await origin.reconcile();
    expect(await owed()).toEqual(['sent:deletePending@0', 'unheard:update@0']);
  });
});
