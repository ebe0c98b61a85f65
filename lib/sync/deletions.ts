/**
 * Sender-side deletions still under way, on the CSS and, for the objects its apps publish, on
 * the ESS. When an app deletes an object that some destination may hold, the object's row and data go at once (nothing of it can be read or sent any more),
 * but the object keeps answering as `objdeleted`, metadata only, with its delivery status per
 * destination, until every destination acknowledged the deletion; then it is gone (404).
 * [ref sync-protocol §3 Delete steps 1, 3]
 *
 * Whether a deletion is still under way is read from the object's notification records, which
 * the acks move; the stored deletion only keeps the metadata to show. So a deletion whose
 * records were all acknowledged or dropped (the destination re-registered as new, the object was
 * published again) is never shown, even if removing its row was missed, and is removed when met.
 */
import type { ObjectDeletion, Store, StoredObject } from '../store/types.js';
import type { Notification, NotificationStore } from '../store/notification-types.js';
import { DELETE_UNACKNOWLEDGED } from './notification-states.js';

export interface DeletionsDeps {
  store: Pick<Store, 'putDeletion' | 'getDeletion' | 'listDeletions' | 'removeDeletion'>;
  notifications: Pick<NotificationStore, 'listForObject'>;
  /** Epoch ms; tests inject a fake clock. */
  now?: () => number;
}


/** Some destination was told, or is to be told, of the deletion and has not acknowledged it yet. */
function underWay(records: readonly Notification[]): boolean {
  return records.some((r) => DELETE_UNACKNOWLEDGED.includes(r.status));
}

/** How a deletion in progress reads: the object in status `objdeleted`, without data. */
function asObject(d: ObjectDeletion): StoredObject {
  return {
    meta: d.meta,
    status: 'objdeleted',
    blobId: null,
    dataSha256: null,
    remainingConsumers: 0,
    remainingReceivers: 0,
    policyReceived: d.policyReceived,
    lastUpdate: d.deletedAt,
  };
}

export class DeletionsInProgress {
  private readonly now: () => number;

  constructor(private readonly deps: DeletionsDeps) {
    this.now = deps.now ?? Date.now;
  }

  /**
   * After a sender-side object was removed and its records turned into deletions: keeps its
   * metadata while some destination still has to acknowledge, and otherwise clears what an
   * earlier deletion of the same key may have left.
   */
  async begin(obj: StoredObject): Promise<void> {
    const m = obj.meta;
    const { store, notifications } = this.deps;
    if (underWay(await notifications.listForObject(m.destinationOrgID, m.objectType, m.objectID))) {
      await store.putDeletion({ meta: { ...m, deleted: true }, policyReceived: obj.policyReceived, deletedAt: this.now() });
    } else {
      await store.removeDeletion(m.destinationOrgID, m.objectType, m.objectID);
    }
  }

  /** After a destination acknowledged a deletion (or its record was dropped): the last one ends it. */
  async settle(org: string, type: string, id: string): Promise<void> {
    if ((await this.deps.store.getDeletion(org, type, id)) === null) return;
    await this.endIfDone(org, type, id);
  }

  /** The deleted object as it reads while its deletion is under way, or null. */
  async get(org: string, type: string, id: string): Promise<StoredObject | null> {
    const d = await this.deps.store.getDeletion(org, type, id);
    if (d === null || (await this.endIfDone(org, type, id))) return null;
    return asObject(d);
  }

  /** The org's deletions under way (of one type when given), by (objectType, objectID). */
  async list(org: string, type?: string): Promise<StoredObject[]> {
    const out: StoredObject[] = [];
    for (const d of await this.deps.store.listDeletions(org, type)) {
      if (!(await this.endIfDone(org, d.meta.objectType, d.meta.objectID))) out.push(asObject(d));
    }
    return out;
  }

  /** Removes the deletion once nothing is under way; @returns true when it was removed. */
  private async endIfDone(org: string, type: string, id: string): Promise<boolean> {
    if (underWay(await this.deps.notifications.listForObject(org, type, id))) return false;
    await this.deps.store.removeDeletion(org, type, id);
    return true;
  }
}
