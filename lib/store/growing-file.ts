/**
 * A file still being written, read while it grows. The writer says how far its bytes have
 * landed (advance) and how it ended (finish); each reader streams from the first byte, reads
 * what has landed, and waits for more. The bytes a reader gets are those in the file: whoever
 * uses them must check them against the digest of the finished write (the early-data
 * extension does, lib/sync/early-data.ts).
 *
 * The writer may hand over the buffers that landed (advance's `chunks`): the latest of them,
 * up to HELD_BYTES, are then kept, and a reader takes its bytes from them rather than from the
 * file while it is within that span of the writer. On the 2-core bench machine the file reads
 * (one trip through the thread pool per 256 KiB) were the early reader's limit: a 1 GiB upload
 * landed at 200–330 MiB/s while its early reader followed at about 130 and fell further behind
 * (docs/benchmarks.md, issue #11). A reader further behind reads the file, a MiB at a time,
 * until it is within the span again.
 *
 * One read-only descriptor serves every reader; it is closed once the writer has finished and
 * no reader is left.
 */
import fs from 'node:fs';
import { Readable } from 'node:stream';
import type { GrowingData } from './types.js';

/** The readers' high-water mark: as for a blob served whole (file-blob-store.ts READ_HIGH_WATER_MARK). */
const READ_BYTES = 256 * 1024;

/**
 * Bytes per read of the file, by a reader behind the held buffers. It must catch up with a
 * writer that goes on landing bytes: with reads of 256 KiB, one trip through the thread pool
 * each, a reader that had fallen behind on the bench machine stayed behind, reading about half
 * the upload from the file; with 1 MiB it caught up (docs/benchmarks.md, issue #11).
 */
const CATCH_UP_BYTES = 1024 * 1024;

/**
 * The writer's latest buffers kept for readers that are a little behind it: a reader takes
 * them, rather than reading the file, while it is within this span of the writer. Kept only
 * while a reader may take them: from the slowest reader on, or, before the first reader came,
 * the start of the upload (an ESS hears of it through its poll, then asks). They are the
 * writer's own buffers: keeping them copies nothing, but they stay allocated meanwhile, and on
 * the bench 8 MiB put the CSS's peak RSS over 150 MB (153–170 MB), 2 MiB did not (124–130).
 */
const HELD_BYTES = 2 * 1024 * 1024;

/**
 * Bytes a reader may hold, unread by its consumer, and still take held buffers when more lands.
 * Its consumer pauses it at once and often (an HTTP answer asks for a pause after every write of
 * more than 16 KiB): a reader that took nothing while paused would drop behind the held span.
 */
const LIVE_WINDOW = 2 * 1024 * 1024;

/** A landed buffer kept for readers, and where it starts in the file. */
interface Held {
  at: number;
  buf: Buffer;
}

/** What the GrowingFile knows of each open reader. */
interface Follower {
  /** Offset of the next byte it pushes. */
  position(): number;
  /** More landed, or the write ended. */
  poke(): void;
}

export class GrowingFile implements GrowingData {
  private landed = 0;
  private outcome: 'writing' | 'complete' | 'failed' = 'writing';
  private readonly followers = new Set<Follower>();
  /** A reader came at some point: held buffers are then kept for readers only. */
  private everRead = false;
  /** The latest landed buffers the writer handed over, in order, contiguous up to `landed`. */
  private held: Held[] = [];
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

  /** Where the held buffers start; `landed` when none are. */
  private get heldFrom(): number {
    return this.held[0]?.at ?? this.landed;
  }

  /**
   * The writer: `bytes` from the start of the file have landed. `chunks`, when given, are the
   * bytes that landed since the last call, in order; readers may take them from memory, so they
   * must not be changed afterwards.
   */
  advance(bytes: number, chunks?: readonly Buffer[]): void {
    const from = this.landed;
    this.landed = bytes;
    const whole = chunks !== undefined && chunks.reduce((n, c) => n + c.length, 0) === bytes - from;
    if (whole) {
      let at = from;
      for (const buf of chunks) {
        if (buf.length === 0) continue;
        this.held.push({ at, buf });
        at += buf.length;
      }
    } else {
      this.held = [];
    }
    this.tell();
    this.trim();
  }

  /** The writer is done: `complete` once every one of `size` bytes landed and is durable. The first call counts. */
  finish(complete: boolean): void {
    if (this.outcome !== 'writing') return;
    this.outcome = complete && (this.size === null || this.landed === this.size) ? 'complete' : 'failed';
    if (this.outcome === 'failed') this.held = [];
    this.tell();
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
    /** A file read is in flight, or held buffers are being pushed: nothing else may push meanwhile. */
    let busy = false;
    /** The stream asked for more while busy: asked again once not. */
    let asked = false;
    /** The stream asked for more and got nothing yet: everything that had landed was pushed. */
    let waiting = false;

    const again = (): void => {
      busy = false;
      if (asked) {
        asked = false;
        step();
      }
    };
    /** Pushes held buffers from `position` on, at least one, until the stream holds LIVE_WINDOW. */
    const pushHeld = (): void => {
      busy = true;
      for (let i = this.heldIndex(position); i < this.held.length; i++) {
        if (stream.destroyed) return;
        const { at, buf } = this.held[i]!;
        const part = position > at ? buf.subarray(position - at) : buf;
        position += part.length;
        stream.push(part);
        if (stream.readableLength >= LIVE_WINDOW) break;
      }
      this.trim();
      again();
    };
    /** The stream wants more: what landed, from memory when held, else from the file; or wait. */
    const step = (): void => {
      if (stream.destroyed) return;
      if (busy) {
        asked = true;
        return;
      }
      waiting = false;
      if (this.outcome === 'failed') {
        stream.destroy(new Error('the upload being read ended before its last byte'));
        return;
      }
      if (position >= this.end && this.outcome === 'complete') {
        stream.push(null);
        return;
      }
      if (position >= this.landed) {
        waiting = true;
        return;
      }
      if (position >= this.heldFrom) {
        pushHeld();
        return;
      }
      const buf = Buffer.allocUnsafe(Math.min(CATCH_UP_BYTES, this.heldFrom - position));
      busy = true;
      this.reading++;
      fs.read(this.fd, buf, 0, buf.length, position, (err, n) => {
        this.reading--;
        this.closeIfIdle();
        if (err !== null) return void stream.destroy(err);
        if (n === 0) return void stream.destroy(new Error(`the file ended at ${position} of the ${this.landed} bytes written`));
        position += n;
        stream.push(n === buf.length ? buf : buf.subarray(0, n));
        again();
      });
    };
    const follower: Follower = {
      position: () => position,
      // More landed: a reader within the held span takes it, even unasked, unless its consumer
      // is far behind; one that waits and cannot reads the file.
      poke: () => {
        if (stream.destroyed || busy) return;
        if (position < this.landed && position >= this.heldFrom && stream.readableLength < LIVE_WINDOW) {
          waiting = false;
          pushHeld();
        } else if (waiting) {
          step();
        }
      },
    };
    this.followers.add(follower);
    this.everRead = true;
    const stream = new Readable({
      highWaterMark: READ_BYTES,
      read: step,
      destroy: (err, done) => {
        this.followers.delete(follower);
        this.trim();
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

  /** Index of the held buffer that holds `offset` (heldFrom ≤ offset < landed). */
  private heldIndex(offset: number): number {
    let lo = 0;
    let hi = this.held.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.held[mid]!.at <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /**
   * Drops held buffers no reader will take: those before the slowest reader; all once a reader
   * came and went, or once HELD_BYTES landed before any came; never more than HELD_BYTES.
   */
  private trim(): void {
    let keepFrom = this.everRead || this.landed > HELD_BYTES ? this.landed : 0;
    for (const f of this.followers) keepFrom = Math.min(keepFrom, f.position());
    const floor = Math.max(keepFrom, this.landed - HELD_BYTES);
    let drop = 0;
    while (drop < this.held.length && this.held[drop]!.at + this.held[drop]!.buf.length <= floor) drop++;
    if (drop > 0) this.held = this.held.slice(drop);
  }

  private tell(): void {
    for (const f of [...this.followers]) f.poke();
  }

  private closeIfIdle(): void {
    if (this.closed || this.outcome === 'writing' || this.followers.size > 0 || this.reading > 0) return;
    this.closed = true;
    this.held = [];
    fs.close(this.fd, () => undefined);
  }
}
