/**
 * The storage seam of the sync engine: one notification record per (object, peer). The record
 * is the protocol state machine of that pair [ref sync-protocol §0, §3] and also carries the
 * per-destination delivery status users see, so that one write moves both together. It lives in
 * its own table/collection, never inside the object, so an ack from one of thousands of nodes
 * rewrites one small record, not the object.
 */
import type { DeliveryStatus } from '../model/index.js';

/**
 * Every status a notification record can hold, spelled as the reference spells them (mixed
 * casing included: `receivedpending` but `updatePending`), because the wire commands are the
 * same strings. [ref sync-protocol §3 "Status constants"] Wire-only commands (`resend`,
 * `register`, `ping`, `feedback`…) are never stored and are not listed.
 */
export const NOTIFICATION_STATUSES = [
  // Wire commands that are also record states.
  'update',
  'updated',
  'consumed',
  'ackconsumed',
  'received',
  'ackreceived',
  'delete',
  'ackDelete',
  'deleted',
  'ackDeleted',
  'getdata',
  'data',
  // Record-only: the receiver is processing an update.
  'handleUpdate',
  // Record-only: queued toward an ESS that polls over HTTP.
  'updatePending',
  'consumedPending',
  'deletePending',
  'deletedPending',
  'receivedpending',
  // Record-only: sender-side final states.
  'receivedByDest',
  'consumedByDest',
  // Record-only: the sender got error feedback / the receiver sent it.
  'error',
  'receiverError',
] as const;

/** The state of one (object, peer) pair. */
export type NotificationStatus = (typeof NOTIFICATION_STATUSES)[number];

/**
 * Identifies a record: the object `orgID/objectType/objectID` and the peer
 * `peerType/peerID` (the destination on the sender, the origin on the receiver; the CSS is
 * `Cloud/Cloud`). The peer is always in the object's org.
 */
export interface NotificationKey {
  orgID: string;
  objectType: string;
  objectID: string;
  peerType: string;
  peerID: string;
}

/** The key of a record (or of anything holding its fields), without the rest. */
export function notificationKey(n: NotificationKey): NotificationKey {
  return { orgID: n.orgID, objectType: n.objectType, objectID: n.objectID, peerType: n.peerType, peerID: n.peerID };
}

/** One notification record. */
export interface Notification extends NotificationKey {
  /** Where the protocol stands for this pair. */
  status: NotificationStatus;
  /** The object instance the record is about; messages for another instance are stale. */
  instanceID: bigint;
  /** The data version the record is about (equals instanceID when the data changed). */
  dataID: bigint;
  /** What the destinations API reports for this peer. [ref rest-api §3.2] */
  deliveryStatus: DeliveryStatus;
  /** Reason shown with `deliveryStatus` (e.g. the feedback of an `error`); '' when none. */
  message: string;
  /** Epoch ms at which the resend scheduler picks the record up again; 0 = not scheduled. */
  resendAt: number;
  /** Sends of the current status so far (for back-off and reporting). */
  attempts: number;
  /** Bytes of data durably transferred, from which a broken transfer resumes. */
  offset: number;
  /** Epoch ms of the last change; the poll query serves older records first. */
  lastUpdate: number;
}

/** One group of `NotificationStore.countNotifications`. */
export interface NotificationCount {
  orgID: string;
  status: NotificationStatus;
  deliveryStatus: DeliveryStatus;
  count: number;
}

/** Fields a compare-and-set may change; the key is immutable. */
export type NotificationPatch = Partial<Omit<Notification, keyof NotificationKey>>;

/**
 * What the stored record must still hold for a compare-and-set to apply. An absent field is
 * not compared; `{}` applies to any existing record.
 */
export interface NotificationExpectation {
  status?: NotificationStatus;
  instanceID?: bigint;
}

/**
 * Notification records, shared by every process of a node (several CSS processes share one
 * MongoDB). Methods that list take a limit so a caller pages through thousands of peers.
 */
export interface NotificationStore {
  /** Inserts the record, or replaces every field of the record with the same key. */
  putNotification(n: Notification): Promise<void>;
  getNotification(orgID: string, objectType: string, objectID: string, peerType: string, peerID: string): Promise<Notification | null>;
  /**
   * Applies `patch` only if the record exists and still matches `expected`, atomically against
   * every other process: a repeated or stale message (older instance, status already moved on)
   * then changes nothing. To accept one of several statuses, read the record, check its status,
   * and pass the status read as `expected.status`.
   * @returns true when the patch was applied.
   */
  updateNotificationIf(key: NotificationKey, expected: NotificationExpectation, patch: NotificationPatch): Promise<boolean>;
  /** @returns true when a record was deleted, false when there was none. */
  deleteNotification(key: NotificationKey): Promise<boolean>;
  /** The records of one object, ordered by (peerType, peerID). */
  listForObject(orgID: string, objectType: string, objectID: string): Promise<Notification[]>;
  /**
   * The poll query: the records of one peer in one of `statuses` (none for an empty list),
   * oldest `lastUpdate` first, ties by key, at most `limit` of them.
   */
  listPendingForPeer(
    orgID: string,
    peerType: string,
    peerID: string,
    statuses: readonly NotificationStatus[],
    limit: number,
  ): Promise<Notification[]>;
  /**
   * The resend scheduler's query, across all orgs: records with `0 < resendAt <= now`, earliest
   * `resendAt` first, ties by key, at most `limit` of them.
   */
  listDue(now: number, limit: number): Promise<Notification[]>;
  /** Deletes the records of one object; @returns how many were deleted. */
  deleteForObject(orgID: string, objectType: string, objectID: string): Promise<number>;
  /** Deletes the records of one peer (unregister, register-as-new); @returns how many were deleted. */
  deleteForPeer(orgID: string, peerType: string, peerID: string): Promise<number>;
  /**
   * How many records each org holds in each (status, deliveryStatus) pair, every org at once; a
   * pair with none is left out. For the metrics, read at scrape time.
   */
  countNotifications(): Promise<NotificationCount[]>;
  /** How many of the object's records are in each delivery status; every status is present, 0 when none. */
  countByDeliveryStatus(orgID: string, objectType: string, objectID: string): Promise<Record<DeliveryStatus, number>>;
}
