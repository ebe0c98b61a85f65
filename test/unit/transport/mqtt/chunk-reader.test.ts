/**
 * The sender's reader of a chunked MQTT transfer (lib/transport/mqtt/chunk-reader.ts): the chunks
 * of one object read in order from one stream, straight into the buffers given, and the readers
 * of the transfers under way kept between requests, within bounds.
 */
import { randomBytes } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { describe, expect, it, jest } from '@jest/globals';
import { ChunkReader, ChunkReaders, ShortDataError } from '../../../../lib/transport/mqtt/chunk-reader.js';

/** A stream of `data` in parts of `part` bytes, as a file read stream gives them. */
function parts(data: Buffer, part: number): Readable {
  const list: Buffer[] = [];
  for (let at = 0; at < data.length; at += part) list.push(data.subarray(at, at + part));
  return Readable.from(list, { objectMode: false });
}

const tick = async (): Promise<void> => {
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
};

describe('ChunkReader', () => {
  it('fills chunks in order across the parts of the stream, whatever their sizes', async () => {
    const data = randomBytes(10_000);
    const reader = new ChunkReader(parts(data, 777), 5000, 14_999, 0, 4096);
    expect(reader.next).toBe(5000);
    expect(reader.remaining).toBe(10_000);
    const got: Buffer[] = [];
    for (const size of [1000, 2500, 1, 6499]) {
      const chunk = Buffer.alloc(size);
      await reader.fill(chunk);
      got.push(chunk);
    }
    expect(Buffer.concat(got).equals(data)).toBe(true);
    expect(reader.next).toBe(15_000);
    expect(reader.remaining).toBe(0);
  });

  it('fails a chunk the data ends before, saying where', async () => {
    const reader = new ChunkReader(parts(randomBytes(1500), 500), 0, 1999, 0, 4096);
    await reader.fill(Buffer.alloc(1000));
    const err = await reader.fill(Buffer.alloc(1000)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ShortDataError);
    expect((err as Error).message).toMatch(/offset 1500/);
  });

  it("fails with the stream's error", async () => {
    const stream = new PassThrough();
    const reader = new ChunkReader(stream, 0, 999, 0, 4096);
    const filling = reader.fill(Buffer.alloc(1000));
    stream.write(Buffer.alloc(100));
    stream.destroy(new Error('disk gone'));
    await expect(filling).rejects.toThrow('disk gone');
  });

  it('reads ahead no more than it is allowed before the next chunk is asked for', async () => {
    const stream = new PassThrough({ highWaterMark: 64 });
    const reader = new ChunkReader(stream, 0, 9999, 0, 1000);
    // The writer is told to wait once the reader holds its read-ahead and the stream its own buffer.
    let accepted = 0;
    while (stream.write(Buffer.alloc(100)) && accepted < 100) accepted++;
    await tick();
    expect(accepted).toBeLessThan(20);
    reader.close();
  });

  it('closing destroys the stream and fails a chunk waiting for bytes', async () => {
    const stream = new PassThrough();
    const reader = new ChunkReader(stream, 0, 999, 0, 4096);
    const filling = reader.fill(Buffer.alloc(10));
    reader.close();
    await expect(filling).rejects.toBeInstanceOf(ShortDataError);
    expect(stream.destroyed).toBe(true);
  });
});

describe('ChunkReaders', () => {
  const reader = (start = 0, end = 9999, openedAt = 0): ChunkReader => new ChunkReader(new PassThrough(), start, end, openedAt, 4096);

  it('gives a kept reader back for the offset it is at, once, and nothing for another offset', () => {
    const readers = new ChunkReaders({ max: 4, idleMs: 60_000, reopenMs: 60_000, now: () => 0 });
    const r = reader(1000);
    readers.keep('a', r);
    expect(readers.take('a', 1000)).toBe(r);
    // Taken: in use until kept again.
    expect(readers.take('a', 1000)).toBeNull();
    readers.keep('a', r);
    // A request elsewhere (a chunk asked again) closes it: the transfer reopens from there.
    expect(readers.take('a', 0)).toBeNull();
    expect(readers.size).toBe(0);
    readers.close();
  });

  it('does not give back a reader older than reopenMs', () => {
    let now = 0;
    const readers = new ChunkReaders({ max: 4, idleMs: 60_000, reopenMs: 1000, now: () => now });
    readers.keep('a', reader(0, 9999, 0));
    now = 1000;
    expect(readers.take('a', 0)).toBeNull();
    readers.close();
  });

  it('closes a reader with nothing left instead of keeping it', () => {
    const readers = new ChunkReaders({ max: 4, idleMs: 60_000, reopenMs: 60_000 });
    const stream = new PassThrough();
    readers.keep('a', new ChunkReader(stream, 100, 99, 0, 4096));
    expect(readers.size).toBe(0);
    expect(stream.destroyed).toBe(true);
  });

  it('keeps at most `max`, closing the one kept longest ago', () => {
    const readers = new ChunkReaders({ max: 2, idleMs: 60_000, reopenMs: 60_000, now: () => 0 });
    const [a, b, c] = [reader(), reader(), reader()];
    readers.keep('a', a);
    readers.keep('b', b);
    readers.keep('c', c);
    expect(readers.size).toBe(2);
    expect(readers.take('a', 0)).toBeNull();
    expect(readers.take('b', 0)).toBe(b);
    expect(readers.take('c', 0)).toBe(c);
    readers.close();
  });

  it('closes a reader idle for idleMs, and every reader on close', () => {
    jest.useFakeTimers();
    try {
      const readers = new ChunkReaders({ max: 4, idleMs: 5000, reopenMs: 60_000, now: () => 0 });
      const idle = new PassThrough();
      readers.keep('a', new ChunkReader(idle, 0, 99, 0, 4096));
      jest.advanceTimersByTime(5000);
      expect(idle.destroyed).toBe(true);
      expect(readers.size).toBe(0);
      const kept = new PassThrough();
      readers.keep('b', new ChunkReader(kept, 0, 99, 0, 4096));
      readers.close();
      expect(kept.destroyed).toBe(true);
      // Closed: nothing more is kept.
      const late = new PassThrough();
      readers.keep('c', new ChunkReader(late, 0, 99, 0, 4096));
      expect(late.destroyed).toBe(true);
    } finally {
      jest.useRealTimers();
    }
  });
});
