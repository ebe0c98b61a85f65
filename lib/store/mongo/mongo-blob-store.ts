/**
 * BlobStore in a MongoDB database, so that the processes of a scaled-out CSS share object data
 * and upload staging areas without a shared volume (issue #14; docs/adr/0020-mongo-blobs.md).
 *
 * Two collections: `<prefix>_files` holds one small document per blob or staging area, its
 * `state` saying what it is, and `<prefix>_chunks` its bytes (mongo-blob-chunks.ts). There are no
 * multi-document transactions (FerretDB has none), so visibility hangs on one document: a blob
 * is listed and readable only once its files document says `blob`, written after every chunk.
 * A write that fails or crashes leaves a `writing` or `deleted` document, whose chunks a sweep
 * removes; never a visible blob with missing bytes.
 *
 * A deleted blob keeps its chunks for `deletedGraceMs`, so that readers that already started
 * (in any process) can finish, as readers of an unlinked file do.
 */
import { randomUUID } from 'node:crypto';
import { Readable, Writable, addAbortSignal } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Collection, Db, IndexDescription } from 'mongodb';
import { BadRequestError, NotFoundError } from '../../model/index.js';
import type { BlobReadOptions, BlobStore, BlobWriteOptions, BlobWriteResult, StagingAppender, StagingCommitOptions } from '../types.js';
import { checkEndedSize, overLimit } from '../write-limits.js';
import { ByteMeter } from '../byte-meter.js';
import { CHUNK_BYTES, CHUNK_INDEX, ChunkWriter, bytesOf, chunkKey, deleteChunks, type ChunkDoc } from './mongo-blob-chunks.js';

/**
 * `writing`: a write() in progress (or crashed); `staging`: an upload's staging area; `blob`: a
 * complete blob; `deleted`: chunks waiting to be removed.
 */
type FileState = 'writing' | 'staging' | 'blob' | 'deleted';

interface FileDoc {
  _id: string;
  state: FileState;
  /** Bytes of a blob; of a staging area, the durable offset its last write or sync reached. */
  size: number;
  /**
   * No chunk holds bytes at or past this offset: raised before chunks are written past it, so
   * that the chunks a crash left can be removed without a search.
   */
  extent: number;
  sha256: string | null;
  /** Last sign of life of a write; when a blob was deleted. */
  at: Date;
}

export interface MongoBlobStoreOptions {
  /** The database, or how to get it (e.g. `() => mongoStore.database()`, following its reopen). */
  db: Db | (() => Db);
  /** Collection names start with this (default `blob`: `blob_files`, `blob_chunks`). */
  prefix?: string;
  /** How long a deleted blob's chunks stay for readers already reading it (default 15 min). */
  deletedGraceMs?: number;
  /** A write() silent this long (it reserves its extent every 8 MiB) is taken for crashed and swept (default 24 h). */
  staleWriteMs?: number;
}

const DEFAULT_DELETED_GRACE_MS = 15 * 60_000;
const DEFAULT_STALE_WRITE_MS = 24 * 3600_000;
/**
 * How far ahead a write or append reserves its extent: one update of its document per this
 * many bytes (which also tells the sweep that a write is alive).
 */
const RESERVE_AHEAD = 8 * 1024 * 1024;
/** Sweeps started by deletes and writes, at most one per this long per process. */
const SWEEP_EVERY_MS = 60_000;
/** Chunks per batch of a read's cursor (1 MiB): what a reader holds beside its stream's buffer. */
const READ_BATCH = 4;
/** Chunks a reader holds that came ahead of their turn, before it fetches the awaited one alone. */
const READ_REORDER = 8;
/**
 * Ranges of up to this many chunks are read by one `_id` lookup per chunk, longer ones by one
 * cursor. Both are index reads on MongoDB; on FerretDB 1.24 (SQLite) every query scans the
 * collection, but a lookup by `_id` filters inside SQLite (256 MiB collection: 0.9 s) where a
 * cursor on (f, n) decodes every chunk of the blob (14 s), so short ranges go by `_id`.
 */
const POINT_READS = 8;

const EMPTY = Buffer.alloc(0);
const lastChunkOf = (size: number): number => Math.ceil(size / CHUNK_BYTES) - 1;

/**
 * Creates the indexes a collection lacks, by name. Only the missing ones: FerretDB 1.24 drops
 * the connection when asked to create an index that exists.
 */
async function ensureIndexes<T extends object>(col: Collection<T>, specs: IndexDescription[]): Promise<void> {
  const listed: { name?: unknown }[] = await col.listIndexes().toArray().catch(() => []);
  const existing = new Set(listed.map((i) => String(i.name)));
  const missing = specs.filter((s) => !existing.has(String(s.name)));
  if (missing.length > 0) await col.createIndexes(missing);
}

export class MongoBlobStore implements BlobStore {
  private readonly db: () => Db;
  private readonly prefix: string;
  private readonly deletedGraceMs: number;
  private readonly staleWriteMs: number;
  private lastSweep = 0;
  private sweeping: Promise<void> | null = null;

  constructor(opts: MongoBlobStoreOptions) {
    const { db } = opts;
    this.db = typeof db === 'function' ? db : () => db;
    this.prefix = opts.prefix ?? 'blob';
    this.deletedGraceMs = opts.deletedGraceMs ?? DEFAULT_DELETED_GRACE_MS;
    this.staleWriteMs = opts.staleWriteMs ?? DEFAULT_STALE_WRITE_MS;
  }

  /** Creates the index of the listings and sweeps what deletes and crashed writes left. */
  async init(): Promise<void> {
    await ensureIndexes(this.files(), [{ key: { state: 1 }, name: 'state' }]);
    await ensureIndexes(this.chunks(), [{ ...CHUNK_INDEX, key: { ...CHUNK_INDEX.key } }]);
    await this.sweep();
  }

  /**
   * Streams `source` into chunks under a `writing` document, then turns it into a `blob`. On any
   * failure the chunks and the document are removed before the promise rejects. Never calls
   * `opts.onGrowing` (the port allows it): a download is served once the blob is complete.
   */
  async write(source: Readable, opts: BlobWriteOptions = {}): Promise<BlobWriteResult> {
    opts.signal?.throwIfAborted();
    const id = randomUUID();
    const files = this.files();
    await files.insertOne({ _id: id, state: 'writing', size: 0, extent: 0, sha256: null, at: new Date() });
    const writer = new ChunkWriter(this.chunks(), id, 0, EMPTY, this.reserver(id, 'writing', 0, RESERVE_AHEAD));
    const meter = new ByteMeter({ hash: true, tooMany: (n) => overLimit(n, opts) });
    try {
      await pipeline(source, meter, writer.sink(), ...(opts.signal ? [{ signal: opts.signal }] : []));
      checkEndedSize(meter.bytes, opts);
      const sha256 = meter.sha256();
      const done = await files.updateOne({ _id: id, state: 'writing' }, { $set: { state: 'blob', size: meter.bytes, sha256, at: new Date() } });
      if (done.matchedCount !== 1) throw new Error(`Blob write ${id} was swept as abandoned before it completed`);
      this.sweepSoon();
      return { blobId: id, size: meter.bytes, sha256 };
    } catch (e) {
      await writer.settled();
      await this.discard(id, 'writing').catch(() => undefined);
      throw e;
    }
  }

  /** Reads only the chunks that hold `[start, end]`, a few at a time. */
  read(blobId: string, opts: BlobReadOptions = {}): Readable {
    return this.readRange(blobId, 'blob', `Blob ${blobId} not found`, opts);
  }

  async size(blobId: string): Promise<number> {
    const doc = await this.files().findOne({ _id: blobId, state: 'blob' }, { projection: { size: 1 } });
    if (doc === null) throw new NotFoundError(`Blob ${blobId} not found`);
    return Number(doc.size);
  }

  /**
   * Hides the blob at once; its chunks go after `deletedGraceMs`, so readers already reading
   * finish. A missing blob is not an error.
   */
  async delete(blobId: string): Promise<void> {
    await this.files().updateOne({ _id: blobId, state: 'blob' }, { $set: { state: 'deleted', at: new Date() } });
    this.sweepSoon();
  }

  async list(): Promise<string[]> {
    return this.idsIn('blob');
  }

  async listStaging(): Promise<string[]> {
    return this.idsIn('staging');
  }

  async createStaging(): Promise<string> {
    const id = randomUUID();
    await this.files().insertOne({ _id: id, state: 'staging', size: 0, extent: 0, sha256: null, at: new Date() });
    return id;
  }

  /**
   * Drops what lies past `offset`, writes exactly `length` bytes there and records the new
   * durable offset. Any instance may write the next chunk: everything it needs is in the
   * database. On failure the area is cut back to `offset`, i.e. left as it was.
   * @throws NotFoundError when the staging area does not exist.
   * @throws BadRequestError when the area holds fewer than `offset` bytes, or the source brings
   *   fewer or more than `length` bytes.
   */
  async writeStaging(stagingId: string, offset: number, length: number, source: Readable, opts: { signal?: AbortSignal } = {}): Promise<void> {
    const { head, reserved } = await this.openAt(stagingId, offset);
    const writer = new ChunkWriter(this.chunks(), stagingId, offset, head, this.reserver(stagingId, 'staging', reserved, 0));
    const meter = new ByteMeter({
      hash: false,
      tooMany: (n) => (n > length ? new BadRequestError(`Received more than the expected ${length} bytes of the chunk at offset ${offset}`) : null),
    });
    try {
      await pipeline(source, meter, writer.sink(), ...(opts.signal ? [{ signal: opts.signal }] : []));
      if (meter.bytes !== length) throw new BadRequestError(`Received ${meter.bytes} bytes of the chunk at offset ${offset}, expected ${length}`);
      // Every chunk written lies below offset + length: the extent comes down to it too.
      await this.recordStagingSize(stagingId, offset + length, true);
    } catch (e) {
      await writer.settled();
      await this.cutAt(stagingId, offset, Infinity).catch(() => undefined);
      throw e;
    }
  }

  /**
   * A run of appends from `offset`. Full chunks land as the stream fills them; sync() also
   * writes the partial chunk and records the offset reached, so another instance can go on
   * from there.
   */
  async appendStaging(stagingId: string, offset: number): Promise<StagingAppender> {
    const { head, reserved } = await this.openAt(stagingId, offset);
    const writer = new ChunkWriter(this.chunks(), stagingId, offset, head, this.reserver(stagingId, 'staging', reserved, RESERVE_AHEAD));
    const stream = writer.sink();
    let closing: Promise<void> | null = null;
    return {
      stream,
      sync: async () => {
        await writer.flush();
        const upTo = writer.landed;
        await this.recordStagingSize(stagingId, upTo, false);
        return upTo;
      },
      // What reached the database stays, as bytes written to a file do.
      close: () =>
        (closing ??= (async () => {
          if (!stream.destroyed && !stream.writableFinished) stream.destroy();
          await writer.settled();
          await this.recordStagingSize(stagingId, writer.landed, stream.writableFinished && !stream.errored).catch(() => undefined);
        })()),
    };
  }

  openStaging(stagingId: string, opts: BlobReadOptions = {}): Readable {
    return this.readRange(stagingId, 'staging', `Staging area ${stagingId} not found`, opts);
  }

  /**
   * Turns the area into a blob of the same id by one update of its document, after dropping
   * any chunk bytes past its durable offset (left by a crash). Hashes the area by reading it
   * unless `opts.sha256` is given.
   */
  async commitStaging(stagingId: string, opts: StagingCommitOptions = {}): Promise<BlobWriteResult> {
    const { size, extent } = await this.staging(stagingId);
    let sha256 = opts.sha256;
    if (sha256 === undefined) {
      const meter = new ByteMeter({ hash: true });
      await pipeline(this.openStaging(stagingId), meter, new Writable({ write: (_chunk, _enc, done) => done() }));
      sha256 = meter.sha256();
    }
    if (extent > size) await this.cutAt(stagingId, size, extent);
    const done = await this.files().updateOne({ _id: stagingId, state: 'staging' }, { $set: { state: 'blob', sha256, at: new Date() } });
    if (done.matchedCount !== 1) throw new NotFoundError(`Staging area ${stagingId} not found`);
    this.sweepSoon();
    return { blobId: stagingId, size, sha256 };
  }

  /** Removes the area and its chunks now (nobody reads an area being abandoned). */
  async deleteStaging(stagingId: string): Promise<void> {
    await this.discard(stagingId, 'staging');
  }

  /**
   * Removes the chunks of blobs deleted more than `deletedGraceMs` ago and of writes silent for
   * `staleWriteMs` (a process that crashed mid-write). Runs at init and, at most once a minute,
   * after deletes and writes; safe to run from several processes at once.
   */
  async sweep(): Promise<void> {
    const now = Date.now();
    const due = await this.files()
      .find(
        { $or: [{ state: 'deleted', at: { $lt: new Date(now - this.deletedGraceMs) } }, { state: 'writing', at: { $lt: new Date(now - this.staleWriteMs) } }] },
        { projection: { _id: 1, state: 1, size: 1, extent: 1 } },
      )
      .toArray();
    for (const doc of due) {
      // A silent write is marked first: should its process wake up, its final update then fails.
      if (doc.state === 'writing') await this.discard(doc._id, 'writing');
      else await this.purge(doc._id, Math.max(Number(doc.size), Number(doc.extent ?? 0)));
    }
  }

  private files(): Collection<FileDoc> {
    return this.db().collection<FileDoc>(`${this.prefix}_files`);
  }

  private chunks(): Collection<ChunkDoc> {
    return this.db().collection<ChunkDoc>(`${this.prefix}_chunks`);
  }

  private async idsIn(state: FileState): Promise<string[]> {
    const docs = await this.files().find({ state }, { projection: { _id: 1 } }).toArray();
    return docs.map((d) => d._id);
  }

  /** Starts a sweep in the background unless one ran lately; its failure waits for the next. */
  private sweepSoon(): void {
    if (this.sweeping !== null || Date.now() - this.lastSweep < SWEEP_EVERY_MS) return;
    this.lastSweep = Date.now();
    this.sweeping = this.sweep()
      .catch(() => undefined)
      .finally(() => (this.sweeping = null));
  }

  /**
   * Marks `id` deleted if it still is in state `from` (so a crash midway leaves it to the sweep)
   * and removes it now.
   */
  private async discard(id: string, from: FileState): Promise<void> {
    const doc = await this.files().findOneAndUpdate({ _id: id, state: from }, { $set: { state: 'deleted', at: new Date(0) } });
    if (doc !== null) await this.purge(id, Math.max(Number(doc.size), Number(doc.extent)));
  }

  /** Deletes the chunks of `id` (those that may hold its first `extent` bytes), then its document. */
  private async purge(id: string, extent: number): Promise<void> {
    await deleteChunks(this.chunks(), id, 0, lastChunkOf(extent));
    await this.files().deleteOne({ _id: id, state: 'deleted' });
  }

  /** How a ChunkWriter on `id` raises its extent (in state `state`). */
  private reserver(id: string, state: FileState, reserved: number, reserveAhead: number): ConstructorParameters<typeof ChunkWriter>[4] {
    return {
      reserved,
      reserveAhead,
      reserve: async (upTo) => {
        const done = await this.files().updateOne({ _id: id, state }, { $max: { extent: upTo }, $set: { at: new Date() } });
        if (done.matchedCount !== 1) throw new NotFoundError(state === 'staging' ? `Staging area ${id} not found` : `Blob write ${id} was swept as abandoned`);
      },
    };
  }

  /** @throws NotFoundError when there is no staging area `stagingId` */
  private async staging(stagingId: string): Promise<{ size: number; extent: number }> {
    const doc = await this.files().findOne({ _id: stagingId, state: 'staging' }, { projection: { size: 1, extent: 1 } });
    if (doc === null) throw new NotFoundError(`Staging area ${stagingId} not found`);
    return { size: Number(doc.size), extent: Number(doc.extent) };
  }

  /** Records the durable offset; `exact`: no chunk holds bytes past it either (the extent). */
  private async recordStagingSize(stagingId: string, size: number, exact: boolean): Promise<void> {
    const done = await this.files().updateOne({ _id: stagingId, state: 'staging' }, { $set: { size, ...(exact ? { extent: size } : {}), at: new Date() } });
    if (done.matchedCount !== 1) throw new NotFoundError(`Staging area ${stagingId} not found`);
  }

  /**
   * Checks that the area holds `offset` bytes, drops what lies past it, and returns the bytes of
   * the chunk holding `offset` that come before it (the head a ChunkWriter starts from) and the
   * extent the area has reserved. With nothing past the offset (the usual case) and the offset
   * on a chunk boundary, no chunk is read.
   * @throws NotFoundError when the area does not exist
   * @throws BadRequestError when it holds fewer than `offset` bytes
   */
  private async openAt(stagingId: string, offset: number): Promise<{ head: Buffer; reserved: number }> {
    const { size, extent } = await this.staging(stagingId);
    if (size < offset) throw new BadRequestError(`Cannot write at offset ${offset}: only ${size} bytes have been received`);
    if (extent > offset) return { head: await this.cutAt(stagingId, offset, extent), reserved: offset };
    return { head: offset % CHUNK_BYTES === 0 ? EMPTY : await this.headAt(stagingId, offset), reserved: extent };
  }

  /** The bytes of the chunk holding `offset` that lie before it. */
  private async headAt(id: string, offset: number): Promise<Buffer> {
    const n = Math.floor(offset / CHUNK_BYTES);
    const keep = offset % CHUNK_BYTES;
    const doc = await this.chunks().findOne({ _id: chunkKey(id, n) });
    const data = doc === null ? EMPTY : bytesOf(doc.data);
    if (data.length < keep) throw new Error(`Chunk ${n} of ${id} holds ${data.length} bytes, fewer than the ${keep} its size says`);
    return data.subarray(0, keep);
  }

  /**
   * Removes every byte at or past `offset` from the chunks of `id` that may hold bytes up to
   * `extent` (Infinity: the document's): whole chunks past it, and the tail of the chunk holding
   * it, rewritten shorter; then lowers the extent to `offset`. Returns the head at `offset`.
   */
  private async cutAt(id: string, offset: number, extent: number): Promise<Buffer> {
    const chunks = this.chunks();
    const upTo = extent === Infinity ? Number((await this.files().findOne({ _id: id }, { projection: { extent: 1 } }))?.extent ?? 0) : extent;
    const n = Math.floor(offset / CHUNK_BYTES);
    const keep = offset % CHUNK_BYTES;
    await deleteChunks(chunks, id, keep === 0 ? n : n + 1, lastChunkOf(upTo));
    let head = EMPTY;
    if (keep > 0) {
      const doc = await chunks.findOne({ _id: chunkKey(id, n) });
      const data = doc === null ? EMPTY : bytesOf(doc.data);
      if (data.length < keep) throw new Error(`Chunk ${n} of ${id} holds ${data.length} bytes, fewer than the ${keep} its size says`);
      head = Buffer.from(data.subarray(0, keep));
      if (data.length > keep) await chunks.replaceOne({ _id: chunkKey(id, n) }, { f: id, n, data: head });
    }
    await this.files().updateOne({ _id: id }, { $set: { extent: offset } });
    return head;
  }

  /**
   * Streams `[start, end]` of `id` (in `state`) through one cursor over the chunks it needs. A missing
   * document is `notFound` on the stream; an inverted range throws at once, as a file stream does.
   */
  private readRange(id: string, state: FileState, notFound: string, opts: BlobReadOptions): Readable {
    const { start = 0, end, signal } = opts;
    if (end !== undefined && start > end) throw new RangeError(`The range start ${start} is after its end ${end}`);
    const files = this.files();
    const chunks = this.chunks();
    const stream = Readable.from(
      (async function* () {
        const doc = await files.findOne({ _id: id }, { projection: { state: 1, size: 1 } });
        if (doc === null || doc.state !== state) throw new NotFoundError(notFound);
        const last = Math.min(end ?? Infinity, Number(doc.size) - 1);
        if (start > last) return;
        const first = Math.floor(start / CHUNK_BYTES);
        const lastN = Math.floor(last / CHUNK_BYTES);
        let next = first;
        const early = new Map<number, Buffer>();
        const cut = (n: number, data: Buffer): Buffer => {
          const stop = n === lastN ? last - n * CHUNK_BYTES + 1 : CHUNK_BYTES;
          if (data.length < stop) throw new Error(`Chunk ${n} of ${id} holds ${data.length} bytes, fewer than ${stop}`);
          return data.subarray(n === first ? start - n * CHUNK_BYTES : 0, stop);
        };
        /** The chunks from `next` on that already came. */
        const inTurn = function* (): Generator<Buffer> {
          for (let data = early.get(next); data !== undefined; data = early.get(next)) {
            early.delete(next);
            yield cut(next, data);
            next++;
          }
        };
        const byId = async (n: number): Promise<Buffer> => {
          const doc = await chunks.findOne({ _id: chunkKey(id, n) });
          if (doc === null) throw new Error(`Chunk ${n} of ${id} is missing`);
          return bytesOf(doc.data);
        };
        if (lastN - first < POINT_READS) {
          for (; next <= lastN; next++) yield cut(next, await byId(next));
          return;
        }
        // One query for the whole range; the server sends chunks in index (MongoDB) or insertion
        // (FerretDB) order, which is chunk order. The query names no sort: FerretDB would sort
        // the whole range in its memory. A chunk out of turn waits in `early`; too many of them,
        // and the awaited chunk is fetched by its _id.
        const cursor = chunks.find({ f: id, n: { $gte: first, $lte: lastN } }, { batchSize: READ_BATCH });
        try {
          for await (const doc of cursor) {
            const n = Number(doc.n);
            if (n < next || early.has(n)) continue;
            early.set(n, bytesOf(doc.data));
            yield* inTurn();
            while (early.size > READ_REORDER) {
              yield cut(next, await byId(next));
              next++;
              yield* inTurn();
            }
          }
        } finally {
          await cursor.close();
        }
        if (next <= lastN) throw new Error(`Chunk ${next} of ${id} is missing`);
      })(),
      { objectMode: false },
    );
    return signal !== undefined ? addAbortSignal(signal, stream) : stream;
  }
}
