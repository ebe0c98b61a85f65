/**
 * The Receiver's persisted download progress (one upload session per object being downloaded)
 * on a real SQLite store and FileBlobStore: begin, advance, resume, and the cases that discard it.
 */
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import type { MetaData } from '../../../lib/model/index.js';
import type { FileBlobStore, NotificationStore, SqliteStore } from '../../../lib/store/index.js';
import { Receiver } from '../../../lib/sync/receiver.js';
import { cloudRecord, ESS_N1, modelForEdge, objectServiceOf, openStores, ORG, scratchDirs } from '../../helpers/sync-fixtures.js';

const freshDir = scratchDirs('edgesync-receiver-downloads-');

/** model/{objectID} for edge nodes, 1000 bytes of data. */
const meta = (objectID: string, m: Partial<MetaData> = {}): MetaData => modelForEdge(objectID, { objectSize: 1000, ...m });

describe('Receiver download progress', () => {
  let store: SqliteStore;
  let notifications: NotificationStore;
  let blobs: FileBlobStore;
  let receiver: Receiver;

  beforeEach(async () => {
    const stores = await openStores(freshDir());
    ({ store, notifications, blobs } = stores);
    const objects = objectServiceOf(ESS_N1, stores);
    receiver = new Receiver({ notifications, objects, orgID: ORG, now: () => 1000, downloads: { sessions: store, blobs } });
  });

  afterEach(async () => {
    await store.close();
  });

  const record = (id: string) => cloudRecord(notifications, 'model', id);

  it('begins at 0, persists each advance, and a second begin of the same instance resumes there', async () => {
    const m = meta('a');
    await receiver.applyUpdate(m);
    const state = await receiver.beginDownload(m);
    expect(state.offset).toBe(0);
    expect(await blobs.listStaging()).toEqual([state.stagingId]);
    expect((await record('a'))?.status).toBe('getdata');
    expect(await receiver.advanceDownload(m, state, 400)).toBe(true);
    expect(state.offset).toBe(400);
    expect((await record('a'))?.offset).toBe(400);
    // The staging area is referenced, so the garbage collection at start keeps it.
    expect((await store.referencedBlobIds()).has(state.stagingId)).toBe(true);
    // The same instance again (a retry, or this ESS restarted): where it was.
    expect(await receiver.beginDownload(m)).toEqual({ stagingId: state.stagingId, offset: 400 });
    // A repeated update of the same instance keeps the progress.
    await receiver.applyUpdate(m);
    expect(await receiver.beginDownload(m)).toEqual({ stagingId: state.stagingId, offset: 400 });
  });

  it('a newer instance discards the progress of the older one, staging area included', async () => {
    const old = meta('b');
    await receiver.applyUpdate(old);
    const state = await receiver.beginDownload(old);
    await receiver.advanceDownload(old, state, 300);
    const newer = meta('b', { instanceID: 11n, dataID: 11n });
    await receiver.applyUpdate(newer);
    expect(await blobs.listStaging()).toEqual([]);
    expect(await store.getUpload(ORG, 'model', 'b')).toBeNull();
    // The old download's next advance finds it gone and stops.
    expect(await receiver.advanceDownload(old, state, 600)).toBe(false);
    const fresh = await receiver.beginDownload(newer);
    expect(fresh.offset).toBe(0);
    expect(fresh.stagingId).not.toBe(state.stagingId);
  });

  it('a session of another size is not resumed', async () => {
    const m = meta('c');
    await receiver.applyUpdate(m);
    const state = await receiver.beginDownload(m);
    await receiver.advanceDownload(m, state, 300);
    const again = await receiver.beginDownload({ ...m, objectSize: 2000 });
    expect(again.offset).toBe(0);
    expect(await blobs.listStaging()).toEqual([again.stagingId]);
  });

  it('discardDownload makes the next attempt start from 0', async () => {
    const m = meta('d');
    await receiver.applyUpdate(m);
    const state = await receiver.beginDownload(m);
    await receiver.advanceDownload(m, state, 500);
    await receiver.discardDownload(m);
    expect(await blobs.listStaging()).toEqual([]);
    expect((await record('d'))?.offset).toBe(0);
    expect((await receiver.beginDownload(m)).offset).toBe(0);
  });

  it('a deletion from the CSS discards the progress', async () => {
    const m = meta('e');
    await receiver.applyUpdate(m);
    await receiver.beginDownload(m);
    await receiver.applyDelete(m);
    expect(await blobs.listStaging()).toEqual([]);
    expect(await store.getUpload(ORG, 'model', 'e')).toBeNull();
  });

  it('completing the object ends its session', async () => {
    const m = meta('f', { objectSize: 3 });
    await receiver.applyUpdate(m);
    const state = await receiver.beginDownload(m);
    await blobs.writeStaging(state.stagingId, 0, 3, Readable.from([Buffer.from('abc')]));
    const written = await blobs.commitStaging(state.stagingId);
    expect(await receiver.completeData(m, written)).toBe(true);
    expect(await store.getUpload(ORG, 'model', 'f')).toBeNull();
    expect(await blobs.listStaging()).toEqual([]);
    expect(await record('f')).toMatchObject({ status: 'received', offset: 3 });
  });
});
