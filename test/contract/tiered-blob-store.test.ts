import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { FileBlobStore, SqliteStore, TieredBlobStore, type BlobStore } from '../../lib/store/index.js';
import { blobStoreContract } from './blob-store.contract.js';

const base = mkdtempSync(join(tmpdir(), 'edgesync-tiered-'));
let dirCount = 0;
const stores = new Map<BlobStore, { db: SqliteStore; root: string }>();

afterAll(() => {
  rmSync(base, { recursive: true, force: true });
});

async function openTiered(root: string, inlineLimit?: number): Promise<{ blobs: TieredBlobStore; db: SqliteStore }> {
  mkdirSync(root, { recursive: true });
  const db = new SqliteStore({ path: join(root, 'db.sqlite') });
  await db.init();
  const blobs = new TieredBlobStore({ files: new FileBlobStore({ root: join(root, 'files') }), small: db.smallBlobs(), ...(inlineLimit !== undefined ? { inlineLimit } : {}) });
  await blobs.init();
  stores.set(blobs, { db, root });
  return { blobs, db };
}

async function dispose(blobs: BlobStore): Promise<void> {
  const opened = stores.get(blobs);
  if (opened === undefined) return;
  stores.delete(blobs);
  await opened.db.close();
  rmSync(opened.root, { recursive: true, force: true });
}

const freshRoot = (): string => join(base, `root-${++dirCount}`);

// The default limit (64 KiB) sends most of the contract's blobs to files and the small ones to
// the database; a 1 MiB limit sends nearly all of them to the database.
blobStoreContract('TieredBlobStore (64 KiB inline)', async () => (await openTiered(freshRoot())).blobs, { teardown: dispose });
blobStoreContract('TieredBlobStore (1 MiB inline)', async () => (await openTiered(freshRoot(), 1024 * 1024)).blobs, { teardown: dispose });

describe('TieredBlobStore', () => {
  let root: string;
  let blobs: TieredBlobStore;
  let db: SqliteStore;

  beforeEach(async () => {
    root = freshRoot();
    ({ blobs, db } = await openTiered(root, 1000));
  });

  afterEach(async () => {
    await dispose(blobs);
  });

  const filesHeld = (): string[] => readdirSync(join(root, 'files', 'blobs'));

  it('keeps a blob up to the limit in the database, not as a file', async () => {
    const { blobId, size } = await blobs.write(Readable.from([Buffer.alloc(600), Buffer.alloc(400)]));
    expect(size).toBe(1000);
    expect(blobId).toMatch(/^s-/);
    expect(filesHeld()).toEqual([]);
  });

  it('streams a blob one byte over the limit into a file, with the bytes it had already read', async () => {
    const data = Buffer.from(Array.from({ length: 1001 }, (_, i) => i % 256));
    const { blobId } = await blobs.write(Readable.from([data.subarray(0, 700), data.subarray(700)]));
    expect(filesHeld()).toEqual([blobId]);
    const read: Buffer[] = [];
    for await (const chunk of blobs.read(blobId)) read.push(chunk as Buffer);
    expect(Buffer.concat(read).equals(data)).toBe(true);
  });

  it('sends a blob whose expected size is over the limit straight to a file', async () => {
    const { blobId } = await blobs.write(Readable.from([Buffer.alloc(5000)]), { expectedSize: 5000 });
    expect(filesHeld()).toEqual([blobId]);
  });

  it('keeps small blobs across a restart of the database', async () => {
    const { blobId } = await blobs.write(Readable.from([Buffer.from('kept')]));
    await db.close();
    await db.init();
    expect(await blobs.size(blobId)).toBe(4);
    expect(await blobs.list()).toEqual([blobId]);
  });
});
