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
 *
 * The parts: the messages' vocabulary (upstream-messages.ts), the records (upstream-records.ts)
 * and the data path (upstream-data.ts).
 */
import type { Readable } from 'node:stream';
import { BadRequestError, ConflictError, PayloadTooLargeError, isReceiverStatus, validateObjectUpdate, type MetaData } from '../model/index.js';
import type { Notification, NotificationStore } from '../store/notification-types.js';
import type { BlobStore, Store, StoredObject } from '../store/types.js';
import { normalizeConsumers } from './consumer-counts.js';
import { receivedInstance } from './received-instance.js';
import type { ObjectService, ReceiverListener } from './object-service.js';
import type { PeerSignal } from './peer-signal.js';
import { abandonUpload } from './upload-chunks.js';
import { UpstreamDataIntake } from './upstream-data.js';
import type { UpstreamAck } from './css/types.js';
import type { UpstreamData, UpstreamOutcome, UpstreamPeer, UpstreamRef } from './upstream-messages.js';
import { UPSTREAM_ACK_TRANSITIONS, UPSTREAM_APP_MOVES, UPSTREAM_DELETE_PATH } from './notification-states.js';
import { UpstreamRecords, statusFor } from './upstream-records.js';

/** Moved to upstream-messages.ts; re-exported for the callers of this module. */
export type { UpstreamData, UpstreamOutcome, UpstreamPeer, UpstreamRef };

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

export class UpstreamReceiver implements ReceiverListener {
  private readonly now: () => number;
  private readonly records: UpstreamRecords;
  private readonly data: UpstreamDataIntake;

  constructor(private readonly deps: UpstreamReceiverDeps) {
    this.now = deps.now ?? Date.now;
    this.records = new UpstreamRecords({ notifications: deps.notifications, ...(deps.peerSignal ? { peerSignal: deps.peerSignal } : {}), now: this.now });
    this.data = new UpstreamDataIntake({ store: deps.store, blobs: deps.blobs, objects: deps.objects, records: this.records, maxDataSize: deps.maxDataSize, now: this.now });
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
    // The reference CSS owns an ESS's object to `org/destinationID`. [ref traffic ess-to-css.jsonl 5]
    meta.ownerID = `${peer.orgID}/${peer.peerID}`;
    const k = this.records.key(peer, meta);
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
      seen.outcome = 'applied';
      const row = receivedInstance(meta, existing, this.now());
      // Complete without data of its own (no data, a link): it has none to size.
      return row.status === 'completelyReceived' && row.blobId === null ? { ...row, meta: { ...row.meta, objectSize: 0 } } : row;
    });
    if (stored !== null) {
      await abandonUpload(this.deps, peer.orgID, meta.objectType, meta.objectID, meta.instanceID);
      const status = statusFor(stored);
      if (status !== null) await this.records.put(k, meta, status);
    } else if (seen.held !== null) {
      const rec = await this.records.get(k);
      const status = statusFor(seen.held);
      if (status !== null && (rec === null || rec.instanceID !== meta.instanceID)) await this.records.put(k, meta, status);
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
  putData(peer: UpstreamPeer, ref: UpstreamRef, source: Readable, data: UpstreamData): Promise<UpstreamOutcome> {
    return this.data.putData(peer, ref, source, data);
  }

  /**
   * Applies an ack the ESS sends about a record the CSS queued for it: `apply` runs on a record
   * in `from` about this instance and returns false when it lost a race (a newer instance).
   */
  private async ack(peer: UpstreamPeer, ref: UpstreamRef, action: UpstreamAck, apply: (rec: Notification) => Promise<boolean>): Promise<UpstreamOutcome> {
    const { from, done } = UPSTREAM_ACK_TRANSITIONS[action];
    const rec = await this.records.get(this.records.key(peer, ref));
    if (rec === null) return 'unknown';
    if (rec.instanceID !== ref.instanceID) return 'stale';
    if (done.includes(rec.status)) return 'duplicate';
    if (rec.status !== from) return 'ignored';
    return (await apply(rec)) ? 'applied' : 'stale';
  }

  /** `ackreceived`: the ESS heard the object is complete here. [ref sync-protocol §1] */
  ackReceived(peer: UpstreamPeer, ref: UpstreamRef): Promise<UpstreamOutcome> {
    return this.ack(peer, ref, 'ackreceived', (rec) => this.records.cas(rec, { status: 'ackreceived' }));
  }

  /**
   * `ackconsumed`: the ESS heard its object was consumed; the CSS's copy and the record go.
   * [ref sync-protocol §3 step 11, "for an ESS-originated object, the CSS deletes its copy"]
   */
  ackConsumed(peer: UpstreamPeer, ref: UpstreamRef): Promise<UpstreamOutcome> {
    return this.ack(peer, ref, 'ackconsumed', async (rec) => {
      // The store has no conditional delete: the compare-and-set first makes sure a newer
      // instance that arrived meanwhile is not dropped with this one.
      if (!(await this.records.cas(rec, {}))) return false;
      const obj = await this.deps.objects.get(rec.orgID, rec.objectType, rec.objectID);
      if (obj !== null && obj.meta.instanceID === rec.instanceID && obj.status === 'objconsumed') {
        await this.deps.objects.dropReceived(rec.orgID, rec.objectType, rec.objectID);
      }
      await this.records.remove(rec);
      return true;
    });
  }

  /** `ackDeleted`: the ESS heard the app confirmed its deletion; the pair is over. [ref sync-protocol §3 Delete 6] */
  ackDeleted(peer: UpstreamPeer, ref: UpstreamRef): Promise<UpstreamOutcome> {
    return this.ack(peer, ref, 'ackDeleted', async (rec) => {
      if (!(await this.records.cas(rec, {}))) return false;
      await this.records.remove(rec);
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
    const k = this.records.key(peer, ref);
    const rec = await this.records.get(k);
    if (rec !== null && rec.instanceID === ref.instanceID && UPSTREAM_DELETE_PATH.includes(rec.status)) return 'duplicate';
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
      await abandonUpload(this.deps, peer.orgID, ref.objectType, ref.objectID);
      await this.records.put(k, { instanceID: ref.instanceID, dataID: ref.dataID ?? input.dataID }, 'ackDelete');
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
    const { from, to } = UPSTREAM_APP_MOVES.consumed;
    await this.records.move(this.records.key(peer, obj.meta), obj.meta.instanceID, from, to);
  }

  /**
   * A CSS app deleted its copy of an upstream object through the API: the pair's record goes
   * with it (nothing it queued can be served without the object). The ESS is not told, as in
   * the reference; a later instance it publishes arrives as a new object.
   */
  async onReceivedObjectDeleted(obj: StoredObject): Promise<void> {
    const peer = this.peerOf(obj);
    if (peer === null) return;
    const rec = await this.records.get(this.records.key(peer, obj.meta));
    if (rec !== null && rec.instanceID <= obj.meta.instanceID && (await this.records.cas(rec, {}))) await this.records.remove(rec);
  }

  /** A CSS app confirmed the ESS's deletion (the copy is gone): `deleted` is queued. [ref sync-protocol §3 Delete 4] */
  async onDeletionConfirmed(obj: StoredObject): Promise<void> {
    const peer = this.peerOf(obj);
    if (peer === null) return;
    const { from, to } = UPSTREAM_APP_MOVES.deletionConfirmed;
    await this.records.move(this.records.key(peer, obj.meta), obj.meta.instanceID, from, to);
  }
}
