import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { GrowingFile } from '../../../lib/store/growing-file.js';

/** Everything a stream yields, or its error. */
function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  return new Promise((resolve, reject) => {
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 20));

describe('GrowingFile', () => {
  let dir: string;
  let path: string;
  let writeFd: number;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'edgesync-growing-'));
    path = join(dir, 'f');
    writeFd = fs.openSync(path, 'w');
  });
  afterEach(async () => {
    fs.closeSync(writeFd);
    await rm(dir, { recursive: true, force: true });
  });

  /** Appends `data` to the file and tells the GrowingFile how far it got. */
  function land(file: GrowingFile, data: Buffer, offset: number): void {
    fs.writeSync(writeFd, data, 0, data.length, offset);
    file.advance(offset + data.length);
  }

  it('gives each reader every byte from the first, waiting for those still to land, and ends at the size', async () => {
    const data = Buffer.from('0123456789'.repeat(100_000));
    const file = new GrowingFile(fs.openSync(path, 'r'), data.length);
    land(file, data.subarray(0, 300_000), 0);
    const early = collect(file.read());
    await tick();
    const late = collect(file.read());
    land(file, data.subarray(300_000, 700_000), 300_000);
    await tick();
    land(file, data.subarray(700_000), 700_000);
    file.finish(true);
    expect((await early).equals(data)).toBe(true);
    expect((await late).equals(data)).toBe(true);
  });

  it('gives a reader that keeps up the buffers the writer hands over, without reading the file for them', async () => {
    const file = new GrowingFile(fs.openSync(path, 'r'), 3000);
    const reading = collect(file.read());
    await tick();
    // Never written to the file: a read of it would end early and fail the reader.
    const chunks = [Buffer.alloc(1000, 1), Buffer.alloc(1000, 2), Buffer.alloc(1000, 3)];
    file.advance(2000, chunks.slice(0, 2));
    await tick();
    file.advance(3000, chunks.slice(2));
    file.finish(true);
    expect((await reading).equals(Buffer.concat(chunks))).toBe(true);
  });

  it('has a reader far behind the writer read the file, then take the buffers handed over once it caught up', async () => {
    const MiB = 1024 * 1024;
    const head = Buffer.alloc(5 * MiB);
    for (let i = 0; i < head.length; i += 4096) head.fill(i / 4096, i, i + 4096);
    const file = new GrowingFile(fs.openSync(path, 'r'), 6 * MiB);
    // Landed, and handed over, before any reader came: more than is kept for one.
    for (let at = 0; at < head.length; at += MiB) {
      fs.writeSync(writeFd, head, at, MiB, at);
      file.advance(at + MiB, [head.subarray(at, at + MiB)]);
    }
    const got: Buffer[] = [];
    const reader = file.read();
    const ended = new Promise<void>((resolve, reject) => {
      reader.on('end', resolve);
      reader.on('error', reject);
    });
    reader.on('data', (c: Buffer) => got.push(c));
    while (got.reduce((n, c) => n + c.length, 0) < head.length) await tick();
    // The rest only ever in memory.
    const tail = Buffer.alloc(MiB, 0xee);
    file.advance(6 * MiB, [tail]);
    file.finish(true);
    await ended;
    expect(Buffer.concat(got).equals(Buffer.concat([head, tail]))).toBe(true);
  });

  it('without a size, ends its readers where the completed write ended', async () => {
    const data = Buffer.from('abcdefghij'.repeat(50_000));
    const file = new GrowingFile(fs.openSync(path, 'r'), null);
    const reading = collect(file.read());
    land(file, data.subarray(0, 200_000), 0);
    await tick();
    land(file, data.subarray(200_000), 200_000);
    await tick();
    file.finish(true);
    expect((await reading).equals(data)).toBe(true);
  });

  it('fails its readers when the write fails, and a reader that starts afterwards at once', async () => {
    const file = new GrowingFile(fs.openSync(path, 'r'), 1000);
    land(file, Buffer.alloc(400, 1), 0);
    const reading = collect(file.read());
    await tick();
    file.finish(false);
    await expect(reading).rejects.toThrow('ended before its last byte');
    await expect(collect(file.read())).rejects.toThrow('ended before its last byte');
  });

  it('is not complete unless every byte landed', async () => {
    const file = new GrowingFile(fs.openSync(path, 'r'), 1000);
    land(file, Buffer.alloc(999, 1), 0);
    file.finish(true);
    await expect(collect(file.read())).rejects.toThrow('ended before its last byte');
  });

  it('closes its descriptor once the write is over and no reader is left', async () => {
    const readFd = fs.openSync(path, 'r');
    const file = new GrowingFile(readFd, 10);
    const reader = file.read();
    const done = collect(reader);
    land(file, Buffer.alloc(10, 7), 0);
    file.finish(true);
    expect((await done).length).toBe(10);
    await tick();
    expect(() => fs.fstatSync(readFd)).toThrow(/EBADF/);
    // A reader that comes afterwards is told, and never reads a descriptor number reused since.
    await expect(collect(file.read())).rejects.toThrow('the upload is over');
  });
});
