/**
 * The notification records of upstream objects: one per (object, originating ESS), saying what
 * the CSS still owes that ESS (see upstream-receiver.ts for the statuses). Moving a record into
 * a status the ESS's poll serves wakes its long-poll.
 */
import type { DeliveryStatus, MetaData, ObjectStatus } from '../model/index.js';
import { notificationKey, type Notification, type NotificationKey, type NotificationStatus, type NotificationStore } from '../store/notification-types.js';
import type { StoredObject } from '../store/types.js';
import { UPSTREAM_DELETE_PATH, UPSTREAM_SERVED } from './notification-states.js';
import type { PeerSignal } from './peer-signal.js';
import type { UpstreamPeer, UpstreamRef } from './upstream-messages.js';

/** Object statuses in which the upstream data is complete here. */
export const COMPLETE: readonly ObjectStatus[] = ['completelyReceived', 'objreceived', 'objconsumed'];



/** The record status matching what the object's state still owes the ESS. */
export function statusFor(obj: StoredObject): NotificationStatus | null {
  if (obj.status === 'partiallyreceived') return 'handleUpdate';
  if (obj.status === 'objconsumed') return 'consumedPending';
  if (COMPLETE.includes(obj.status)) return 'receivedpending';
  return null;
}

export interface UpstreamRecordsDeps {
  notifications: NotificationStore;
  /** Wakes the long-poll of the ESS a record was queued for. */
  peerSignal?: Pick<PeerSignal, 'notify'>;
  /** Epoch ms. */
  now: () => number;
}

export class UpstreamRecords {
  constructor(private readonly deps: UpstreamRecordsDeps) {}

  key(peer: UpstreamPeer, ref: Pick<UpstreamRef, 'objectType' | 'objectID'>): NotificationKey {
    return { orgID: peer.orgID, objectType: ref.objectType, objectID: ref.objectID, peerType: peer.peerType, peerID: peer.peerID };
  }

  get(k: NotificationKey): Promise<Notification | null> {
    return this.deps.notifications.getNotification(k.orgID, k.objectType, k.objectID, k.peerType, k.peerID);
  }

  async put(k: NotificationKey, meta: Pick<MetaData, 'instanceID' | 'dataID'>, status: NotificationStatus): Promise<void> {
    // Delivery status is about sending; for an upstream record it only says which path it is on
    // (`pending` keeps it out of the destination listing of objects sent to the ESS).
    const deliveryStatus: DeliveryStatus = UPSTREAM_DELETE_PATH.includes(status) ? 'deleted' : 'pending';
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
      lastUpdate: this.deps.now(),
    });
    if (UPSTREAM_SERVED.includes(status)) this.deps.peerSignal?.notify(k.orgID, k.peerType, k.peerID);
  }

  /** Moves the record while it is still about `instanceID` and in one of `from`. */
  async move(k: NotificationKey, instanceID: bigint, from: readonly NotificationStatus[], to: NotificationStatus): Promise<boolean> {
    const rec = await this.get(k);
    if (rec === null || rec.instanceID !== instanceID || !from.includes(rec.status)) return false;
    const moved = await this.deps.notifications.updateNotificationIf(notificationKey(rec), { status: rec.status, instanceID }, { status: to, resendAt: 0, attempts: 0, lastUpdate: this.deps.now() });
    if (moved && UPSTREAM_SERVED.includes(to)) this.deps.peerSignal?.notify(k.orgID, k.peerType, k.peerID);
    return moved;
  }

  /** Compare-and-set of a record still in `from` about its instance. */
  cas(rec: Notification, patch: { status?: NotificationStatus }): Promise<boolean> {
    return this.deps.notifications.updateNotificationIf(notificationKey(rec), { status: rec.status, instanceID: rec.instanceID }, { ...patch, lastUpdate: this.deps.now() });
  }

  /** Deletes the record: the pair it tracked is over. */
  remove(rec: Notification): Promise<boolean> {
    return this.deps.notifications.deleteNotification(notificationKey(rec));
  }
}
