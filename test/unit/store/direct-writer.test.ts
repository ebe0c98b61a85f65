import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DIRECT_ALIGN, DirectWriter } from '../../../lib/store/direct-writer.js';

/** `data` cut into pieces of varied sizes, none aligned. */
function pieces(data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0, i = 0; at < data.length; i++) {
    const n = [1, 4095, 65_537, 300_001, 12_345][i % 5] as number;
    out.push(data.subarray(at, at + n));
    at += n;
  }
  return out;
}

/** Every fs.write to `fd` fails with `code` after `delayMs`; the others go through. */
function failWrites(fd: number, code: string, delayMs: number): void {
  const real = fs.write.bind(fs) as (...args: unknown[]) => void;
  const fake = (...args: unknown[]): void => {
    if (args[0] !== fd) return real(...args);
    const callback = args.at(-1) as (err: NodeJS.ErrnoException | null, n: number) => void;
    setTimeout(() => callback(Object.assign(new Error(`${code}: write`), { code }), 0), delayMs);
  };
  jest.spyOn(fs, 'write').mockImplementation(fake);
}

const write = (stream: DirectWriter, chunk: Buffer): Promise<void> =>
  new Promise((resolve, reject) => stream.write(chunk, (err) => (err ? reject(err) : resolve())));

describe('DirectWriter', () => {
  let dir: string;
  let path: string;
  const open: number[] = [];
  const openFd = (flags: number): number => {
    const fd = fs.openSync(path, flags);
    open.push(fd);
    return fd;
  };
  /** The ordinary and the direct descriptor of the file, as FileBlobStore opens them. */
  const target = (): { fd: number; directFd: number } => ({
    fd: openFd(fs.constants.O_RDWR | fs.constants.O_CREAT),
    directFd: openFd(fs.constants.O_WRONLY | fs.constants.O_DIRECT),
  });

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'edgesync-direct-writer-'));
    path = join(dir, 'f');
  });
  afterEach(async () => {
    jest.restoreAllMocks();
    for (const fd of open.splice(0)) fs.closeSync(fd);
    await rm(dir, { recursive: true, force: true });
  });

  it('writes every byte in order from an unaligned offset, over several buffers, directly', async () => {
    const head = Buffer.from('x'.repeat(1000));
    await writeFile(path, head);
    const data = randomBytes(3 * 1024 * 1024 + 12_345);
    const writer = new DirectWriter({ ...target(), start: head.length });
    await pipeline(Readable.from(pieces(data)), writer);
    expect((await readFile(path)).equals(Buffer.concat([head, data]))).toBe(true);
    expect(writer.bytesWritten).toBe(data.length);
    expect(writer.usesDirectIo).toBe(true);
  });

  it('flush() puts every byte handed over in the file, partial block included, and the writing goes on from there', async () => {
    const data = randomBytes(2 * 1024 * 1024 + DIRECT_ALIGN + 77);
    const writer = new DirectWriter({ ...target(), start: 0 });
    await write(writer, data.subarray(0, 5000));
    expect(await writer.flush()).toBe(5000);
    expect((await readFile(path)).equals(data.subarray(0, 5000))).toBe(true);
    await write(writer, data.subarray(5000, 1_500_000));
    expect(await writer.flush()).toBe(1_500_000);
    await new Promise<void>((resolve, reject) => writer.end(data.subarray(1_500_000), () => resolve()).on('error', reject));
    expect((await readFile(path)).equals(data)).toBe(true);
    expect(writer.bytesWritten).toBe(data.length);
  });

  it('goes on with ordinary writes when the file system refuses a direct one (EINVAL)', async () => {
    const { fd, directFd } = target();
    failWrites(directFd, 'EINVAL', 0);
    const data = randomBytes(2 * 1024 * 1024 + 999);
    const writer = new DirectWriter({ fd, directFd, start: 0 });
    await pipeline(Readable.from(pieces(data)), writer);
    expect((await readFile(path)).equals(data)).toBe(true);
    expect(writer.usesDirectIo).toBe(false);
  });

  it('fails the stream on any other write error, and leaves the descriptors open once it closes', async () => {
    const { fd, directFd } = target();
    failWrites(directFd, 'EIO', 20);
    const writer = new DirectWriter({ fd, directFd, start: 0 });
    await expect(pipeline(Readable.from(pieces(randomBytes(4 * 1024 * 1024))), writer)).rejects.toThrow('EIO');
    if (!writer.closed) await new Promise((resolve) => writer.once('close', resolve));
    expect(fs.fstatSync(fd).size).toBe(0);
    expect(fs.fstatSync(directFd).isFile()).toBe(true);
  });
});
