/**
 * BlobStore in a MongoDB database, so that the processes of a scaled-out CSS share object data
 * and upload staging areas without a shared volume (issue #14; docs/adr/0018-mongo-blobs.md).
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
import { ByteMeter, CHUNK_BYTES, ChunkWriter, bytesOf, chunkKey, deleteChunksDown, topChunk, type ChunkDoc } from './mongo-blob-chunks.js';

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
  /** A write() with no chunk landed for this long is taken for crashed and swept (default 24 h). */
  staleWriteMs?: number;
}

const DEFAULT_DELETED_GRACE_MS = 15 * 60_000;
const DEFAULT_STALE_WRITE_MS = 24 * 3600_000;
/** A write refreshes its document at most this often, so the sweep can tell it is alive. */
const TOUCH_EVERY_MS = 60_000;
/** Sweeps started by deletes and writes, at most one per this long per process. */
const SWEEP_EVERY_MS = 60_000;
/** Chunk reads a stream keeps in flight ahead of its reader (about 1 MiB). */
const READ_AHEAD = 4;

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
    await files.insertOne({ _id: id, state: 'writing', size: 0, sha256: null, at: new Date() });
    let touched = Date.now();
    const writer = new ChunkWriter(this.chunks(), id, 0, EMPTY, async () => {
      if (Date.now() - touched < TOUCH_EVERY_MS) return;
      touched = Date.now();
      await files.updateOne({ _id: id, state: 'writing' }, { $set: { at: new Date(touched) } });
    });
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
      await this.discard(id, 'writing', writer.landed).catch(() => undefined);
      throw e;
    }
  }

  /** Reads only the chunks that hold `[start, end]`, a few ahead of the reader. */
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
    await this.files().insertOne({ _id: id, state: 'staging', size: 0, sha256: null, at: new Date() });
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
    const head = await this.openAt(stagingId, offset);
    const writer = new ChunkWriter(this.chunks(), stagingId, offset, head);
    const meter = new ByteMeter({
      hash: false,
      tooMany: (n) => (n > length ? new BadRequestError(`Received more than the expected ${length} bytes of the chunk at offset ${offset}`) : null),
    });
    try {
      await pipeline(source, meter, writer.sink(), ...(opts.signal ? [{ signal: opts.signal }] : []));
      if (meter.bytes !== length) throw new BadRequestError(`Received ${meter.bytes} bytes of the chunk at offset ${offset}, expected ${length}`);
      await this.recordStagingSize(stagingId, offset + length);
    } catch (e) {
      await writer.settled();
      await this.cutAt(stagingId, offset).catch(() => undefined);
      throw e;
    }
  }

  /**
   * A run of appends from `offset`. Full chunks land as the stream fills them; sync() also
   * writes the partial chunk and records the offset reached, so another instance can go on
   * from there.
   */
  async appendStaging(stagingId: string, offset: number): Promise<StagingAppender> {
    const head = await this.openAt(stagingId, offset);
    const writer = new ChunkWriter(this.chunks(), stagingId, offset, head);
    const stream = writer.sink();
    let closing: Promise<void> | null = null;
    return {
      stream,
      sync: async () => {
        await writer.flush();
        const upTo = writer.landed;
        await this.recordStagingSize(stagingId, upTo);
        return upTo;
      },
      // What reached the database stays, as bytes written to a file do.
      close: () =>
        (closing ??= (async () => {
          if (!stream.destroyed && !stream.writableFinished) stream.destroy();
          await writer.settled();
          await this.recordStagingSize(stagingId, writer.landed).catch(() => undefined);
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
    const size = await this.stagingSize(stagingId);
    let sha256 = opts.sha256;
    if (sha256 === undefined) {
      const meter = new ByteMeter({ hash: true });
      await pipeline(this.openStaging(stagingId), meter, new Writable({ write: (_chunk, _enc, done) => done() }));
      sha256 = meter.sha256();
    }
    await this.cutAt(stagingId, size);
    const done = await this.files().updateOne({ _id: stagingId, state: 'staging' }, { $set: { state: 'blob', sha256, at: new Date() } });
    if (done.matchedCount !== 1) throw new NotFoundError(`Staging area ${stagingId} not found`);
    this.sweepSoon();
    return { blobId: stagingId, size, sha256 };
  }

  /** Removes the area and its chunks now (nobody reads an area being abandoned). */
  async deleteStaging(stagingId: string): Promise<void> {
    const doc = await this.files().findOne({ _id: stagingId, state: 'staging' });
    if (doc === null) return;
    await this.discard(stagingId, 'staging', Number(doc.size));
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
        { projection: { _id: 1, state: 1, size: 1 } },
      )
      .toArray();
    for (const doc of due) {
      // A silent write is marked first: should its process wake up, its final update then fails.
      if (doc.state === 'writing') await this.discard(doc._id, 'writing', 0);
      else await this.purge(doc._id, Number(doc.size));
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
  private async discard(id: string, from: FileState, knownBytes: number): Promise<void> {
    const marked = await this.files().updateOne({ _id: id, state: from }, { $set: { state: 'deleted', at: new Date(0) } });
    if (marked.matchedCount === 1) await this.purge(id, knownBytes);
  }

  /** Deletes the chunks of `id` (at least those of its first `knownBytes`), then its document. */
  private async purge(id: string, knownBytes: number): Promise<void> {
    const chunks = this.chunks();
    const top = await topChunk(chunks, id, lastChunkOf(knownBytes) + 1);
    await deleteChunksDown(chunks, id, Math.max(top, lastChunkOf(knownBytes)), 0);
    await this.files().deleteOne({ _id: id, state: 'deleted' });
  }

  /** The durable offset of a staging area. @throws NotFoundError when there is none. */
  private async stagingSize(stagingId: string): Promise<number> {
    const doc = await this.files().findOne({ _id: stagingId, state: 'staging' }, { projection: { size: 1 } });
    if (doc === null) throw new NotFoundError(`Staging area ${stagingId} not found`);
    return Number(doc.size);
  }

  private async recordStagingSize(stagingId: string, size: number): Promise<void> {
    const done = await this.files().updateOne({ _id: stagingId, state: 'staging' }, { $set: { size, at: new Date() } });
    if (done.matchedCount !== 1) throw new NotFoundError(`Staging area ${stagingId} not found`);
  }

  /**
   * Checks that the area holds `offset` bytes, drops what lies past it, and returns the bytes of
   * the chunk holding `offset` that come before it (the head a ChunkWriter starts from).
   * @throws NotFoundError when the area does not exist
   * @throws BadRequestError when it holds fewer than `offset` bytes
   */
  private async openAt(stagingId: string, offset: number): Promise<Buffer> {
    const held = await this.stagingSize(stagingId);
    if (held < offset) throw new BadRequestError(`Cannot write at offset ${offset}: only ${held} bytes have been received`);
    return this.cutAt(stagingId, offset);
  }

  /**
   * Removes every byte at or past `offset` from the chunks of `id`: whole chunks above it from
   * the top down, and the tail of the chunk holding it, which is rewritten shorter. The usual
   * case, nothing past the offset, costs one lookup (and a read of the partial chunk, returned).
   */
  private async cutAt(id: string, offset: number): Promise<Buffer> {
    const chunks = this.chunks();
    const n = Math.floor(offset / CHUNK_BYTES);
    const keep = offset % CHUNK_BYTES;
    const top = await topChunk(chunks, id, n + 1);
    await deleteChunksDown(chunks, id, top, n + 1);
    if (keep === 0) {
      await chunks.deleteOne({ _id: chunkKey(id, n) });
      return EMPTY;
    }
    const doc = await chunks.findOne({ _id: chunkKey(id, n) });
    const data = doc === null ? EMPTY : bytesOf(doc.data);
    if (data.length < keep) throw new Error(`Chunk ${n} of ${id} holds ${data.length} bytes, fewer than the ${keep} its size says`);
    const head = Buffer.from(data.subarray(0, keep));
    if (data.length > keep) await chunks.replaceOne({ _id: chunkKey(id, n) }, { data: head });
    return head;
  }

  /**
   * Streams `[start, end]` of `id` (in `state`) by chunk lookups, READ_AHEAD in flight. A missing
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
        const fetch = (n: number): Promise<Buffer> => {
          const p = chunks.findOne({ _id: chunkKey(id, n) }).then((d) => {
            if (d === null) throw new Error(`Chunk ${n} of ${id} is missing`);
            return bytesOf(d.data);
          });
          // A reader that stops early leaves fetches behind: their failure is nobody's.
          p.catch(() => undefined);
          return p;
        };
        const ahead: Promise<Buffer>[] = [];
        let next = first;
        for (; next <= lastN && ahead.length < READ_AHEAD; next++) ahead.push(fetch(next));
        for (let n = first; n <= lastN; n++) {
          const data = await ahead.shift()!;
          if (next <= lastN) ahead.push(fetch(next++));
          const from = n === first ? start - n * CHUNK_BYTES : 0;
          const to = n === lastN ? last - n * CHUNK_BYTES + 1 : CHUNK_BYTES;
          if (data.length < to) throw new Error(`Chunk ${n} of ${id} holds ${data.length} bytes, fewer than ${to}`);
          yield data.subarray(from, to);
        }
      })(),
      { objectMode: false },
    );
    return signal !== undefined ? addAbortSignal(signal, stream) : stream;
  }
}
