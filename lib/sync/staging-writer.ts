/**
 * Writes a stream of object data into a BlobStore staging area and hashes the bytes as they go
 * by. Every segment's worth of bytes, what reached the disk is synced while the data keeps
 * flowing (an fsync per segment, not per chunk, overlapping the writing of the next one), and the
 * caller persists the synced offset: that is where a broken transfer resumes. A resumed writer
 * rebuilds the hash of the bytes already staged by reading them once, so the whole data's
 * SHA-256 is still known at the end, and a transfer that was never broken reads nothing back.
 * Transport-agnostic: the HTTP download feeds it a response today.
 */
import { createHash, type Hash } from 'node:crypto';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { BlobStore, BlobWriteResult } from '../store/types.js';

/** Default segment: big enough that an fsync per segment costs little, small enough to lose little. */
export const DEFAULT_SEGMENT_BYTES = 8 * 1024 * 1024;

/** The staged bytes are not what the persisted offset says (fewer, or the area is gone). */
export class StagingLostError extends Error {}

export interface StagingWriterOptions {
  /** Bytes per durable segment; default DEFAULT_SEGMENT_BYTES. */
  segmentBytes?: number;
  /**
   * Also given every byte of the data, in order, on the same pass as the SHA-256 (the staged
   * bytes read back on a resume included): a data signature's verifier.
   */
  observer?: { update(chunk: Buffer): void };
}

export class StagingWriter {
  private readonly segmentBytes: number;
  private readonly observer: { update(chunk: Buffer): void } | undefined;
  /** Set once a write failed: the hash may then hold bytes that never became durable. */
  private broken = false;
  /** The final digest, once taken: nothing more can be written then. */
  private digest: string | null = null;

  private constructor(
    private readonly blobs: Pick<BlobStore, 'appendStaging' | 'commitStaging'>,
    readonly stagingId: string,
    private written: number,
    private readonly hash: Hash,
    opts: StagingWriterOptions,
  ) {
    this.segmentBytes = Math.max(1, opts.segmentBytes ?? DEFAULT_SEGMENT_BYTES);
    this.observer = opts.observer;
  }

  /** A writer at offset 0 of a staging area (whatever it holds is overwritten). */
  static fresh(blobs: Pick<BlobStore, 'appendStaging' | 'commitStaging'>, stagingId: string, opts: StagingWriterOptions = {}): StagingWriter {
    return new StagingWriter(blobs, stagingId, 0, createHash('sha256'), opts);
  }

  /**
   * A writer that continues at `offset` of a staging area holding at least that many durable
   * bytes: the hash state of those bytes is rebuilt by reading them once (a hash state cannot be
   * persisted). Bytes past `offset` are ignored here and dropped by the next write.
   * @throws StagingLostError when the area is missing or holds fewer than `offset` bytes
   */
  static async resume(
    blobs: Pick<BlobStore, 'appendStaging' | 'commitStaging' | 'openStaging'>,
    stagingId: string,
    offset: number,
    opts: StagingWriterOptions & { signal?: AbortSignal } = {},
  ): Promise<StagingWriter> {
    const hash = createHash('sha256');
    let read = 0;
    if (offset > 0) {
      const stream = blobs.openStaging(stagingId, { start: 0, end: offset - 1, ...(opts.signal ? { signal: opts.signal } : {}) });
      try {
        for await (const chunk of stream as AsyncIterable<Buffer>) {
          hash.update(chunk);
          opts.observer?.update(chunk);
          read += chunk.length;
        }
      } catch (e) {
        if (opts.signal?.aborted === true) throw e;
        throw new StagingLostError(`staging area ${stagingId} cannot be read back: ${(e as Error).message}`);
      }
    }
    if (read !== offset) throw new StagingLostError(`staging area ${stagingId} holds ${read} bytes, ${offset} expected`);
    return new StagingWriter(blobs, stagingId, offset, hash, opts);
  }

  /** Bytes written and durable so far: the offset the next write starts at. */
  get offset(): number {
    return this.written;
  }

  /**
   * Takes exactly `length` bytes from `source` (with null: whatever it brings until it ends)
   * and appends them. Each time a segment's worth
   * more has been handed over, the bytes on disk so far are synced, then `onSegment(offset)` is
   * awaited with the durable offset, while the source keeps flowing (at most one sync at a
   * time; the next waits for it). A last sync covers the end. A rejection of `onSegment`, a
   * source that ends early or brings more than `length` bytes, or a disk error fails the write;
   * what an earlier `onSegment` was told stays durable. The source is destroyed on failure.
   */
  async append(source: Readable, length: number | null, onSegment: (offset: number) => Promise<void>, signal?: AbortSignal): Promise<void> {
    if (this.broken || this.digest !== null) throw new Error('this staging writer failed or was finished; resume a new one');
    const end = length === null ? Infinity : this.written + length;
    const appender = await this.blobs.appendStaging(this.stagingId, this.written);
    const out = appender.stream;
    // A disk error may come between two writes; it is thrown at the next chunk or at the end.
    const failed: { error?: Error } = {};
    out.on('error', (err: Error) => (failed.error ??= err));
    const syncNow = async (): Promise<void> => {
      const durable = await appender.sync();
      if (durable <= this.written) return;
      this.written = durable;
      await onSegment(durable);
    };
    let handed = this.written;
    let lastSync = handed;
    let syncing: Promise<void> | null = null;
    try {
      for await (const chunk of source as AsyncIterable<Buffer>) {
        if (failed.error !== undefined) throw failed.error;
        if (handed + chunk.length > end) throw new Error(`the data goes on past the ${end} bytes expected`);
        this.hash.update(chunk);
        this.observer?.update(chunk);
        handed += chunk.length;
        if (!out.write(chunk)) await once(out, 'drain', signal ? { signal } : {});
        if (handed - lastSync >= this.segmentBytes) {
          if (syncing !== null) await syncing;
          lastSync = handed;
          syncing = syncNow();
          // Awaited before the next sync or at the end; a failure meanwhile must not go unhandled.
          syncing.catch(() => undefined);
        }
      }
      if (length !== null && handed < end) throw new Error(`the data ended after ${handed} of ${end} bytes`);
      out.end();
      await finished(out);
      if (syncing !== null) await syncing;
      await syncNow();
      if (this.written !== handed) throw new Error(`${this.written} of ${handed} bytes reached the staging area`);
    } catch (e) {
      this.broken = true;
      out.destroy();
      source.destroy();
      // A sync still running uses the descriptor closed below, and may still report an offset
      // (durable, so true): both must be over before the caller hears of the failure.
      if (syncing !== null) await syncing.catch(() => undefined);
      throw e;
    } finally {
      await appender.close();
    }
  }

  /** Lower-case hex SHA-256 of the staged data, from 0 to offset; no more writes after it. */
  sha256(): string {
    if (this.broken) throw new Error('a write of this staging writer failed: its digest is meaningless');
    this.digest ??= this.hash.digest('hex');
    return this.digest;
  }

  /** Turns the area into a blob with the digest computed along the way: no re-read. */
  commit(): Promise<BlobWriteResult> {
    return this.blobs.commitStaging(this.stagingId, { sha256: this.sha256() });
  }
}
