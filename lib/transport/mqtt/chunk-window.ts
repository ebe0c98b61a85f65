/**
 * The receiver's side of an MQTT data transfer: `getdata{offset}` requests for the chunks of a
 * byte range, at most `window` outstanding, each chunk that is read requesting the next (a
 * sliding window, as the reference's `handleData` does), and the arriving chunks turned into one
 * Readable of the range's bytes in order. [ref sync-protocol §2 Flow; traffic README obs. 15]
 *
 * What we do beyond the reference:
 * - Chunks may arrive in any order: they wait in the window until their turn, so memory is
 *   bounded by `window` chunks whatever the order.
 * - New chunks are requested only as the consumer reads (backpressure): a slow disk slows the
 *   CSS down instead of filling memory.
 * - A chunk that does not arrive is asked for again after `retryAfterMs` (doubling per try,
 *   capped), not after the reference's 60 s; after `maxTries` the stream fails and the caller
 *   resumes later from what it kept.
 * - A chunk shorter than asked for (a sender with a smaller chunk size) is taken, and the rest of
 *   its piece asked for at once; later chunks are asked for at the size the sender uses. A longer
 *   one is cut to the piece asked for, unless nothing was asked for past it: then it is taken
 *   whole, and later chunks are asked for at its size.
 * - The receiver may ask for smaller chunks than the object's chunk size (our CSS serves the size
 *   a `getdata` states; a reference CSS serves its own): with `probe`, one chunk is asked for
 *   first, and the window opens once its answer shows the size the sender serves.
 * - With `windowBytes`, the window holds at most that many bytes' worth of chunks (and at least
 *   one chunk), whatever their size.
 */
import { Readable } from 'node:stream';

export interface ChunkWindowOptions {
  /** First byte wanted. */
  start: number;
  /** Last byte wanted, inclusive. */
  end: number;
  /** Bytes asked for per request (the object's chunk size). Requests are aligned to it. */
  chunkSize: number;
  /** Chunks outstanding or waiting for their turn, at most. */
  window: number;
  /** Bytes outstanding or waiting for their turn, at most (counted in chunks of the current size, at least one). */
  windowBytes?: number;
  /**
   * The sender may serve longer chunks than `chunkSize` (its own size): ask for one chunk until
   * the first answer shows the size it serves.
   */
  probe?: boolean;
  /** Sends `getdata` for `offset`. A failure is retried like a lost chunk. */
  request(offset: number): Promise<void>;
  /** How long a chunk may take before it is asked for again (doubled per try). */
  retryAfterMs: number;
  /** The longest wait between two requests of one chunk. */
  maxRetryAfterMs?: number;
  /** Requests of one chunk before the transfer fails. */
  maxTries: number;
  /** Aborts the transfer: the stream fails with the signal's reason. */
  signal: AbortSignal;
  /** Called once when the transfer ends, however it ends. */
  onEnd?: () => void;
}

/** A chunk that never came, after every retry. */
export class ChunkTimeoutError extends Error {
  constructor(readonly offset: number, tries: number) {
    super(`the chunk at offset ${offset} did not arrive after ${tries} requests`);
    this.name = 'ChunkTimeoutError';
  }
}

/** One requested piece of the range: [offset, end) in object bytes. */
interface Piece {
  offset: number;
  end: number;
  tries: number;
  timer: NodeJS.Timeout | null;
}

const DEFAULT_MAX_RETRY_AFTER_MS = 30_000;

export class ChunkWindow {
  readonly stream: Readable;
  /** Requested, not arrived; by offset. */
  private readonly pending = new Map<number, Piece>();
  /** Arrived, waiting for their turn; by offset, cut to their piece. */
  private readonly ready = new Map<number, Buffer>();
  /** Offset of the next piece never requested yet. */
  private nextOffset: number;
  /** Offset of the next piece to hand to the consumer. */
  private cursor: number;
  /** Object bytes past the range: the end of the last piece. */
  private readonly limit: number;
  private chunkSize: number;
  /** No chunk came yet, and the sender may serve another size than asked for: one request at a time. */
  private probing: boolean;
  /** The SHA-256 of the object's whole data, as the first chunk that states it says. */
  private stated: string | undefined;
  /** The consumer asked for more since the stream last refused a push. */
  private wanted = false;
  private ended = false;

  constructor(private readonly opts: ChunkWindowOptions) {
    if (opts.chunkSize <= 0 || opts.window <= 0 || opts.end < opts.start) throw new RangeError('a chunk window needs a positive chunk size and window, and a range');
    this.chunkSize = opts.chunkSize;
    this.probing = opts.probe === true;
    this.limit = opts.end + 1;
    // Aligned to the chunk size, as the reference's receiver asks: at most one chunk is fetched
    // for nothing on a resume from the middle of a chunk.
    this.nextOffset = opts.start - (opts.start % opts.chunkSize);
    this.cursor = this.nextOffset;
    // One chunk buffered in the stream at most: the window is where chunks wait.
    this.stream = new Readable({
      highWaterMark: Math.min(opts.chunkSize, 16 * 1024 * 1024),
      read: () => {
        this.wanted = true;
        // Readable.read() calls this before it takes the bytes it returns out of the buffer:
        // counted then, they would hold a place in the window.
        queueMicrotask(() => this.pump());
      },
      destroy: (err, cb) => {
        this.finish();
        cb(err);
      },
    });
    if (opts.signal.aborted) this.fail(abortReason(opts.signal));
    else opts.signal.addEventListener('abort', this.onAbort, { once: true });
  }

  /** Whether a chunk at `offset` is awaited. */
  awaits(offset: number): boolean {
    return this.pending.has(offset);
  }

  /** The SHA-256 of the object's whole data, once a chunk stated it (our CSS's do; a reference's never). */
  get sha256(): string | undefined {
    return this.stated;
  }

  /**
   * A data message for this object instance, with the data's SHA-256 when it states it.
   * @returns whether the window took it (a chunk not asked for, or a repeat of one already here, is dropped)
   */
  accept(offset: number, data: Buffer, sha256?: string): boolean {
    const piece = this.pending.get(offset);
    if (piece === undefined || this.ended) return false;
    this.stated ??= sha256;
    // Nothing where something is owed: ignored, the retry timer asks again.
    if (data.length === 0) return false;
    this.settle(piece);
    this.probing = false;
    const length = piece.end - piece.offset;
    if (data.length > length && piece.end === this.nextOffset && piece.end < this.limit) {
      // Longer than asked for, and nothing asked for past it: the sender serves bigger chunks
      // (a reference CSS, its MAX_DATA_CHUNK_SIZE). All of it is taken; later chunks are asked
      // for at its size.
      const end = Math.min(offset + data.length, this.limit);
      this.chunkSize = Math.max(this.chunkSize, data.length);
      this.nextOffset = end;
      this.ready.set(offset, data.subarray(0, end - offset));
    } else if (data.length < length) {
      // The sender's chunks are smaller than ours: keep what came, ask for the rest of the
      // piece at once, and ask for later pieces at its size.
      this.chunkSize = data.length;
      this.ready.set(offset, data);
      this.send({ offset: offset + data.length, end: piece.end, tries: 0, timer: null });
    } else {
      this.ready.set(offset, data.length === length ? data : data.subarray(0, length));
    }
    this.pump();
    return true;
  }

  /** Ends the transfer with `err` (e.g. the sender says it has no such data). */
  fail(err: Error): void {
    if (this.ended) return;
    this.stream.destroy(err);
  }

  private readonly onAbort = (): void => this.fail(abortReason(this.opts.signal));

  /** Hands over what is in order, then fills the window again while the consumer wants more. */
  private pump(): void {
    if (this.ended) return;
    while (this.wanted) {
      const data = this.ready.get(this.cursor);
      if (data === undefined) break;
      this.ready.delete(this.cursor);
      const pieceStart = this.cursor;
      this.cursor += data.length;
      // The first piece may start before the range (aligned); the last one ends with it.
      const from = Math.max(0, this.opts.start - pieceStart);
      const chunk = from === 0 ? data : data.subarray(from);
      if (chunk.length > 0) this.wanted = this.stream.push(chunk);
    }
    if (this.cursor >= this.limit) {
      this.finish();
      this.stream.push(null);
      return;
    }
    // The window counts what the stream holds too: memory stays within `window` chunks, and
    // chunks are asked for ahead of the consumer as far as that allows.
    while (this.nextOffset < this.limit && this.pending.size + this.ready.size + Math.ceil(this.stream.readableLength / this.chunkSize) < this.capacity()) {
      const offset = this.nextOffset;
      const end = Math.min(offset + this.chunkSize, this.limit);
      this.nextOffset = end;
      this.send({ offset, end, tries: 0, timer: null });
    }
  }

  /** Chunks the window holds at most now. */
  private capacity(): number {
    if (this.probing) return 1;
    const byBytes = this.opts.windowBytes !== undefined ? Math.floor(this.opts.windowBytes / this.chunkSize) : Infinity;
    return Math.max(1, Math.min(this.opts.window, byBytes));
  }

  /** Requests a piece and arms its retry. */
  private send(piece: Piece): void {
    if (this.ended) return;
    piece.tries += 1;
    this.pending.set(piece.offset, piece);
    const wait = Math.min(this.opts.retryAfterMs * 2 ** (piece.tries - 1), this.opts.maxRetryAfterMs ?? DEFAULT_MAX_RETRY_AFTER_MS);
    piece.timer = setTimeout(() => this.expire(piece), wait);
    // A failed publish (broker gone) is a lost request: the timer asks again.
    this.opts.request(piece.offset).catch(() => undefined);
  }

  private expire(piece: Piece): void {
    piece.timer = null;
    if (this.ended || this.pending.get(piece.offset) !== piece) return;
    if (piece.tries >= this.opts.maxTries) {
      this.fail(new ChunkTimeoutError(piece.offset, piece.tries));
      return;
    }
    this.send(piece);
  }

  private settle(piece: Piece): void {
    if (piece.timer !== null) clearTimeout(piece.timer);
    piece.timer = null;
    this.pending.delete(piece.offset);
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    for (const piece of this.pending.values()) if (piece.timer !== null) clearTimeout(piece.timer);
    this.pending.clear();
    this.ready.clear();
    this.opts.signal.removeEventListener('abort', this.onAbort);
    this.opts.onEnd?.();
  }
}

function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new Error('the transfer was aborted');
}

/**
 * The transfers in progress, by object instance: where an arriving chunk goes (a chunk of
 * another instance, a late answer of an older transfer, goes nowhere).
 */
export class ChunkWindows {
  private readonly byObject = new Map<string, Set<{ instanceID: bigint; window: ChunkWindow }>>();

  /** A window for one instance of an object, forgotten when its transfer ends. */
  open(ref: { objectType: string; objectID: string; instanceID: bigint }, opts: Omit<ChunkWindowOptions, 'onEnd'>): ChunkWindow {
    const key = `${ref.objectType}\u0000${ref.objectID}`;
    let set = this.byObject.get(key);
    if (set === undefined) {
      set = new Set();
      this.byObject.set(key, set);
    }
    const windows = set;
    const entry = {
      instanceID: ref.instanceID,
      window: new ChunkWindow({
        ...opts,
        onEnd: () => {
          windows.delete(entry);
          if (windows.size === 0 && this.byObject.get(key) === windows) this.byObject.delete(key);
        },
      }),
    };
    windows.add(entry);
    return entry.window;
  }

  /** A chunk of an object instance (and the data's SHA-256, when the message states it). @returns whether a window took it */
  deliver(objectType: string, objectID: string, instanceID: bigint, offset: number, data: Buffer, sha256?: string): boolean {
    let taken = false;
    for (const { instanceID: id, window } of this.instances(objectType, objectID)) if (id === instanceID && window.accept(offset, data, sha256)) taken = true;
    return taken;
  }

  /** Fails the transfers of an object instance. */
  fail(objectType: string, objectID: string, instanceID: bigint, err: Error): void {
    for (const { instanceID: id, window } of this.instances(objectType, objectID)) if (id === instanceID) window.fail(err);
  }

  failAll(err: Error): void {
    for (const set of [...this.byObject.values()]) for (const { window } of [...set]) window.fail(err);
    this.byObject.clear();
  }

  private instances(objectType: string, objectID: string): { instanceID: bigint; window: ChunkWindow }[] {
    return [...(this.byObject.get(`${objectType}\u0000${objectID}`) ?? [])];
  }
}
