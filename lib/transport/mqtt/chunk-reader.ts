/**
 * The sender's side of a chunked MQTT transfer reads the object's data once, in order, from one
 * open stream, rather than opening a range per `getdata`: a receiver asks for the chunks of a
 * transfer in ascending order (a sliding window), so the chunk asked for next is almost always
 * where the last one ended. Opening the data per chunk cost a lookup of the object, a file open
 * and close and a read-ahead that was thrown away, for every chunk.
 *
 * ChunkReader fills a chunk's bytes straight into the data message that carries them
 * (data-codec.ts allocDataMessage): one copy out of the store's buffers, none after. ChunkReaders
 * keeps the readers of the transfers under way between two requests, bounded in number, closed
 * when idle, and reopened now and then, so that what the store says of the object (deleted, a new
 * instance) is heard again within `reopenMs`.
 */
import type { Readable } from 'node:stream';

/** The data ended before the chunk was full: the store holds fewer bytes than it said. */
export class ShortDataError extends Error {
  constructor(at: number, wanted: number) {
    super(`the object's data ended at offset ${at}, before the ${wanted} bytes asked for`);
    this.name = 'ShortDataError';
  }
}

/**
 * Bytes `next` .. `end` of an object's data, read in order from one stream. The stream flows
 * until `readAhead` bytes wait here, so that the next chunk is mostly read before it is asked
 * for; its parts are kept as they came (Readable.read() would join them, a copy).
 */
export class ChunkReader {
  private position: number;
  private readonly parts: Buffer[] = [];
  private queued = 0;
  private ended = false;
  private error: Error | null = null;
  private wake: (() => void) | null = null;
  private closed = false;

  /**
   * @param stream the data from `start` to `end`
   * @param end last byte the stream holds, inclusive (start - 1 when it holds none)
   * @param openedAt when the data was opened (epoch ms): ChunkReaders reopens it after a while
   * @param readAhead bytes read ahead of what was asked for, at most (beyond the stream's own buffer)
   * @param sha256 the SHA-256 of the object's whole data, when the store knows it (its chunks state it)
   */
  constructor(
    private readonly stream: Readable,
    start: number,
    readonly end: number,
    readonly openedAt: number,
    private readonly readAhead: number,
    readonly sha256: string | null = null,
  ) {
    this.position = start;
    stream.on('data', (part: Buffer | string) => {
      const buf = typeof part === 'string' ? Buffer.from(part) : part;
      this.parts.push(buf);
      this.queued += buf.length;
      if (this.queued >= this.readAhead) stream.pause();
      this.wakeUp();
    });
    stream.once('end', () => this.over(null));
    stream.once('error', (err: Error) => this.over(err));
    stream.once('close', () => this.over(null));
  }

  /** Offset of the next byte this reader gives. */
  get next(): number {
    return this.position;
  }

  /** Bytes left to read. */
  get remaining(): number {
    return Math.max(0, this.end + 1 - this.position);
  }

  /**
   * Fills `target` with the next `target.length` bytes.
   * @throws ShortDataError when the data ends first; the stream's error when it fails
   */
  async fill(target: Buffer): Promise<void> {
    let at = 0;
    while (at < target.length) {
      const part = this.parts[0];
      if (part === undefined) {
        if (this.error !== null) throw this.error;
        if (this.ended || this.closed) throw new ShortDataError(this.position + at, target.length);
        this.stream.resume();
        await new Promise<void>((resolve) => (this.wake = resolve));
        continue;
      }
      const n = part.copy(target, at);
      at += n;
      this.queued -= n;
      if (n < part.length) this.parts[0] = part.subarray(n);
      else this.parts.shift();
    }
    this.position += target.length;
    if (this.queued < this.readAhead && !this.ended && this.position <= this.end) this.stream.resume();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.parts.length = 0;
    this.queued = 0;
    this.stream.destroy();
    this.wakeUp();
  }

  private over(err: Error | null): void {
    this.ended = true;
    this.error ??= err;
    this.wakeUp();
  }

  private wakeUp(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }
}

export interface ChunkReadersOptions {
  /** Readers kept at most; the one used least recently is closed for a new one. */
  max: number;
  /** A reader not used for this long is closed. */
  idleMs: number;
  /** A reader older than this is not used again: the next request opens the data anew. */
  reopenMs: number;
  /** Epoch ms; tests inject a clock. */
  now?: () => number;
}

interface Kept {
  reader: ChunkReader;
  timer: NodeJS.Timeout;
}

/** The readers of the transfers under way, by a key naming the receiver and the object instance. */
export class ChunkReaders {
  private readonly kept = new Map<string, Kept>();
  private readonly now: () => number;
  private closed = false;

  constructor(private readonly opts: ChunkReadersOptions) {
    this.now = opts.now ?? Date.now;
  }

  get size(): number {
    return this.kept.size;
  }

  /**
   * The reader of `key` if it is at `offset` and fresh enough, taken out until it is given back
   * with `keep`; null otherwise (a reader elsewhere in the data is closed: a repeated request or
   * a resume, and the transfer goes on from there with a new one).
   */
  take(key: string, offset: number): ChunkReader | null {
    const entry = this.kept.get(key);
    if (entry === undefined) return null;
    this.kept.delete(key);
    clearTimeout(entry.timer);
    if (entry.reader.next === offset && this.now() - entry.reader.openedAt < this.opts.reopenMs) return entry.reader;
    entry.reader.close();
    return null;
  }

  /** Keeps a reader for the next request of its transfer; one with nothing left is closed. */
  keep(key: string, reader: ChunkReader): void {
    if (this.closed || reader.remaining === 0) {
      reader.close();
      return;
    }
    const old = this.kept.get(key);
    if (old !== undefined) {
      clearTimeout(old.timer);
      old.reader.close();
      this.kept.delete(key);
    }
    while (this.kept.size >= Math.max(1, this.opts.max)) {
      // Map order is insertion order: the first is the one given back longest ago.
      const [oldest, entry] = this.kept.entries().next().value as [string, Kept];
      clearTimeout(entry.timer);
      entry.reader.close();
      this.kept.delete(oldest);
    }
    const timer = setTimeout(() => {
      if (this.kept.get(key)?.reader !== reader) return;
      this.kept.delete(key);
      reader.close();
    }, this.opts.idleMs);
    timer.unref();
    this.kept.set(key, { reader, timer });
  }

  /** Closes every reader; none is kept afterwards. */
  close(): void {
    this.closed = true;
    for (const { reader, timer } of this.kept.values()) {
      clearTimeout(timer);
      reader.close();
    }
    this.kept.clear();
  }
}
