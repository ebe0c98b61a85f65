/**
 * The hooks through which the sync engine hears of the object changes the ObjectService makes:
 * the sender side (objects published here) and the receiver side (app marks on objects that
 * came from the other side).
 */
import type { StoredObject } from '../store/types.js';

/**
 * Told of every committed change of a sender-side object, under the object's lock so that two
 * quick changes reach it in commit order. The CSS wires the sync engine's Sender here.
 */
export interface ObjectListener {
  /**
   * The object was created, replaced, got its data, or changed in place. `addressed`, when
   * given, is told how many peers the object addresses before any delivery record is written:
   * observers hear of the publication before its deliveries.
   */
  onObjectPublished(obj: StoredObject, addressed?: (destinations: number) => void): Promise<void>;
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

/**
 * Told of every committed object row, whichever side it is on, after the commit and without
 * being waited for: it must return at once and do its work later (the webhooks).
 */
export interface ObjectChangeListener {
  /** A row was written: `before` is the row it replaced, null for a new object. */
  onObjectStored(before: StoredObject | null, after: StoredObject): void;
  /** An object was deleted through the API (or by its app, on the side that published it). */
  onObjectRemoved(obj: StoredObject): void;
}
