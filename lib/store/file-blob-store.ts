/**
 * BlobStore on a local directory. Every byte goes through streams (never a whole object in
 * memory) and every blob appears by an atomic rename of a fully written and fsynced file.
 *
 * Layout: `<root>/blobs/<id>` complete blobs, `<root>/staging/<id>` chunked uploads in progress,
 * `<root>/tmp/` writes in progress (emptied at init: anything there is a crashed write).
 */
import { randomUUID } from 'node:crypto';
import fs, { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BadRequestError, NotFoundError } from '../model/index.js';
import type { BlobReadOptions, BlobStore, BlobWriteOptions, BlobWriteResult, StagingAppender, StagingCommitOptions } from './types.js';
import { CoalescedSync } from './coalesced-sync.js';
import { DirectWriter } from './direct-writer.js';
import { FdWriter } from './fd-writer.js';
import { GrowingFile } from './growing-file.js';
import { checkEndedSize, overLimit } from './write-limits.js';
import { ByteMeter } from './byte-meter.js';

/** Ids are ours (randomUUID); anything else cannot name a blob and must not reach a path. */
const ID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function isEnoent(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === 'ENOENT';
}

/**
 * Bytes per read of a blob: a quarter of the reads (and thread-pool round trips) of the
 * default 64 KiB, and fuller socket writes when the data is served. Fan-out of 100 MiB to 10
 * ESS on the 2-core bench machine: 4.22–4.37 s → 3.59–4.03 s, the CSS at 0.9–1.5 CPU s. Each
 * open read holds up to this much: 2.5 MB for ten concurrent downloads.
 */
const READ_HIGH_WATER_MARK = 256 * 1024;

/**
 * A file stream over `[start, end]` whose missing file is reported as `notFound()`. The stream
 * opens the file itself, after it is returned; its documented `fs` override is the one place
 * where the open's ENOENT can be swapped for the typed error the API maps to 404.
 */
function readTyped(path: string, opts: BlobReadOptions, notFound: () => NotFoundError): Readable {
  const openTyped = (p: string, flags: string, mode: number, cb: (err: Error | null, fd?: number) => void): void => {
    fs.open(p, flags, mode, (err, fd) => (err === null ? cb(null, fd) : cb(isEnoent(err) ? notFound() : err)));
  };
  const { start, end, signal } = opts;
  return createReadStream(path, { start, end, signal, highWaterMark: READ_HIGH_WATER_MARK, fs: { open: openTyped, read: fs.read, close: fs.close } });
}

/** Flushes a file's or a directory's content and entries to disk. */
async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Closes the descriptor a stream writes through, once the stream is destroyed and done with its
 * write in flight: closed earlier, the number could be reused by another file before that write
 * lands.
 */
async function release(stream: Writable, fd: number): Promise<void> {
  if (!stream.destroyed) stream.destroy();
  if (!stream.closed) await new Promise<void>((resolve) => stream.once('close', () => resolve()));
  await fdClose(fd);
}

/**
 * Streams `source` through `meter` into `fd` from `start`, lets `checkCount` refuse the byte
 * count, and fsyncs; the descriptor is closed in every case, once the writer is done with it.
 * Through the page cache, not with direct I/O as downloads are: what an app uploads to a CSS is
 * read again at once, by every ESS it goes to. With direct I/O a 1 GiB upload took less CPU, but
 * serving it then cost the CSS 2.4–3.8 CPU s instead of 0.8–1.1, the page cache being filled
 * by the reads instead.
 */
async function writeThrough(
  fd: number,
  start: number,
  source: Readable,
  meter: ByteMeter,
  signal: AbortSignal | undefined,
  checkCount: (bytes: number) => void,
  onLanded?: (bytes: number, landed: readonly Buffer[]) => void,
): Promise<void> {
  const sink = new FdWriter(fd, { start, highWaterMark: WRITE_HIGH_WATER_MARK, flushEvery: FLUSH_EVERY, ...(onLanded ? { onLanded } : {}) });
  try {
    await pipeline(source, meter, sink, { signal });
    checkCount(meter.bytes);
    await fdSync(fd);
  } finally {
    await release(sink, fd);
  }
}

const fdOpen = promisify(fs.open);
const fdStat = promisify(fs.fstat);
const fdTruncate = promisify(fs.ftruncate);
const fdSync = promisify(fs.fsync);
const fdClose = promisify(fs.close);

/**
 * Bytes a blob write may queue before the producer waits; they go to disk as one writev. At the
 * 16 KiB default a 1 GiB upload ran at 350–384 MiB/s, at 1 MiB 508–612 (alternating runs).
 * Each upload in progress may hold this much.
 */
const WRITE_HIGH_WATER_MARK = 1024 * 1024;

/**
 * The same for a download appending to a staging area. Up to 32 run at once on an ESS, and
 * there 1 MiB bought nothing over 256 KiB (252–279 MiB/s CSS→ESS either way); at 64 KiB the
 * writer waited for a drain after nearly every socket read.
 */
const APPEND_HIGH_WATER_MARK = 256 * 1024;

/** Background flushes of a blob being written: the final fsync then has at most this much left. */
const FLUSH_EVERY = 8 * 1024 * 1024;

/** Files under one root directory; see the module comment for the layout. */
export class FileBlobStore implements BlobStore {
  private readonly blobsDir: string;
  private readonly stagingDir: string;
  private readonly tmpDir: string;
  /** Directory fsyncs after renames and creations, shared by the writes that overlap. */
  private readonly blobsDirSync: CoalescedSync;
  private readonly stagingDirSync: CoalescedSync;

  /** False once the file system refused to open a file for direct I/O: appends then go through the page cache. */
  private directIo: boolean;

  /**
   * @param opts.root directory owned by this store; created by init() when missing.
   * @param opts.directIo append downloads with direct I/O (default true); see direct-writer.ts.
   */
  constructor(opts: { root: string; directIo?: boolean }) {
    this.directIo = opts.directIo ?? true;
    this.blobsDir = join(opts.root, 'blobs');
    this.stagingDir = join(opts.root, 'staging');
    this.tmpDir = join(opts.root, 'tmp');
    this.blobsDirSync = new CoalescedSync(() => fsyncPath(this.blobsDir));
    this.stagingDirSync = new CoalescedSync(() => fsyncPath(this.stagingDir));
  }

  /** Creates the directories and deletes the leftovers of writes interrupted by a crash. */
  async init(): Promise<void> {
    await rm(this.tmpDir, { recursive: true, force: true });
    for (const dir of [this.blobsDir, this.stagingDir, this.tmpDir]) await mkdir(dir, { recursive: true });
  }

  /**
   * Hashes and counts while streaming into `tmp/`, then fsyncs the file, renames it into
   * `blobs/` and fsyncs the directory, so that a returned id survives a power loss. On any
   * failure (source error, abort, size mismatch, over `maxBytes`) the temp file is removed and
   * the promise rejects with that error. With `opts.onGrowing`, readers may follow the temp file
   * as it is written (GrowingFile); they fail with the write.
   */
  async write(source: Readable, opts: BlobWriteOptions = {}): Promise<BlobWriteResult> {
    const blobId = randomUUID();
    const tmp = join(this.tmpDir, blobId);
    const meter = new ByteMeter({ hash: true, tooMany: (n) => overLimit(n, opts) });
    const fd = await fdOpen(tmp, 'wx');
    let growing: GrowingFile | null = null;
    if (opts.onGrowing !== undefined) {
      try {
        growing = new GrowingFile(await fdOpen(tmp, 'r'), opts.expectedSize ?? null);
      } catch (e) {
        await fdClose(fd);
        await rm(tmp, { force: true });
        throw e;
      }
    }
    try {
      if (growing !== null) opts.onGrowing?.(growing);
      const landed = growing?.advance.bind(growing);
      await writeThrough(fd, 0, source, meter, opts.signal, (bytes) => checkEndedSize(bytes, opts), landed);
      growing?.finish(true);
      await rename(tmp, this.blobPath(blobId));
      await this.blobsDirSync.run();
    } catch (e) {
      growing?.finish(false);
      await rm(tmp, { force: true });
      throw e;
    }
    return { blobId, size: meter.bytes, sha256: meter.sha256() };
  }

  /**
   * A real file stream over `[start, end]`, so the cost is that of the range. A missing blob is
   * reported as an `error` event carrying a NotFoundError (the stream is returned before the file
   * is opened). A range past the end yields no bytes; `start > end` throws ERR_OUT_OF_RANGE
   * synchronously (the caller validates ranges against size()).
   */
  read(blobId: string, opts: BlobReadOptions = {}): Readable {
    const notFound = (): NotFoundError => new NotFoundError(`Blob ${blobId} not found`);
    if (!ID_PATTERN.test(blobId)) return new Readable({ read: () => undefined }).destroy(notFound());
    return readTyped(this.blobPath(blobId), opts, notFound);
  }

  /** @throws NotFoundError when the blob does not exist. */
  async size(blobId: string): Promise<number> {
    try {
      return (await stat(this.blobPath(this.checkId(blobId)))).size;
    } catch (e) {
      throw isEnoent(e) ? new NotFoundError(`Blob ${blobId} not found`) : e;
    }
  }

  /** Unlinks the file: readers that already opened it keep reading to the end (POSIX). */
  async delete(blobId: string): Promise<void> {
    if (!ID_PATTERN.test(blobId)) return;
    await rm(this.blobPath(blobId), { force: true });
  }

  /** Blob ids present; files with names we never generate are ignored. */
  async list(): Promise<string[]> {
    return (await readdir(this.blobsDir)).filter((name) => ID_PATTERN.test(name));
  }

  /**
   * Staging area ids present; garbage collection removes those no upload references
   * (e.g. after deleteOrganization).
   */
  async listStaging(): Promise<string[]> {
    return (await readdir(this.stagingDir)).filter((name) => ID_PATTERN.test(name));
  }

  /** Creates the empty file and makes its directory entry durable before the id is handed out. */
  async createStaging(): Promise<string> {
    const id = randomUUID();
    const fh = await open(this.stagingPath(id), 'wx');
    await fh.close();
    await this.stagingDirSync.run();
    return id;
  }

  /**
   * Truncates the area to `offset` (dropping bytes a crash left after the last committed
   * offset), writes exactly `length` bytes there and fsyncs. On failure the area is truncated
   * back to `offset`, i.e. left as it was.
   * @throws NotFoundError when the staging area does not exist.
   * @throws BadRequestError when the area holds fewer than `offset` bytes, or the source brings
   *   fewer or more than `length` bytes.
   */
  async writeStaging(stagingId: string, offset: number, length: number, source: Readable, opts: { signal?: AbortSignal } = {}): Promise<void> {
    const fd = await this.openStagingAt(stagingId, offset);
    const meter = new ByteMeter({
      hash: false,
      tooMany: (n) => (n > length ? new BadRequestError(`Received more than the expected ${length} bytes of the chunk at offset ${offset}`) : null),
    });
    try {
      await writeThrough(fd, offset, source, meter, opts.signal, (bytes) => {
        if (bytes !== length) throw new BadRequestError(`Received ${bytes} bytes of the chunk at offset ${offset}, expected ${length}`);
      });
    } catch (e) {
      await this.truncate(this.stagingPath(stagingId), offset);
      throw e;
    }
  }

  /**
   * The same descriptors for the whole run: the stream writes through them, sync() fsyncs while
   * the stream goes on writing. The durable offset is counted before the fsync starts, so it only
   * covers writes that completed before it. The descriptors are closed only after the stream is
   * done with its last write.
   *
   * Written with direct I/O where the file system allows it (DirectWriter): a download is not
   * read again soon, and on the bench machine the page cache's new pages were most of the ESS's
   * CPU per byte (CSS→ESS 1 GiB: 163–305 MiB/s, ESS 3.5–7 CPU s, became 390–414 MiB/s and
   * 2.6–2.8 CPU s; docs/benchmarks.md). Elsewhere, an FdWriter through the page cache.
   */
  async appendStaging(stagingId: string, offset: number): Promise<StagingAppender> {
    const fd = await this.openStagingAt(stagingId, offset);
    const directFd = await this.openDirect(stagingId, fd);
    let closing: Promise<void> | null = null;
    if (directFd !== null) {
      const direct = new DirectWriter({ directFd, fd, start: offset });
      return {
        stream: direct,
        // Bytes still in the writer's buffers are written first: a sync covers every byte handed over.
        sync: async () => {
          const upTo = await direct.flush();
          await fdSync(fd);
          return upTo;
        },
        close: () => (closing ??= release(direct, fd).finally(() => fdClose(directFd))),
      };
    }
    const stream = new FdWriter(fd, { start: offset, highWaterMark: APPEND_HIGH_WATER_MARK });
    return {
      stream,
      sync: async () => {
        const upTo = offset + stream.bytesWritten;
        await fdSync(fd);
        return upTo;
      },
      close: () => (closing ??= release(stream, fd)),
    };
  }

  /** A missing area is a NotFoundError on the stream; see read(). */
  openStaging(stagingId: string, opts: BlobReadOptions = {}): Readable {
    const notFound = (): NotFoundError => new NotFoundError(`Staging area ${stagingId} not found`);
    if (!ID_PATTERN.test(stagingId)) return new Readable({ read: () => undefined }).destroy(notFound());
    return readTyped(join(this.stagingDir, stagingId), opts, notFound);
  }

  /**
   * Hashes the area by streaming it (unless `opts.sha256` is given: then only its size is
   * looked up), then renames it into `blobs/` under a new id.
   */
  async commitStaging(stagingId: string, opts: StagingCommitOptions = {}): Promise<BlobWriteResult> {
    const path = this.stagingPath(stagingId);
    let size: number;
    let sha256: string;
    try {
      if (opts.sha256 !== undefined) {
        size = (await stat(path)).size;
        sha256 = opts.sha256;
      } else {
        const meter = new ByteMeter({ hash: true });
        await pipeline(createReadStream(path), meter, new Writable({ write: (_chunk, _enc, done) => done() }));
        size = meter.bytes;
        sha256 = meter.sha256();
      }
    } catch (e) {
      throw isEnoent(e) ? new NotFoundError(`Staging area ${stagingId} not found`) : e;
    }
    // Every writeStaging fsynced its bytes; only the new directory entry needs flushing.
    const blobId = randomUUID();
    await rename(path, this.blobPath(blobId));
    await this.blobsDirSync.run();
    return { blobId, size, sha256 };
  }

  /** A missing staging area is not an error. */
  async deleteStaging(stagingId: string): Promise<void> {
    if (!ID_PATTERN.test(stagingId)) return;
    await rm(this.stagingPath(stagingId), { force: true });
  }

  /**
   * The area opened for writing at `offset`, dropping (and syncing away) any bytes a crash left
   * after it; nothing past the offset is the usual case, an append, and costs no extra fsync.
   * @throws NotFoundError when the area does not exist
   * @throws BadRequestError when it holds fewer than `offset` bytes
   */
  private async openStagingAt(stagingId: string, offset: number): Promise<number> {
    let fd: number;
    try {
      fd = await fdOpen(this.stagingPath(stagingId), 'r+');
    } catch (e) {
      throw isEnoent(e) ? new NotFoundError(`Staging area ${stagingId} not found`) : e;
    }
    try {
      const held = (await fdStat(fd)).size;
      if (held < offset) throw new BadRequestError(`Cannot write at offset ${offset}: only ${held} bytes have been received`);
      if (held > offset) {
        await fdTruncate(fd, offset);
        await fdSync(fd);
      }
      return fd;
    } catch (e) {
      await fdClose(fd);
      throw e;
    }
  }

  /**
   * A second descriptor of a staging area `fd` is open on, for direct I/O (direct-writer.ts), or
   * null when this store does not use it or the file system refuses it (EINVAL), which turns it
   * off for the store. On any other failure `fd` is closed.
   */
  private async openDirect(stagingId: string, fd: number): Promise<number | null> {
    if (!this.directIo) return null;
    try {
      return await fdOpen(this.stagingPath(stagingId), fs.constants.O_WRONLY | fs.constants.O_DIRECT);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EINVAL') {
        this.directIo = false;
        return null;
      }
      await fdClose(fd);
      throw isEnoent(e) ? new NotFoundError(`Staging area ${stagingId} not found`) : e;
    }
  }

  private async truncate(path: string, length: number): Promise<void> {
    const fh = await open(path, 'r+');
    try {
      await fh.truncate(length);
      await fh.sync();
    } finally {
      await fh.close();
    }
  }

  private checkId(id: string): string {
    if (!ID_PATTERN.test(id)) throw new NotFoundError(`Blob ${id} not found`);
    return id;
  }

  private blobPath(id: string): string {
    return join(this.blobsDir, id);
  }

  private stagingPath(id: string): string {
    if (!ID_PATTERN.test(id)) throw new NotFoundError(`Staging area ${id} not found`);
    return join(this.stagingDir, id);
  }
}
