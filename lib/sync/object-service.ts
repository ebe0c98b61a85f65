/**
 * The local side of every object change made through the API: validation, status rules,
 * instance/data ids, and the data path (stream → blob → metadata commit). The sync engine
 * hooks its notifications onto the changes made here (object-listeners.ts). The parts live
 * beside it: what a PUT stores (published-object.ts), data writes and chunked uploads
 * (object-data-writer.ts, upload-chunks.ts), app marks (object-marks.ts), listings
 * (object-queries.ts).
 */
import { Readable, Transform, pipeline } from 'node:stream';
import type { BlobStore, BlobWriteResult, Store, StoredObject } from '../store/types.js';
import { openSourceFile, type DataDirs } from '../store/data-files.js';
import {
  BadRequestError,
  NotFoundError,
  RangeNotSatisfiableError,
  isReceiverStatus,
  objectKey,
  validateObjectUpdate,
  NO_DATA_STATUSES,
  type ByteRange,
  type ObjectUpdate,
  type SignatureVerifier,
} from '../model/index.js';
import type { DeletionsInProgress } from './deletions.js';
import type { EarlyData } from './early-data.js';
import { KeyedMutex } from './keyed-mutex.js';
import type { ObjectChangeListener, ObjectListener, ReceiverListener } from './object-listeners.js';
import { ObjectDataWriter, checkDataSize, publish, signatureVerifier, verificationFailedError } from './object-data-writer.js';
import type { SyncEvents } from './sync-events.js';
import { publishedObject } from './published-object.js';
import { abandonUpload, type ContentRange } from './upload-chunks.js';

/** Moved to their own modules; re-exported for the callers of this one. */
export type { ObjectListener, ReceiverListener, ContentRange };
export { normalizeConsumers } from './consumer-counts.js';

export interface NodeIdentity {
  nodeType: 'CSS' | 'ESS';
  /** ESS: its org. CSS: "" (multi-org) or the single org. */
  orgID: string;
  destinationType: string;
  destinationID: string;
}

export interface ObjectServiceDeps {
  store: Store;
  /** The ESS's receiver; absent on a node that receives nothing over a transport yet. */
  receiverListener?: ReceiverListener;
  /** Absent on a node that sends nothing yet (the ESS until its side of the sync lands). */
  listener?: ObjectListener;
  /** Told of every committed row, not waited for (the webhooks). */
  changes?: ObjectChangeListener;
  blobs: BlobStore;
  /** Deletions on the sending side still awaiting acknowledgement (on an ESS, of objects its apps published); they read as `objdeleted`. */
  deletions?: Pick<DeletionsInProgress, 'get' | 'list'>;
  node: NodeIdentity;
  /** Copied into every object's `chunkSize`. [ref sync-protocol §7 MaxDataChunkSize] */
  maxDataChunkSize: number;
  /** Largest object data accepted, bytes; 0 = unlimited. */
  maxDataSize: number;
  /** Where `sourceDataUri` may read from (SOURCE_DATA_DIRS); absent or no directories = refused. */
  sourceData?: DataDirs;
  /** Offers whole-data uploads to the ESS nodes while they arrive (the CSS; early-data.ts). */
  early?: Pick<EarlyData, 'begin' | 'end'>;
  /** Told of each instance an app publishes (lib/sync/sync-events.ts). */
  events?: SyncEvents;
  now?: () => Date;
}

/** The caller of a change, for `ownerID`. */
export interface Caller {
  orgID: string;
  userID: string;
}

/** Defined in lib/model (the API and the SPI parse ranges alike); re-exported for callers of this module. */
export type { ByteRange };

export interface DataRead {
  stream: Readable;
  /** Bytes of the whole object. */
  size: number;
  /** The range served; undefined when the whole object is served. */
  range?: ByteRange;
}

/** UTF-16 code-unit order: the order the store lists keys in, for every key short of astral characters. */
function compareKeys(a: string, b: string): number {
  if (a === b) return 0;
  return a < b ? -1 : 1;
}

export class ObjectService {
  private readonly locks = new KeyedMutex();
  private readonly now: () => Date;
  private readonly data: ObjectDataWriter;

  constructor(private readonly deps: ObjectServiceDeps) {
    this.now = deps.now ?? (() => new Date());
    this.data = new ObjectDataWriter(deps, this.locks, this.now);
  }

  get node(): NodeIdentity {
    return this.deps.node;
  }

  get(org: string, type: string, id: string): Promise<StoredObject | null> {
    return this.deps.store.getObject(org, type, id);
  }

  /**
   * The object as the API shows it: a live object, else one whose deletion is still under way
   * (status `objdeleted`, `deleted: true`, no data). [ref sync-protocol §3 Delete]
   */
  async getOrDeleted(org: string, type: string, id: string): Promise<StoredObject | null> {
    return (await this.deps.store.getObject(org, type, id)) ?? (await this.deps.deletions?.get(org, type, id)) ?? null;
  }

  /**
   * The objects of an org (of one type when given) in any status, deletions under way included,
   * ordered by (objectType, objectID): the listings "regardless of status". A live object wins
   * over a deletion of the same key (published again since).
   */
  async listAll(org: string, type?: string): Promise<StoredObject[]> {
    const live = await this.deps.store.listObjects(type === undefined ? { org } : { org, objectType: type });
    const deleted = (await this.deps.deletions?.list(org, type)) ?? [];
    if (deleted.length === 0) return live;
    const key = (o: StoredObject): string => `${o.meta.objectType}\u0000${o.meta.objectID}`;
    const liveKeys = new Set(live.map(key));
    return [...live, ...deleted.filter((d) => !liveKeys.has(key(d)))].sort((a, b) => compareKeys(key(a), key(b)));
  }

  private lock<T>(org: string, type: string, id: string, fn: () => Promise<T>): Promise<T> {
    return this.locks.run(objectKey(org, type, id), fn);
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
    if (update.data !== undefined) checkDataSize(this.deps.maxDataSize, update.data.length);
    // Signed data is verified however it comes: inline (before anything is stored) or from a file.
    const verifier = !update.meta.noData && (update.data !== undefined || update.meta.sourceDataUri !== '') ? signatureVerifier(update.meta) : null;
    if (update.data !== undefined && verifier !== null) {
      verifier.update(update.data);
      const check = verifier.verify();
      if (!check.ok) return this.refuseUnverified(org, type, id, update, caller, check);
    }
    let written: BlobWriteResult | null = null;
    if (update.meta.noData) written = null;
    else if (update.meta.sourceDataUri !== '') {
      written = await this.importSourceFile(update.meta.sourceDataUri, verifier);
      const check = verifier?.verify();
      if (check !== undefined && !check.ok) {
        await this.releaseBlob(written.blobId);
        return this.refuseUnverified(org, type, id, update, caller, check);
      }
    }
    else if (update.data !== undefined) written = await this.deps.blobs.write(Readable.from([update.data]));
    try {
      return await this.lock(org, type, id, async () => {
        const existing = await this.deps.store.getObject(org, type, id);
        if (existing !== null && isReceiverStatus(existing.status)) throw new BadRequestError("Can't update object of the receiving side");
        const instanceID = await this.deps.store.nextInstanceId();
        const ctx = { node, caller, instanceID, maxDataChunkSize: this.deps.maxDataChunkSize, now: this.now().getTime() };
        const stored = publishedObject(existing, update.meta, written, ctx);
        // Started together: the object and its delivery records reach the store in the same
        // event-loop turn, so one commit (one fsync wait) makes them durable together.
        await Promise.all([this.deps.store.putObject(stored), publish(this.deps, stored)]);
        this.deps.changes?.onObjectStored(existing, stored);
        await abandonUpload(this.deps, org, type, id);
        // Only once the new row is durable: a crash before leaves the old object whole.
        if (existing !== null && existing.blobId !== stored.blobId) await this.releaseBlob(existing.blobId);
        return stored;
      });
    } catch (e) {
      if (written !== null) await this.releaseBlob(written.blobId);
      throw e;
    }
  }

  /**
   * Inline data whose signature failed: a new object is kept as `verificationFailed`, without
   * data and not delivered; an existing one stays as it was. Either way the caller is told why.
   */
  private async refuseUnverified(org: string, type: string, id: string, update: ObjectUpdate, caller: Caller, check: { ok: false; reason: string }): Promise<never> {
    const { node } = this.deps;
    await this.lock(org, type, id, async () => {
      if ((await this.deps.store.getObject(org, type, id)) !== null) return;
      const instanceID = await this.deps.store.nextInstanceId();
      const ctx = { node, caller, instanceID, maxDataChunkSize: this.deps.maxDataChunkSize, now: this.now().getTime() };
      await this.deps.store.putObject({ ...publishedObject(null, update.meta, null, ctx), status: 'verificationFailed' });
    });
    throw verificationFailedError(check);
  }

  /**
   * The data a `sourceDataUri` names, streamed into a blob now: what is sent is what the file
   * held at the PUT, with its SHA-256, however the file changes later (the reference reads the
   * file at each send). [ref rest-api §2 sourceDataUri]
   */
  private async importSourceFile(uri: string, verifier: SignatureVerifier | null): Promise<BlobWriteResult> {
    const where = this.deps.sourceData ?? { field: 'sourceDataUri', key: 'SOURCE_DATA_DIRS', dirs: [] };
    const file = await openSourceFile(uri, where);
    try {
      checkDataSize(this.deps.maxDataSize, file.size);
    } catch (e) {
      file.stream.destroy();
      throw e;
    }
    if (verifier === null) return this.deps.blobs.write(file.stream);
    // The signature's hash on the same pass as the store's write; pipeline carries a read error on.
    const observed = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        verifier.update(chunk);
        done(null, chunk);
      },
    });
    pipeline(file.stream, observed, () => undefined);
    return this.deps.blobs.write(observed);
  }

  /**
   * Replaces the object's data with a whole stream. Nothing changes unless every byte arrived.
   * [ref rest-api §1.2 O17]
   */
  putData(org: string, type: string, id: string, source: Readable, opts: { size?: number; signal?: AbortSignal }): Promise<void> {
    return this.data.putData(org, type, id, source, opts);
  }

  /**
   * One chunk of a chunked upload (`Content-Range: bytes S-E/TOTAL`). Chunks must come in
   * order; a chunk wholly inside what was already received, or the last chunk of the upload
   * that already completed, is a retry and is ignored. The object's data changes only when the
   * last byte arrives. Returns true then.
   */
  putDataChunk(org: string, type: string, id: string, range: ContentRange, source: Readable, signal?: AbortSignal): Promise<boolean> {
    return this.data.putDataChunk(org, type, id, range, source, signal);
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
      // Deleting again while the deletion is under way changes nothing. [ref sync-protocol §3 Delete]
      if (obj === null && ((await this.deps.deletions?.get(org, type, id)) ?? null) !== null) return null;
      if (obj === null) throw new BadRequestError('Failed to delete the object. Error: Object not found');
      if (this.deps.node.nodeType === 'ESS' && isReceiverStatus(obj.status)) {
        throw new BadRequestError("Failed to delete the object. Error: Can't delete object on the receiving side for ESS");
      }
      await abandonUpload(this.deps, org, type, id);
      const gone = await this.deps.store.deleteObject(org, type, id);
      if (gone !== null) this.deps.changes?.onObjectRemoved(gone);
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

  /** Removes the staging areas of uploads that are gone (a deleted organization's). */
  async releaseStagingAreas(stagingIds: readonly string[]): Promise<void> {
    for (const id of stagingIds) await this.deps.blobs.deleteStaging(id);
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
      this.deps.changes?.onObjectStored(existing, obj);
      if (existing !== null && existing.blobId !== obj.blobId) replaced = existing.blobId;
      return obj;
    });
    await this.releaseBlob(replaced);
    return stored;
  }

  /** Read-modify-write of one object under its lock. */
  async modify(org: string, type: string, id: string, fn: (obj: StoredObject | null) => StoredObject | null): Promise<StoredObject | null> {
    return this.lock(org, type, id, async () => {
      const before = await this.deps.store.getObject(org, type, id);
      const next = fn(before);
      if (next === null) return null;
      const stored = { ...next, lastUpdate: this.now().getTime() };
      await this.deps.store.putObject(stored);
      this.deps.changes?.onObjectStored(before, stored);
      // Destinations and activation change in place; the Sender keeps the progress of
      // destinations that stay, so other marks cost a lookup and change nothing.
      if (!isReceiverStatus(stored.status)) await this.deps.listener?.onObjectPublished(stored);
      else await this.deps.receiverListener?.onReceivedObjectMarked(stored);
      return next;
    });
  }
}
