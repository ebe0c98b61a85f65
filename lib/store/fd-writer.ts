/**
 * A Writable over a file descriptor it does not own, writing at increasing positions from a
 * start offset. Whatever queued while a write was in flight goes out as one positional writev.
 *
 * With `flushEvery`, the bytes written so far are fdatasync'ed in the background each time that
 * many more have landed (one flush at a time, the writes going on meanwhile), so the owner's
 * final fsync finds little left to write: a 1 GiB upload otherwise left the whole GiB dirty in
 * the page cache for that last fsync. A failed flush fails the next write, or the end.
 *
 * Why not fs.WriteStream: destroying one closes its descriptor even with `autoClose: false`,
 * so the owner cannot keep fsyncing and then close it itself without closing a number the
 * process may already have reused; and one over a FileHandle instead cost the ESS 1.6–2 times
 * the CPU per downloaded byte (see docs/benchmarks.md).
 */
import fs from 'node:fs';
import { Writable } from 'node:stream';

type Done = (err?: Error | null) => void;

export interface FdWriterOptions {
  /** Offset of the first byte. */
  start: number;
  /** Bytes queued before write() asks the producer to wait; one writev takes them all. */
  highWaterMark: number;
  /** Flush in the background after every this many bytes; never when absent. */
  flushEvery?: number;
  /**
   * Told the bytes written so far (bytesWritten) each time more landed, and the buffers (or
   * parts of them) that landed with that write, in order; they are the caller's own chunks.
   */
  onLanded?: (bytesWritten: number, landed: readonly Buffer[]) => void;
}

export class FdWriter extends Writable {
  private position: number;
  private written = 0;
  /** Settles when the write in flight has landed or failed; destroy waits for it. */
  private inFlight: Promise<void> | null = null;
  private readonly flushEvery: number;
  private flushedTo = 0;
  /** Never rejects: a failure is kept in flushError. */
  private flushing: Promise<void> | null = null;
  private flushError: Error | null = null;
  private readonly onLanded: ((bytesWritten: number, landed: readonly Buffer[]) => void) | undefined;

  constructor(private readonly fd: number, opts: FdWriterOptions) {
    super({ highWaterMark: opts.highWaterMark });
    this.position = opts.start;
    this.flushEvery = opts.flushEvery ?? Infinity;
    this.onLanded = opts.onLanded;
  }

  /** Bytes that reached the file (completed writes only). */
  get bytesWritten(): number {
    return this.written;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: Done): void {
    this.writeAll([chunk], done);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, done: Done): void {
    this.writeAll(chunks.map((c) => c.chunk), done);
  }

  /** Waits for the background flush, so that its failure is not lost. */
  override _final(done: Done): void {
    if (this.flushing === null) done(this.flushError);
    else void this.flushing.then(() => done(this.flushError));
  }

  override _destroy(err: Error | null, done: Done): void {
    // The descriptor stays open (its owner closes it), but not before the write and the flush
    // in flight are done with it.
    void Promise.all([this.inFlight, this.flushing]).then(() => done(err));
  }

  private maybeFlush(): void {
    if (this.flushing !== null || this.written - this.flushedTo < this.flushEvery) return;
    const upTo = this.written;
    this.flushing = new Promise((resolve) => {
      fs.fdatasync(this.fd, (err) => {
        if (err !== null) this.flushError ??= err;
        else this.flushedTo = upTo;
        this.flushing = null;
        resolve();
      });
    });
  }

  private writeAll(buffers: Buffer[], done: Done): void {
    if (this.flushError !== null) return done(this.flushError);
    let landed!: () => void;
    this.inFlight = new Promise((resolve) => (landed = resolve));
    const finish = (err: Error | null): void => {
      this.inFlight = null;
      landed();
      done(err);
    };
    const step = (pending: Buffer[]): void => {
      fs.writev(this.fd, pending, this.position, (err, n) => {
        if (err !== null) return finish(err);
        this.position += n;
        this.written += n;
        const rest = unwritten(pending, n);
        this.onLanded?.(this.written, rest.length === 0 ? pending : landedPart(pending, n));
        if (rest.length === 0) {
          this.maybeFlush();
          return finish(null);
        }
        // A short write (disk full, say) is retried with the rest; none at all is an error.
        if (n === 0) return finish(new Error(`no byte of ${rest.reduce((s, b) => s + b.length, 0)} could be written`));
        step(rest);
      });
    };
    step(buffers);
  }
}

/** The first `n` bytes of `buffers`. */
function landedPart(buffers: Buffer[], n: number): Buffer[] {
  const out: Buffer[] = [];
  let left = n;
  for (const b of buffers) {
    if (left <= 0) break;
    out.push(left >= b.length ? b : b.subarray(0, left));
    left -= b.length;
  }
  return out;
}

/** What remains of `buffers` after their first `n` bytes. */
function unwritten(buffers: Buffer[], n: number): Buffer[] {
  let skip = n;
  let i = 0;
  while (i < buffers.length && skip >= (buffers[i] as Buffer).length) skip -= (buffers[i++] as Buffer).length;
  const rest = buffers.slice(i);
  if (skip > 0 && rest.length > 0) rest[0] = (rest[0] as Buffer).subarray(skip);
  return rest;
}
