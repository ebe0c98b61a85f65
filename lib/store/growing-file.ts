/**
 * A file still being written, read while it grows. The writer says how far its bytes have
 * landed (advance) and how it ended (finish); each reader streams from the first byte, reads
 * what has landed, and waits for more. The bytes a reader gets are those in the file: whoever
 * uses them must check them against the digest of the finished write (the early-data
 * extension does, lib/sync/early-data.ts).
 *
 * One read-only descriptor serves every reader; it is closed once the writer has finished and
 * no reader is left.
 */
import fs from 'node:fs';
import { Readable } from 'node:stream';
import type { GrowingData } from './types.js';

/** Bytes per read: as for a blob served whole (file-blob-store.ts READ_HIGH_WATER_MARK). */
const READ_BYTES = 256 * 1024;

export class GrowingFile implements GrowingData {
  private landed = 0;
  private outcome: 'writing' | 'complete' | 'failed' = 'writing';
  private readonly waiting = new Set<() => void>();
  private readers = 0;
  /** Reads in flight: the descriptor must outlive them, even those of a reader already gone. */
  private reading = 0;
  private closed = false;

  /**
   * @param fd a read-only descriptor of the file, now owned by this object
   * @param size the bytes the write will bring, when it is known (else readers end where the
   *   completed write ended)
   */
  constructor(
    private readonly fd: number,
    readonly size: number | null,
  ) {}

  /** Where the data ends: the announced size, or once complete, what landed. */
  private get end(): number {
    return this.size ?? (this.outcome === 'complete' ? this.landed : Infinity);
  }

  /** The writer: `bytes` from the start of the file have landed. */
  advance(bytes: number): void {
    this.landed = bytes;
    this.wake();
  }

  /** The writer is done: `complete` once every one of `size` bytes landed and is durable. The first call counts. */
  finish(complete: boolean): void {
    if (this.outcome !== 'writing') return;
    this.outcome = complete && (this.size === null || this.landed === this.size) ? 'complete' : 'failed';
    this.wake();
    this.closeIfIdle();
  }

  read(signal?: AbortSignal): Readable {
    // Its descriptor is closed (and its number may be another file's by now): the upload is
    // over and every reader gone, so the data is to be read as a blob, not from here.
    if (this.closed) {
      const why = this.outcome === 'failed' ? 'the upload being read ended before its last byte' : 'the upload is over; its data is no longer read from here';
      return new Readable({ read: () => undefined }).destroy(new Error(why));
    }
    let position = 0;
    this.readers++;
    const stream = new Readable({
      highWaterMark: READ_BYTES,
      read: () => {
        const step = (): void => {
          if (stream.destroyed) return;
          if (this.outcome === 'failed') {
            stream.destroy(new Error('the upload being read ended before its last byte'));
            return;
          }
          if (position >= this.end && this.outcome === 'complete') {
            stream.push(null);
            return;
          }
          if (position >= this.landed) {
            this.waiting.add(step);
            return;
          }
          const buf = Buffer.allocUnsafe(Math.min(READ_BYTES, this.landed - position));
          this.reading++;
          fs.read(this.fd, buf, 0, buf.length, position, (err, n) => {
            this.reading--;
            this.closeIfIdle();
            if (err !== null) return void stream.destroy(err);
            if (n === 0) return void stream.destroy(new Error(`the file ended at ${position} of the ${this.landed} bytes written`));
            position += n;
            stream.push(n === buf.length ? buf : buf.subarray(0, n));
          });
        };
        step();
      },
      destroy: (err, done) => {
        this.readers--;
        this.closeIfIdle();
        done(err);
      },
    });
    if (signal !== undefined) {
      if (signal.aborted) stream.destroy(signal.reason as Error);
      else signal.addEventListener('abort', () => stream.destroy(signal.reason as Error), { once: true });
    }
    return stream;
  }

  private wake(): void {
    const steps = [...this.waiting];
    this.waiting.clear();
    for (const step of steps) step();
  }

  private closeIfIdle(): void {
    if (this.closed || this.outcome === 'writing' || this.readers > 0 || this.reading > 0) return;
    this.closed = true;
    fs.close(this.fd, () => undefined);
  }
}
