/**
 * The sending side of the sync engine on the ESS, for objects its apps publish (ESS-originated
 * objects): one notification record per object, keyed by the CSS (`Cloud/Cloud`), says what
 * the ESS still owes the CSS, so nothing is lost across failures and restarts. Transport-
 * agnostic: it decides, the agent (ess/agent.ts, ess/upload.ts) sends and reports back.
 * [ref sync-protocol §1 "Upload of ESS → CSS objects", "Ack semantics"; §3]
 *
 * Record statuses used here (their lists: notification-states.ts; none of them is one the Receiver
 * uses for objects coming from the CSS, so the two directions share the table without mixing):
 * - `update`: the metadata of this instance is owed (`PUT …/update`, MQTT `update`);
 * - `data`: the CSS took the metadata; the data is owed from `offset` (bytes the CSS acked, or,
 *   to a CSS that pulls, bytes served so far);
 * - `updated`: everything was sent; the CSS's `received` is awaited;
 * - `receivedByDest`: the CSS has it; its `consumed` may follow;
 * - `deletePending`: the app deleted the object; `PUT …/delete` is owed (not `delete`, which the
 *   Receiver's records use for a deletion coming from the CSS);
 * - `ackDelete`: the CSS applied the deletion; its app's confirmation (`deleted`) is awaited.
 */
import type { MetaData } from '../model/index.js';
import { isReceiverStatus } from '../model/index.js';
import type { Notification, NotificationKey, NotificationPatch, NotificationStatus, NotificationStore } from '../store/notification-types.js';
import type { Store, StoredObject } from '../store/types.js';
import type { DeletionsInProgress } from './deletions.js';
import type { ObjectListener, ObjectService } from './object-service.js';
import { ORIGIN_DELETING, ORIGIN_OWED, ORIGIN_SENT } from './notification-states.js';
import type { SyncEvents } from './sync-events.js';

/** The CSS always identifies itself as `Cloud/Cloud`. [ref sync-protocol §0] */
const CSS = { peerType: 'Cloud', peerID: 'Cloud' } as const;


/** Consumed objects' metadata kept for reporting, and the slack before trimming. [ref sync-protocol §6 ESS consumed-object history] */
const CONSUMED_KEPT = 1000;
const CONSUMED_SLACK = 1.1;

/**
 * - `applied`: the message moved something here;
 * - `duplicate`: it was applied before (the ack was lost): ack again;
 * - `stale`: it is about another instance than the one held: ack anyway, change nothing.
 * The CSS is answered with the matching ack in every case. [ref sync-protocol §3]
 */
export type OriginOutcome = 'applied' | 'duplicate' | 'stale';

export interface OriginSenderDeps {
  store: Pick<Store, 'listObjects'>;
  notifications: NotificationStore;
  objects: Pick<ObjectService, 'get' | 'storeReceived' | 'dropReceived'>;
  /** The ESS's org. */
  orgID: string;
  /** Keeps a deleted object readable as `objdeleted` until the CSS took the deletion. */
  deletions?: Pick<DeletionsInProgress, 'begin' | 'settle'>;
  /** `consumedByDest` objects kept (ESS_CONSUMED_OBJECTS_KEPT); default 1000. */
  consumedKept?: number;
  /** Epoch ms; tests inject a fake clock. */
  now?: () => number;
  /** Told of each delivery to the CSS queued and of each delivery status its records take. */
  events?: SyncEvents;
}

function keyOf(n: NotificationKey): NotificationKey {
  return { orgID: n.orgID, objectType: n.objectType, objectID: n.objectID, peerType: n.peerType, peerID: n.peerID };
}

/** An object is sent once it is ready and active, as on the CSS. [ref sync-protocol §6 inactive] */
function deliverable(obj: StoredObject): boolean {
  return obj.status === 'ready' && !obj.meta.inactive;
}

/** Whether the object has bytes to push after its metadata. */
export function hasDataToPush(obj: StoredObject): boolean {
  return obj.blobId !== null && !obj.meta.noData && obj.meta.link === '';
}

export class OriginSender implements ObjectListener {
  private readonly now: () => number;

  constructor(private readonly deps: OriginSenderDeps) {
    this.now = deps.now ?? Date.now;
  }

  private key(m: Pick<MetaData, 'objectType' | 'objectID'>): NotificationKey {
    return { orgID: this.deps.orgID, objectType: m.objectType, objectID: m.objectID, ...CSS };
  }

  /** The record of an object. */
  recordOf(m: Pick<MetaData, 'objectType' | 'objectID'>): Promise<Notification | null> {
    return this.deps.notifications.getNotification(this.deps.orgID, m.objectType, m.objectID, CSS.peerType, CSS.peerID);
  }

  private async putRecord(m: Pick<MetaData, 'objectType' | 'objectID' | 'instanceID' | 'dataID'>, status: NotificationStatus): Promise<void> {
    const rec: Notification = {
      ...this.key(m),
      status,
      instanceID: m.instanceID,
      dataID: m.dataID,
      deliveryStatus: ORIGIN_DELETING.includes(status) ? 'deleted' : 'delivering',
      message: '',
      resendAt: 0,
      attempts: 0,
      offset: 0,
      lastUpdate: this.now(),
    };
    await this.deps.notifications.putNotification(rec);
    const events = this.deps.events;
    if (events === undefined) return;
    if (rec.deliveryStatus === 'delivering') events.deliveryQueued?.(rec, rec);
    events.deliveryStatus?.(rec, rec, rec.deliveryStatus);
  }

  /** Compare-and-set on what `rec` says: a newer instance or a deletion queued meanwhile wins. */
  private async cas(rec: Notification, patch: NotificationPatch): Promise<boolean> {
    const moved = await this.deps.notifications.updateNotificationIf(keyOf(rec), { status: rec.status, instanceID: rec.instanceID }, { ...patch, lastUpdate: this.now() });
    if (moved && patch.deliveryStatus !== undefined && patch.deliveryStatus !== rec.deliveryStatus) this.deps.events?.deliveryStatus?.(rec, rec, patch.deliveryStatus);
    return moved;
  }

  /**
   * An app published (or changed) an object here: its current instance is owed to the CSS. A
   * record already about this instance keeps its progress; a newer instance supersedes an older
   * one still on its way, whose upload then stops at its next compare-and-set.
   */
  async onObjectPublished(obj: StoredObject, addressed?: (destinations: number) => void): Promise<void> {
    if (isReceiverStatus(obj.status) || !deliverable(obj)) return;
    const rec = await this.recordOf(obj.meta);
    if (rec !== null && rec.instanceID > obj.meta.instanceID) return;
    if (rec !== null && rec.instanceID === obj.meta.instanceID && !ORIGIN_DELETING.includes(rec.status)) return;
    // The CSS, the one peer of an ESS.
    addressed?.(1);
    await this.putRecord(obj.meta, 'update');
  }

  /**
   * An app deleted an object here. If the CSS may have heard of it, a `delete` is owed, and
   * until the CSS takes it the object reads as `objdeleted` (deletions.ts); its row and data
   * are gone at once, and the record describes it to the CSS. [ref sync-protocol §3 Delete 1, 3]
   */
  async onObjectDeleted(obj: StoredObject): Promise<void> {
    const rec = await this.recordOf(obj.meta);
    if (rec !== null && rec.instanceID <= obj.meta.instanceID && !ORIGIN_DELETING.includes(rec.status)) await this.putRecord(obj.meta, 'deletePending');
    await this.deps.deletions?.begin(obj);
  }

  /** Records with a message owed to the CSS that is due (a failed attempt waits for its `resendAt`). */
  async owed(limit: number): Promise<Notification[]> {
    const now = this.now();
    const recs = await this.deps.notifications.listPendingForPeer(this.deps.orgID, CSS.peerType, CSS.peerID, ORIGIN_OWED, limit);
    return recs.filter((r) => r.resendAt <= now);
  }

  /**
   * The object `rec` is about, while it is still that instance and ready; else null, and a
   * record left about an object that can no longer be sent is dropped (never resent in a loop).
   */
  async sendable(rec: Notification): Promise<StoredObject | null> {
    const obj = await this.deps.objects.get(rec.orgID, rec.objectType, rec.objectID);
    if (obj !== null && obj.meta.instanceID === rec.instanceID && deliverable(obj)) return obj;
    if (obj !== null && obj.meta.instanceID === rec.instanceID && (await this.cas(rec, {}))) {
      await this.deps.notifications.deleteNotification(keyOf(rec));
    }
    return null;
  }

  /**
   * The CSS took the metadata (204): the data is owed next, or nothing when there is none.
   * @param dataDueBy when the data is owed (epoch ms): 0 = at once (this side pushes it); for a
   *   CSS that pulls, when to announce the metadata again if it did not ask for it all by then
   * @returns the record as it now stands, or null when it moved on meanwhile
   */
  async updateTaken(rec: Notification, obj: StoredObject, dataDueBy = 0): Promise<Notification | null> {
    const status: NotificationStatus = hasDataToPush(obj) ? 'data' : 'updated';
    const patch: NotificationPatch = { status, offset: 0, resendAt: status === 'data' ? dataDueBy : 0, attempts: 0 };
    return (await this.cas(rec, patch)) ? { ...rec, ...patch } : null;
  }

  /**
   * The object published here whose data a CSS that pulls (MQTT) asks for: `ref`'s instance,
   * while it is current, ready and has data; else null (the CSS is then answered with nothing).
   */
  async servable(ref: Pick<MetaData, 'objectType' | 'objectID' | 'instanceID'>): Promise<StoredObject | null> {
    const obj = await this.deps.objects.get(this.deps.orgID, ref.objectType, ref.objectID);
    return obj !== null && obj.meta.instanceID === ref.instanceID && deliverable(obj) && hasDataToPush(obj) ? obj : null;
  }

  /**
   * A CSS that pulls (MQTT) was served the data of `ref` up to `offset` (exclusive): the
   * progress is recorded, and the data stays owed until `dueBy` (epoch ms), when the metadata
   * is announced again unless the CSS asked for more meanwhile; serving the last byte ends it
   * (the CSS's `received` follows, and a chunk it asks for again is still served).
   * Applies to a record at `update` too: the CSS may ask before this side heard it took the update.
   */
  async dataServed(ref: Pick<MetaData, 'objectType' | 'objectID' | 'instanceID'>, offset: number, total: number, dueBy: number): Promise<void> {
    const rec = await this.recordOf(ref);
    if (rec === null || rec.instanceID !== ref.instanceID || (rec.status !== 'update' && rec.status !== 'data')) return;
    await this.cas(rec, offset >= total ? { status: 'updated', offset, resendAt: 0, attempts: 0 } : { status: 'data', offset: Math.max(offset, rec.status === 'data' ? rec.offset : 0), resendAt: dueBy });
  }

  /**
   * The CSS acked the data up to `offset` (exclusive): persisted, so a failure or a restart
   * resumes from there; the last byte ends the push.
   * @returns false when the record moved on meanwhile (a newer instance): stop pushing
   */
  chunkTaken(rec: Notification, offset: number, total: number): Promise<boolean> {
    return this.cas(rec, offset >= total ? { status: 'updated', offset, resendAt: 0, attempts: 0 } : { offset });
  }

  /**
   * The CSS refused to continue the push where this side left it (it lost its part): start
   * the data again from 0, after `at`.
   */
  restartData(rec: Notification, at: number): Promise<boolean> {
    return this.cas(rec, { offset: 0, resendAt: at, attempts: rec.attempts + 1 });
  }

  /** The CSS no longer expects this instance's data: tell it the metadata again, after `at`. */
  reannounce(rec: Notification, at: number): Promise<boolean> {
    return this.cas(rec, { status: 'update', offset: 0, resendAt: at, attempts: rec.attempts + 1 });
  }

  /** The CSS refused the metadata as stale (409): nothing more to send for this instance. */
  refused(rec: Notification): Promise<boolean> {
    return this.cas(rec, { status: 'updated', resendAt: 0, attempts: 0 });
  }

  /** The CSS took the deletion (204, or 409: nothing to delete): its app's confirmation is awaited. */
  async deleteTaken(rec: Notification): Promise<boolean> {
    const taken = await this.cas(rec, { status: 'ackDelete', resendAt: 0, attempts: 0 });
    await this.deps.deletions?.settle(rec.orgID, rec.objectType, rec.objectID);
    return taken;
  }

  /** The metadata a `delete` carries: the object is gone here, its record names it. */
  deletedMetaData(rec: Notification, origin: { destinationType: string; destinationID: string }): Pick<MetaData, 'objectType' | 'objectID' | 'destinationOrgID' | 'originType' | 'originID' | 'instanceID' | 'dataID' | 'deleted'> {
    return {
      objectType: rec.objectType,
      objectID: rec.objectID,
      destinationOrgID: rec.orgID,
      originType: origin.destinationType,
      originID: origin.destinationID,
      instanceID: rec.instanceID,
      dataID: rec.dataID,
      deleted: true,
    };
  }

  /** An attempt for `rec` failed; try again at `at` (epoch ms). */
  async retryLater(rec: Notification, at: number): Promise<void> {
    await this.cas(rec, { resendAt: at, attempts: rec.attempts + 1 });
  }

  /**
   * The CSS says the object is complete there (`received`; the ESS answers `ackreceived`).
   * [ref sync-protocol §1 "Upload of ESS → CSS objects"]
   */
  async onReceived(meta: Pick<MetaData, 'objectType' | 'objectID' | 'instanceID'>): Promise<OriginOutcome> {
    const rec = await this.recordOf(meta);
    if (rec === null || rec.instanceID !== meta.instanceID) return 'stale';
    if (rec.status === 'receivedByDest') return 'duplicate';
    if (!ORIGIN_SENT.includes(rec.status)) return 'stale';
    return (await this.cas(rec, { status: 'receivedByDest', deliveryStatus: 'delivered', resendAt: 0, attempts: 0 })) ? 'applied' : 'stale';
  }

  /**
   * The CSS's app consumed the object (`consumed`; the ESS answers `ackconsumed`): it becomes
   * `consumedByDest` here, its data goes, and only its metadata is kept for reporting, up to
   * ESS_CONSUMED_OBJECTS_KEPT of them. [ref sync-protocol §3 "Special cases", receiver CSS, step 10]
   */
  async onConsumed(meta: Pick<MetaData, 'objectType' | 'objectID' | 'instanceID'>): Promise<OriginOutcome> {
    const { orgID } = this.deps;
    const seen: { outcome: OriginOutcome } = { outcome: 'stale' };
    await this.deps.objects.storeReceived(orgID, meta.objectType, meta.objectID, (obj) => {
      if (obj === null || obj.meta.instanceID !== meta.instanceID) return null;
      if (obj.status === 'consumedByDest') {
        seen.outcome = 'duplicate';
        return null;
      }
      if (obj.status !== 'ready') return null;
      seen.outcome = 'applied';
      return { ...obj, status: 'consumedByDest', blobId: null, dataSha256: null, lastUpdate: this.now() };
    });
    const rec = await this.recordOf(meta);
    if (rec !== null && rec.instanceID === meta.instanceID && ORIGIN_SENT.includes(rec.status) && (await this.cas(rec, {}))) {
      await this.deps.notifications.deleteNotification(keyOf(rec));
      // The record ends here rather than take the status: observers still hear the delivery's end.
      this.deps.events?.deliveryStatus?.(rec, rec, 'consumed');
    }
    if (seen.outcome === 'applied') await this.trimConsumed();
    return seen.outcome;
  }

  /**
   * The CSS's app confirmed the deletion (`deleted`; the ESS answers `ackDeleted`): the pair is
   * over. [ref sync-protocol §3 Delete 5–6]
   */
  async onDeleted(meta: Pick<MetaData, 'objectType' | 'objectID' | 'instanceID'>): Promise<OriginOutcome> {
    const rec = await this.recordOf(meta);
    if (rec === null || rec.instanceID !== meta.instanceID || !ORIGIN_DELETING.includes(rec.status)) return rec === null ? 'duplicate' : 'stale';
    if (!(await this.cas(rec, {}))) return 'stale';
    await this.deps.notifications.deleteNotification(keyOf(rec));
    await this.deps.deletions?.settle(rec.orgID, rec.objectType, rec.objectID);
    return 'applied';
  }

  /** Oldest `consumedByDest` objects go once there are 10% more than kept. */
  private async trimConsumed(): Promise<void> {
    const kept = this.deps.consumedKept ?? CONSUMED_KEPT;
    const consumed = await this.deps.store.listObjects({ org: this.deps.orgID, statuses: ['consumedByDest'] });
    if (consumed.length <= kept * CONSUMED_SLACK) return;
    const oldest = [...consumed].sort((a, b) => a.lastUpdate - b.lastUpdate).slice(0, consumed.length - kept);
    for (const o of oldest) await this.deps.objects.dropReceived(o.meta.destinationOrgID, o.meta.objectType, o.meta.objectID);
  }

  /** Every record this ESS holds toward the CSS in one of `statuses`. */
  private async allRecords(statuses: readonly NotificationStatus[]): Promise<Notification[]> {
    return this.deps.notifications.listPendingForPeer(this.deps.orgID, CSS.peerType, CSS.peerID, statuses, Number.MAX_SAFE_INTEGER);
  }

  /** The deletions the CSS may not have confirmed yet, to carry across a register-new. */
  deletionsInFlight(): Promise<Notification[]> {
    return this.allRecords(ORIGIN_DELETING);
  }

  /**
   * The CSS did not know this ESS (register-new): every record toward it was dropped. Every
   * object this ESS originated is owed again, and so are the deletions it had not confirmed.
   * Called before the register-new request itself, so a failure of that request keeps them.
   * [ref sync-protocol §3 Registration step 5]
   */
  async onRegisterNew(deletions: readonly Notification[]): Promise<void> {
    for (const rec of deletions) {
      const current = await this.recordOf(rec);
      if (current === null) await this.putRecord(rec, 'deletePending');
    }
    for (const obj of await this.deps.store.listObjects({ org: this.deps.orgID })) {
      if (!isReceiverStatus(obj.status) && deliverable(obj)) await this.putRecord(obj.meta, 'update');
    }
  }

  /**
   * At start-up: publishes and deletions committed while nothing listened (before the sync
   * started, or by a crash between the object's commit and its record) get their records.
   */
  async reconcile(): Promise<void> {
    for (const obj of await this.deps.store.listObjects({ org: this.deps.orgID })) await this.onObjectPublished(obj);
    for (const rec of await this.allRecords(ORIGIN_SENT)) {
      const obj = await this.deps.objects.get(rec.orgID, rec.objectType, rec.objectID);
      if (obj === null) await this.cas(rec, { status: 'deletePending', deliveryStatus: 'deleted', offset: 0, resendAt: 0, attempts: 0 });
    }
  }
}
