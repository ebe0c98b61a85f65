/**
 * The states of a notification record (one per object and peer) and the moves between them,
 * in one place: which statuses a poll serves and as what command, which are on the delete path,
 * which an ack moves from and to, what a resend puts back. Every module of the engine that asks
 * "is this record …?" asks here. The status names are the store's (lib/store/notification-types.ts),
 * spelled as the reference spells them. [ref sync-protocol §3 "Status constants"]
 *
 * The ESS's records (lib/sync/receiver.ts, origin-sender.ts, read by the agent in lib/sync/ess)
 * are at the end: the two directions use disjoint statuses, so they share the table unmixed.
 */
import type { DeliveryStatus, ObjectStatus } from '../model/index.js';
import type { NotificationStatus } from '../store/notification-types.js';
import type { SyncItemType, UpstreamAck } from './css/types.js';
import type { EssAction } from './ess/css-link.js';

// ---- The sender's records (CSS → ESS): one per (object, destination). ----

/**
 * The two statuses of an update queued toward a peer. `updatePending`: the peer was never served
 * anything of the object by this CSS, so it holds nothing of it. `update`: it may hold (part of)
 * it: a poll served it this update (the session moves the record when it serves it), or it got
 * an earlier instance. Both are served by the poll until acked; the difference decides whether a
 * deletion must be sent. [ref sync-protocol §3 Normal update step 1, Delete step 1]
 */
export const NEVER_SERVED = 'updatePending' satisfies NotificationStatus;
export const MAY_HOLD = 'update' satisfies NotificationStatus;

/**
 * Delivery states in which the peer may have been sent the object (a peer still `pending` never
 * got anything), and the ones `GET /api/v1/destinations/{org}/{type}/{id}/objects` reports.
 * [ref sync-protocol §3 Delete, rest-api §1.3]
 */
export const REACHED_DELIVERY: readonly DeliveryStatus[] = ['delivering', 'delivered', 'consumed', 'error'];

/** Whether the record is an update waiting to be served (or served again). */
export function isQueuedUpdate(status: NotificationStatus): boolean {
  return status === NEVER_SERVED || status === MAY_HOLD;
}

/**
 * Statuses that mean "this peer is being told the object is gone", in either direction: a
 * record in one of them serves no data and is not replaced by a repeated publish.
 */
export const DELETE_PATH: readonly NotificationStatus[] = ['delete', 'deletePending', 'ackDelete', 'deleted', 'deletedPending', 'ackDeleted'];

/**
 * A deletion some destination has yet to acknowledge: owed or served, not yet answered
 * `ackDelete`; the object reads as `objdeleted` meanwhile. The same on the CSS (Sender) and on
 * the ESS (OriginSender, toward the CSS).
 */
export const DELETE_UNACKNOWLEDGED: readonly NotificationStatus[] = ['deletePending', 'delete'];

/** Statuses from which the peer's first data download moves the record to `getdata`. [ref sync-protocol §3 step 4] */
export const BEFORE_GETDATA: readonly NotificationStatus[] = ['updatePending', 'update', 'updated'];

/**
 * Record statuses queued for an ESS, and the command each is served as (a poll entry over
 * HTTP, a message over MQTT). The sender's updates and deletes, and the CSS's answers about
 * objects the ESS published (upstream). [ref sync-protocol §1 Poll, §3 Status constants]
 */
export const SERVED_AS: ReadonlyMap<NotificationStatus, SyncItemType> = new Map<NotificationStatus, SyncItemType>([
  [NEVER_SERVED, 'update'],
  [MAY_HOLD, 'update'],
  ['consumedPending', 'consumed'],
  ['deletePending', 'delete'],
  ['deletedPending', 'deleted'],
  ['receivedpending', 'received'],
]);
export const SERVED_STATUSES: readonly NotificationStatus[] = [...SERVED_AS.keys()];

/** Served entries that describe a deletion: their object may be gone, the entry is marked `deleted`. */
export const SERVED_AS_DELETION: readonly NotificationStatus[] = ['deletePending', 'deletedPending'];

/**
 * Every status of the Sender's records (CSS → ESS): a delivery from this CSS. (`ackDelete` is
 * also an upstream status, for an ESS's object the CSS deleted on its word.)
 */
export const SENDER_STATUSES: readonly NotificationStatus[] = [NEVER_SERVED, MAY_HOLD, 'updated', 'getdata', 'data', 'receivedByDest', 'consumedByDest', 'error', 'deletePending', 'delete', 'ackDelete'];

/** Answers a receiver sends about an object the sender originated. */
export type SenderAck = 'updated' | 'received' | 'consumed' | 'ackDelete' | 'deleted' | 'feedback';

export interface AckTransition {
  /** Statuses the answer is accepted in. */
  from: readonly NotificationStatus[];
  /** Statuses in which the answer was already applied (a repeat). */
  done: readonly NotificationStatus[];
}

/** Update-path statuses before the receiver confirmed it holds the data. */
const UPDATE_OPEN: readonly NotificationStatus[] = ['updatePending', 'update', 'updated', 'getdata', 'data'];

/** Where each answer is taken. [ref sync-protocol §3 Normal update steps 3, 6, 10; Delete steps 3, 5; Feedback] */
export const ACK_TRANSITIONS: Readonly<Record<SenderAck, AckTransition>> = {
  updated: { from: ['updatePending', 'update'], done: ['updated', 'getdata', 'data', 'receivedByDest', 'consumedByDest'] },
  // From `error` too: a receiver that reported a failure (e.g. a data SHA-256 mismatch) and
  // then got the data on its own retry is done; the error must not stick.
  received: { from: [...UPDATE_OPEN, 'error'], done: ['receivedByDest', 'consumedByDest'] },
  consumed: { from: [...UPDATE_OPEN, 'receivedByDest'], done: ['consumedByDest'] },
  ackDelete: { from: ['deletePending', 'delete'], done: ['ackDelete'] },
  deleted: { from: ['delete', 'deletePending', 'ackDelete'], done: [] },
  feedback: { from: [...UPDATE_OPEN, 'error'], done: [] },
};

/** Where an applied answer moves the record (`deleted` ends it instead). */
export const ACK_TARGET: Readonly<Record<Exclude<SenderAck, 'deleted'>, NotificationStatus>> = {
  updated: 'updated',
  received: 'receivedByDest',
  consumed: 'consumedByDest',
  ackDelete: 'ackDelete',
  feedback: 'error',
};

/**
 * Record statuses a resend request puts back in the queue, and the status they go back to.
 * Final states stay: `consumedByDest` (the receiver is done with the object) and `ackDelete`
 * (the receiver already dropped it, only its app's confirmation is awaited). A record already
 * pending (`updatePending`, `update`, `deletePending`) needs nothing. An update goes back as
 * `update`, not `updatePending`: the receiver was served it, so it may hold the object and must
 * hear of its deletion. [ref sync-protocol §3 Registration "resend"]
 */
export const RESEND_TO: ReadonlyMap<NotificationStatus, NotificationStatus> = new Map<NotificationStatus, NotificationStatus>([
  ['updated', MAY_HOLD],
  ['getdata', MAY_HOLD],
  ['data', MAY_HOLD],
  ['receivedByDest', MAY_HOLD],
  ['error', MAY_HOLD],
  ['delete', 'deletePending'],
]);
export const RESEND_STATUSES: readonly NotificationStatus[] = [...RESEND_TO.keys()];

// ---- The CSS's records of objects an ESS published (upstream): one per (object, origin ESS). ----

/** The upstream delete path: the ESS's deletion applied, then the app's confirmation queued. */
export const UPSTREAM_DELETE_PATH: readonly NotificationStatus[] = ['ackDelete', 'deletedPending'];

/** Upstream statuses the ESS is told of by the poll: a record moving into one wakes its long-poll. */
export const UPSTREAM_SERVED: readonly NotificationStatus[] = ['receivedpending', 'consumedPending', 'deletedPending'];

/** Where each ack of the ESS about what the CSS queued for it is taken, and where it was already applied. */
export const UPSTREAM_ACK_TRANSITIONS: Readonly<Record<UpstreamAck, { from: NotificationStatus; done: readonly NotificationStatus[] }>> = {
  ackreceived: { from: 'receivedpending', done: ['ackreceived', 'consumedPending'] },
  ackconsumed: { from: 'consumedPending', done: [] },
  ackDeleted: { from: 'deletedPending', done: [] },
};

/** What a CSS app's marks on an upstream object queue for the ESS. [ref sync-protocol §3 step 9, Delete 4] */
export const UPSTREAM_APP_MOVES: Readonly<Record<'consumed' | 'deletionConfirmed', { from: readonly NotificationStatus[]; to: NotificationStatus }>> = {
  consumed: { from: ['receivedpending', 'ackreceived'], to: 'consumedPending' },
  deletionConfirmed: { from: ['ackDelete'], to: 'deletedPending' },
};

// ---- The ESS's records toward its CSS (peer `Cloud/Cloud`): the Receiver's, about objects the CSS sends it. ----

/** A download of the record's instance is owed (`handleUpdate`: none began; `getdata`: `offset` bytes are durable). */
export const DOWNLOAD_OWED: readonly NotificationStatus[] = ['handleUpdate', 'getdata'];

/** Receiver records with work toward the CSS: a download, or a message the CSS has not acked yet. */
export const RECEIVER_OWED: readonly NotificationStatus[] = [...DOWNLOAD_OWED, 'received', 'consumed', 'deleted'];

/** Records of an instance already complete here, whose `received` was sent or is owed. */
export const RECEIVED_SENT: readonly NotificationStatus[] = ['received', 'ackreceived', 'consumed'];

/** Object statuses in which the received data is complete. */
export const RECEIVED_COMPLETE: readonly ObjectStatus[] = ['completelyReceived', 'objreceived', 'objconsumed'];

/** The message each owed Receiver record stands for; its ack moves the record on (Receiver.acked). */
export const RECEIVER_MESSAGES: ReadonlyMap<NotificationStatus, EssAction> = new Map<NotificationStatus, EssAction>([
  ['received', 'received'],
  ['consumed', 'consumed'],
  ['deleted', 'deleted'],
]);

// ---- The ESS's records of objects published on it (the OriginSender's); disjoint from the Receiver's. ----

/** Origin records with a message (or data) still owed to the CSS. */
export const ORIGIN_OWED: readonly NotificationStatus[] = ['update', 'data', 'deletePending'];

/** Origin records of an instance the CSS is (being) told of, before it is consumed. */
export const ORIGIN_SENT: readonly NotificationStatus[] = ['update', 'data', 'updated', 'receivedByDest'];

/** Origin records of the delete path (`deletePending`: owed; `ackDelete`: the app's confirmation awaited). */
export const ORIGIN_DELETING: readonly NotificationStatus[] = ['deletePending', 'ackDelete'];

/** Every status of the OriginSender's records: a delivery from this ESS to its CSS. */
export const ORIGIN_STATUSES: readonly NotificationStatus[] = [...ORIGIN_SENT, ...ORIGIN_DELETING];

/** What the CSS says about an object published here, and the ack this ESS answers it with. */
export const ORIGIN_ANSWERS: ReadonlyMap<string, EssAction> = new Map<string, EssAction>([
  ['received', 'ackreceived'],
  ['consumed', 'ackconsumed'],
  ['deleted', 'ackDeleted'],
]);
