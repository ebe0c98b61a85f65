/**
 * What every BlobStore must do, as a jest suite that each implementation runs against itself
 * (file-blob-store.test.ts; GridFS later). Each test gets a fresh, empty, initialized store.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { setTimeout as sleep, setImmediate as tick } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { BadRequestError, NotFoundError, PayloadTooLargeError } from '../../lib/model/index.js';
import type { BlobStore } from '../../lib/store/index.js';

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** `size` bytes of a repeating, position-dependent pattern (so misplaced bytes show). */
function bytes(size: number, seed = 0): Buffer {
  const buf = Buffer.alloc(size);
  for (let i = 0; i < size; i++) buf[i] = (i * 31 + seed) % 251;
  return buf;
}

/** A source that delivers `data` in chunks of `chunk` bytes, as a socket would. */
function sourceOf(data: Buffer, chunk = 16 * 1024): Readable {
  return Readable.from(
    (function* () {
      for (let at = 0; at < data.length; at += chunk) yield data.subarray(at, at + chunk);
    })(),
  );
}

/**
 * A source that delivers `before` and then fails, like a client that disconnects. The pause
 * lets the first bytes reach the disk, so the failure has something to undo.
 */
function failingSource(before: Buffer): Readable {
  return Readable.from(
    (async function* () {
      yield before;
      await sleep(20);
      throw new Error('client went away');
    })(),
  );
}

/** A source that delivers `first` and then stalls until it is destroyed. */
function stallingSource(first: Buffer): Readable {
  const source = new Readable({ read: () => undefined });
  source.push(first);
  return source;
}

/** Byte comparison; jest's toEqual walks a Buffer element by element and takes seconds per MiB. */
function expectSameBytes(actual: Buffer, expected: Buffer): void {
  expect(actual.length).toBe(expected.length);
  expect(actual.equals(expected)).toBe(true);
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export interface BlobStoreContractOptions {
  /** How to dispose of a store made by `make` (default: nothing). */
  teardown?: (blobs: BlobStore) => Promise<void>;
}

/** Registers the suite `BlobStore contract: <name>`. `make` returns a fresh, empty, initialized store. */
export function blobStoreContract(name: string, make: () => Promise<BlobStore>, options: BlobStoreContractOptions = {}): void {
  describe(`BlobStore contract: ${name}`, () => {
    let blobs: BlobStore;

    beforeEach(async () => {
      blobs = await make();
    });

    afterEach(async () => {
      await options.teardown?.(blobs);
    });

    describe('write and read', () => {
      it('gives back the bytes written, with their size and SHA-256', async () => {
        const data = bytes(200_000);
        const result = await blobs.write(sourceOf(data));
        expect(result).toEqual({ blobId: expect.any(String), size: data.length, sha256: sha256(data) });
        expectSameBytes(await readAll(blobs.read(result.blobId)), data);
        expect(await blobs.size(result.blobId)).toBe(data.length);
        expect(await blobs.list()).toEqual([result.blobId]);
      });

      it('stores an empty blob', async () => {
        const result = await blobs.write(sourceOf(Buffer.alloc(0)));
        expect(result.size).toBe(0);
        expect(result.sha256).toBe(sha256(Buffer.alloc(0)));
        expectSameBytes(await readAll(blobs.read(result.blobId)), Buffer.alloc(0));
      });

      it('gives every write a new id', async () => {
        const a = await blobs.write(sourceOf(bytes(10)));
        const b = await blobs.write(sourceOf(bytes(10)));
        expect(a.blobId).not.toBe(b.blobId);
        expect((await blobs.list()).sort()).toEqual([a.blobId, b.blobId].sort());
      });

      it('reads a range from a start to the end', async () => {
        const data = bytes(100_000);
        const { blobId } = await blobs.write(sourceOf(data));
        expectSameBytes(await readAll(blobs.read(blobId, { start: 70_000 })), data.subarray(70_000));
      });

      it('reads a range between a start and an inclusive end', async () => {
        const data = bytes(100_000);
        const { blobId } = await blobs.write(sourceOf(data));
        expectSameBytes(await readAll(blobs.read(blobId, { start: 1000, end: 1999 })), data.subarray(1000, 2000));
      });

      it('reads the last byte alone', async () => {
        const data = bytes(1000);
        const { blobId } = await blobs.write(sourceOf(data));
        expectSameBytes(await readAll(blobs.read(blobId, { start: 999, end: 999 })), data.subarray(999));
      });

      it('reports a missing blob as a NotFoundError on the stream', async () => {
        await expect(readAll(blobs.read('0b3d1e6a-0000-4000-8000-000000000000'))).rejects.toThrow(NotFoundError);
        await expect(readAll(blobs.read('../../etc/passwd'))).rejects.toThrow(NotFoundError);
      });

      it('rejects size() of a missing blob with a NotFoundError', async () => {
        await expect(blobs.size('0b3d1e6a-0000-4000-8000-000000000000')).rejects.toThrow(NotFoundError);
      });
    });

    describe('failed writes keep nothing', () => {
      it('when the source fails midway', async () => {
        await expect(blobs.write(failingSource(bytes(50_000)))).rejects.toThrow('client went away');
        expect(await blobs.list()).toEqual([]);
      });

      it('when the write is aborted', async () => {
        const abort = new AbortController();
        const writing = blobs.write(stallingSource(bytes(50_000)), { signal: abort.signal });
        await tick();
        abort.abort();
        await expect(writing).rejects.toMatchObject({ name: 'AbortError' });
        expect(await blobs.list()).toEqual([]);
      });

      it('when fewer bytes arrive than expected, saying how many', async () => {
        const writing = blobs.write(sourceOf(bytes(100)), { expectedSize: 150 });
        await expect(writing).rejects.toThrow(BadRequestError);
        await expect(writing).rejects.toThrow('Received 100 bytes of data, expected 150');
        expect(await blobs.list()).toEqual([]);
      });

      it('when more bytes arrive than expected', async () => {
        await expect(blobs.write(sourceOf(bytes(200)), { expectedSize: 150 })).rejects.toThrow(BadRequestError);
        expect(await blobs.list()).toEqual([]);
      });

      it('when the source is longer than maxBytes', async () => {
        await expect(blobs.write(sourceOf(bytes(100_001)), { maxBytes: 100_000 })).rejects.toThrow(PayloadTooLargeError);
        expect(await blobs.list()).toEqual([]);
      });

      it('but a source of exactly maxBytes and the expected size is accepted', async () => {
        const result = await blobs.write(sourceOf(bytes(100_000)), { maxBytes: 100_000, expectedSize: 100_000 });
        expect(result.size).toBe(100_000);
      });
    });

    describe('delete', () => {
      it('removes the blob, and a missing one is no error', async () => {
        const { blobId } = await blobs.write(sourceOf(bytes(10)));
        await blobs.delete(blobId);
        await blobs.delete(blobId);
        expect(await blobs.list()).toEqual([]);
        await expect(blobs.size(blobId)).rejects.toThrow(NotFoundError);
      });

      it('lets a reader that already started finish reading', async () => {
        const data = bytes(1024 * 1024);
        const { blobId } = await blobs.write(sourceOf(data));
        const reader = blobs.read(blobId)[Symbol.asyncIterator]();
        const chunks: Buffer[] = [];
        const first = await reader.next();
        chunks.push(first.value as Buffer);
        await blobs.delete(blobId);
        for (let next = await reader.next(); next.done !== true; next = await reader.next()) chunks.push(next.value as Buffer);
        expectSameBytes(Buffer.concat(chunks), data);
      });
    });

    describe('staging areas for chunked uploads', () => {
      const chunks = [bytes(1000, 1), bytes(1000, 2), bytes(500, 3)];

      it('assemble sequential chunks into a blob with the right hash, and disappear', async () => {
        const staging = await blobs.createStaging();
        let offset = 0;
        for (const chunk of chunks) {
          await blobs.writeStaging(staging, offset, chunk.length, sourceOf(chunk, 300));
          offset += chunk.length;
        }
        const whole = Buffer.concat(chunks);
        const result = await blobs.commitStaging(staging);
        expect(result).toEqual({ blobId: expect.any(String), size: whole.length, sha256: sha256(whole) });
        expectSameBytes(await readAll(blobs.read(result.blobId)), whole);
        await expect(blobs.writeStaging(staging, 0, 1, sourceOf(bytes(1)))).rejects.toThrow(NotFoundError);
      });

      it('drop whatever lies past the offset of a rewritten chunk (left by a crash)', async () => {
        const staging = await blobs.createStaging();
        await blobs.writeStaging(staging, 0, 1000, sourceOf(chunks[0]!));
        // The second chunk landed but its offset was never committed; the client sends a shorter one.
        await blobs.writeStaging(staging, 1000, 1000, sourceOf(chunks[1]!));
        await blobs.writeStaging(staging, 1000, 500, sourceOf(chunks[2]!));
        const result = await blobs.commitStaging(staging);
        expect(result.size).toBe(1500);
        expect(result.sha256).toBe(sha256(Buffer.concat([chunks[0]!, chunks[2]!])));
      });

      it('reject a short chunk and stay as they were', async () => {
        const staging = await blobs.createStaging();
        await blobs.writeStaging(staging, 0, 1000, sourceOf(chunks[0]!));
        const writing = blobs.writeStaging(staging, 1000, 1000, sourceOf(bytes(600)));
        await expect(writing).rejects.toThrow(BadRequestError);
        await expect(writing).rejects.toThrow('Received 600 bytes of the chunk at offset 1000, expected 1000');
        expect(await blobs.commitStaging(staging)).toMatchObject({ size: 1000, sha256: sha256(chunks[0]!) });
      });

      it('reject a long chunk and stay as they were', async () => {
        const staging = await blobs.createStaging();
        await blobs.writeStaging(staging, 0, 1000, sourceOf(chunks[0]!));
        await expect(blobs.writeStaging(staging, 1000, 1000, sourceOf(bytes(1001)))).rejects.toThrow(BadRequestError);
        expect(await blobs.commitStaging(staging)).toMatchObject({ size: 1000, sha256: sha256(chunks[0]!) });
      });

      it('reject a chunk whose source fails, and stay as they were', async () => {
        const staging = await blobs.createStaging();
        await blobs.writeStaging(staging, 0, 1000, sourceOf(chunks[0]!));
        await expect(blobs.writeStaging(staging, 1000, 60_000, failingSource(bytes(30_000)))).rejects.toThrow('client went away');
        expect(await blobs.commitStaging(staging)).toMatchObject({ size: 1000, sha256: sha256(chunks[0]!) });
      });

      it('refuse a chunk past the bytes they hold instead of leaving a hole', async () => {
        const staging = await blobs.createStaging();
        await blobs.writeStaging(staging, 0, 1000, sourceOf(chunks[0]!));
        await expect(blobs.writeStaging(staging, 2000, 500, sourceOf(chunks[2]!))).rejects.toThrow(BadRequestError);
        expect(await blobs.commitStaging(staging)).toMatchObject({ size: 1000 });
      });

      it('are not listed as blobs, and can be deleted (a missing one being no error)', async () => {
        const staging = await blobs.createStaging();
        expect(await blobs.list()).toEqual([]);
        await blobs.deleteStaging(staging);
        await blobs.deleteStaging(staging);
        await expect(blobs.commitStaging(staging)).rejects.toThrow(NotFoundError);
      });

      it('report an unknown staging area as a NotFoundError', async () => {
        await expect(blobs.writeStaging('0b3d1e6a-0000-4000-8000-000000000000', 0, 1, sourceOf(bytes(1)))).rejects.toThrow(NotFoundError);
        await expect(blobs.commitStaging('0b3d1e6a-0000-4000-8000-000000000000')).rejects.toThrow(NotFoundError);
        await expect(blobs.appendStaging('0b3d1e6a-0000-4000-8000-000000000000', 0)).rejects.toThrow(NotFoundError);
        await expect(readAll(blobs.openStaging('0b3d1e6a-0000-4000-8000-000000000000'))).rejects.toThrow(NotFoundError);
      });

      it('read back a range of what they hold', async () => {
        const staging = await blobs.createStaging();
        await blobs.writeStaging(staging, 0, 1000, sourceOf(chunks[0]!));
        expectSameBytes(await readAll(blobs.openStaging(staging)), chunks[0]!);
        expectSameBytes(await readAll(blobs.openStaging(staging, { start: 0, end: 99 })), chunks[0]!.subarray(0, 100));
        expectSameBytes(await readAll(blobs.openStaging(staging, { start: 990 })), chunks[0]!.subarray(990));
      });

      it('commit with the digest the caller computed, taken as is', async () => {
        const staging = await blobs.createStaging();
        await blobs.writeStaging(staging, 0, 1000, sourceOf(chunks[0]!));
        const result = await blobs.commitStaging(staging, { sha256: sha256(chunks[0]!) });
        expect(result).toEqual({ blobId: expect.any(String), size: 1000, sha256: sha256(chunks[0]!) });
        expectSameBytes(await readAll(blobs.read(result.blobId)), chunks[0]!);
      });
    });

    describe('appends to a staging area (downloads)', () => {
      const whole = bytes(5000, 7);

      /** Writes `data` through the appender's stream and waits until the stream handed it all over. */
      async function appendAll(stream: NodeJS.WritableStream, data: Buffer): Promise<void> {
        await new Promise<void>((resolve, reject) => {
          stream.on('error', reject);
          stream.write(data.subarray(0, 1000));
          stream.end(data.subarray(1000), () => resolve());
        });
      }

      it('append from an offset, and sync() reports the durable offset', async () => {
        const staging = await blobs.createStaging();
        const first = await blobs.appendStaging(staging, 0);
        await appendAll(first.stream, whole.subarray(0, 3000));
        expect(await first.sync()).toBe(3000);
        await first.close();
        const second = await blobs.appendStaging(staging, 3000);
        await appendAll(second.stream, whole.subarray(3000));
        expect(await second.sync()).toBe(5000);
        await second.close();
        expectSameBytes(await readAll(blobs.openStaging(staging)), whole);
        expect(await blobs.commitStaging(staging)).toMatchObject({ size: 5000, sha256: sha256(whole) });
      });

      it('drop whatever lies past the offset they are opened at (left by a crash)', async () => {
        const staging = await blobs.createStaging();
        await blobs.writeStaging(staging, 0, 3000, sourceOf(whole.subarray(0, 3000)));
        const appender = await blobs.appendStaging(staging, 1000);
        await appendAll(appender.stream, bytes(500, 9));
        expect(await appender.sync()).toBe(1500);
        await appender.close();
        expectSameBytes(await readAll(blobs.openStaging(staging)), Buffer.concat([whole.subarray(0, 1000), bytes(500, 9)]));
      });

      it('refuse an offset past the bytes they hold', async () => {
        const staging = await blobs.createStaging();
        await blobs.writeStaging(staging, 0, 1000, sourceOf(whole.subarray(0, 1000)));
        await expect(blobs.appendStaging(staging, 1001)).rejects.toThrow(BadRequestError);
      });

      it('close after the stream was destroyed midway, keeping what reached the area', async () => {
        const staging = await blobs.createStaging();
        const appender = await blobs.appendStaging(staging, 0);
        await new Promise<void>((resolve) => appender.stream.write(whole.subarray(0, 2000), () => resolve()));
        const durable = await appender.sync();
        expect(durable).toBe(2000);
        appender.stream.destroy();
        await appender.close();
        expectSameBytes(await readAll(blobs.openStaging(staging, { end: durable - 1 })), whole.subarray(0, 2000));
      });
    });

    it('streams a 64 MiB blob without holding it in memory', async () => {
      const chunkSize = 64 * 1024;
      const count = 1024;
      const expected = createHash('sha256');
      function* generate(): Generator<Buffer> {
        for (let i = 0; i < count; i++) {
          const chunk = Buffer.alloc(chunkSize, i % 256);
          expected.update(chunk);
          yield chunk;
        }
      }
      const rssBefore = process.memoryUsage().rss;
      const result = await blobs.write(Readable.from(generate()));
      const growth = process.memoryUsage().rss - rssBefore;
      expect(result.size).toBe(chunkSize * count);
      expect(result.sha256).toBe(expected.digest('hex'));
      // A sanity check, not a benchmark: buffering the blob would add at least 64 MiB.
      expect(growth).toBeLessThan(32 * 1024 * 1024);
      await blobs.delete(result.blobId);
    });
  });
}
