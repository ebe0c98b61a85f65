/**
 * The chunk layer under MongoBlobStore (docs/adr/0020-mongo-blobs.md): a blob or staging area's
 * bytes cut into fixed-size chunk documents, chunk n of `id` holding bytes
 * [n * CHUNK_BYTES, (n + 1) * CHUNK_BYTES) as `{ _id: "<id>/<n>", f: id, n, data }`. Which
 * chunks a byte range needs is arithmetic; the `_id` makes each chunk's write unique and its
 * rewrite a write by primary key, and the index on (f, n) serves the range queries.
 *
 * Where chunks may exist is bounded by the `extent` their files document records before they
 * are written (the writer's `reserve`), so removing them never has to search for them.
 */
import { Writable } from 'node:stream';
import type { Binary, Collection } from 'mongodb';
import { isDuplicateKey } from './mongo-cas.js';

/**
 * 256 KiB: far below the 16 MiB document limit, and a divisor of the power-of-two chunk sizes
 * uploads use, so that their chunks start on a chunk boundary (no partial chunk to read back).
 */
export const CHUNK_BYTES = 256 * 1024;

export interface ChunkDoc {
  _id: string;
  /** The blob or staging area's id. */
  f: string;
  /** The chunk's number. */
  n: number;
  data: Binary | Buffer;
}

/** The index every chunk query and delete runs on. */
export const CHUNK_INDEX = { key: { f: 1, n: 1 }, name: 'chunk', unique: true } as const;

export const chunkKey = (id: string, n: number): string => `${id}/${n}`;

/** The bytes of a chunk as read back, without a copy. */
export function bytesOf(data: Binary | Buffer): Buffer {
  if (Buffer.isBuffer(data)) return data;
  return Buffer.from(data.buffer.buffer, data.buffer.byteOffset, data.length());
}

/** Deletes chunks `from`..`to` of `id`, those present, by one query. */
export async function deleteChunks(chunks: Collection<ChunkDoc>, id: string, from: number, to: number): Promise<void> {
  if (to < from) return;
  await chunks.deleteMany({ f: id, n: { $gte: from, $lte: to } });
}

/**
 * Writes bytes from an offset into chunk documents, one operation at a time in order. The bytes
 * of the current chunk stay in memory until it is full: a partial chunk is rewritten whole when
 * it grows. Memory: at most one chunk plus what one push brings.
 */
export class ChunkWriter {
  /** Bytes from 0 that are in the database. */
  private landedBytes: number;
  /** Number of the chunk being filled. */
  private index: number;
  /** That chunk's bytes from its start, some of them maybe already in the database. */
  private pending: Buffer[];
  private pendingBytes: number;
  /** Whether a (shorter) version of the chunk being filled is in the database. */
  private indexInDb: boolean;
  /** Chunks may be written up to this byte without calling `reserve` first. */
  private reserved: number;
  private queue: Promise<unknown> = Promise.resolve();

  /**
   * @param start offset of the first byte to write
   * @param head bytes of the chunk holding `start` that lie before it (already in the database)
   * @param opts.reserved bytes the files document already allows chunks up to
   * @param opts.reserve records (durably) that chunks may exist up to at least the given byte;
   *   the writer asks for `reserveAhead` bytes more than it needs, to ask seldom
   */
  constructor(
    private readonly chunks: Collection<ChunkDoc>,
    private readonly id: string,
    start: number,
    head: Buffer,
    private readonly opts: { reserved: number; reserve: (upTo: number) => Promise<void>; reserveAhead?: number },
  ) {
    if (head.length !== start % CHUNK_BYTES) throw new RangeError(`A head of ${head.length} bytes does not fit offset ${start}`);
    this.landedBytes = start;
    this.index = Math.floor(start / CHUNK_BYTES);
    this.pending = head.length > 0 ? [head] : [];
    this.pendingBytes = head.length;
    this.indexInDb = head.length > 0;
    this.reserved = opts.reserved;
  }

  /** Bytes from 0 that are in the database once the operations queued so far are done. */
  get landed(): number {
    return this.landedBytes;
  }

  /** Takes `bytes`; resolves once every full chunk they complete is in the database. */
  push(bytes: Buffer): Promise<void> {
    return this.serial(async () => {
      this.pending.push(bytes);
      this.pendingBytes += bytes.length;
      if (this.pendingBytes < CHUNK_BYTES) return;
      const all = Buffer.concat(this.pending, this.pendingBytes);
      let at = 0;
      const full: ChunkDoc[] = [];
      for (; all.length - at >= CHUNK_BYTES; at += CHUNK_BYTES) full.push(this.doc(this.index + full.length, all.subarray(at, at + CHUNK_BYTES)));
      const rest = all.subarray(at);
      await this.put(full, this.indexInDb);
      this.index += full.length;
      this.indexInDb = false;
      this.pending = rest.length > 0 ? [rest] : [];
      this.pendingBytes = rest.length;
      this.landedBytes = this.index * CHUNK_BYTES;
    });
  }

  /** Puts the partial chunk being filled into the database too. */
  flush(): Promise<void> {
    return this.serial(async () => {
      const inDb = this.landedBytes - this.index * CHUNK_BYTES;
      if (this.pendingBytes === inDb) return;
      await this.put([this.doc(this.index, Buffer.concat(this.pending, this.pendingBytes))], this.indexInDb);
      this.indexInDb = true;
      this.landedBytes = this.index * CHUNK_BYTES + this.pendingBytes;
    });
  }

  /** Resolves once no operation is running, whether the last ones failed or not. */
  async settled(): Promise<void> {
    await this.queue.catch(() => undefined);
  }

  /** A sink for a pipeline: backpressure is the wait for each chunk's write. */
  sink(): Writable {
    return new Writable({
      highWaterMark: CHUNK_BYTES,
      write: (chunk: Buffer, _encoding, callback) => {
        this.push(chunk).then(() => callback(), callback);
      },
      final: (callback) => {
        this.flush().then(() => callback(), callback);
      },
    });
  }

  private doc(n: number, data: Buffer): ChunkDoc {
    return { _id: chunkKey(this.id, n), f: this.id, n, data };
  }

  private serial<T>(op: () => Promise<T>): Promise<T> {
    const run = this.queue.catch(() => undefined).then(op);
    this.queue = run;
    return run;
  }

  /**
   * Writes `docs` (consecutive chunks); the first replaces its shorter version when
   * `firstExists`. A chunk found present anyway (a leftover that should have been dropped) is
   * replaced rather than failing the write.
   */
  private async put(docs: ChunkDoc[], firstExists: boolean): Promise<void> {
    const end = (this.index + docs.length) * CHUNK_BYTES;
    if (end > this.reserved) {
      const upTo = end + (this.opts.reserveAhead ?? 0);
      await this.opts.reserve(upTo);
      this.reserved = upTo;
    }
    let fresh = docs;
    if (firstExists && docs.length > 0) {
      await this.chunks.replaceOne({ _id: docs[0]!._id }, docs[0]!, { upsert: true });
      fresh = docs.slice(1);
    }
    if (fresh.length === 0) return;
    try {
      await this.chunks.insertMany(fresh, { ordered: true });
    } catch (e) {
      if (!isDuplicateKey(e)) throw e;
      for (const doc of fresh) await this.chunks.replaceOne({ _id: doc._id }, doc, { upsert: true });
    }
  }
}
