/**
 * The receiving side of the sync engine on the CSS, for objects an ESS published (ESS-originated
 * objects): the ESS pushes the metadata (`update`) and the data (`data`, whole or in
 * `Content-Range` chunks), later its deletion (`delete`); it acks what the CSS queued for it
 * (`ackreceived`, `ackconsumed`, `ackDeleted`). CSS apps see these objects through the normal
 * object API, and their marks queue what the ESS must hear (`consumed`, `deleted`).
 * Transport-agnostic: the HTTP SPI maps requests onto it. [ref sync-protocol §1 "Upload of
 * ESS → CSS objects", §3 "Special cases when the receiver is the ESS or the CSS"]
 *
 * One record per (object, originating ESS), statuses used here:
 * - `handleUpdate`: metadata stored as `partiallyreceived`, data awaited;
 * - `receivedpending`: complete here, `received` queued for the ESS; `ackreceived` once acked;
 * - `consumedPending`: a CSS app consumed it, `consumed` queued; on `ackconsumed` the copy goes;
 * - `ackDelete`: the ESS's deletion is applied, the app's confirmation awaited;
 * - `deletedPending`: the app confirmed, `deleted` queued; on `ackDeleted` the record goes.
 * None of them is one the CSS's own resend or sender acks act on, so the two directions of an
 * ESS's records never mix.
 */
import type { Readable } from 'node:stream';
import {
  BadRequestError,
  ConflictError,
  PayloadTooLargeError,
  isReceiverStatus,
  objectKey,
  validateObjectUpdate,
  type ByteRange,
  type DeliveryStatus,
  type MetaData,
  type ObjectStatus,
} from '../model/index.js';
import type { Notification, NotificationKey, NotificationStatus, NotificationStore } from '../store/notification-types.js';
import type { BlobStore, BlobWriteResult, Store, StoredObject } from '../store/types.js';
import { verifyDownloadedData } from './data-check.js';
import { KeyedMutex } from './keyed-mutex.js';
import { normalizeConsumers, type ObjectService, type ReceiverListener } from './object-service.js';
import { appendChunk } from './upload-chunks.js';
import type { PeerSignal } from './peer-signal.js';

/** The ESS a message comes from (authenticated by the transport): the record's peer. */
export interface UpstreamPeer {
  orgID: string;
  peerType: string;
  peerID: string;
}

/** Which object instance a message is about (from the SPI path). */
export interface UpstreamRef {
  objectType: string;
  objectID: string;
  instanceID: number;
  /** Absent in the reference's short path form. */
  dataID?: number;
}

/**
 * - `applied`: the message changed something.
 * - `duplicate`: already applied; the sender must hear "acked" (204) so it stops repeating.
 * - `stale`: about an older instance than the one held, or one already deleted (409).
 * - `unknown`: nothing to apply it to, e.g. an ack for a record already gone (409).
 * - `ignored`: the record is not in a state that takes this message (409).
 * The last three change nothing. [ref sync-protocol §1 "409 = ignored by handler"]
 */
export type UpstreamOutcome = 'applied' | 'duplicate' | 'stale' | 'unknown' | 'ignored';

/** Object statuses in which the upstream data is complete here. */
const COMPLETE: readonly ObjectStatus[] = ['completelyReceived', 'objreceived', 'objconsumed'];

/** Record statuses of the delete path. */
const DELETE_PATH: readonly NotificationStatus[] = ['ackDelete', 'deletedPending'];

/** Statuses the ESS is told of by the poll: a record moving into one wakes its long-poll. */
const SERVED: readonly NotificationStatus[] = ['receivedpending', 'consumedPending', 'deletedPending'];

export interface UpstreamReceiverDeps {
  store: Store;
  notifications: NotificationStore;
  blobs: BlobStore;
  objects: Pick<ObjectService, 'get' | 'storeReceived' | 'dropReceived'>;
  /** Wakes the long-poll of the ESS a record was queued for. */
  peerSignal?: Pick<PeerSignal, 'notify'>;
  /** Largest object data accepted, bytes; 0 = unlimited (EDGESYNC_MAX_DATA_SIZE). */
  maxDataSize: number;
  /** Epoch ms; tests inject a fake clock. */
  now?: () => number;
}

/** How a `data` message carries its bytes. */
export interface UpstreamData {
  /** Whole body: its declared length, when known. */
  size?: number;
  /** One chunk: `Content-Range: bytes start-end/total`. */
  range?: ByteRange & { total: number };
  /** Hex SHA-256 of the whole data, when the ESS states it (our extension); checked on the last byte. */
  sha256?: string;
  signal?: AbortSignal;
}

function keyOf(n: NotificationKey): NotificationKey {
  return { orgID: n.orgID, objectType: n.objectType, objectID: n.objectID, peerType: n.peerType, peerID: n.peerID };
}

/** The record status matching what the object's state still owes the ESS. */
function statusFor(obj: StoredObject): NotificationStatus | null {
  if (obj.status === 'partiallyreceived') return 'handleUpdate';
  if (obj.status === 'objconsumed') return 'consumedPending';
  if (COMPLETE.includes(obj.status)) return 'receivedpending';
  return null;
}

export class UpstreamReceiver implements ReceiverListener {
  private readonly now: () => number;
  /** One chunk at a time per object in this process; across processes advanceUpload decides. */
  private readonly uploads = new KeyedMutex();

  constructor(private readonly deps: UpstreamReceiverDeps) {
    this.now = deps.now ?? Date.now;
  }

  private key(peer: UpstreamPeer, ref: Pick<UpstreamRef, 'objectType' | 'objectID'>): NotificationKey {
    return { orgID: peer.orgID, objectType: ref.objectType, objectID: ref.objectID, peerType: peer.peerType, peerID: peer.peerID };
  }

  private record(k: NotificationKey): Promise<Notification | null> {
    return this.deps.notifications.getNotification(k.orgID, k.objectType, k.objectID, k.peerType, k.peerID);
  }

  private async putRecord(k: NotificationKey, meta: Pick<MetaData, 'instanceID' | 'dataID'>, status: NotificationStatus): Promise<void> {
    // Delivery status is about sending; for an upstream record it only says which path it is on
    // (`pending` keeps it out of the destination listing of objects sent to the ESS).
    const deliveryStatus: DeliveryStatus = DELETE_PATH.includes(status) ? 'deleted' : 'pending';
    await this.deps.notifications.putNotification({
      ...k,
      status,
      instanceID: meta.instanceID,
      dataID: meta.dataID,
      deliveryStatus,
      message: '',
      resendAt: 0,
      attempts: 0,
      offset: 0,
      lastUpdate: this.now(),
    });
    if (SERVED.includes(status)) this.deps.peerSignal?.notify(k.orgID, k.peerType, k.peerID);
  }

  /** Moves the record while it is still about `instanceID` and in one of `from`. */
  private async move(k: NotificationKey, instanceID: number, from: readonly NotificationStatus[], to: NotificationStatus): Promise<boolean> {
    const rec = await this.record(k);
    if (rec === null || rec.instanceID !== instanceID || !from.includes(rec.status)) return false;
    const moved = await this.deps.notifications.updateNotificationIf(keyOf(rec), { status: rec.status, instanceID }, { status: to, resendAt: 0, attempts: 0, lastUpdate: this.now() });
    if (moved && SERVED.includes(to)) this.deps.peerSignal?.notify(k.orgID, k.peerType, k.peerID);
    return moved;
  }

  /** Abandons an upload of another instance than `instanceID` (or any, when undefined). */
  private async dropUpload(org: string, type: string, id: string, keepInstance?: number): Promise<void> {
    const upload = await this.deps.store.getUpload(org, type, id);
    if (upload === null || upload.instanceID === keepInstance) return;
    await this.deps.store.deleteUpload(org, type, id);
    await this.deps.blobs.deleteStaging(upload.stagingId);
  }

  /**
   * `update`: the ESS's metadata of a new instance. Validated like an object published on an
   * ESS through the API, stored as `partiallyreceived` (complete at once without data) with the
   * calling ESS as its origin. The newest instanceID wins; the same one again is a duplicate
   * (a lost 204), which restores a record a register-new dropped. [ref sync-protocol §1, §3 step 2]
   * @throws BadRequestError for metadata that does not validate or does not match `ref`
   * @throws ConflictError when the key is taken by an object the CSS itself publishes
   */
  async applyUpdate(peer: UpstreamPeer, ref: UpstreamRef, input: MetaData): Promise<UpstreamOutcome> {
    // A file URI names a file on the ESS (a reference ESS may publish from one): meaningless here,
    // and refused by the validation below, which would make the ESS resend forever.
    const meta: MetaData = { ...input, sourceDataUri: '', destinationDataUri: '' };
    validateObjectUpdate({ meta, data: undefined }, { orgID: peer.orgID, objectType: ref.objectType, objectID: ref.objectID, nodeType: 'ESS', now: new Date(this.now()) });
    if (meta.instanceID !== ref.instanceID) throw new BadRequestError(`instanceID (${meta.instanceID}) in the payload doesn't match the instance (${ref.instanceID}) in the URL`);
    if (ref.dataID !== undefined && meta.dataID !== ref.dataID) throw new BadRequestError(`dataID (${meta.dataID}) in the payload doesn't match the data ID (${ref.dataID}) in the URL`);
    if (meta.instanceID <= 0) throw new BadRequestError('instanceID must be positive');
    if (meta.objectSize < 0) throw new BadRequestError('objectSize must not be negative');
    if (!meta.noData && meta.link === '' && this.deps.maxDataSize > 0 && meta.objectSize > this.deps.maxDataSize) throw new PayloadTooLargeError(this.deps.maxDataSize);
    // The origin is who sent it, whatever the payload claims. [ref sync-protocol §2 "MQTT authenticity": we check]
    meta.originType = peer.peerType;
    meta.originID = peer.peerID;
    const k = this.key(peer, meta);
    // Set by the read-modify-write below (a closure: plain `let`s would stay narrowed to their initial values).
    const seen: { outcome: UpstreamOutcome; held: StoredObject | null } = { outcome: 'stale', held: null };
    const stored = await this.deps.objects.storeReceived(peer.orgID, meta.objectType, meta.objectID, (existing) => {
      if (existing !== null && !isReceiverStatus(existing.status)) throw new ConflictError('ignored: the CSS publishes an object with this key itself');
      if (existing !== null && existing.meta.instanceID > meta.instanceID) return null;
      if (existing !== null && existing.meta.instanceID === meta.instanceID) {
        if (existing.status !== 'objdeleted') {
          seen.outcome = 'duplicate';
          seen.held = existing;
        }
        return null;
      }
      const keepsData = meta.metaOnly && existing !== null && existing.blobId !== null && existing.meta.dataID === meta.dataID;
      const complete = meta.noData || meta.link !== '' || keepsData;
      const consumers = normalizeConsumers(meta.consumers);
      seen.outcome = 'applied';
      return {
        meta: { ...meta, objectSize: complete && !keepsData ? 0 : meta.objectSize },
        status: complete ? 'completelyReceived' : 'partiallyreceived',
        blobId: keepsData && existing !== null ? existing.blobId : null,
        dataSha256: keepsData && existing !== null ? existing.dataSha256 : null,
        remainingConsumers: consumers,
        remainingReceivers: consumers,
        policyReceived: false,
        lastUpdate: this.now(),
      };
    });
    if (stored !== null) {
      await this.dropUpload(peer.orgID, meta.objectType, meta.objectID, meta.instanceID);
      const status = statusFor(stored);
      if (status !== null) await this.putRecord(k, meta, status);
    } else if (seen.held !== null) {
      const rec = await this.record(k);
      const status = statusFor(seen.held);
      if (status !== null && (rec === null || rec.instanceID !== meta.instanceID)) await this.putRecord(k, meta, status);
    }
    return seen.outcome;
  }

  /**
   * `data`: the bytes of the instance being received, whole or one chunk. Chunks come in order;
   * one wholly inside what was received is a retry and changes nothing; the upload's progress is
   * persisted (store upload session + blob staging area, as for chunked API uploads), so a
   * sender that restarts resumes where it left. The object completes on the last byte, and
   * `received` is queued for the ESS. [ref sync-protocol §1 "Upload of ESS → CSS objects"]
   * @throws BadRequestError for a gap, an overlap, a size that contradicts the metadata, or data
   *   whose SHA-256 differs from the one stated; PayloadTooLargeError beyond the configured size
   */
  async putData(peer: UpstreamPeer, ref: UpstreamRef, source: Readable, data: UpstreamData): Promise<UpstreamOutcome> {
    const obj = await this.deps.objects.get(peer.orgID, ref.objectType, ref.objectID);
    const check = this.checkDataTarget(peer, ref, obj);
    if (check !== null || obj === null) {
      source.resume();
      return check ?? 'unknown';
    }
    const total = data.range?.total ?? data.size ?? obj.meta.objectSize;
    if (total !== obj.meta.objectSize) {
      throw new BadRequestError(`The data has ${total} bytes but the object's metadata says objectSize ${obj.meta.objectSize}`);
    }
    const max = this.deps.maxDataSize;
    if (max > 0 && total > max) throw new PayloadTooLargeError(max);
    if (data.range === undefined) {
      const written = await this.deps.blobs.write(source, { expectedSize: total, ...(data.signal ? { signal: data.signal } : {}) });
      return this.complete(peer, obj.meta, written, data.sha256);
    }
    const range = data.range;
    return this.uploads.run(objectKey(peer.orgID, ref.objectType, ref.objectID), () => this.acceptChunk(peer, obj.meta, range, source, data));
  }

  /** Why a data message cannot go to `obj` (null: it can). */
  private checkDataTarget(peer: UpstreamPeer, ref: UpstreamRef, obj: StoredObject | null): UpstreamOutcome | null {
    if (obj === null || !isReceiverStatus(obj.status) || obj.meta.originType !== peer.peerType || obj.meta.originID !== peer.peerID) return 'unknown';
    if (obj.meta.instanceID !== ref.instanceID || obj.status === 'objdeleted') return 'stale';
    if (ref.dataID !== undefined && ref.dataID !== obj.meta.dataID) return 'stale';
    // The last chunk's 204 was lost, or a metaOnly instance whose data the CSS already holds.
    if (COMPLETE.includes(obj.status)) return 'duplicate';
    return obj.status === 'partiallyreceived' ? null : 'ignored';
  }

  private async acceptChunk(peer: UpstreamPeer, meta: MetaData, range: ByteRange & { total: number }, source: Readable, data: UpstreamData): Promise<UpstreamOutcome> {
    const { orgID } = peer;
    const { objectType: type, objectID: id } = meta;
    // Re-read under the upload lock: the chunk before may just have completed the object.
    const check = this.checkDataTarget(peer, meta, await this.deps.objects.get(orgID, type, id));
    if (check !== null) {
      source.resume();
      return check;
    }
    const result = await appendChunk({ store: this.deps.store, blobs: this.deps.blobs, now: this.now }, { orgID, objectType: type, objectID: id, instanceID: meta.instanceID }, range, source, data.signal);
    if (result.kind === 'retry') return 'duplicate';
    if (result.kind === 'partial') return 'applied';
    return this.complete(peer, { ...meta, uploadChunkSize: result.chunkSize }, result.written, data.sha256);
  }

  /** The whole data of `meta`'s instance is in a blob: the object completes, `received` is queued. */
  private async complete(peer: UpstreamPeer, meta: MetaData, written: BlobWriteResult, stated: string | undefined): Promise<UpstreamOutcome> {
    const verdict = verifyDownloadedData(stated, written.sha256);
    if (verdict.kind === 'mismatch') {
      await this.deps.blobs.delete(written.blobId);
      throw new BadRequestError(verdict.reason);
    }
    const stored = await this.deps.objects.storeReceived(peer.orgID, meta.objectType, meta.objectID, (obj) => {
      if (obj === null || obj.meta.instanceID !== meta.instanceID || obj.status !== 'partiallyreceived') return null;
      const consumers = normalizeConsumers(obj.meta.consumers);
      return {
        ...obj,
        meta: { ...obj.meta, objectSize: written.size, uploadChunkSize: meta.uploadChunkSize },
        status: 'completelyReceived',
        blobId: written.blobId,
        dataSha256: written.sha256,
        remainingConsumers: consumers,
        remainingReceivers: consumers,
      };
    });
    if (stored === null) {
      // Replaced or deleted meanwhile: this data belongs to no object.
      await this.deps.blobs.delete(written.blobId);
      return 'stale';
    }
    // A chunked attempt a whole PUT overtook leaves its staging area behind otherwise.
    await this.dropUpload(peer.orgID, meta.objectType, meta.objectID);
    await this.putRecord(this.key(peer, meta), meta, 'receivedpending');
    return 'applied';
  }

  /**
   * Applies an ack the ESS sends about a record the CSS queued for it: `apply` runs on a record
   * in `from` about this instance and returns false when it lost a race (a newer instance).
   */
  private async ack(peer: UpstreamPeer, ref: UpstreamRef, from: NotificationStatus, done: readonly NotificationStatus[], apply: (rec: Notification) => Promise<boolean>): Promise<UpstreamOutcome> {
    const rec = await this.record(this.key(peer, ref));
    if (rec === null) return 'unknown';
    if (rec.instanceID !== ref.instanceID) return 'stale';
    if (done.includes(rec.status)) return 'duplicate';
    if (rec.status !== from) return 'ignored';
    return (await apply(rec)) ? 'applied' : 'stale';
  }

  /** Compare-and-set of a record still in `from` about its instance. */
  private cas(rec: Notification, patch: { status?: NotificationStatus }): Promise<boolean> {
    return this.deps.notifications.updateNotificationIf(keyOf(rec), { status: rec.status, instanceID: rec.instanceID }, { ...patch, lastUpdate: this.now() });
  }

  /** `ackreceived`: the ESS heard the object is complete here. [ref sync-protocol §1] */
  ackReceived(peer: UpstreamPeer, ref: UpstreamRef): Promise<UpstreamOutcome> {
    return this.ack(peer, ref, 'receivedpending', ['ackreceived', 'consumedPending'], (rec) => this.cas(rec, { status: 'ackreceived' }));
  }

  /**
   * `ackconsumed`: the ESS heard its object was consumed; the CSS's copy and the record go.
   * [ref sync-protocol §3 step 11, "for an ESS-originated object, the CSS deletes its copy"]
   */
  ackConsumed(peer: UpstreamPeer, ref: UpstreamRef): Promise<UpstreamOutcome> {
    return this.ack(peer, ref, 'consumedPending', [], async (rec) => {
      // The store has no conditional delete: the compare-and-set first makes sure a newer
      // instance that arrived meanwhile is not dropped with this one.
      if (!(await this.cas(rec, {}))) return false;
      const obj = await this.deps.objects.get(rec.orgID, rec.objectType, rec.objectID);
      if (obj !== null && obj.meta.instanceID === rec.instanceID && obj.status === 'objconsumed') {
        await this.deps.objects.dropReceived(rec.orgID, rec.objectType, rec.objectID);
      }
      await this.deps.notifications.deleteNotification(keyOf(rec));
      return true;
    });
  }

  /** `ackDeleted`: the ESS heard the app confirmed its deletion; the pair is over. [ref sync-protocol §3 Delete 6] */
  ackDeleted(peer: UpstreamPeer, ref: UpstreamRef): Promise<UpstreamOutcome> {
    return this.ack(peer, ref, 'deletedPending', [], async (rec) => {
      if (!(await this.cas(rec, {}))) return false;
      await this.deps.notifications.deleteNotification(keyOf(rec));
      return true;
    });
  }

  /**
   * `delete`: the ESS deleted its object. The copy becomes `objdeleted` with `deleted: true` and
   * loses its data, so CSS apps see the deletion and confirm it; an object never received is
   * kept as such a placeholder. A repeat, or an older instance, changes nothing.
   * [ref sync-protocol §3 Delete 2]
   * @throws BadRequestError when the payload names another object or instance than the path
   */
  async applyDelete(peer: UpstreamPeer, ref: UpstreamRef, input: MetaData): Promise<UpstreamOutcome> {
    if (input.objectType !== ref.objectType || input.objectID !== ref.objectID) throw new BadRequestError("The object in the payload doesn't match the object in the URL");
    if (input.destinationOrgID !== '' && input.destinationOrgID !== peer.orgID) throw new BadRequestError(`Destination organization ID (${input.destinationOrgID}) in the payload doesn't match the organization (${peer.orgID}) in the URL`);
    const k = this.key(peer, ref);
    const rec = await this.record(k);
    if (rec !== null && rec.instanceID === ref.instanceID && DELETE_PATH.includes(rec.status)) return 'duplicate';
    const seen: { outcome: UpstreamOutcome } = { outcome: 'stale' };
    await this.deps.objects.storeReceived(peer.orgID, ref.objectType, ref.objectID, (obj) => {
      if (obj !== null && !isReceiverStatus(obj.status)) {
        seen.outcome = 'unknown';
        return null;
      }
      if (obj !== null && (obj.meta.originType !== peer.peerType || obj.meta.originID !== peer.peerID)) {
        seen.outcome = 'unknown';
        return null;
      }
      if (obj !== null && obj.meta.instanceID > ref.instanceID) return null;
      if (obj !== null && obj.meta.instanceID === ref.instanceID && obj.status === 'objdeleted') {
        seen.outcome = 'duplicate';
        return null;
      }
      seen.outcome = 'applied';
      const base = obj?.meta ?? { ...input, dataID: ref.dataID ?? input.dataID };
      const meta: MetaData = { ...base, destinationOrgID: peer.orgID, originType: peer.peerType, originID: peer.peerID, instanceID: ref.instanceID, deleted: true };
      const consumers = normalizeConsumers(meta.consumers);
      return { meta, status: 'objdeleted', blobId: null, dataSha256: null, remainingConsumers: consumers, remainingReceivers: consumers, policyReceived: false, lastUpdate: this.now() };
    });
    if (seen.outcome === 'applied' || (seen.outcome === 'duplicate' && (rec === null || rec.instanceID !== ref.instanceID))) {
      await this.dropUpload(peer.orgID, ref.objectType, ref.objectID);
      await this.putRecord(k, { instanceID: ref.instanceID, dataID: ref.dataID ?? input.dataID }, 'ackDelete');
    }
    return seen.outcome;
  }

  /** The ESS that published `obj`, when it is an upstream object. */
  private peerOf(obj: StoredObject): UpstreamPeer | null {
    const m = obj.meta;
    if (!isReceiverStatus(obj.status) || m.originType === '' || m.originID === '') return null;
    return { orgID: m.destinationOrgID, peerType: m.originType, peerID: m.originID };
  }

  /** A CSS app consumed an upstream object: once every consumer has, `consumed` is queued. [ref sync-protocol §3 step 9] */
  async onReceivedObjectMarked(obj: StoredObject): Promise<void> {
    const peer = this.peerOf(obj);
    if (peer === null || obj.status !== 'objconsumed') return;
    await this.move(this.key(peer, obj.meta), obj.meta.instanceID, ['receivedpending', 'ackreceived'], 'consumedPending');
  }

  /**
   * A CSS app deleted its copy of an upstream object through the API: the pair's record goes
   * with it (nothing it queued can be served without the object). The ESS is not told, as in
   * the reference; a later instance it publishes arrives as a new object.
   */
  async onReceivedObjectDeleted(obj: StoredObject): Promise<void> {
    const peer = this.peerOf(obj);
    if (peer === null) return;
    const rec = await this.record(this.key(peer, obj.meta));
    if (rec !== null && rec.instanceID <= obj.meta.instanceID && (await this.cas(rec, {}))) await this.deps.notifications.deleteNotification(keyOf(rec));
  }

  /** A CSS app confirmed the ESS's deletion (the copy is gone): `deleted` is queued. [ref sync-protocol §3 Delete 4] */
  async onDeletionConfirmed(obj: StoredObject): Promise<void> {
    const peer = this.peerOf(obj);
    if (peer === null) return;
    await this.move(this.key(peer, obj.meta), obj.meta.instanceID, ['ackDelete'], 'deletedPending');
  }
}
