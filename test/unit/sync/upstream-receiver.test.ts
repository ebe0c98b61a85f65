import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { BadRequestError, ConflictError, PayloadTooLargeError, emptyMetaData, type MetaData } from '../../../lib/model/index.js';
import type { FileBlobStore, NotificationStore, SqliteStore } from '../../../lib/store/index.js';
import { markConsumed, markDeleted } from '../../../lib/sync/object-marks.js';
import type { ObjectService } from '../../../lib/sync/object-service.js';
import { UpstreamReceiver, type UpstreamPeer } from '../../../lib/sync/upstream-receiver.js';
import { sha } from '../../helpers/bytes.js';
import { CSS, objectServiceOf, openStores, ORG, scratchDirs } from '../../helpers/sync-fixtures.js';

const freshDir = scratchDirs('edgesync-upstream-');

const N1: UpstreamPeer = { orgID: ORG, peerType: 'edge', peerID: 'n1' };
const N2: UpstreamPeer = { orgID: ORG, peerType: 'edge', peerID: 'n2' };
// Beyond 2^53, as the reference's ids: a double would round it.
const INSTANCE = 1796425024462912487n;
const DATA = Buffer.from('0123456789');

/** What an ESS sends in `update`: its object's metadata. */
function meta(objectID: string, m: Partial<MetaData> = {}): MetaData {
  return { ...emptyMetaData(), objectType: 'report', objectID, instanceID: INSTANCE, dataID: INSTANCE, objectSize: DATA.length, originType: 'edge', originID: 'n1', ...m };
}

const ref = (objectID: string, instanceID = INSTANCE) => ({ objectType: 'report', objectID, instanceID });

describe('UpstreamReceiver (the CSS receiving objects an ESS published)', () => {
  let store: SqliteStore;
  let notifications: NotificationStore;
  let blobs: FileBlobStore;
  let objects: ObjectService;
  let upstream: UpstreamReceiver;
  let woken: string[];

  beforeEach(async () => {
    const stores = await openStores(freshDir());
    ({ store, notifications, blobs } = stores);
    woken = [];
    let u: UpstreamReceiver | null = null;
    objects = objectServiceOf(CSS, stores, {
      receiverListener: {
        onReceivedObjectMarked: async (o) => u?.onReceivedObjectMarked(o),
        onDeletionConfirmed: async (o) => u?.onDeletionConfirmed(o),
        onReceivedObjectDeleted: async (o) => u?.onReceivedObjectDeleted(o),
      },
    });
    upstream = new UpstreamReceiver({ store, notifications, blobs, objects, maxDataSize: 1000, peerSignal: { notify: (_o, t, id) => woken.push(`${t}/${id}`) }, now: () => 1_700_000_000_000 });
    u = upstream;
  });

  afterEach(async () => {
    await store.close();
  });

  const status = async (id: string): Promise<string | undefined> => (await store.getObject(ORG, 'report', id))?.status;
  const rec = async (id: string, peer = N1): Promise<string | undefined> => (await notifications.getNotification(ORG, 'report', id, peer.peerType, peer.peerID))?.status;

  it('update stores the metadata as partiallyreceived with the caller as origin; the data completes it and queues received', async () => {
    expect(await upstream.applyUpdate(N1, ref('a'), meta('a', { originType: 'forged', originID: 'x' }))).toBe('applied');
    const stored = await store.getObject(ORG, 'report', 'a');
    expect([stored?.status, stored?.meta.originType, stored?.meta.originID, stored?.meta.destinationOrgID, await rec('a')]).toEqual(['partiallyreceived', 'edge', 'n1', ORG, 'handleUpdate']);
    expect(await upstream.putData(N1, ref('a'), Readable.from([DATA]), { size: DATA.length, sha256: sha(DATA) })).toBe('applied');
    const done = await store.getObject(ORG, 'report', 'a');
    expect([done?.status, done?.dataSha256, await rec('a')]).toEqual(['completelyReceived', sha(DATA), 'receivedpending']);
    expect(woken).toEqual(['edge/n1']);
    // The last 204 was lost: the repeat is acked and changes nothing.
    expect(await upstream.putData(N1, ref('a'), Readable.from([DATA]), { size: DATA.length })).toBe('duplicate');
    expect(await upstream.applyUpdate(N1, ref('a'), meta('a'))).toBe('duplicate');
    expect(await status('a')).toBe('completelyReceived');
  });

  it('the newest instance wins: an older update is stale, a newer one replaces the object and its upload', async () => {
    await upstream.applyUpdate(N1, ref('a'), meta('a'));
    await upstream.putData(N1, ref('a'), Readable.from([DATA.subarray(0, 4)]), { range: { start: 0, end: 3, total: DATA.length } });
    expect(await upstream.applyUpdate(N1, ref('a', INSTANCE - 1n), meta('a', { instanceID: INSTANCE - 1n, dataID: INSTANCE - 1n }))).toBe('stale');
    expect(await upstream.applyUpdate(N1, ref('a', INSTANCE + 1n), meta('a', { instanceID: INSTANCE + 1n, dataID: INSTANCE + 1n, version: '2' }))).toBe('applied');
    expect(await store.getUpload(ORG, 'report', 'a')).toBeNull();
    // Data of the superseded instance is refused as stale, and stores nothing.
    expect(await upstream.putData(N1, ref('a'), Readable.from([DATA.subarray(4)]), { range: { start: 4, end: 9, total: DATA.length } })).toBe('stale');
    const obj = await store.getObject(ORG, 'report', 'a');
    expect([obj?.status, obj?.meta.version, obj?.blobId]).toEqual(['partiallyreceived', '2', null]);
  });

  it('chunks arrive in order and persist their progress: a repeated chunk is a retry, a new receiver resumes where the last left', async () => {
    const data = randomBytes(25);
    await upstream.applyUpdate(N1, ref('c'), meta('c', { objectSize: 25 }));
    const chunk = (s: number, e: number): Readable => Readable.from([data.subarray(s, e + 1)]);
    expect(await upstream.putData(N1, ref('c'), chunk(0, 9), { range: { start: 0, end: 9, total: 25 } })).toBe('applied');
    expect(await upstream.putData(N1, ref('c'), chunk(0, 9), { range: { start: 0, end: 9, total: 25 } })).toBe('duplicate');
    await expect(upstream.putData(N1, ref('c'), chunk(12, 19), { range: { start: 12, end: 19, total: 25 } })).rejects.toThrow(BadRequestError);
    // A CSS restart: another receiver on the same store takes the next chunk.
    const again = new UpstreamReceiver({ store, notifications, blobs, objects, maxDataSize: 0 });
    expect(await again.putData(N1, ref('c'), chunk(10, 19), { range: { start: 10, end: 19, total: 25 } })).toBe('applied');
    expect(await status('c')).toBe('partiallyreceived');
    expect(await again.putData(N1, ref('c'), chunk(20, 24), { range: { start: 20, end: 24, total: 25 }, sha256: sha(data) })).toBe('applied');
    const obj = await store.getObject(ORG, 'report', 'c');
    expect([obj?.status, obj?.meta.uploadChunkSize, obj?.dataSha256, await store.getUpload(ORG, 'report', 'c')]).toEqual(['completelyReceived', 10, sha(data), null]);
  });

  it('bad input is refused and stores nothing', async () => {
    await expect(upstream.applyUpdate(N1, ref('b'), meta('other'))).rejects.toThrow(BadRequestError);
    await expect(upstream.applyUpdate(N1, ref('b'), meta('b', { destinationOrgID: 'org2' }))).rejects.toThrow(BadRequestError);
    await expect(upstream.applyUpdate(N1, ref('b', 5n), meta('b'))).rejects.toThrow(BadRequestError);
    await expect(upstream.applyUpdate(N1, ref('b'), meta('b', { description: '<script>' }))).rejects.toThrow(BadRequestError);
    await expect(upstream.applyUpdate(N1, ref('b'), meta('b', { objectSize: 5000 }))).rejects.toThrow(PayloadTooLargeError);
    expect(await status('b')).toBeUndefined();
    await upstream.applyUpdate(N1, ref('b'), meta('b'));
    // Shorter than the metadata says, or a digest that does not match: nothing is kept.
    await expect(upstream.putData(N1, ref('b'), Readable.from([DATA.subarray(1)]), {})).rejects.toThrow();
    await expect(upstream.putData(N1, ref('b'), Readable.from([DATA]), { size: DATA.length, sha256: sha(Buffer.from('other')) })).rejects.toThrow(/SHA-256 mismatch/);
    await expect(upstream.putData(N1, ref('b'), Readable.from([DATA]), { range: { start: 0, end: 9, total: 11 } })).rejects.toThrow(BadRequestError);
    expect([await status('b'), (await store.getObject(ORG, 'report', 'b'))?.blobId, await blobs.list()]).toEqual(['partiallyreceived', null, []]);
  });

  it("another ESS cannot push data into an ESS's object, nor take a key the CSS publishes itself", async () => {
    await upstream.applyUpdate(N1, ref('a'), meta('a'));
    expect(await upstream.putData(N2, ref('a'), Readable.from([DATA]), {})).toBe('unknown');
    await objects.update(ORG, 'report', 'mine', { meta: { ...emptyMetaData(), objectType: 'report', objectID: 'mine', destinationType: 'edge' }, data: undefined }, { orgID: ORG, userID: 'admin' });
    await expect(upstream.applyUpdate(N1, ref('mine'), meta('mine'))).rejects.toThrow(ConflictError);
  });

  it('received → ackreceived; a CSS app consuming it queues consumed; ackconsumed removes the copy and the record', async () => {
    await upstream.applyUpdate(N1, ref('a'), meta('a', { noData: true, objectSize: 0 }));
    expect([await status('a'), await rec('a')]).toEqual(['completelyReceived', 'receivedpending']);
    expect(await upstream.ackConsumed(N1, ref('a'))).toBe('ignored');
    expect(await upstream.ackReceived(N1, ref('a', INSTANCE - 1n))).toBe('stale');
    expect(await upstream.ackReceived(N1, ref('a'))).toBe('applied');
    expect(await upstream.ackReceived(N1, ref('a'))).toBe('duplicate');
    await markConsumed(objects, ORG, 'report', 'a');
    expect([await status('a'), await rec('a')]).toEqual(['objconsumed', 'consumedPending']);
    expect(await upstream.ackConsumed(N1, ref('a'))).toBe('applied');
    expect([await status('a'), await rec('a')]).toEqual([undefined, undefined]);
    expect(await upstream.ackConsumed(N1, ref('a'))).toBe('unknown');
  });

  it('delete marks the copy deleted and drops its data; the app confirms; ackDeleted ends the pair', async () => {
    await upstream.applyUpdate(N1, ref('d'), meta('d'));
    await upstream.putData(N1, ref('d'), Readable.from([DATA]), {});
    expect(await upstream.applyDelete(N1, ref('d'), meta('d', { deleted: true }))).toBe('applied');
    const obj = await store.getObject(ORG, 'report', 'd');
    expect([obj?.status, obj?.meta.deleted, obj?.blobId, await rec('d'), await blobs.list()]).toEqual(['objdeleted', true, null, 'ackDelete', []]);
    expect(await upstream.applyDelete(N1, ref('d'), meta('d'))).toBe('duplicate');
    expect(await upstream.ackDeleted(N1, ref('d'))).toBe('ignored');
    await markDeleted(objects, ORG, 'report', 'd');
    expect([await status('d'), await rec('d')]).toEqual([undefined, 'deletedPending']);
    expect(await upstream.ackDeleted(N1, ref('d'))).toBe('applied');
    expect(await rec('d')).toBeUndefined();
  });

  it('a delete of an object never received leaves a placeholder the app can confirm; an older instance is stale', async () => {
    await upstream.applyUpdate(N1, ref('n', INSTANCE + 5n), meta('n', { instanceID: INSTANCE + 5n, dataID: INSTANCE + 5n }));
    expect(await upstream.applyDelete(N1, ref('n'), meta('n'))).toBe('stale');
    expect(await upstream.applyDelete(N1, ref('p'), meta('p'))).toBe('applied');
    const obj = await store.getObject(ORG, 'report', 'p');
    expect([obj?.status, obj?.meta.deleted, obj?.meta.originID, await rec('p')]).toEqual(['objdeleted', true, 'n1', 'ackDelete']);
  });

  it('a record dropped by a register-new is restored by the repeated update', async () => {
    await upstream.applyUpdate(N1, ref('a'), meta('a', { noData: true, objectSize: 0 }));
    await notifications.deleteForPeer(ORG, 'edge', 'n1');
    expect(await upstream.applyUpdate(N1, ref('a'), meta('a', { noData: true, objectSize: 0 }))).toBe('duplicate');
    expect(await rec('a')).toBe('receivedpending');
  });

  it('a CSS app deleting its copy through the API takes the record with it', async () => {
    await upstream.applyUpdate(N1, ref('a'), meta('a', { noData: true, objectSize: 0 }));
    await objects.delete(ORG, 'report', 'a');
    expect([await status('a'), await rec('a')]).toEqual([undefined, undefined]);
  });
});
