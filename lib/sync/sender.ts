/**
 * The sending side of the sync engine on the CSS: turns committed object changes and ESS
 * registrations into notification records, one per (object, destination). The records are the
 * queue a transport serves (the HTTP poll today, MQTT later) and also the delivery status users
 * read, so this module decides both. Transport-agnostic: it never sends anything itself.
 * [ref sync-protocol §0, §3]
 */
import { destinationKey, isReceiverStatus, type DeliveryStatus } from '../model/index.js';
import { notificationKey, type Notification, type NotificationStore } from '../store/notification-types.js';
import type { Destination, Store, StoredObject } from '../store/types.js';
import { isAddressedTo, namedNodes } from './addressing.js';
import type { DeletionsInProgress } from './deletions.js';
import { DELETE_PATH, MAY_HOLD, NEVER_SERVED, REACHED_DELIVERY } from './notification-states.js';
import type { PeerSignal } from './peer-signal.js';
import { NO_SYNC_EVENTS, type SyncEvents } from './sync-events.js';

export interface SenderDeps {
  store: Store;
  notifications: NotificationStore;
  /** Keeps a deleted object readable as `objdeleted` until every destination acknowledged. */
  deletions?: Pick<DeletionsInProgress, 'begin'>;
  /** Told of every record this writes that a poll may serve: it wakes a long-poll of that peer. */
  peerSignal?: Pick<PeerSignal, 'notify'>;
  /** Epoch ms; tests inject a fake clock. */
  now?: () => number;
  /** Told of each delivery queued and of each delivery status the records take here. */
  events?: SyncEvents;
}

/** A destination the records are about, and whether it may be sent to yet. */
interface Target {
  destinationType: string;
  destinationID: string;
  /** False for a node the object names but that has not registered: it cannot poll yet. */
  registered: boolean;
  /** The node may hold the object whatever its record says (see onDestinationRegistered). */
  mayHold?: boolean;
}




/**
 * An object is sent only once it is ready and active; until then its destinations show
 * `pending`. [ref sync-protocol §3 Registration step 4 "delivering if ready and active"]
 */
function deliverable(obj: StoredObject): boolean {
  return obj.status === 'ready' && !obj.meta.inactive;
}

export class Sender {
  private readonly now: () => number;
  private readonly events: SyncEvents;

  constructor(private readonly deps: SenderDeps) {
    this.now = deps.now ?? Date.now;
    this.events = deps.events ?? NO_SYNC_EVENTS;
  }

  /**
   * After a sender-side object was stored (created, replaced, its data committed, or changed in
   * place: destinations, activation). Every destination it addresses gets an `updatePending`
   * record for the current instance; a destination it no longer addresses is told to delete.
   */
  async onObjectPublished(obj: StoredObject, addressed?: (destinations: number) => void): Promise<void> {
    if (isReceiverStatus(obj.status)) return;
    const m = obj.meta;
    const targets = new Map<string, Target>();
    for (const d of await this.deps.store.listDestinations(m.destinationOrgID)) {
      if (isAddressedTo(m, d)) targets.set(destinationKey({ orgID: m.destinationOrgID, destType: d.destinationType, destID: d.destinationID }), { ...this.ref(d), registered: true });
    }
    for (const n of namedNodes(m)) {
      const key = destinationKey({ orgID: m.destinationOrgID, destType: n.destinationType, destID: n.destinationID });
      if (!targets.has(key)) targets.set(key, { ...n, registered: false });
    }
    const existing = await this.deps.notifications.listForObject(m.destinationOrgID, m.objectType, m.objectID);
    const peerOf = (r: Notification): string => destinationKey({ orgID: r.orgID, destType: r.peerType, destID: r.peerID });
    const byPeer = new Map(existing.map((r) => [peerOf(r), r]));
    addressed?.(targets.size);
    // One record per peer, so they are written together: one commit (and fsync) for all.
    await Promise.all([
      ...existing.filter((rec) => !targets.has(peerOf(rec))).map((rec) => this.retire(rec)),
      ...[...targets].map(([key, t]) => this.upsert(obj, t, byPeer.get(key) ?? null)),
    ]);
  }

  /**
   * After a sender-side object was removed: peers that may hold it get `deletePending` (their
   * delivery status stays until they ack); records of peers that never got it are dropped,
   * including those of a registered peer that was offline all along: it is not asked to confirm
   * the deletion of an object it never saw. While some peer has yet to acknowledge, the object
   * reads as `objdeleted` (deletions.ts); the poll describes it from its record.
   * [ref sync-protocol §3 Delete]
   */
  async onObjectDeleted(obj: StoredObject): Promise<void> {
    const m = obj.meta;
    const records = await this.deps.notifications.listForObject(m.destinationOrgID, m.objectType, m.objectID);
    const woken = await Promise.all(records.map((rec) => this.retire(rec, false)));
    await this.deps.deletions?.begin(obj);
    // Long-polls are woken once the deletion keeps the object's metadata, which their answer
    // then carries as the reference's does (spi-server.ts), not only the object's key.
    for (const peer of woken) if (peer !== null) this.deps.peerSignal?.notify(peer.orgID, peer.peerType, peer.peerID);
  }

  /**
   * After an ESS registered. A new one (register-new) lost everything it had, so its old
   * records are dropped and every object addressed to it is queued afresh; a known one only
   * gets records it is missing. Either way a node registering late receives the type- and
   * broadcast-addressed objects published before. [ref sync-protocol §3 Registration step 4]
   */
  async onDestinationRegistered(dest: Destination, isNew: boolean): Promise<void> {
    const { store, notifications } = this.deps;
    if (isNew) await notifications.deleteForPeer(dest.destinationOrgID, dest.destinationType, dest.destinationID);
    // A node registering as new may still hold objects from before (its records are gone, not
    // necessarily its objects): a later deletion must reach it.
    const target: Target = { ...this.ref(dest), registered: true, ...(isNew ? { mayHold: true } : {}) };
    for (const obj of await store.listObjects({ org: dest.destinationOrgID })) {
      if (isReceiverStatus(obj.status) || !isAddressedTo(obj.meta, dest)) continue;
      const m = obj.meta;
      // Read after the reset: a publish that raced the registration may already have queued a
      // newer instance, which must win over this listing's copy.
      const rec = await notifications.getNotification(m.destinationOrgID, m.objectType, m.objectID, dest.destinationType, dest.destinationID);
      await this.upsert(obj, target, rec);
    }
  }

  private ref(d: { destinationType: string; destinationID: string }): { destinationType: string; destinationID: string } {
    return { destinationType: d.destinationType, destinationID: d.destinationID };
  }

  /**
   * Queues the object's current instance toward one peer. A record already about this instance
   * keeps its progress (a destinations change or a repeated registration must not make a node
   * download again), unless it is only waiting and may now be sent, or is on the delete path.
   * A record about an older instance is replaced, and one about a newer instance is kept: the
   * newest instanceID wins. The replacement stays `update` (MAY_HOLD) when the peer may hold an
   * earlier instance, so that a deletion still reaches it.
   */
  private async upsert(obj: StoredObject, t: Target, current: Notification | null): Promise<void> {
    const m = obj.meta;
    const deliveryStatus: DeliveryStatus = t.registered && deliverable(obj) ? 'delivering' : 'pending';
    if (current !== null && current.instanceID > m.instanceID) return;
    if (
      current !== null &&
      current.instanceID === m.instanceID &&
      !DELETE_PATH.includes(current.status) &&
      (current.deliveryStatus !== 'pending' || deliveryStatus === 'pending')
    ) {
      return;
    }
    const rec: Notification = {
      orgID: m.destinationOrgID,
      objectType: m.objectType,
      objectID: m.objectID,
      peerType: t.destinationType,
      peerID: t.destinationID,
      status: t.mayHold === true || (current !== null && current.status !== NEVER_SERVED) ? MAY_HOLD : NEVER_SERVED,
      instanceID: m.instanceID,
      dataID: m.dataID,
      deliveryStatus,
      message: '',
      resendAt: 0,
      attempts: 0,
      offset: 0,
      lastUpdate: this.now(),
    };
    await this.deps.notifications.putNotification(rec);
    // The record is both the object and the peer the events name; nothing is allocated for them.
    if (deliveryStatus === 'delivering') this.events.deliveryQueued?.(rec, rec);
    if (current?.instanceID !== rec.instanceID || current.deliveryStatus !== deliveryStatus) this.events.deliveryStatus?.(rec, rec, deliveryStatus);
    // A `pending` delivery is not served yet, so there is nothing to wake a poll for.
    if (deliveryStatus === 'delivering') this.deps.peerSignal?.notify(m.destinationOrgID, t.destinationType, t.destinationID);
  }

  /**
   * Takes a peer off an object: a delete toward a peer that may hold it, nothing otherwise.
   * @returns the record it moved to `deletePending` (its peer's long-poll is woken unless `wake`
   *   is false), else null.
   */
  private async retire(rec: Notification, wake = true): Promise<Notification | null> {
    const { notifications } = this.deps;
    if (!REACHED_DELIVERY.includes(rec.deliveryStatus)) {
      await notifications.deleteNotification(notificationKey(rec));
      return null;
    }
    if (DELETE_PATH.includes(rec.status)) return null;
    if (rec.status === NEVER_SERVED) {
      // Closed before it is dropped: a poll serving it meanwhile either moved it to `update`
      // first (this then fails, and the peer gets a delete) or finds it closed and serves nothing.
      if (await notifications.updateNotificationIf(notificationKey(rec), { status: NEVER_SERVED, instanceID: rec.instanceID }, { status: 'ackDeleted', lastUpdate: this.now() })) {
        await notifications.deleteNotification(notificationKey(rec));
        return null;
      }
      const current = await notifications.getNotification(rec.orgID, rec.objectType, rec.objectID, rec.peerType, rec.peerID);
      return current !== null && current.status !== NEVER_SERVED ? this.retire(current, wake) : null;
    }
    // Compare-and-set on what was read: an ack that moved the record meanwhile wins, and the
    // next change re-evaluates it.
    const moved = await notifications.updateNotificationIf(
      notificationKey(rec),
      { status: rec.status, instanceID: rec.instanceID },
      { status: 'deletePending', resendAt: 0, attempts: 0, lastUpdate: this.now() },
    );
    if (!moved) return null;
    if (wake) this.deps.peerSignal?.notify(rec.orgID, rec.peerType, rec.peerID);
    return rec;
  }
}
