import { appendFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { FileBlobStore } from '../../lib/store/index.js';
import { blobStoreContract } from './blob-store.contract.js';

const base = mkdtempSync(join(tmpdir(), 'edgesync-blobs-'));
let dirCount = 0;

afterAll(() => {
  rmSync(base, { recursive: true, force: true });
});

async function openStore(root: string, directIo = true): Promise<FileBlobStore> {
  const store = new FileBlobStore({ root, directIo });
  await store.init();
  return store;
}

const freshRoot = (): string => join(base, `root-${++dirCount}`);

blobStoreContract('FileBlobStore', () => openStore(freshRoot()));
// Appends go through the page cache where the file system refuses direct I/O.
blobStoreContract('FileBlobStore without direct I/O', () => openStore(freshRoot(), false));

describe('FileBlobStore on disk', () => {
  let root: string;
  let blobs: FileBlobStore;

  beforeEach(async () => {
    root = freshRoot();
    blobs = await openStore(root);
  });

  afterEach(() => {
    rmSync(root, { recursive: true, force: true });
  });

  it('keeps blobs as files named by random ids under blobs/', async () => {
    const { blobId } = await blobs.write(Readable.from([Buffer.from('hello')]));
    expect(blobId).toMatch(/^[0-9a-f-]{36}$/);
    expect(readdirSync(join(root, 'blobs'))).toEqual([blobId]);
    expect(readdirSync(join(root, 'tmp'))).toEqual([]);
  });

  it('leaves no temp file behind when a write fails', async () => {
    const failing = Readable.from(
      (async function* () {
        yield Buffer.alloc(10_000);
        await Promise.resolve();
        throw new Error('client went away');
      })(),
    );
    await expect(blobs.write(failing)).rejects.toThrow('client went away');
    expect(readdirSync(join(root, 'tmp'))).toEqual([]);
  });

  it('clears tmp/ at init: whatever is there is a write a crash interrupted', async () => {
    writeFileSync(join(root, 'tmp', 'interrupted'), 'partial');
    blobs = await openStore(root);
    expect(readdirSync(join(root, 'tmp'))).toEqual([]);
  });

  it('keeps blobs and staging areas across a restart', async () => {
    const { blobId } = await blobs.write(Readable.from([Buffer.from('kept')]));
    const staging = await blobs.createStaging();
    blobs = await openStore(root);
    expect(await blobs.list()).toEqual([blobId]);
    expect(await blobs.listStaging()).toEqual([staging]);
  });

  it('truncates bytes a crash left past the offset before writing a chunk', async () => {
    const staging = await blobs.createStaging();
    await blobs.writeStaging(staging, 0, 3, Readable.from([Buffer.from('abc')]));
    appendFileSync(join(root, 'staging', staging), 'garbage from before the crash');
    await blobs.writeStaging(staging, 3, 3, Readable.from([Buffer.from('def')]));
    const { blobId, size } = await blobs.commitStaging(staging);
    expect(size).toBe(6);
    const read: Buffer[] = [];
    for await (const chunk of blobs.read(blobId)) read.push(chunk as Buffer);
    expect(Buffer.concat(read).toString()).toBe('abcdef');
  });

  it('lists only the files it could have written', async () => {
    writeFileSync(join(root, 'blobs', 'README'), 'not a blob');
    expect(await blobs.list()).toEqual([]);
  });
});
