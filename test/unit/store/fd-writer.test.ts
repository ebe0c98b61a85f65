import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FdWriter } from '../../../lib/store/fd-writer.js';

describe('FdWriter', () => {
  let dir: string;
  let path: string;
  const open: number[] = [];
  const openFd = (flags: string): number => {
    const fd = fs.openSync(path, flags);
    open.push(fd);
    return fd;
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'edgesync-fd-writer-'));
    path = join(dir, 'f');
  });
  afterEach(async () => {
    for (const fd of open.splice(0)) fs.closeSync(fd);
    await rm(dir, { recursive: true, force: true });
  });

  it('writes every chunk in order from the start offset, and counts what landed', async () => {
    await writeFile(path, 'HEAD');
    const writer = new FdWriter(openFd('r+'), { start: 4, highWaterMark: 1024 });
    const chunks = Array.from({ length: 200 }, (_, i) => Buffer.from(`<${i}>`));
    await pipeline(Readable.from(chunks), writer);
    const expected = Buffer.concat([Buffer.from('HEAD'), ...chunks]);
    expect(await readFile(path)).toEqual(expected);
    expect(writer.bytesWritten).toBe(expected.length - 4);
  });

  it('tells each landing with the bytes written so far and the very buffers that landed, in order', async () => {
    const landings: { bytes: number; landed: readonly Buffer[] }[] = [];
    const writer = new FdWriter(openFd('w'), { start: 0, highWaterMark: 256, onLanded: (bytes, landed) => landings.push({ bytes, landed }) });
    const chunks = Array.from({ length: 40 }, (_, i) => Buffer.alloc(100, i));
    await pipeline(Readable.from(chunks), writer);
    expect(landings.at(-1)?.bytes).toBe(4000);
    const told = landings.flatMap((l) => l.landed);
    expect(Buffer.concat(told)).toEqual(Buffer.concat(chunks));
    // The writer's own chunks, not copies: a reader may take them instead of reading the file.
    expect(told.every((b, i) => b === chunks[i])).toBe(true);
    let before = 0;
    for (const l of landings) {
      expect(l.bytes - before).toBe(l.landed.reduce((n, b) => n + b.length, 0));
      before = l.bytes;
    }
  });

  it('with a background flush after every write, still writes every byte and ends only after the last flush', async () => {
    const writer = new FdWriter(openFd('w'), { start: 0, highWaterMark: 64, flushEvery: 1 });
    const chunks = Array.from({ length: 50 }, (_, i) => Buffer.alloc(100, i));
    await pipeline(Readable.from(chunks), writer);
    expect(await readFile(path)).toEqual(Buffer.concat(chunks));
  });

  it('leaves the descriptor open when destroyed, and emits close only once its write in flight landed', async () => {
    const fd = openFd('w');
    const writer = new FdWriter(fd, { start: 0, highWaterMark: 16 });
    writer.write(Buffer.alloc(1024 * 1024, 7));
    writer.destroy();
    await new Promise((resolve) => writer.once('close', resolve));
    expect(writer.bytesWritten).toBe(1024 * 1024);
    // Still ours: the owner closes it (in afterEach here).
    expect(fs.fstatSync(fd).size).toBe(1024 * 1024);
  });

  it('fails the stream with the write error (a descriptor opened read-only)', async () => {
    await writeFile(path, '');
    const writer = new FdWriter(openFd('r'), { start: 0, highWaterMark: 16 });
    await expect(pipeline(Readable.from([Buffer.from('data')]), writer)).rejects.toMatchObject({ code: 'EBADF' });
  });
});
