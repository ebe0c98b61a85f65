/**
 * Versions on the receiving side: what a new instance becomes when it arrives (complete at once
 * without data, a link, or metaOnly over the same data held; else waiting for its data), and
 * that messages arriving late, twice or out of order never roll an object back.
 * [ref sync-protocol §0 instanceID/dataID, §3 step 2, §6]
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import type { MetaData } from '../../../lib/model/index.js';
import type { FileBlobStore, NotificationStore, SqliteStore } from '../../../lib/store/index.js';
import type { StoredObject } from '../../../lib/store/types.js';
import { DestinationFiles } from '../../../lib/sync/destination-files.js';
import type { ObjectService } from '../../../lib/sync/object-service.js';
import { receivedInstance } from '../../../lib/sync/received-instance.js';
import { Receiver } from '../../../lib/sync/receiver.js';
import { cloudRecord, ESS_N1, modelForEdge, objectServiceOf, openStores, ORG, scratchDirs } from '../../helpers/sync-fixtures.js';

const meta = (objectID: string, m: Partial<MetaData> = {}): MetaData => modelForEdge(objectID, { objectSize: 3, ...m });

/** An object held complete with data of dataID 10. */
const held = (m: Partial<MetaData> = {}): StoredObject => ({
  meta: meta('x', m),
  status: 'completelyReceived',
  blobId: 'blob-10',
  dataSha256: 'sha-10',
  remainingConsumers: 1,
  remainingReceivers: 1,
  policyReceived: false,
  lastUpdate: 0,
});

describe('receivedInstance: what a new instance becomes', () => {
  it('waits for its data when it has some', () => {
    expect(receivedInstance(meta('x', { instanceID: 11n, dataID: 11n }), held(), 5)).toMatchObject({ status: 'partiallyreceived', blobId: null, dataSha256: null, lastUpdate: 5 });
    expect(receivedInstance(meta('x'), null, 5).status).toBe('partiallyreceived');
  });

  it('is complete at once, with no data, when it is noData or a link', () => {
    expect(receivedInstance(meta('x', { noData: true, objectSize: 0 }), held(), 5)).toMatchObject({ status: 'completelyReceived', blobId: null });
    expect(receivedInstance(meta('x', { link: 'https://example.com/m' }), null, 5)).toMatchObject({ status: 'completelyReceived', blobId: null });
  });

  it('keeps the data held when metaOnly and the dataID is unchanged: no download', () => {
    expect(receivedInstance(meta('x', { instanceID: 11n, dataID: 10n, metaOnly: true }), held(), 5)).toMatchObject({ status: 'completelyReceived', blobId: 'blob-10', dataSha256: 'sha-10' });
  });

  it('downloads when metaOnly names other data than held, or nothing is held', () => {
    expect(receivedInstance(meta('x', { instanceID: 11n, dataID: 9n, metaOnly: true }), held(), 5).status).toBe('partiallyreceived');
    expect(receivedInstance(meta('x', { instanceID: 11n, metaOnly: true }), null, 5).status).toBe('partiallyreceived');
    expect(receivedInstance(meta('x', { instanceID: 11n, metaOnly: true }), { ...held(), blobId: null }, 5).status).toBe('partiallyreceived');
  });

  it('counts consumers as the reference does: 0 is 1, -1 is unlimited', () => {
    expect(receivedInstance(meta('x', { consumers: 0 }), null, 5).remainingConsumers).toBe(1);
    expect(receivedInstance(meta('x', { consumers: -1 }), null, 5).remainingConsumers).toBe(2147483647);
    expect(receivedInstance(meta('x', { consumers: 3 }), null, 5).remainingReceivers).toBe(3);
  });
});

const freshDir = scratchDirs('edgesync-versions-');

describe('Receiver: updates replace, late and repeated messages never roll back', () => {
  let store: SqliteStore;
  let notifications: NotificationStore;
  let blobs: FileBlobStore;
  let objects: ObjectService;
  let receiver: Receiver;
  let files: string;

  beforeEach(async () => {
    const stores = await openStores(freshDir());
    ({ store, notifications, blobs } = stores);
    objects = objectServiceOf(ESS_N1, stores);
    files = await mkdtemp(join(tmpdir(), 'edgesync-versions-files-'));
    const dataFiles = new DestinationFiles({ blobs, where: { field: 'destinationDataUri', key: 'DESTINATION_DATA_DIRS', dirs: [files] } });
    receiver = new Receiver({ notifications, objects, orgID: ORG, now: () => 1000, downloads: { sessions: store, blobs }, dataFiles });
  });

  afterEach(async () => {
    await store.close();
    await rm(files, { recursive: true, force: true });
  });

  const object = (id: string): Promise<StoredObject | null> => store.getObject(ORG, 'model', id);
  const data = (text: string): Promise<{ blobId: string; sha256: string; size: number }> => blobs.write(Readable.from([Buffer.from(text)]));
  const receive = async (m: MetaData, text: string): Promise<void> => {
    expect(await receiver.applyUpdate(m)).toBe('download');
    expect(await receiver.completeData(m, await data(text))).toBe(true);
  };

  it('a newer instance replaces the older one, data included', async () => {
    await receive(meta('v', { version: '1' }), 'one');
    await receive(meta('v', { instanceID: 20n, dataID: 20n, version: '2' }), 'two');
    const obj = (await object('v'))!;
    expect([obj.meta.version, obj.meta.instanceID, obj.status]).toEqual(['2', 20n, 'completelyReceived']);
    expect(obj.dataSha256).toBe((await data('two')).sha256);
  });

  it('an older instance arriving after a newer one is ignored, whatever its path', async () => {
    await receive(meta('o', { instanceID: 20n, dataID: 20n, version: '2' }), 'two');
    const older = meta('o', { version: '1' });
    expect(await receiver.applyUpdate(older)).toBe('stale');
    expect(await receiver.applyUpdateWithData(older, await data('one'))).toBe('other');
    expect(await receiver.completeData(older, await data('one'))).toBe(false);
    await receiver.applyDelete({ ...older, deleted: true });
    const obj = (await object('o'))!;
    expect([obj.meta.version, obj.meta.instanceID, obj.status]).toEqual(['2', 20n, 'completelyReceived']);
    expect((await cloudRecord(notifications, 'model', 'o'))?.instanceID).toBe(20n);
  });

  it('an older instance arriving while a newer one downloads leaves the download alone', async () => {
    const newer = meta('d', { instanceID: 20n, dataID: 20n });
    expect(await receiver.applyUpdate(newer)).toBe('download');
    const state = await receiver.beginDownload(newer);
    expect(await receiver.applyUpdate(meta('d'))).toBe('stale');
    expect((await store.getUpload(ORG, 'model', 'd'))?.stagingId).toBe(state.stagingId);
    expect(await receiver.completeData(newer, await data('new'))).toBe(true);
    expect((await object('d'))?.meta.instanceID).toBe(20n);
  });

  it('a repeated update is idempotent: the same answer, no second record, no second download', async () => {
    const m = meta('r');
    await receive(m, 'abc');
    const before = await cloudRecord(notifications, 'model', 'r');
    expect(await receiver.applyUpdate(m)).toBe('received');
    expect(await receiver.applyUpdate(m)).toBe('received');
    expect(await cloudRecord(notifications, 'model', 'r')).toEqual(before);
    expect((await object('r'))?.status).toBe('completelyReceived');
  });

  it('a repeated update while its data downloads asks for the download again, not a new one', async () => {
    const m = meta('p');
    expect(await receiver.applyUpdate(m)).toBe('download');
    const state = await receiver.beginDownload(m);
    expect(await receiver.applyUpdate(m)).toBe('download');
    expect((await store.getUpload(ORG, 'model', 'p'))?.stagingId).toBe(state.stagingId);
    expect((await cloudRecord(notifications, 'model', 'p'))?.status).toBe('getdata');
  });

  it('a deletion of a newer instance wins over the object held; an update older than it changes nothing', async () => {
    await receive(meta('g'), 'abc');
    await receiver.applyDelete(meta('g', { instanceID: 20n, deleted: true }));
    expect((await object('g'))?.status).toBe('objdeleted');
    expect(await receiver.applyUpdate(meta('g', { instanceID: 15n, dataID: 15n }))).toBe('stale');
    expect((await object('g'))?.status).toBe('objdeleted');
  });

  it('metaOnly over the data held: complete at once, the data and its file kept', async () => {
    const uri = `file://${files}/m.bin`;
    await receive(meta('m', { destinationDataUri: uri }), 'abc');
    expect(await readFile(join(files, 'm.bin'), 'utf8')).toBe('abc');
    const blobBefore = (await object('m'))?.blobId;
    expect(await receiver.applyUpdate(meta('m', { instanceID: 20n, dataID: 10n, metaOnly: true, description: 'new', destinationDataUri: uri }))).toBe('received');
    const obj = (await object('m'))!;
    expect([obj.status, obj.blobId, obj.meta.description]).toEqual(['completelyReceived', blobBefore, 'new']);
    expect(await readFile(join(files, 'm.bin'), 'utf8')).toBe('abc');
  });

  it('a new instance naming another destination file moves it: the new file written, the old one removed', async () => {
    await receive(meta('mv', { destinationDataUri: `file://${files}/old.bin` }), 'abc');
    expect(await receiver.applyUpdate(meta('mv', { instanceID: 20n, dataID: 10n, metaOnly: true, destinationDataUri: `file://${files}/new.bin` }))).toBe('received');
    expect(await readFile(join(files, 'new.bin'), 'utf8')).toBe('abc');
    await expect(readFile(join(files, 'old.bin'))).rejects.toThrow('ENOENT');
  });

  it('a deletion removes the destination file; a URI outside the directories gets none', async () => {
    await receive(meta('f', { destinationDataUri: `file://${files}/f.bin` }), 'abc');
    await receive(meta('out', { destinationDataUri: `file://${tmpdir()}/edgesync-should-not-exist.bin` }), 'abc');
    await expect(readFile(join(tmpdir(), 'edgesync-should-not-exist.bin'))).rejects.toThrow('ENOENT');
    await receiver.applyDelete(meta('f', { deleted: true }));
    await expect(readFile(join(files, 'f.bin'))).rejects.toThrow('ENOENT');
  });
});
