/**
 * A BlobStore that keeps small blobs in the database (a SmallBlobStore) and the rest in a
 * BlobStore of files. Most objects of a sync service are small (configuration, rules,
 * metadata-only updates with a few KiB of data): as a file each costs a create, a write, an
 * fsync, a rename and a directory fsync, and each of those is a trip through the thread pool.
 * In the database, the writes of one event-loop turn share one commit and one fsync of the WAL,
 * so a burst of small objects costs a few fsyncs instead of two per object.
 *
 * A write buffers at most `inlineLimit` bytes (64 KiB by default) before it decides: a source
 * that ends within the limit goes to the database, a longer one is streamed on into a file,
 * bytes already read first. Memory per write stays bounded by the limit, as a stream's own
 * buffers are. Staging areas (chunked uploads, resumable downloads) are always files.
 *
 * Ids of small blobs carry the `s-` prefix, so a read knows its tier without a lookup.
 */
import { createHash, randomUUID } from 'node:crypto';
import { addAbortSignal, Readable } from 'node:stream';
import { NotFoundError } from '../model/index.js';
import type {
  BlobReadOptions,
  BlobStore,
  BlobWriteOptions,
  BlobWriteResult,
  SmallBlobStore,
  StagingAppender,
  StagingCommitOptions,
} from './types.js';
import { checkEndedSize, overLimit } from './write-limits.js';

/** Blobs up to this size live in the database unless told otherwise. */
export const DEFAULT_INLINE_LIMIT = 64 * 1024;

const SMALL_PREFIX = 's-';

function isSmall(blobId: string): boolean {
  return blobId.startsWith(SMALL_PREFIX);
}

/** The bytes already taken from a source, then the rest of it, as one byte stream. */
function replay(head: Buffer[], rest: AsyncIterator<unknown>): Readable {
  return Readable.from(
    (async function* () {
      try {
        yield* head;
        for (let next = await rest.next(); next.done !== true; next = await rest.next()) yield next.value as Buffer;
      } finally {
        // When the consumer stops early (a failed write), the source is destroyed with it.
        await rest.return?.();
      }
    })(),
    { objectMode: false },
  );
}

export class TieredBlobStore implements BlobStore {
  private readonly files: BlobStore;
  private readonly small: SmallBlobStore;
  private readonly inlineLimit: number;

  /** @param opts.inlineLimit largest blob kept in `small`, bytes (default 64 KiB) */
  constructor(opts: { files: BlobStore; small: SmallBlobStore; inlineLimit?: number }) {
    this.files = opts.files;
    this.small = opts.small;
    this.inlineLimit = opts.inlineLimit ?? DEFAULT_INLINE_LIMIT;
  }

  init(): Promise<void> {
    return this.files.init();
  }

  async write(source: Readable, opts: BlobWriteOptions = {}): Promise<BlobWriteResult> {
    if (opts.expectedSize !== undefined && opts.expectedSize > this.inlineLimit) return this.files.write(source, opts);
    if (opts.signal !== undefined) {
      opts.signal.throwIfAborted();
      // Aborting destroys the source, which ends the read below with the AbortError.
      addAbortSignal(opts.signal, source);
    }
    const chunks = source[Symbol.asyncIterator]();
    const head: Buffer[] = [];
    let bytes = 0;
    try {
      for (let next = await chunks.next(); next.done !== true; next = await chunks.next()) {
        const chunk = next.value as Buffer;
        head.push(chunk);
        bytes += chunk.length;
        const refused = overLimit(bytes, opts);
        if (refused !== null) throw refused;
        if (bytes > this.inlineLimit) return await this.files.write(replay(head, chunks), opts);
      }
      checkEndedSize(bytes, opts);
    } catch (e) {
      await chunks.return?.();
      throw e;
    }
    const data = Buffer.concat(head, bytes);
    const blobId = `${SMALL_PREFIX}${randomUUID()}`;
    await this.small.put(blobId, data);
    return { blobId, size: bytes, sha256: createHash('sha256').update(data).digest('hex') };
  }

  read(blobId: string, opts: BlobReadOptions = {}): Readable {
    if (!isSmall(blobId)) return this.files.read(blobId, opts);
    const { start = 0, end, signal } = opts;
    // As a file stream does: an inverted range is the caller's bug, reported at once.
    if (end !== undefined && start > end) throw new RangeError(`The range start ${start} is after its end ${end}`);
    const small = this.small;
    const stream = Readable.from(
      (async function* () {
        const data = await small.get(blobId);
        if (data === null) throw new NotFoundError(`Blob ${blobId} not found`);
        const range = data.subarray(start, end === undefined ? undefined : end + 1);
        if (range.length > 0) yield range;
      })(),
      { objectMode: false },
    );
    return signal !== undefined ? addAbortSignal(signal, stream) : stream;
  }

  async size(blobId: string): Promise<number> {
    if (!isSmall(blobId)) return this.files.size(blobId);
    const data = await this.small.get(blobId);
    if (data === null) throw new NotFoundError(`Blob ${blobId} not found`);
    return data.length;
  }

  delete(blobId: string): Promise<void> {
    return isSmall(blobId) ? this.small.delete(blobId) : this.files.delete(blobId);
  }

  async list(): Promise<string[]> {
    return [...(await this.files.list()), ...(await this.small.list())];
  }

  listStaging(): Promise<string[]> {
    return this.files.listStaging();
  }

  createStaging(): Promise<string> {
    return this.files.createStaging();
  }

  writeStaging(stagingId: string, offset: number, length: number, source: Readable, opts?: { signal?: AbortSignal }): Promise<void> {
    return this.files.writeStaging(stagingId, offset, length, source, opts);
  }

  appendStaging(stagingId: string, offset: number): Promise<StagingAppender> {
    return this.files.appendStaging(stagingId, offset);
  }

  openStaging(stagingId: string, opts?: BlobReadOptions): Readable {
    return this.files.openStaging(stagingId, opts);
  }

  commitStaging(stagingId: string, opts?: StagingCommitOptions): Promise<BlobWriteResult> {
    return this.files.commitStaging(stagingId, opts);
  }

  deleteStaging(stagingId: string): Promise<void> {
    return this.files.deleteStaging(stagingId);
  }
}
