/**
 * The chunk layer under MongoBlobStore (docs/adr/0018-mongo-blobs.md): a blob or staging area's
 * bytes cut into fixed-size chunk documents whose `_id` is `<id>/<n>`, chunk n holding bytes
 * [n * CHUNK_BYTES, (n + 1) * CHUNK_BYTES). Every chunk operation is a lookup, write or delete of
 * one `_id`: the one filter every MongoDB-wire server serves from its primary key (FerretDB
 * 1.24 pushes `_id` equality down to SQL, not ranges or `$in` on other fields).
 *
 * Chunks of one id are written in order and only the last one may be short, so the chunks
 * present are always 0..k with no hole: finding the end is a walk upward until a miss.
 */
import { createHash, type Hash } from 'node:crypto';
import { Transform, Writable, type TransformCallback } from 'node:stream';
import type { Binary, Collection } from 'mongodb';
import { isDuplicateKey } from './mongo-cas.js';

/** GridFS's default: a chunk plus its document stays far below the 16 MiB document limit. */
export const CHUNK_BYTES = 255 * 1024;

export interface ChunkDoc {
  _id: string;
  data: Binary | Buffer;
}

export const chunkKey = (id: string, n: number): string => `${id}/${n}`;

/** The bytes of a chunk as read back, without a copy. */
export function bytesOf(data: Binary | Buffer): Buffer {
  if (Buffer.isBuffer(data)) return data;
  return Buffer.from(data.buffer.buffer, data.buffer.byteOffset, data.length());
}

/**
 * Passes bytes through while counting (and optionally hashing) them; fails the stream as soon as
 * `tooMany` says the count is over a limit, so an over-long source is never read to its end.
 */
export class ByteMeter extends Transform {
  bytes = 0;
  private readonly hash: Hash | null;
  private readonly tooMany: (bytes: number) => Error | null;

  constructor(opts: { hash: boolean; tooMany?: (bytes: number) => Error | null }) {
    super();
    this.hash = opts.hash ? createHash('sha256') : null;
    this.tooMany = opts.tooMany ?? (() => null);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    const err = this.tooMany(this.bytes);
    if (err !== null) {
      callback(err);
      return;
    }
    this.hash?.update(chunk);
    callback(null, chunk);
  }

  /** Lower-case hex SHA-256 of what went through; call once, after the stream finished. */
  sha256(): string {
    if (this.hash === null) throw new TypeError('ByteMeter created without hashing');
    return this.hash.digest('hex');
  }
}

/** Whether chunk `n` of `id` exists, reading only its `_id`. */
export async function hasChunk(chunks: Collection<ChunkDoc>, id: string, n: number): Promise<boolean> {
  return (await chunks.findOne({ _id: chunkKey(id, n) }, { projection: { _id: 1 } })) !== null;
}

/** The highest chunk number present at or above `from - 1`, walking up from a known one. */
export async function topChunk(chunks: Collection<ChunkDoc>, id: string, from: number): Promise<number> {
  let top = from - 1;
  while (await hasChunk(chunks, id, top + 1)) top++;
  return top;
}

/**
 * Deletes chunks `top` down to `from`, highest first: a crash midway leaves chunks 0..k without
 * a hole, so the next walk upward still finds all of them.
 */
export async function deleteChunksDown(chunks: Collection<ChunkDoc>, id: string, top: number, from: number): Promise<void> {
  for (let n = top; n >= from; n--) await chunks.deleteOne({ _id: chunkKey(id, n) });
}

/**
 * Writes bytes from an offset into chunk documents, one operation at a time in order (so no
 * hole can appear). The bytes of the current chunk stay in memory until it is full: a partial
 * chunk is rewritten whole when it grows. Memory: at most one chunk plus what one push brings.
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
  private queue: Promise<unknown> = Promise.resolve();

  /**
   * @param start offset of the first byte to write
   * @param head bytes of the chunk holding `start` that lie before it (already in the database)
   * @param onChunk told after each chunk landed (e.g. to keep a write's document fresh)
   */
  constructor(
    private readonly chunks: Collection<ChunkDoc>,
    private readonly id: string,
    start: number,
    head: Buffer,
    private readonly onChunk: () => Promise<void> = () => Promise.resolve(),
  ) {
    if (head.length !== start % CHUNK_BYTES) throw new RangeError(`A head of ${head.length} bytes does not fit offset ${start}`);
    this.landedBytes = start;
    this.index = Math.floor(start / CHUNK_BYTES);
    this.pending = head.length > 0 ? [head] : [];
    this.pendingBytes = head.length;
    this.indexInDb = head.length > 0;
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
      for (; all.length - at >= CHUNK_BYTES; at += CHUNK_BYTES) full.push({ _id: chunkKey(this.id, this.index + full.length), data: all.subarray(at, at + CHUNK_BYTES) });
      const rest = all.subarray(at);
      await this.put(full, this.indexInDb);
      this.index += full.length;
      this.indexInDb = false;
      this.pending = rest.length > 0 ? [rest] : [];
      this.pendingBytes = rest.length;
      this.landedBytes = this.index * CHUNK_BYTES;
      await this.onChunk();
    });
  }

  /** Puts the partial chunk being filled into the database too. */
  flush(): Promise<void> {
    return this.serial(async () => {
      const inDb = this.landedBytes - this.index * CHUNK_BYTES;
      if (this.pendingBytes === inDb) return;
      await this.put([{ _id: chunkKey(this.id, this.index), data: Buffer.concat(this.pending, this.pendingBytes) }], this.indexInDb);
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

  private serial<T>(op: () => Promise<T>): Promise<T> {
    const run = this.queue.catch(() => undefined).then(op);
    this.queue = run;
    return run;
  }

  /**
   * Writes `docs` (consecutive chunks); the first replaces its shorter version when
   * `firstExists`. A chunk found present anyway (left past the end by a crash and not seen by the
   * walk that should have dropped it) is replaced rather than failing the write.
   */
  private async put(docs: ChunkDoc[], firstExists: boolean): Promise<void> {
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
