/**
 * What the sending side does with the receiver's answers about a sender-originated object:
 * the acks of the normal update and delete paths, feedback, and a receiver's request to have
 * everything sent again. Each answer is a compare-and-set on the one record of (object, peer),
 * so a repeated or stale answer changes nothing. Transport-agnostic: the HTTP SPI calls it
 * today, MQTT will later. [ref sync-protocol §3]
 */
import { retryDelay } from './resend-scheduler.js';
import type { DeliveryStatus } from '../model/index.js';
import { notificationKey, type Notification, type NotificationKey, type NotificationPatch, type NotificationStatus, type NotificationStore } from '../store/notification-types.js';
import type { Store } from '../store/types.js';
import type { DeletionsInProgress } from './deletions.js';
import type { ObjectService } from './object-service.js';
import type { PeerSignal } from './peer-signal.js';
import { ACK_TARGET, ACK_TRANSITIONS, MAY_HOLD, RESEND_STATUSES, RESEND_TO, type SenderAck } from './notification-states.js';
import { objectLogFields } from '../model/log-fields.js';
import { NO_SYNC_EVENTS, type SyncEvents } from './sync-events.js';

/** Defined with the transitions it drives (notification-states.ts); re-exported for the callers of this module. */
export type { SenderAck };

/** The receiver's error report. [ref sync-protocol §3 Feedback] */
export interface Feedback {
  code: number;
  /** Seconds before the sender may try again; 0 = no hint. */
  retryInterval: number;
  reason: string;
}

/**
 * - `applied`: the record moved.
 * - `duplicate`: the record is already where this answer would move it; nothing to do, and the
 *   receiver must hear "acked" so that it stops repeating itself.
 * - `stale`: the answer is about another instance than the record's.
 * - `unknown`: there is no record for the pair (never sent, or already finished).
 * - `ignored`: the record is not in a state that takes this answer.
 * The last three change nothing; the reference answers them 409. [ref sync-protocol §1]
 */
export type AckOutcome = 'applied' | 'duplicate' | 'stale' | 'unknown' | 'ignored';

/** Feedback code meaning "invalid or not found": the sender forgets the pair. [ref sync-protocol §3 Feedback] */
const FEEDBACK_NOT_FOUND = 5;

const RESEND_BATCH = 500;

/** The reference's RESEND_INTERVAL default. */
const DEFAULT_RESEND_INTERVAL_MS = 10_000;

export interface SenderAcksDeps {
  store: Store;
  notifications: NotificationStore;
  /** Removes an autodelete object once consumed everywhere; also tells the listener. */
  objects: Pick<ObjectService, 'delete'>;
  /** Told when a destination acknowledged a deletion: the last one ends the `objdeleted` phase. */
  deletions?: Pick<DeletionsInProgress, 'settle'>;
  /** Told when a resend requeued records: it wakes a long-poll of that peer. */
  peerSignal?: Pick<PeerSignal, 'notify'>;
  /** RESEND_INTERVAL, ms: the first retry delay after an error feedback (10 s when absent). */
  resendIntervalMs?: number;
  /** Epoch ms; tests inject a fake clock. */
  now?: () => number;
  /** Told (INFO) of each delivery, consumption and deletion a destination acknowledges. */
  log?: { info(obj: object, msg: string): void };
  /** Told of each delivery status an answer or a resend request moves a record to. */
  events?: SyncEvents;
}

/** The INFO line of an applied answer, for those that tell an object's story. */
const STORY: Partial<Record<SenderAck, string>> = {
  received: 'object delivered',
  consumed: 'object consumed by destination',
  ackDelete: 'object deleted at destination',
};


export class SenderAcks {
  private readonly now: () => number;
  private readonly events: SyncEvents;

  constructor(private readonly deps: SenderAcksDeps) {
    this.now = deps.now ?? Date.now;
    this.events = deps.events ?? NO_SYNC_EVENTS;
  }

  /**
   * Applies one answer of peer `key.peerType/key.peerID` about instance `instanceID` of the
   * object. `feedback` is required for the `feedback` answer and ignored otherwise. `dataID`,
   * when the answer names one, must be the record's too: an answer about the right instance but
   * other data is not about what was sent, and is `stale` like one about another instance.
   */
  async apply(key: NotificationKey, instanceID: bigint, ack: SenderAck, feedback?: Feedback, dataID?: bigint): Promise<AckOutcome> {
    const { notifications } = this.deps;
    const rec = await notifications.getNotification(key.orgID, key.objectType, key.objectID, key.peerType, key.peerID);
    if (rec === null) return 'unknown';
    if (rec.instanceID !== instanceID || (dataID !== undefined && rec.dataID !== dataID)) return 'stale';
    const t = ACK_TRANSITIONS[ack];
    if (t.done.includes(rec.status)) return 'duplicate';
    if (!t.from.includes(rec.status)) return 'ignored';
    const expected = { status: rec.status, instanceID };
    if (ack === 'deleted' || (ack === 'feedback' && feedback?.code === FEEDBACK_NOT_FOUND)) {
      // The pair is over: the receiver confirmed the deletion, or says the object is unknown
      // to it. The store has no conditional delete: the compare-and-set first makes sure a
      // newer instance queued meanwhile is not dropped with it (it narrows the race to the gap
      // between the two calls, where a republish would be lost until the next change).
      if (!(await notifications.updateNotificationIf(notificationKey(rec), expected, { lastUpdate: this.now() }))) return 'stale';
      await notifications.deleteNotification(notificationKey(rec));
      await this.deps.deletions?.settle(rec.orgID, rec.objectType, rec.objectID);
      return 'applied';
    }
    const patch = this.patchFor(ack, feedback, rec.attempts);
    if (!(await notifications.updateNotificationIf(notificationKey(rec), expected, patch))) return 'stale';
    // Before the autodelete below: an observer hears `consumed` before the object goes.
    if (patch.deliveryStatus !== undefined && patch.deliveryStatus !== rec.deliveryStatus) this.events.deliveryStatus?.(rec, rec, patch.deliveryStatus, patch.message);
    if (ack === 'consumed') await this.autodeleteIfAllConsumed(rec);
    if (ack === 'ackDelete') await this.deps.deletions?.settle(rec.orgID, rec.objectType, rec.objectID);
    const story = STORY[ack];
    if (story !== undefined) this.deps.log?.info(objectLogFields(rec.orgID, rec.objectType, rec.objectID, { type: rec.peerType, id: rec.peerID }, rec.instanceID), story);
    return 'applied';
  }

  private patchFor(ack: Exclude<SenderAck, 'deleted'>, feedback: Feedback | undefined, attempts: number): NotificationPatch {
    const lastUpdate = this.now();
    const to = (status: NotificationStatus, deliveryStatus?: DeliveryStatus): NotificationPatch => ({
      status,
      ...(deliveryStatus !== undefined ? { deliveryStatus, message: '' } : {}),
      resendAt: 0,
      // A delivery's failures count until it completes: `updated` keeps the count, so the
      // retry delay keeps growing while the same delivery keeps failing.
      attempts: status === 'updated' ? attempts : 0,
      lastUpdate,
    });
    switch (ack) {
      case 'updated':
        return to(ACK_TARGET.updated);
      case 'received':
        // Over HTTP the 204 answering `received` is the ack; no `receivedpending` record
        // is needed to tell the receiver. [ref sync-protocol §1 Ack semantics]
        return to(ACK_TARGET.received, 'delivered');
      case 'consumed':
        return to(ACK_TARGET.consumed, 'consumed');
      case 'ackDelete':
        return to(ACK_TARGET.ackDelete, 'deleted');
      case 'feedback': {
        // Retried by the ResendScheduler: after the receiver's own interval if it named one,
        // else after a delay that doubles with each failure of this delivery.
        const delay = feedback !== undefined && feedback.retryInterval > 0 ? feedback.retryInterval * 1000 : retryDelay(this.deps.resendIntervalMs ?? DEFAULT_RESEND_INTERVAL_MS, attempts);
        return { status: ACK_TARGET.feedback, deliveryStatus: 'error', message: feedback?.reason ?? '', resendAt: lastUpdate + delay, attempts: attempts + 1, lastUpdate };
      }
    }
  }

  /**
   * An autodelete object goes once every destination consumed it. Divergence, kept now that the
   * expiry sweep exists (lib/sync/maintenance/expiry.ts): the reference sets a one-hour
   * expiration and lets its sweep remove the object; we remove it now, since an object consumed
   * everywhere has nothing left to deliver (README "Autodelete"). No delete is sent (the
   * receivers drop their copies after consuming), so the records go first and the removal finds
   * none to turn into deletes.
   * [ref sync-protocol §6 autodelete, §3 step 10]
   */
  private async autodeleteIfAllConsumed(rec: Notification): Promise<void> {
    const { store, notifications, objects } = this.deps;
    const obj = await store.getObject(rec.orgID, rec.objectType, rec.objectID);
    if (obj === null || !obj.meta.autodelete || obj.meta.instanceID !== rec.instanceID) return;
    const records = await notifications.listForObject(rec.orgID, rec.objectType, rec.objectID);
    if (!records.every((r) => r.status === 'consumedByDest' && r.instanceID === rec.instanceID)) return;
    await notifications.deleteForObject(rec.orgID, rec.objectType, rec.objectID);
    try {
      await objects.delete(rec.orgID, rec.objectType, rec.objectID);
    } catch (e) {
      // Another consumed ack (or the user) removed it first: the goal is reached.
      if ((await store.getObject(rec.orgID, rec.objectType, rec.objectID)) !== null) throw e;
    }
  }

  /**
   * A receiver asks for everything again (it may have lost what it had): every record of the
   * peer in the org that is not final goes back to pending, about the object's current
   * instance. [ref sync-protocol §1 resend, §3 Registration "resend"]
   * @returns how many records were requeued
   */
  async resend(orgID: string, peerType: string, peerID: string): Promise<number> {
    const { store, notifications } = this.deps;
    let requeued = 0;
    for (;;) {
      const batch = await notifications.listPendingForPeer(orgID, peerType, peerID, RESEND_STATUSES, RESEND_BATCH);
      let progress = 0;
      for (const rec of batch) {
        const status = RESEND_TO.get(rec.status);
        if (status === undefined) continue;
        const patch: NotificationPatch = { status, message: '', resendAt: 0, attempts: 0, offset: 0, lastUpdate: this.now() };
        if (status === MAY_HOLD) {
          const obj = await store.getObject(rec.orgID, rec.objectType, rec.objectID);
          if (obj === null) {
            // The object went while the record was being read: its removal decides the record.
            continue;
          }
          patch.instanceID = obj.meta.instanceID;
          patch.dataID = obj.meta.dataID;
          if (rec.deliveryStatus !== 'pending') patch.deliveryStatus = 'delivering';
        }
        if (await notifications.updateNotificationIf(notificationKey(rec), { status: rec.status, instanceID: rec.instanceID }, patch)) {
          requeued++;
          progress++;
          if (patch.deliveryStatus !== undefined && patch.deliveryStatus !== rec.deliveryStatus) this.events.deliveryStatus?.({ ...rec, instanceID: patch.instanceID ?? rec.instanceID }, rec, patch.deliveryStatus);
        }
      }
      // Requeued records leave the query's statuses; a batch that moved nothing (all lost a
      // race, or their objects are gone) would come back unchanged.
      if (batch.length < RESEND_BATCH || progress === 0) {
        if (requeued > 0) this.deps.peerSignal?.notify(orgID, peerType, peerID);
        return requeued;
      }
    }
  }
}
