/**
 * The ESS's record statuses in one place: which statuses of the records it keeps toward its
 * CSS (peer `Cloud/Cloud`) mean what, for the Receiver (objects coming from the CSS), the
 * OriginSender (objects published here) and the agent that sends what they say is owed. The
 * two directions use disjoint statuses, so they share the notification table without mixing.
 * (The CSS side's lists are in lib/sync/notification-states.ts.) [ref sync-protocol §3]
 */
import type { ObjectStatus } from '../../model/index.js';
import type { NotificationStatus } from '../../store/notification-types.js';
import type { EssAction } from './css-link.js';

// ---- Receiver: objects the CSS sends this ESS ----

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

// ---- OriginSender: objects published on this ESS ----

/** Origin records with a message (or data) still owed to the CSS. */
export const ORIGIN_OWED: readonly NotificationStatus[] = ['update', 'data', 'deletePending'];

/** Origin records of an instance the CSS is (being) told of, before it is consumed. */
export const ORIGIN_SENT: readonly NotificationStatus[] = ['update', 'data', 'updated', 'receivedByDest'];

/** Origin records of the delete path (`deletePending`: owed; `ackDelete`: the app's confirmation awaited). */
export const ORIGIN_DELETING: readonly NotificationStatus[] = ['deletePending', 'ackDelete'];

/** What the CSS says about an object published here, and the ack this ESS answers it with. */
export const ORIGIN_ANSWERS: ReadonlyMap<string, EssAction> = new Map<string, EssAction>([
  ['received', 'ackreceived'],
  ['consumed', 'ackconsumed'],
  ['deleted', 'ackDeleted'],
]);
