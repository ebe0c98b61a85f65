/**
 * StagingWriter on a real FileBlobStore: segmented, durable appends with the offsets reported
 * as they become durable, the digest computed on the way, and a resume that rebuilds the digest
 * from the staged prefix.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeEach, describe, expect, it } from '@jest/globals';
import { FileBlobStore } from '../../../lib/store/index.js';
import { StagingLostError, StagingWriter } from '../../../lib/sync/staging-writer.js';

const root = mkdtempSync(join(tmpdir(), 'edgesync-staging-writer-'));
let count = 0;
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Position-dependent bytes, so misplaced ones show. */
function bytes(size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + 7) % 251;
  return b;
}

/** `data` in chunks of `chunk` bytes (sizes that do not divide the segment), then `end`. */
function source(data: Buffer, chunk: number, end: 'end' | 'fail' = 'end'): Readable {
  return Readable.from(
    (async function* () {
      for (let at = 0; at < data.length; at += chunk) {
        yield data.subarray(at, at + chunk);
        // A turn between chunks, as a socket gives, so syncs run while data flows.
        await new Promise((r) => setImmediate(r));
      }
      if (end === 'fail') throw new Error('connection reset');
    })(),
  );
}

async function readAll(s: Readable): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of s) out.push(c as Buffer);
  return Buffer.concat(out);
}

describe('StagingWriter', () => {
  let blobs: FileBlobStore;
  const data = bytes(100_000);

  beforeEach(async () => {
    blobs = new FileBlobStore({ root: join(root, String(++count)) });
    await blobs.init();
  });

  it('writes in segments, reporting each durable offset in order, and commits with the digest it computed', async () => {
    const staging = await blobs.createStaging();
    const writer = StagingWriter.fresh(blobs, staging, { segmentBytes: 8000 });
    const offsets: number[] = [];
    await writer.append(source(data, 3001), data.length, async (o) => {
      offsets.push(o);
      // Every offset reported is on disk, with the right bytes.
      expect((await readAll(blobs.openStaging(staging, { end: o - 1 }))).equals(data.subarray(0, o))).toBe(true);
    });
    expect(offsets.length).toBeGreaterThan(3);
    expect([...offsets].sort((a, b) => a - b)).toEqual(offsets);
    expect(new Set(offsets).size).toBe(offsets.length);
    expect(offsets.at(-1)).toBe(data.length);
    expect(writer.offset).toBe(data.length);
    const written = await writer.commit();
    expect(written).toEqual({ blobId: expect.any(String), size: data.length, sha256: sha256(data) });
    expect((await readAll(blobs.read(written.blobId))).equals(data)).toBe(true);
  });

  it('resumes from the last durable offset after a failure, rebuilding the digest of the whole', async () => {
    const staging = await blobs.createStaging();
    const first = StagingWriter.fresh(blobs, staging, { segmentBytes: 8000 });
    let durable = 0;
    const broken = data.subarray(0, 60_000);
    await expect(first.append(source(broken, 4096, 'fail'), data.length, (o) => {
      durable = o;
      return Promise.resolve();
    })).rejects.toThrow('connection reset');
    expect(durable).toBeGreaterThan(0);
    expect(durable).toBeLessThanOrEqual(broken.length);
    // A broken writer cannot be committed: its digest may hold bytes that never became durable.
    expect(() => first.sha256()).toThrow();

    const resumed = await StagingWriter.resume(blobs, staging, durable, { segmentBytes: 8000 });
    expect(resumed.offset).toBe(durable);
    await resumed.append(source(data.subarray(durable), 5000), data.length - durable, () => Promise.resolve());
    expect(resumed.sha256()).toBe(sha256(data));
    const written = await resumed.commit();
    expect(written.sha256).toBe(sha256(data));
    expect((await readAll(blobs.read(written.blobId))).equals(data)).toBe(true);
  });

  it('a resume finds the staged bytes lost when the area is missing or shorter than the offset', async () => {
    const staging = await blobs.createStaging();
    const writer = StagingWriter.fresh(blobs, staging, { segmentBytes: 8000 });
    await writer.append(source(data.subarray(0, 20_000), 3000), 20_000, () => Promise.resolve());
    truncateSync(join(root, String(count), 'staging', staging), 10_000);
    await expect(StagingWriter.resume(blobs, staging, 20_000)).rejects.toThrow(StagingLostError);
    await blobs.deleteStaging(staging);
    await expect(StagingWriter.resume(blobs, staging, 5000)).rejects.toThrow(StagingLostError);
  });

  it('fails a source that ends early or goes on too long', async () => {
    const short = StagingWriter.fresh(blobs, await blobs.createStaging(), { segmentBytes: 8000 });
    await expect(short.append(source(data.subarray(0, 30_000), 3000), 40_000, () => Promise.resolve())).rejects.toThrow('the data ended after 30000 of 40000 bytes');
    const long = StagingWriter.fresh(blobs, await blobs.createStaging(), { segmentBytes: 8000 });
    await expect(long.append(source(data.subarray(0, 30_000), 3000), 20_000, () => Promise.resolve())).rejects.toThrow('the data goes on past the 20000 bytes expected');
  });

  it('with no length given, takes whatever the source brings until it ends', async () => {
    const writer = StagingWriter.fresh(blobs, await blobs.createStaging(), { segmentBytes: 8000 });
    await writer.append(source(data.subarray(0, 30_001), 3000), null, () => Promise.resolve());
    expect(writer.offset).toBe(30_001);
    expect((await writer.commit()).sha256).toBe(sha256(data.subarray(0, 30_001)));
  });

  it('stops when the caller cannot persist an offset', async () => {
    const writer = StagingWriter.fresh(blobs, await blobs.createStaging(), { segmentBytes: 8000 });
    const src = source(data, 3000);
    await expect(writer.append(src, data.length, () => Promise.reject(new Error('discarded meanwhile')))).rejects.toThrow('discarded meanwhile');
    expect(src.destroyed).toBe(true);
  });
});
