/**
 * Object data in MongoDB: the BlobStore contract against MongoBlobStore, alone and as the large
 * tier of a TieredBlobStore with MongoSmallBlobs, plus what only a shared database gives:
 * several processes (here, clients) working on one upload, and range reads that fetch only
 * the chunks they need. The server is EDGESYNC_TEST_MONGO_URL's, else a FerretDB started for
 * this file; with neither the suites skip visibly. Each store gets a database of its own.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { MongoClient, type CommandStartedEvent, type CommandSucceededEvent, type Db } from 'mongodb';
import { NotFoundError } from '../../lib/model/index.js';
import { TieredBlobStore, type BlobStore } from '../../lib/store/index.js';
import { CHUNK_BYTES } from '../../lib/store/mongo/mongo-blob-chunks.js';
import { MongoBlobStore, type MongoBlobStoreOptions } from '../../lib/store/mongo/mongo-blob-store.js';
import { MongoSmallBlobs } from '../../lib/store/mongo/mongo-small-blobs.js';
import { MongoStore } from '../../lib/store/mongo/mongo-store.js';
import { ferretdbPath, MONGO_MISSING, startFerretDb, type FerretDb } from '../helpers/ferretdb.js';
import { blobStoreContract } from './blob-store.contract.js';

const given = process.env.EDGESYNC_TEST_MONGO_URL;
const runnable = (given !== undefined && given !== '') || ferretdbPath() !== null;

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** `size` bytes of a position-dependent pattern, so misplaced bytes show. */
function bytes(size: number, seed = 0): Buffer {
  const buf = Buffer.alloc(size);
  for (let i = 0; i < size; i++) buf[i] = (i * 31 + seed) % 251;
  return buf;
}

function sourceOf(data: Buffer, chunk = 64 * 1024): Readable {
  return Readable.from(
    (function* () {
      for (let at = 0; at < data.length; at += chunk) yield data.subarray(at, at + chunk);
    })(),
  );
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function expectSameBytes(actual: Buffer, expected: Buffer): void {
  expect(actual.length).toBe(expected.length);
  expect(actual.equals(expected)).toBe(true);
}

if (!runnable) {
  console.warn(`Skipped: MongoBlobStore contract (${MONGO_MISSING})`);
  describe.skip(`MongoBlobStore contract (${MONGO_MISSING})`, () => {
    it('runs the BlobStore contract against a MongoBlobStore', () => {});
  });
} else {
  let server: FerretDb | null = null;
  let url = given ?? '';
  let client: MongoClient;
  let dbCount = 0;
  const databases = new WeakMap<BlobStore, Db>();

  beforeAll(async () => {
    if (url === '') {
      server = await startFerretDb();
      url = server.url;
    }
    client = new MongoClient(url);
    await client.connect();
  }, 30_000);

  afterAll(async () => {
    await client.close();
    await server?.stop();
  });

  const freshDatabase = (): Db => client.db(`edgesync_blobs_${process.pid}_${++dbCount}`);

  async function openBlobs(db: Db, opts: Partial<MongoBlobStoreOptions> = {}): Promise<MongoBlobStore> {
    const blobs = new MongoBlobStore({ db, ...opts });
    await blobs.init();
    databases.set(blobs, db);
    return blobs;
  }

  async function openTiered(db: Db): Promise<TieredBlobStore> {
    const blobs = new TieredBlobStore({ files: new MongoBlobStore({ db }), small: new MongoSmallBlobs({ db }) });
    await blobs.init();
    databases.set(blobs, db);
    return blobs;
  }

  /** Drops the store's database, so that a long run does not fill the disk. */
  async function dispose(blobs: BlobStore): Promise<void> {
    await databases.get(blobs)?.dropDatabase();
  }

  blobStoreContract('MongoBlobStore', () => openBlobs(freshDatabase()), { teardown: dispose });
  blobStoreContract('TieredBlobStore of MongoSmallBlobs and MongoBlobStore', () => openTiered(freshDatabase()), { teardown: dispose });

  describe('MongoBlobStore shared by two processes (two clients on one database)', () => {
    let database: string;
    let otherClient: MongoClient;
    let a: MongoBlobStore;
    let b: MongoBlobStore;

    beforeEach(async () => {
      const db = freshDatabase();
      database = db.databaseName;
      otherClient = new MongoClient(url);
      await otherClient.connect();
      a = await openBlobs(db);
      b = await openBlobs(otherClient.db(database));
    });

    afterEach(async () => {
      await dispose(a);
      await otherClient.close();
    });

    it('lets B continue from the durable offset an upload A started, commit it, and A read it', async () => {
      // Unaligned offsets on purpose: B's first chunk completes a chunk document A left partial.
      const whole = bytes(3 * CHUNK_BYTES + 5000, 3);
      const durable = CHUNK_BYTES + 1234;
      const staging = await a.createStaging();
      await a.writeStaging(staging, 0, 1000, sourceOf(whole.subarray(0, 1000)));
      const appender = await a.appendStaging(staging, 1000);
      await new Promise<void>((resolve) => appender.stream.write(whole.subarray(1000, durable), () => resolve()));
      expect(await appender.sync()).toBe(durable);
      // A goes on past the durable offset, then dies before the next sync: those bytes must go.
      await new Promise<void>((resolve) => appender.stream.write(bytes(CHUNK_BYTES, 9), () => resolve()));
      appender.stream.destroy();
      await appender.close();

      expect(await b.listStaging()).toEqual([staging]);
      await b.writeStaging(staging, durable, whole.length - durable, sourceOf(whole.subarray(durable)));
      const committed = await b.commitStaging(staging);

      expect(committed).toEqual({ blobId: expect.any(String), size: whole.length, sha256: sha256(whole) });
      expect(await a.list()).toEqual([committed.blobId]);
      expect(await a.listStaging()).toEqual([]);
      expectSameBytes(await readAll(a.read(committed.blobId)), whole);
    });

    it('refuses on B an offset past what A made durable', async () => {
      const staging = await a.createStaging();
      await a.writeStaging(staging, 0, 1000, sourceOf(bytes(1000)));
      await expect(b.writeStaging(staging, 2000, 10, sourceOf(bytes(10)))).rejects.toThrow('only 1000 bytes have been received');
    });

    it('lets a reader on A finish a blob B deleted, and a later sweep remove its chunks', async () => {
      const data = bytes(2 * CHUNK_BYTES + 10);
      const { blobId } = await a.write(sourceOf(data));
      const reader = a.read(blobId)[Symbol.asyncIterator]();
      const first = await reader.next();
      await b.delete(blobId);
      await expect(b.size(blobId)).rejects.toThrow(NotFoundError);
      const rest: Buffer[] = [first.value as Buffer];
      for (let next = await reader.next(); next.done !== true; next = await reader.next()) rest.push(next.value as Buffer);
      expectSameBytes(Buffer.concat(rest), data);

      const sweeper = new MongoBlobStore({ db: otherClient.db(database), deletedGraceMs: 0 });
      await sweeper.sweep();
      expect(await otherClient.db(database).collection('blob_chunks').countDocuments()).toBe(0);
      expect(await otherClient.db(database).collection('blob_files').countDocuments()).toBe(0);
    });

    it('sweeps, from another process, the chunks of a write whose process went silent', async () => {
      const stalled = new Readable({ read: () => undefined });
      const writing = a.write(stalled);
      stalled.push(bytes(2 * CHUNK_BYTES));
      const chunks = otherClient.db(database).collection('blob_chunks');
      for (let i = 0; i < 100 && (await chunks.countDocuments()) < 2; i++) await sleep(20);
      expect(await chunks.countDocuments()).toBe(2);

      await new MongoBlobStore({ db: otherClient.db(database), staleWriteMs: 0 }).init();
      expect(await chunks.countDocuments()).toBe(0);
      stalled.push(null);
      await expect(writing).rejects.toThrow('swept as abandoned');
      expect(await b.list()).toEqual([]);
    });
  });

  describe('MongoBlobStore reads', () => {
    let monitored: MongoClient;
    let blobs: MongoBlobStore;
    /** The `_id` of every chunk document the server sent back, to a find or a getMore. */
    let fetched: string[];

    beforeEach(async () => {
      monitored = new MongoClient(url, { monitorCommands: true });
      await monitored.connect();
      const onChunks = new Set<number>();
      fetched = [];
      monitored.on('commandStarted', (e: CommandStartedEvent) => {
        if (e.command.find === 'blob_chunks' || e.command.collection === 'blob_chunks') onChunks.add(e.requestId);
      });
      monitored.on('commandSucceeded', (e: CommandSucceededEvent) => {
        if (!onChunks.delete(e.requestId)) return;
        const cursor = (e.reply as { cursor?: { firstBatch?: { _id: string }[]; nextBatch?: { _id: string }[] } }).cursor;
        for (const doc of cursor?.firstBatch ?? cursor?.nextBatch ?? []) fetched.push(doc._id);
      });
      blobs = await openBlobs(monitored.db(freshDatabase().databaseName));
    });

    afterEach(async () => {
      await dispose(blobs);
      await monitored.close();
    });

    it('fetch only the chunk documents that hold the range, in the middle of a blob of ten', async () => {
      const data = bytes(10 * CHUNK_BYTES + 123);
      const { blobId } = await blobs.write(sourceOf(data));
      const start = 4 * CHUNK_BYTES + 100;
      const end = 6 * CHUNK_BYTES + 50;
      fetched = [];
      expectSameBytes(await readAll(blobs.read(blobId, { start, end })), data.subarray(start, end + 1));
      expect([...fetched].sort()).toEqual([`${blobId}/4`, `${blobId}/5`, `${blobId}/6`]);
    });

    it('fetch only the chunk documents of a long range too (one cursor), not those around it', async () => {
      const data = bytes(14 * CHUNK_BYTES + 5);
      const { blobId } = await blobs.write(sourceOf(data));
      const start = 2 * CHUNK_BYTES + 1;
      const end = 12 * CHUNK_BYTES - 1;
      fetched = [];
      expectSameBytes(await readAll(blobs.read(blobId, { start, end })), data.subarray(start, end + 1));
      expect([...fetched].sort()).toEqual(Array.from({ length: 10 }, (_, i) => `${blobId}/${i + 2}`).sort());
    });

    it('fetch one chunk document for a range inside one chunk, and none for an empty blob', async () => {
      const data = bytes(3 * CHUNK_BYTES);
      const { blobId } = await blobs.write(sourceOf(data));
      fetched = [];
      expectSameBytes(await readAll(blobs.read(blobId, { start: CHUNK_BYTES + 10, end: CHUNK_BYTES + 20 })), data.subarray(CHUNK_BYTES + 10, CHUNK_BYTES + 21));
      expect(fetched).toEqual([`${blobId}/1`]);

      const empty = await blobs.write(sourceOf(Buffer.alloc(0)));
      fetched = [];
      expect((await readAll(blobs.read(empty.blobId))).length).toBe(0);
      expect(fetched).toEqual([]);
    });
    it('put chunks the server sends out of order back in order', async () => {
      // Rewritten with the chunks inserted last to first, so that insertion order is reversed.
      const data = bytes(12 * CHUNK_BYTES + 7);
      const { blobId } = await blobs.write(sourceOf(data));
      const chunks = databases.get(blobs)!.collection<{ _id: string; n: number }>('blob_chunks');
      const docs = await chunks.find({}).toArray();
      await chunks.deleteMany({});
      await chunks.insertMany(docs.sort((x, y) => y.n - x.n));
      expectSameBytes(await readAll(blobs.read(blobId)), data);
      expectSameBytes(await readAll(blobs.read(blobId, { start: CHUNK_BYTES - 1, end: 11 * CHUNK_BYTES })), data.subarray(CHUNK_BYTES - 1, 11 * CHUNK_BYTES + 1));
    });
  });

  describe('MongoBlobStore on a MongoStore’s connection', () => {
    it('follows the store’s database, so one client serves both', async () => {
      const name = freshDatabase().databaseName;
      const store = new MongoStore({ url, database: name });
      await store.init();
      try {
        const blobs = new MongoBlobStore({ db: () => store.database() });
        await blobs.init();
        const { blobId } = await blobs.write(sourceOf(bytes(1000)));
        expect(await client.db(name).collection('blob_files').countDocuments({ _id: blobId as never })).toBe(1);
      } finally {
        await store.close();
        await client.db(name).dropDatabase();
      }
    });
  });
}
