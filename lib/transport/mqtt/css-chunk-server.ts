/**
 * The CSS's answer to `getdata{offset}`: one binary data message carrying the chunk of the
 * object's data that starts at the offset. [ref sync-protocol §2 "Flow", notificationHandler
 * handleGetData]
 *
 * Each message also states the SHA-256 of the object's whole data, when the store knows it (our
 * extension, data-codec.ts), so that our ESS checks its copy end to end as over HTTP.
 *
 * The chunk is the size the `getdata` states in its metadata (a reference ESS states the
 * object's `chunkSize`, set at create time; ours may ask for less), MAX_DATA_CHUNK_SIZE when it
 * states none, and never more than a message the broker takes. One chunk per request is in
 * memory, never the whole object.
 *
 * The chunks of one transfer are read from one open stream (chunk-reader.ts): the first
 * `getdata` opens the rest of the object through the engine (which checks the request and moves
 * the record to `getdata`), the next ones, asked in order, continue where the last one ended.
 * A request elsewhere (a lost chunk asked again, a resume), or one after `REOPEN_MS`, opens the
 * data anew, so a deleted or replaced object stops being served within that time.
 */
import { RangeNotSatisfiableError, destinationKey, type DestinationRef, type MetaData } from '../../model/index.js';
import type { DataSlice, EssSession, ObjectRef } from '../../sync/css/types.js';
import type { SyncEvents } from '../../sync/sync-events.js';
import { ChunkReader, ChunkReaders } from './chunk-reader.js';
import { allocDataMessage, dataMessageOverhead } from './data-codec.js';

/** Bytes of object data one message may carry when the publish may carry `maxPayload` bytes (the data's SHA-256 stated). */
export function chunkCapacity(maxPayload: number, orgID: string, objectType: string, objectID: string): number {
  return maxPayload - dataMessageOverhead(orgID, objectType, objectID, true);
}

/**
 * Bytes of the chunk a `getdata` at `offset` gets at most: the size it states (MAX_DATA_CHUNK_SIZE
 * when it states none), within a message the broker takes, and cut at the object's end as its
 * metadata states it (the receiver's word: the dispatch counts a chunk's memory by this).
 */
export function chunkBytes(meta: Pick<MetaData, 'chunkSize' | 'objectSize'>, offset: number, capacity: number, maxDataChunkSize: number): number {
  const stated = meta.chunkSize > 0 ? meta.chunkSize : maxDataChunkSize;
  const left = meta.objectSize > offset ? meta.objectSize - offset : Infinity;
  return Math.max(1, Math.min(stated, capacity, left));
}

/** Transfers whose reader is kept between requests, at most (each holds a descriptor and up to READ_AHEAD bytes). */
const MAX_READERS = 32;
/** A transfer not asked for more for this long closes its reader (an ESS that went away). */
const IDLE_MS = 10_000;
/** A reader this old is not used again: the object is looked up anew (deleted? replaced?). */
const REOPEN_MS = 2_000;
/** Bytes read ahead of the chunk asked for, at most. */
const READ_AHEAD = 1024 * 1024;

export interface CssChunkServerDeps {
  /** The largest payload a publish toward the ESS may carry now. */
  maxPayload(peer: DestinationRef): number;
  /** MAX_DATA_CHUNK_SIZE: the chunk of a request whose metadata states none. */
  maxDataChunkSize: number;
  /** Aborted when the CSS stops: the open data is released. */
  signal: AbortSignal;
  /** Told of each chunk as it leaves for the broker. */
  events?: SyncEvents;
  /** For tests: the readers' limits. */
  readers?: { max?: number; idleMs?: number; reopenMs?: number; now?: () => number };
}

export class CssChunkServer {
  private readonly readers: ChunkReaders;
  private readonly now: () => number;

  constructor(private readonly deps: CssChunkServerDeps) {
    const r = deps.readers ?? {};
    this.now = r.now ?? Date.now;
    this.readers = new ChunkReaders({ max: r.max ?? MAX_READERS, idleMs: r.idleMs ?? IDLE_MS, reopenMs: r.reopenMs ?? REOPEN_MS, now: this.now });
    deps.signal.addEventListener('abort', () => this.readers.close(), { once: true });
  }

  /** Transfers with a reader open now. */
  get openTransfers(): number {
    return this.readers.size;
  }

  /**
   * The data message answering a `getdata` of `peer` for `meta`'s data at `offset`.
   * @throws what `EssSession.openData` throws (NotFoundError, ConflictError, …)
   */
  async message(session: EssSession, peer: DestinationRef, meta: MetaData, offset: number): Promise<Buffer> {
    const stated = meta.chunkSize > 0 ? meta.chunkSize : this.deps.maxDataChunkSize;
    const capacity = chunkCapacity(this.deps.maxPayload(peer), peer.orgID, meta.objectType, meta.objectID);
    const chunkSize = Math.max(1, Math.min(stated, capacity));
    const key = `${destinationKey(peer)}\u0000${meta.objectType}\u0000${meta.objectID}\u0000${meta.instanceID}`;
    const reader = this.readers.take(key, offset) ?? (await this.open(session, meta, offset, chunkSize));
    let kept = false;
    try {
      // Never more than the dispatch counted for this request (chunkBytes).
      const length = Math.min(chunkBytes(meta, offset, capacity, this.deps.maxDataChunkSize), reader.remaining);
      // Every chunk states the data's SHA-256 (when known): our ESS checks what it stored against it.
      const fields = { orgID: peer.orgID, objectType: meta.objectType, objectID: meta.objectID, offset: BigInt(reader.next), instanceID: meta.instanceID };
      const { message, data } = allocDataMessage(reader.sha256 !== null ? { ...fields, sha256: reader.sha256 } : fields, length);
      const at = reader.next;
      await reader.fill(data);
      this.readers.keep(key, reader);
      kept = true;
      this.deps.events?.dataSent?.({ orgID: peer.orgID, objectType: meta.objectType, objectID: meta.objectID, instanceID: meta.instanceID }, { peerType: peer.destType, peerID: peer.destID }, 'mqtt', length, at, meta.objectSize);
      return message;
    } finally {
      if (!kept) reader.close();
    }
  }

  /**
   * Opens the data from `offset`: the rest of the object when the request's metadata says more
   * than one chunk is left (the object's size in a `getdata` is the receiver's word; the engine
   * serves what there is), the one chunk otherwise.
   */
  private async open(session: EssSession, meta: MetaData, offset: number, chunkSize: number): Promise<ChunkReader> {
    const ref: ObjectRef = { objectType: meta.objectType, objectID: meta.objectID, instanceID: meta.instanceID };
    const last = offset + chunkSize < meta.objectSize ? meta.objectSize - 1 : offset + chunkSize - 1;
    const openedAt = this.now();
    let slice: DataSlice;
    try {
      slice = await session.openData(ref, { start: offset, end: last }, this.deps.signal);
    } catch (err) {
      // An object of no bytes has no byte 0: it is served whole, as one empty chunk.
      if (!(err instanceof RangeNotSatisfiableError) || offset !== 0) throw err;
      slice = await session.openData(ref, undefined, this.deps.signal);
    }
    return new ChunkReader(slice.stream, slice.start, slice.end, openedAt, Math.min(chunkSize, READ_AHEAD), slice.sha256);
  }

  close(): void {
    this.readers.close();
  }
}
