/**
 * The local side of every object change made through the API: validation, status rules,
 * instance/data ids, and the data path (stream → blob → metadata commit). The sync engine
 * hooks its notifications onto the changes made here.
 */
import { Readable } from 'node:stream';
import type { BlobStore, BlobWriteResult, Store, StoredObject } from '../store/types.js';
import {
  BadRequestError,
  NotFoundError,
  ConflictError,
  RangeNotSatisfiableError,
  isReceiverStatus,
  objectKey,
  validateObjectUpdate,
  NO_DATA_STATUSES,
  type ByteRange,
  type MetaData,
  type ObjectUpdate,
} from '../model/index.js';
import { KeyedMutex } from './keyed-mutex.js';

export interface NodeIdentity {
  nodeType: 'CSS' | 'ESS';
  /** ESS: its org. CSS: "" (multi-org) or the single org. */
  orgID: string;
  destinationType: string;
  destinationID: string;
}

/**
 * Told of every committed change of a sender-side object, under the object's lock so that two
 * quick changes reach it in commit order. The CSS wires the sync engine's Sender here.
 */
export interface ObjectListener {
  /** The object was created, replaced, got its data, or changed in place. */
  onObjectPublished(obj: StoredObject): Promise<void>;
  /** The object was removed. */
  onObjectDeleted(obj: StoredObject): Promise<void>;
}

/**
 * Told of app marks on objects received from the other side, so that the receiver can send
 * the matching notification (`consumed`, `deleted`). [ref sync-protocol §3 steps 9, Delete 4]
 */
export interface ReceiverListener {
  /** A received object changed through an app mark (received, consumed), under its lock. */
  onReceivedObjectMarked(obj: StoredObject): Promise<void>;
  /** The app confirmed the other side's deletion of an object, which is now gone. */
  onDeletionConfirmed(obj: StoredObject): Promise<void>;
  /** A received object was deleted through the API (the CSS allows it), under its lock. */
  onReceivedObjectDeleted?(obj: StoredObject): Promise<void>;
}

export interface ObjectServiceDeps {
  store: Store;
  /** The ESS's receiver; absent on a node that receives nothing over a transport yet. */
  receiverListener?: ReceiverListener;
  /** Absent on a node that sends nothing yet (the ESS until its side of the sync lands). */
  listener?: ObjectListener;
  blobs: BlobStore;
  node: NodeIdentity;
  /** Copied into every object's `chunkSize`. [ref sync-protocol §7 MaxDataChunkSize] */
  maxDataChunkSize: number;
  /** Largest object data accepted, bytes; 0 = unlimited. */
  maxDataSize: number;
  now?: () => Date;
}

/** The caller of a change, for `ownerID`. */
export interface Caller {
  orgID: string;
  userID: string;
}

/** Defined in lib/model (the API and the SPI parse ranges alike); re-exported for callers of this module. */
export type { ByteRange };

export interface ContentRange extends ByteRange {
  total: number;
}

export interface DataRead {
  stream: Readable;
  /** Bytes of the whole object. */
  size: number;
  /** The range served; undefined when the whole object is served. */
  range?: ByteRange;
}

/** Reference consumer counts: 0 means 1, -1 means "unlimited". [ref rest-api §2 consumers] */
export function normalizeConsumers(n: number): number {
  if (n === 0) return 1;
  if (n === -1) return 2147483647;
  return n;
}

/**
 * Whether the object's current data is a finished chunked upload of `total` bytes, with no
 * metadata change since: a late last chunk of that size is then a retry, not a new upload.
 */
function completedByChunks(obj: StoredObject, total: number): boolean {
  const m = obj.meta;
  return obj.status === 'ready' && obj.blobId !== null && m.uploadChunkSize > 0 && m.objectSize === total && m.dataID === m.instanceID;
}

export class ObjectService {
  private readonly locks = new KeyedMutex();
  private readonly now: () => Date;

  constructor(private readonly deps: ObjectServiceDeps) {
    this.now = deps.now ?? (() => new Date());
  }

  get node(): NodeIdentity {
    return this.deps.node;
  }

  get(org: string, type: string, id: string): Promise<StoredObject | null> {
    return this.deps.store.getObject(org, type, id);
  }

  private lock<T>(org: string, type: string, id: string, fn: () => Promise<T>): Promise<T> {
    return this.locks.run(objectKey(org, type, id), fn);
  }

  /** Abandons a chunked upload in progress, with its staging area. */
  private async dropUpload(org: string, type: string, id: string): Promise<void> {
    const upload = await this.deps.store.getUpload(org, type, id);
    if (upload === null) return;
    await this.deps.store.deleteUpload(org, type, id);
    await this.deps.blobs.deleteStaging(upload.stagingId);
  }

  /** Releases a blob that no object refers to any more. */
  private async releaseBlob(blobId: string | null): Promise<void> {
    if (blobId !== null) await this.deps.blobs.delete(blobId);
  }

  /**
   * Creates or replaces an object from a validated PUT body. Inline data is streamed into a
   * blob before the metadata commit, so a failure leaves the previous object intact.
   * [ref rest-api §1.2 O2, §2.1]
   */
  async update(org: string, type: string, id: string, update: ObjectUpdate, caller: Caller): Promise<StoredObject> {
    const { node } = this.deps;
    validateObjectUpdate(update, { orgID: org, objectType: type, objectID: id, nodeType: node.nodeType, now: this.now() });
    if (update.data !== undefined) this.checkDataSize(update.data.length);
    const written = update.data !== undefined && !update.meta.noData ? await this.deps.blobs.write(Readable.from([update.data])) : null;
    try {
      return await this.lock(org, type, id, async () => {
        const existing = await this.deps.store.getObject(org, type, id);
        if (existing !== null && isReceiverStatus(existing.status)) throw new BadRequestError("Can't update object of the receiving side");
        const stored = await this.applyUpdate(existing, update.meta, written, caller);
        // Started together: the object and its delivery records reach the store in the same
        // event-loop turn, so one commit (one fsync wait) makes them durable together.
        await Promise.all([this.deps.store.putObject(stored), this.deps.listener?.onObjectPublished(stored)]);
        await this.dropUpload(org, type, id);
        // Only once the new row is durable: a crash before leaves the old object whole.
        if (existing !== null && existing.blobId !== stored.blobId) await this.releaseBlob(existing.blobId);
        return stored;
      });
    } catch (e) {
      if (written !== null) await this.releaseBlob(written.blobId);
      throw e;
    }
  }

  private async applyUpdate(existing: StoredObject | null, input: MetaData, written: BlobWriteResult | null, caller: Caller): Promise<StoredObject> {
    const { node } = this.deps;
    const meta: MetaData = { ...input };
    const instanceID = await this.deps.store.nextInstanceId();
    meta.instanceID = instanceID;
    meta.chunkSize = this.deps.maxDataChunkSize;
    meta.consumers = normalizeConsumers(meta.consumers);
    meta.deleted = false;
    if (meta.originID === '' || meta.originType === '') {
      meta.originType = node.destinationType;
      meta.originID = node.destinationID;
    }
    meta.ownerID = node.nodeType === 'CSS' ? `${caller.orgID}/${caller.userID}` : `${node.orgID}/${node.destinationID}`;
    if (meta.destinationPolicy !== null) meta.destinationPolicy = { ...meta.destinationPolicy, timestamp: Date.now() * 1e6 };

    let blobId: string | null = null;
    let sha: string | null = null;
    let status: StoredObject['status'] = 'notReady';
    meta.objectSize = 0;
    meta.dataID = 0;
    meta.uploadChunkSize = 0;
    if (meta.noData) {
      meta.link = '';
      meta.sourceDataUri = '';
      meta.publicKey = '';
      meta.signature = '';
      status = 'ready';
    } else if (meta.metaOnly) {
      if (existing !== null && (existing.meta.destinationPolicy === null) !== (meta.destinationPolicy === null)) {
        throw new BadRequestError("Can't add or remove a destination policy with a metaOnly update");
      }
      if (existing !== null && existing.blobId !== null) {
        blobId = existing.blobId;
        sha = existing.dataSha256;
        meta.objectSize = existing.meta.objectSize;
        meta.dataID = existing.meta.dataID;
        meta.uploadChunkSize = existing.meta.uploadChunkSize;
        meta.hashAlgorithm = existing.meta.hashAlgorithm;
        meta.publicKey = existing.meta.publicKey;
        meta.signature = existing.meta.signature;
        status = 'ready';
      }
    } else if (written !== null) {
      blobId = written.blobId;
      sha = written.sha256;
      meta.objectSize = written.size;
      meta.dataID = instanceID;
      status = 'ready';
    }
    if (meta.link !== '') status = 'ready';
    return {
      meta,
      status,
      blobId,
      dataSha256: sha,
      remainingConsumers: meta.consumers,
      remainingReceivers: meta.consumers,
      policyReceived: false,
      lastUpdate: this.now().getTime(),
    };
  }

  private checkDataSize(size: number): void {
    const max = this.deps.maxDataSize;
    if (max > 0 && size > max) throw new BadRequestError(`Object data of ${size} bytes exceeds the configured maximum of ${max} bytes`);
  }

  /** Loads an object that a data write may target. [ref rest-api §1.2 O17] */
  private async writableObject(org: string, type: string, id: string): Promise<StoredObject> {
    const obj = await this.deps.store.getObject(org, type, id);
    if (obj === null) throw new NotFoundError();
    if (isReceiverStatus(obj.status)) throw new BadRequestError("Can't update data of the receiving side");
    if (obj.meta.noData) throw new BadRequestError("Can't update data, the NoData flag is set to true");
    return obj;
  }

  /** Commits a complete blob as the object's data; the object may have changed meanwhile. */
  private async commitData(org: string, type: string, id: string, written: BlobWriteResult, uploadChunkSize: number): Promise<void> {
    const replaced = await this.lock(org, type, id, async () => {
      const obj = await this.writableObject(org, type, id);
      const instanceID = await this.deps.store.nextInstanceId();
      const meta: MetaData = { ...obj.meta, instanceID, dataID: instanceID, objectSize: written.size, uploadChunkSize };
      const stored: StoredObject = { ...obj, meta, status: 'ready', blobId: written.blobId, dataSha256: written.sha256, lastUpdate: this.now().getTime() };
      await this.deps.store.putObject(stored);
      await this.deps.listener?.onObjectPublished(stored);
      return obj.blobId;
    });
    await this.releaseBlob(replaced);
  }

  /**
   * Replaces the object's data with a whole stream. Nothing changes unless every byte arrived.
   * [ref rest-api §1.2 O17]
   */
  async putData(org: string, type: string, id: string, source: Readable, opts: { size?: number; signal?: AbortSignal }): Promise<void> {
    await this.writableObject(org, type, id);
    if (opts.size !== undefined) this.checkDataSize(opts.size);
    const max = this.deps.maxDataSize;
    const written = await this.deps.blobs.write(source, {
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.size !== undefined ? { expectedSize: opts.size } : {}),
      ...(max > 0 ? { maxBytes: max } : {}),
    });
    try {
      await this.commitData(org, type, id, written, 0);
      await this.dropUpload(org, type, id);
    } catch (e) {
      await this.releaseBlob(written.blobId);
      throw e;
    }
  }

  /**
   * One chunk of a chunked upload (`Content-Range: bytes S-E/TOTAL`). Chunks must come in
   * order; a chunk wholly inside what was already received, or the last chunk of the upload
   * that already completed, is a retry and is ignored. The object's data changes only when the
   * last byte arrives. Returns true then.
   */
  putDataChunk(org: string, type: string, id: string, range: ContentRange, source: Readable, signal?: AbortSignal): Promise<boolean> {
    // One chunk at a time per object in this process: two writers in one staging file would
    // interleave their bytes before the compare-and-set could tell them apart.
    return this.locks.run(`upload:${objectKey(org, type, id)}`, () => this.acceptChunk(org, type, id, range, source, signal));
  }

  private async acceptChunk(org: string, type: string, id: string, range: ContentRange, source: Readable, signal?: AbortSignal): Promise<boolean> {
    const length = range.end - range.start + 1;
    this.checkDataSize(range.total);
    const obj = await this.writableObject(org, type, id);
    const { store, blobs } = this.deps;
    let session = await store.getUpload(org, type, id);
    const current = session !== null && session.instanceID === obj.meta.instanceID && session.total === range.total;
    if (!current || session === null) {
      if (range.start !== 0) {
        if (session === null && range.end + 1 === range.total && completedByChunks(obj, range.total)) {
          // A retry of the last chunk of the upload that already completed (its answer was lost).
          source.resume();
          return false;
        }
        throw new BadRequestError(
          session !== null && session.total !== range.total
            ? `Content-Range total ${range.total} does not match the upload in progress (${session.total} bytes)`
            : `No upload in progress for this object: the first chunk must start at offset 0, not ${range.start}`,
        );
      }
      if (session !== null) await blobs.deleteStaging(session.stagingId);
      session = {
        orgID: org,
        objectType: type,
        objectID: id,
        stagingId: await blobs.createStaging(),
        total: range.total,
        received: 0,
        chunkSize: length,
        instanceID: obj.meta.instanceID,
        lastUpdate: this.now().getTime(),
      };
      await store.putUpload(session);
    } else if (range.end < session.received) {
      source.resume();
      return false;
    } else if (range.start !== session.received) {
      throw new BadRequestError(
        range.start > session.received
          ? `Content-Range starts at ${range.start}, leaving a gap: the upload expects offset ${session.received}`
          : `Content-Range ${range.start}-${range.end} overlaps bytes already received (up to ${session.received - 1})`,
      );
    }
    await blobs.writeStaging(session.stagingId, range.start, length, source, signal ? { signal } : {});
    if (!(await store.advanceUpload(org, type, id, range.start, range.end + 1))) {
      throw new ConflictError('Another chunk for this offset was accepted concurrently');
    }
    if (range.end + 1 < range.total) return false;
    const written = await blobs.commitStaging(session.stagingId);
    try {
      await this.commitData(org, type, id, written, session.chunkSize);
      await store.deleteUpload(org, type, id);
    } catch (e) {
      await this.releaseBlob(written.blobId);
      throw e;
    }
    return true;
  }

  /**
   * Opens the data for reading, optionally a range (end clamped to the last byte). A range
   * that covers the whole object is served as the whole object. [ref rest-api §1.2 O16]
   */
  openData(obj: StoredObject, range?: ByteRange, signal?: AbortSignal): DataRead {
    if (obj.blobId === null || NO_DATA_STATUSES.includes(obj.status)) throw new NotFoundError();
    const size = obj.meta.objectSize;
    const blobId = obj.blobId;
    const open = (start?: number, end?: number): Readable =>
      this.deps.blobs.read(blobId, { ...(start !== undefined ? { start } : {}), ...(end !== undefined ? { end } : {}), ...(signal ? { signal } : {}) });
    if (range === undefined) return { stream: open(), size };
    if (range.start >= size) {
      throw new RangeNotSatisfiableError(`Range start ${range.start} is past the end of the data (${size} bytes)`, size);
    }
    const end = Math.min(range.end, size - 1);
    if (range.start === 0 && end === size - 1) return { stream: open(), size };
    return { stream: open(range.start, end), size, range: { start: range.start, end } };
  }

  /**
   * Deletes an object. [ref rest-api §1.2 O3] A receiving-side object is refused on the ESS
   * and removed locally on the CSS.
   */
  async delete(org: string, type: string, id: string): Promise<void> {
    const removed = await this.lock(org, type, id, async () => {
      const obj = await this.deps.store.getObject(org, type, id);
      if (obj === null) throw new BadRequestError('Failed to delete the object. Error: Object not found');
      if (this.deps.node.nodeType === 'ESS' && isReceiverStatus(obj.status)) {
        throw new BadRequestError("Failed to delete the object. Error: Can't delete object on the receiving side for ESS");
      }
      await this.dropUpload(org, type, id);
      const gone = await this.deps.store.deleteObject(org, type, id);
      if (gone !== null && !isReceiverStatus(gone.status)) await this.deps.listener?.onObjectDeleted(gone);
      else if (gone !== null) await this.deps.receiverListener?.onReceivedObjectDeleted?.(gone);
      return gone;
    });
    await this.releaseBlob(removed?.blobId ?? null);
  }

  /** Releases blobs whose objects are gone (e.g. a deleted organization's). */
  async releaseBlobs(blobIds: readonly string[]): Promise<void> {
    for (const id of blobIds) await this.releaseBlob(id);
  }

  /** Removes an object whose deletion by the other side the app has confirmed. */
  async removeConfirmedDeletion(org: string, type: string, id: string): Promise<void> {
    const removed = await this.dropReceived(org, type, id);
    if (removed !== null) await this.deps.receiverListener?.onDeletionConfirmed(removed);
  }

  /** Removes a received object and its data, telling no one (the sync engine's own cleanup). */
  async dropReceived(org: string, type: string, id: string): Promise<StoredObject | null> {
    const removed = await this.lock(org, type, id, () => this.deps.store.deleteObject(org, type, id));
    await this.releaseBlob(removed?.blobId ?? null);
    return removed;
  }

  /**
   * Read-modify-write of an object arriving from the other side, under its lock: `fn` returns
   * what to store, or null to leave things as they are. Data the stored copy no longer refers
   * to is released; no sender-side listener hears of it. Returns what was stored, or null.
   */
  async storeReceived(org: string, type: string, id: string, fn: (obj: StoredObject | null) => StoredObject | null): Promise<StoredObject | null> {
    let replaced: string | null = null;
    const stored = await this.lock(org, type, id, async () => {
      const existing = await this.deps.store.getObject(org, type, id);
      const next = fn(existing);
      if (next === null) return null;
      const obj = { ...next, lastUpdate: this.now().getTime() };
      await this.deps.store.putObject(obj);
      if (existing !== null && existing.blobId !== obj.blobId) replaced = existing.blobId;
      return obj;
    });
    await this.releaseBlob(replaced);
    return stored;
  }

  /** Read-modify-write of one object under its lock. */
  async modify(org: string, type: string, id: string, fn: (obj: StoredObject | null) => StoredObject | null): Promise<StoredObject | null> {
    return this.lock(org, type, id, async () => {
      const next = fn(await this.deps.store.getObject(org, type, id));
      if (next === null) return null;
      const stored = { ...next, lastUpdate: this.now().getTime() };
      await this.deps.store.putObject(stored);
      // Destinations and activation change in place; the Sender keeps the progress of
      // destinations that stay, so other marks cost a lookup and change nothing.
      if (!isReceiverStatus(stored.status)) await this.deps.listener?.onObjectPublished(stored);
      else await this.deps.receiverListener?.onReceivedObjectMarked(stored);
      return next;
    });
  }
}
