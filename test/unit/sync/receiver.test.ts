import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { emptyMetaData, type MetaData } from '../../../lib/model/index.js';
import { FileBlobStore, SqliteStore, type NotificationStore } from '../../../lib/store/index.js';
import { markConsumed, markDeleted } from '../../../lib/sync/object-marks.js';
import { ObjectService } from '../../../lib/sync/object-service.js';
import { Receiver } from '../../../lib/sync/receiver.js';

const root = mkdtempSync(join(tmpdir(), 'edgesync-receiver-'));
let fileCount = 0;
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

const ORG = 'org1';

function meta(objectID: string, m: Partial<MetaData> = {}): MetaData {
  return { ...emptyMetaData(), destinationOrgID: ORG, objectType: 'model', objectID, destinationType: 'edge', instanceID: 10, dataID: 10, objectSize: 3, consumers: 1, ...m };
}

describe('Receiver', () => {
  let store: SqliteStore;
  let notifications: NotificationStore;
  let blobs: FileBlobStore;
  let objects: ObjectService;
  let receiver: Receiver;

  beforeEach(async () => {
    const dir = join(root, String(++fileCount));
    mkdirSync(dir);
    store = new SqliteStore({ path: join(dir, 'db') });
    await store.init();
    notifications = store.notifications();
    blobs = new FileBlobStore({ root: join(dir, 'data') });
    await blobs.init();
    let r: Receiver | null = null;
    objects = new ObjectService({
      store,
      blobs,
      node: { nodeType: 'ESS', orgID: ORG, destinationType: 'edge', destinationID: 'n1' },
      maxDataChunkSize: 1024,
      maxDataSize: 0,
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
  const rec = async (id: string): Promise<string | undefined> => (await notifications.getNotification(ORG, 'model', id, 'Cloud', 'Cloud'))?.status;

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
    expect(await receiver.applyUpdate(meta('a', { instanceID: 9 }))).toBe('stale');
    expect((await receiver.outbound(10)).map((n) => [n.objectID, n.status])).toEqual([['a', 'received']]);
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
