/**
 * Notification records in the `notifications` collection of a MongoStore's database. Every
 * change is one single-document write (FerretDB, our test server, has no multi-document
 * transactions), and the compare-and-set is the filter of that write, so it holds against every
 * process sharing the database.
 */
import type { Collection, Filter } from 'mongodb';
import { DELIVERY_STATUSES, InternalError, type DeliveryStatus } from '../../model/index.js';
import { replaceRevisioned, type Claims, type Revisioned } from './mongo-cas.js';
import type {
  Notification,
  NotificationExpectation,
  NotificationCount,
  NotificationKey,
  NotificationPatch,
  NotificationStatus,
  NotificationStore,
} from '../notification-types.js';

/**
 * A record as stored: the Notification's own fields. instanceID and dataID are int64 (the
 * client reads them back as bigint, `useBigInt64`); every other number fits a double.
 */
export type NotificationDoc = Notification & Revisioned;

/** The indexes every query of this file runs on; created by MongoStore.init(). */
export const NOTIFICATION_INDEXES = [
  { key: { orgID: 1, objectType: 1, objectID: 1, peerType: 1, peerID: 1 }, name: 'key', unique: true },
  // The poll query: one peer's records, oldest first.
  { key: { orgID: 1, peerType: 1, peerID: 1, lastUpdate: 1, objectType: 1, objectID: 1 }, name: 'peer' },
  // The resend scheduler's query, across orgs.
  { key: { resendAt: 1, orgID: 1, objectType: 1, objectID: 1, peerType: 1, peerID: 1 }, name: 'due' },
] as const;

const KEY_ORDER = { orgID: 1, objectType: 1, objectID: 1, peerType: 1, peerID: 1 } as const;

function keyFilter(k: NotificationKey): Filter<NotificationDoc> {
  return { orgID: k.orgID, objectType: k.objectType, objectID: k.objectID, peerType: k.peerType, peerID: k.peerID };
}

/** The record's own fields, whatever else the stored document carries (its _id). */
function toNotification(d: Notification): Notification {
  return {
    orgID: d.orgID, objectType: d.objectType, objectID: d.objectID, peerType: d.peerType, peerID: d.peerID,
    status: d.status, instanceID: BigInt(d.instanceID), dataID: BigInt(d.dataID), deliveryStatus: d.deliveryStatus,
    message: d.message, resendAt: d.resendAt, attempts: d.attempts, offset: d.offset, lastUpdate: d.lastUpdate,
  };
}

/** A caller bug, not a storage failure: MongoDB would read a negative limit as "no limit". */
function checkLimit(limit: number): void {
  if (!Number.isSafeInteger(limit) || limit < 0) throw new InternalError(`A listing limit must be a non-negative integer, not ${limit}`);
}

/** NotificationStore on a MongoStore's database; get one from `MongoStore.notifications()`. */
export class MongoNotificationStore implements NotificationStore {
  /** @param collection returns the open collection, and throws once the owning store is closed. */
  /** @param claims the owning store's, making the compare-and-set hold on FerretDB too (mongo-cas.ts) */
  constructor(
    private readonly collection: () => Collection<NotificationDoc>,
    private readonly claims: Claims,
  ) {}

  async putNotification(n: Notification): Promise<void> {
    await replaceRevisioned(this.collection(), keyFilter(n), toNotification(n));
  }

  async getNotification(orgID: string, objectType: string, objectID: string, peerType: string, peerID: string): Promise<Notification | null> {
    const d = await this.collection().findOne(keyFilter({ orgID, objectType, objectID, peerType, peerID }));
    return d === null ? null : toNotification(d);
  }

  async updateNotificationIf(key: NotificationKey, expected: NotificationExpectation, patch: NotificationPatch): Promise<boolean> {
    const filter: Filter<NotificationDoc> = keyFilter(key);
    if (expected.status !== undefined) filter.status = expected.status;
    if (expected.instanceID !== undefined) filter.instanceID = expected.instanceID;
    // Only the patch's own fields: a caller's object may carry more (a whole record).
    const set: Partial<NotificationDoc> = {};
    if (patch.status !== undefined) set.status = patch.status;
    if (patch.instanceID !== undefined) set.instanceID = patch.instanceID;
    if (patch.dataID !== undefined) set.dataID = patch.dataID;
    if (patch.deliveryStatus !== undefined) set.deliveryStatus = patch.deliveryStatus;
    if (patch.message !== undefined) set.message = patch.message;
    if (patch.resendAt !== undefined) set.resendAt = patch.resendAt;
    if (patch.attempts !== undefined) set.attempts = patch.attempts;
    if (patch.offset !== undefined) set.offset = patch.offset;
    if (patch.lastUpdate !== undefined) set.lastUpdate = patch.lastUpdate;
    if (Object.keys(set).length === 0) return (await this.collection().countDocuments(filter, { limit: 1 })) === 1;
    return this.claims.update('notification', this.collection(), filter, set);
  }

  async deleteNotification(key: NotificationKey): Promise<boolean> {
    return (await this.collection().deleteOne(keyFilter(key))).deletedCount === 1;
  }

  async listForObject(orgID: string, objectType: string, objectID: string): Promise<Notification[]> {
    const docs = await this.collection().find({ orgID, objectType, objectID }).sort({ peerType: 1, peerID: 1 }).toArray();
    return docs.map(toNotification);
  }

  async listPendingForPeer(
    orgID: string,
    peerType: string,
    peerID: string,
    statuses: readonly NotificationStatus[],
    limit: number,
  ): Promise<Notification[]> {
    checkLimit(limit);
    if (statuses.length === 0 || limit === 0) return [];
    const docs = await this.collection()
      .find({ orgID, peerType, peerID, status: { $in: [...statuses] } })
      .sort({ lastUpdate: 1, objectType: 1, objectID: 1 })
      .limit(limit)
      .toArray();
    return docs.map(toNotification);
  }

  async listDue(now: number, limit: number): Promise<Notification[]> {
    checkLimit(limit);
    if (limit === 0) return [];
    const docs = await this.collection()
      .find({ resendAt: { $gt: 0, $lte: now } })
      .sort({ resendAt: 1, ...KEY_ORDER })
      .limit(limit)
      .toArray();
    return docs.map(toNotification);
  }

  async deleteForObject(orgID: string, objectType: string, objectID: string): Promise<number> {
    return (await this.collection().deleteMany({ orgID, objectType, objectID })).deletedCount;
  }

  async deleteForPeer(orgID: string, peerType: string, peerID: string): Promise<number> {
    return (await this.collection().deleteMany({ orgID, peerType, peerID })).deletedCount;
  }

  /** distinct and counts, on the key index's org prefix: FerretDB's $group is not relied on. */
  async countNotifications(): Promise<NotificationCount[]> {
    const col = this.collection();
    const out: NotificationCount[] = [];
    for (const orgID of await col.distinct('orgID')) {
      for (const status of await col.distinct('status', { orgID })) {
        for (const deliveryStatus of await col.distinct('deliveryStatus', { orgID, status })) {
          out.push({ orgID, status, deliveryStatus, count: await col.countDocuments({ orgID, status, deliveryStatus }) });
        }
      }
    }
    return out;
  }

  /** Counted here from one indexed read of the object's records: FerretDB's $group is not relied on. */
  async countByDeliveryStatus(orgID: string, objectType: string, objectID: string): Promise<Record<DeliveryStatus, number>> {
    const docs = await this.collection().find({ orgID, objectType, objectID }, { projection: { deliveryStatus: 1 } }).toArray();
    const counts = Object.fromEntries(DELIVERY_STATUSES.map((d) => [d, 0])) as Record<DeliveryStatus, number>;
    for (const d of docs) counts[d.deliveryStatus] += 1;
    return counts;
  }
}
