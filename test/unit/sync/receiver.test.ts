import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import type { MetaData } from '../../../lib/model/index.js';
import type { FileBlobStore, NotificationStore, SqliteStore } from '../../../lib/store/index.js';
import { markConsumed, markDeleted } from '../../../lib/sync/object-marks.js';
import type { ObjectService } from '../../../lib/sync/object-service.js';
import { Receiver } from '../../../lib/sync/receiver.js';
import { cloudRecord, ESS_N1, modelForEdge, objectServiceOf, openStores, ORG, scratchDirs } from '../../helpers/sync-fixtures.js';

const freshDir = scratchDirs('edgesync-receiver-');

/** model/{objectID} for edge nodes, 3 bytes of data. */
const meta = (objectID: string, m: Partial<MetaData> = {}): MetaData => modelForEdge(objectID, { objectSize: 3, ...m });

describe('Receiver', () => {
  let store: SqliteStore;
  let notifications: NotificationStore;
  let blobs: FileBlobStore;
  let objects: ObjectService;
  let receiver: Receiver;

  beforeEach(async () => {
    const stores = await openStores(freshDir());
    ({ store, notifications, blobs } = stores);
    let r: Receiver | null = null;
    objects = objectServiceOf(ESS_N1, stores, {
      receiverListener: {
        onReceivedObjectMarked: async (o) => r?.onReceivedObjectMarked(o),
        onDeletionConfirmed: async (o) => r?.onDeletionConfirmed(o),
      },
    });
    receiver = new Receiver({ notifications, objects, orgID: ORG, now: () => 1000 });
    r = receiver;
  });

  afterEach(async () => {
    await store.close();
  });

  const status = async (id: string): Promise<string | undefined> => (await store.getObject(ORG, 'model', id))?.status;
  const rec = async (id: string): Promise<string | undefined> => (await cloudRecord(notifications, 'model', id))?.status;

  it('walks handleUpdate → getdata → received; a repeat is acked without a second download', async () => {
    const m = meta('a');
    expect(await receiver.applyUpdate(m)).toBe('download');
    expect([await status('a'), await rec('a')]).toEqual(['partiallyreceived', 'handleUpdate']);
    await receiver.startDownload(m);
    expect(await rec('a')).toBe('getdata');
    const written = await blobs.write(Readable.from([Buffer.from('abc')]));
    expect(await receiver.completeData(m, written)).toBe(true);
    expect([await status('a'), await rec('a')]).toEqual(['completelyReceived', 'received']);
    expect((await store.getObject(ORG, 'model', 'a'))?.dataSha256).toBe(written.sha256);
    expect(await receiver.applyUpdate(m)).toBe('received');
    expect(await receiver.applyUpdate(meta('a', { instanceID: 9n }))).toBe('stale');
    expect((await receiver.outbound(10)).map((n) => [n.objectID, n.status])).toEqual([['a', 'received']]);
  });

  it('stores a new instance that came with its data complete in one step, and leaves the rest to the usual path', async () => {
    const written = await blobs.write(Readable.from([Buffer.from('abc')]));
    expect(await receiver.applyUpdateWithData(meta('i'), written)).toBe('stored');
    expect([await status('i'), await rec('i')]).toEqual(['completelyReceived', 'received']);
    expect((await store.getObject(ORG, 'model', 'i'))).toMatchObject({ blobId: written.blobId, dataSha256: written.sha256, meta: { objectSize: 3 } });
    expect((await receiver.outbound(10)).map((n) => [n.objectID, n.status])).toEqual([['i', 'received']]);
    // Held already, an older instance, or one without data: nothing changes here.
    const again = await blobs.write(Readable.from([Buffer.from('abc')]));
    expect(await receiver.applyUpdateWithData(meta('i'), again)).toBe('other');
    expect(await receiver.applyUpdateWithData(meta('i', { instanceID: 9n }), again)).toBe('other');
    expect(await receiver.applyUpdateWithData(meta('n', { noData: true, objectSize: 0 }), again)).toBe('other');
    expect((await store.getObject(ORG, 'model', 'i'))?.blobId).toBe(written.blobId);
    // A newer instance replaces the object and its data.
    expect(await receiver.applyUpdateWithData(meta('i', { instanceID: 11n, dataID: 11n }), again)).toBe('stored');
    expect((await store.getObject(ORG, 'model', 'i'))).toMatchObject({ status: 'completelyReceived', blobId: again.blobId, meta: { instanceID: 11n } });
  });

  it('a noData object is complete at once; consumed is owed, and the ack drops the object', async () => {
    expect(await receiver.applyUpdate(meta('n', { noData: true, objectSize: 0 }))).toBe('received');
    const first = (await receiver.outbound(10))[0];
    expect(first?.status).toBe('received');
    await receiver.acked(first!);
    expect(await rec('n')).toBe('ackreceived');
    await markConsumed(objects, ORG, 'model', 'n');
    const owed = (await receiver.outbound(10))[0];
    expect(owed?.status).toBe('consumed');
    await receiver.acked(owed!);
    expect([await status('n'), await rec('n')]).toEqual([undefined, undefined]);
  });

  it('a delete of an unknown object leaves a placeholder; the app confirmation makes deleted owed', async () => {
    await receiver.applyDelete(meta('d', { deleted: true }));
    const obj = await store.getObject(ORG, 'model', 'd');
    expect([obj?.status, obj?.meta.deleted, obj?.blobId, await rec('d')]).toEqual(['objdeleted', true, null, 'delete']);
    await receiver.applyDelete(meta('d'));
    await markDeleted(objects, ORG, 'model', 'd');
    expect(await status('d')).toBeUndefined();
    const owed = (await receiver.outbound(10))[0];
    expect(owed?.status).toBe('deleted');
    await receiver.acked(owed!);
    expect(await rec('d')).toBeUndefined();
  });
});
