/**
 * The CSS's conversation with each ESS, whatever carries it: registration, what is queued for
 * the ESS (the poll), its data downloads, its acks and feedback, its resend requests, and the
 * objects it publishes. Every decision about these and every store write they cause is made
 * here; a transport (lib/transport/http, lib/transport/mqtt) authenticates, decodes, calls a
 * session and encodes the answer. [ref sync-protocol §1–3]
 *
 * A session is cheap: a transport may make one per request or message. It remembers, for its
 * own lifetime, that its ESS is registered once it has seen the record, so that the checks of a
 * batch of acks cost one lookup; a transport that keeps one session across messages sees an
 * unregister made through another session only when it makes a new one.
 */
import type { Readable } from 'node:stream';
import {
  ConflictError,
  FailedDependencyError,
  NotFoundError,
  destinationLabel,
  emptyMetaData,
  orderedMetaData,
  type ByteRange,
  type DestinationRef,
  type MetaData,
} from '../../model/index.js';
import type { Notification, NotificationKey, NotificationStore } from '../../store/notification-types.js';
import type { Destination, Store, StoredObject } from '../../store/types.js';
import { BEFORE_GETDATA, DELETE_PATH, NEVER_SERVED, MAY_HOLD, SERVED_AS, SERVED_AS_DELETION, SERVED_STATUSES, isQueuedUpdate } from '../notification-states.js';
import type { ObjectService } from '../object-service.js';
import { PeerSignal } from '../peer-signal.js';
import type { Sender } from '../sender.js';
import type { AckOutcome, Feedback, SenderAck, SenderAcks } from '../sender-acks.js';
import type { UpstreamData, UpstreamPeer, UpstreamRef } from '../upstream-messages.js';
import type { UpstreamReceiver } from '../upstream-receiver.js';
import type {
  Communication,
  CssSyncEngine,
  DataSlice,
  EssSession,
  ObjectRef,
  PendingItemKey,
  RegistrationAction,
  RegistrationOutcome,
  SyncItem,
  UpstreamAck,
} from './types.js';

export interface CssEngineDeps {
  store: Pick<Store, 'getDestination' | 'putDestination' | 'deleteDestination' | 'touchDestination' | 'getObject' | 'getDeletion'>;
  notifications: NotificationStore;
  /** Queues what a newly registered ESS must receive. */
  sender: Pick<Sender, 'onDestinationRegistered'>;
  /** The sender's side of acks, feedback and resend requests. */
  acks: Pick<SenderAcks, 'apply' | 'resend'>;
  /** Opens object data for a download. */
  objects: Pick<ObjectService, 'openData'>;
  /** Objects the ESS nodes publish: their metadata, data, deletion and acks. */
  upstream: Pick<UpstreamReceiver, 'applyUpdate' | 'putData' | 'ackReceived' | 'ackConsumed' | 'applyDelete' | 'ackDeleted'>;
  /**
   * Told by the Sender when something is queued for a peer; without it (tests) nobody
   * notifies the private one made instead, and `waitForWork` only waits.
   */
  peerSignal?: Pick<PeerSignal, 'wait'>;
  /** Registrations (INFO). */
  log?: { info(obj: object, msg: string): void };
  /** Epoch ms; tests inject a fake clock. */
  now?: () => number;
  /**
   * The ESS's last contact (its destination's `lastPing`, which REMOVE_ESS_REGISTRATION_TIME
   * measures) is written at most this often, ms: a write per poll would cost a commit each.
   * Default one minute.
   */
  lastSeenThrottleMs?: number;
}

const DEFAULT_LAST_SEEN_THROTTLE_MS = 60_000;

/**
 * Items listed per `pending` call by default. Records stay queued until acked, so a larger
 * backlog is served by the next calls as the first ones are acked.
 */
export const PENDING_BATCH = 1000;

/** The reference's answer to a data download that is not about the instance on offer. */
export const STALE_DATA_GET = 'Error in handleGetData: notification.InstanceID != instanceID or notification status is not updated.';

/** A message from an ESS the CSS does not know. [ref sync-protocol §1 424] */
export function notRegistered(peer: DestinationRef): FailedDependencyError {
  return new FailedDependencyError(`Destination ${peer.orgID}/${peer.destType}/${peer.destID} is not registered`);
}

export class CssEngine implements CssSyncEngine {
  private readonly peerSignal: Pick<PeerSignal, 'wait'>;
  private readonly now: () => number;

  constructor(private readonly deps: CssEngineDeps) {
    this.peerSignal = deps.peerSignal ?? new PeerSignal();
    this.now = deps.now ?? Date.now;
  }

  session(peer: DestinationRef): CssEssSession {
    return new CssEssSession(this.deps, { orgID: peer.orgID, destType: peer.destType, destID: peer.destID }, this.peerSignal, this.now);
  }
}

export class CssEssSession implements EssSession {
  /** The ESS's record once seen; see the module's comment. */
  private known: Destination | null = null;

  constructor(
    private readonly deps: CssEngineDeps,
    readonly peer: DestinationRef,
    private readonly peerSignal: Pick<PeerSignal, 'wait'>,
    private readonly now: () => number,
  ) {}

  async destination(): Promise<Destination | null> {
    const { orgID, destType, destID } = this.peer;
    const dest = await this.deps.store.getDestination(orgID, destType, destID);
    this.known = dest;
    return dest;
  }

  /**
   * The ESS's destination record: every message but registration and data downloads comes
   * from a registered ESS. [ref traffic errors.jsonl 32]
   * @throws FailedDependencyError when it is not registered
   */
  async registered(): Promise<Destination> {
    const dest = this.known ?? (await this.destination());
    if (dest === null) throw notRegistered(this.peer);
    return dest;
  }

  /**
   * A message from the ESS: a registered ESS is alive, which moves its last contact forward
   * (throttled). A registration removed meanwhile (maintenance/registrations.ts) is not
   * re-created: the ESS hears it is not registered and registers as new.
   * @throws FailedDependencyError when it is not registered
   */
  private async contact(): Promise<Destination> {
    const dest = await this.registered();
    const now = this.now();
    if (now - dest.lastPing < (this.deps.lastSeenThrottleMs ?? DEFAULT_LAST_SEEN_THROTTLE_MS)) return dest;
    const { orgID, destType, destID } = this.peer;
    if (!(await this.deps.store.touchDestination(orgID, destType, destID, now))) {
      this.known = null;
      throw notRegistered(this.peer);
    }
    this.known = { ...dest, lastPing: now };
    return this.known;
  }

  /**
   * register, register-new, ping, unregister. An ESS that registers again without persistent
   * storage may have lost what it received: everything it was sent is offered again, as the
   * reference's resendNotificationsForDestination(dest, resendReceived) does. `unregister`
   * always comes out `registered` (done: the transport acks it).
   * [ref sync-protocol §1 Endpoints, §3 Registration]
   */
  async register(action: RegistrationAction, opts: { persistent: boolean; communication: Communication }): Promise<RegistrationOutcome> {
    const { orgID, destType, destID } = this.peer;
    const fresh: Destination = {
      destinationOrgID: orgID,
      destinationType: destType,
      destinationID: destID,
      communication: opts.communication,
      codeVersion: '1.0',
      lastPing: this.now(),
    };
    const label = destinationLabel(this.peer);
    switch (action) {
      case 'register':
      case 'ping':
        // An ESS the CSS does not know must register as new (it then drops its own state).
        if ((await this.destination()) === null) return 'unknown';
        await this.deps.store.putDestination(fresh);
        this.known = fresh;
        if (action === 'register') {
          if (!opts.persistent) await this.deps.acks.resend(orgID, destType, destID);
          this.deps.log?.info({ org: orgID, destination: label, registration: 'returning', persistent: opts.persistent, communication: opts.communication }, 'ESS registered');
        }
        return 'registered';
      case 'register-new':
        await this.deps.store.putDestination(fresh);
        this.known = fresh;
        await this.deps.sender.onDestinationRegistered(fresh, true);
        this.deps.log?.info({ org: orgID, destination: label, registration: 'new', communication: opts.communication }, 'ESS registered');
        return 'registered';
      case 'unregister':
        this.known = null;
        await this.deps.notifications.deleteForPeer(orgID, destType, destID);
        await this.deps.store.deleteDestination(orgID, destType, destID);
        return 'registered';
    }
  }

  /**
   * What is queued for the ESS, oldest first. An update whose delivery is still `pending`
   * waits for its object to become ready and active; a record whose object was replaced
   * between the two reads is served by the next call, about the new instance.
   */
  async pending(limit = PENDING_BATCH, opts: { markServed?: boolean; skip?: (item: PendingItemKey) => boolean; pushed?: boolean } = {}): Promise<SyncItem[]> {
    const serve = opts.markServed !== false;
    // A poll is the ESS's contact; a push round (MQTT) is the CSS's own doing.
    await (opts.pushed === true ? this.registered() : this.contact());
    const { orgID, destType, destID } = this.peer;
    const records = await this.deps.notifications.listPendingForPeer(orgID, destType, destID, SERVED_STATUSES, limit);
    // All at once, not one after the other: their writes (markServed) then share one commit
    // and one fsync instead of waiting for one each. Promise.all keeps the records' order.
    const items = await Promise.all(
      records.map(async (rec): Promise<SyncItem | null> => {
        const type = SERVED_AS.get(rec.status);
        if (type === undefined) return null;
        if (isQueuedUpdate(rec.status) && rec.deliveryStatus === 'pending') return null;
        if (opts.skip?.({ type, objectType: rec.objectType, objectID: rec.objectID, instanceID: rec.instanceID }) === true) return null;
        const found = await this.describe(rec);
        if (found === null || (serve && !(await this.markServed(rec)))) return null;
        return { type, meta: found.meta, object: found.obj };
      }),
    );
    return items.filter((i): i is SyncItem => i !== null);
  }

  waitForWork(ms: number, signal?: AbortSignal): Promise<void> {
    const { orgID, destType, destID } = this.peer;
    return this.peerSignal.wait(orgID, destType, destID, ms, signal);
  }

  /**
   * One range of the data of the instance `ref` names (whole without `range`). Streamed from
   * the blob. The first download of an update moves its record to `getdata`; a parallel
   * download (another chunk) of the same instance finds it moved and goes on. No limit on
   * concurrent downloads (the reference's 429 semaphore made fan-out crawl).
   * [ref sync-protocol §1 Endpoints, §3 step 4]
   */
  async openData(ref: ObjectRef, range: ByteRange | undefined, signal: AbortSignal): Promise<DataSlice> {
    const key = this.recordKey(ref);
    const rec = await this.getRecord(key);
    if (rec === null) throw new NotFoundError();
    const obj = await this.deps.store.getObject(key.orgID, key.objectType, key.objectID);
    const stale =
      rec.instanceID !== ref.instanceID ||
      DELETE_PATH.includes(rec.status) ||
      obj === null ||
      obj.meta.instanceID !== ref.instanceID ||
      (ref.dataID !== undefined && (ref.dataID !== obj.meta.dataID || ref.dataID !== rec.dataID));
    if (stale) throw new ConflictError(STALE_DATA_GET);
    const read = this.deps.objects.openData(obj, range, signal);
    if (BEFORE_GETDATA.includes(rec.status)) {
      const moved = await this.deps.notifications.updateNotificationIf(key, { status: rec.status, instanceID: rec.instanceID }, { status: 'getdata', lastUpdate: this.now() });
      // Lost the race to another request: fine if it is still this instance (a parallel
      // chunk download), stale otherwise.
      const current = moved ? rec : await this.getRecord(key);
      if (current === null || current.instanceID !== ref.instanceID || DELETE_PATH.includes(current.status)) {
        read.stream.destroy();
        throw new ConflictError(STALE_DATA_GET);
      }
    }
    const start = read.range?.start ?? 0;
    const end = read.range?.end ?? read.size - 1;
    return { stream: read.stream, start, end, total: read.size, sha256: obj.dataSha256, whole: read.range === undefined };
  }

  /**
   * An ack or feedback about an object the CSS sent. The dataID, when the message names one,
   * must be the record's too: an ack about other data changes nothing.
   * @throws FailedDependencyError when the ESS is not registered
   */
  async ack(ref: ObjectRef, action: SenderAck, feedback?: Feedback): Promise<AckOutcome> {
    await this.contact();
    return this.deps.acks.apply(this.recordKey(ref), ref.instanceID, action, feedback, ref.dataID);
  }

  async resend(): Promise<void> {
    await this.contact();
    const { orgID, destType, destID } = this.peer;
    await this.deps.acks.resend(orgID, destType, destID);
  }

  /** @throws FailedDependencyError when the ESS is not registered; BadRequestError, ConflictError as UpstreamReceiver.applyUpdate */
  async upstreamUpdate(ref: ObjectRef, meta: MetaData): Promise<AckOutcome> {
    await this.contact();
    return this.deps.upstream.applyUpdate(this.upstreamPeer(), this.upstreamRef(ref), meta);
  }

  /** @throws FailedDependencyError when the ESS is not registered; BadRequestError, PayloadTooLargeError as UpstreamReceiver.putData */
  async upstreamData(ref: ObjectRef, source: Readable, data: UpstreamData): Promise<AckOutcome> {
    await this.contact();
    return this.deps.upstream.putData(this.upstreamPeer(), this.upstreamRef(ref), source, data);
  }

  /** @throws FailedDependencyError when the ESS is not registered; BadRequestError as UpstreamReceiver.applyDelete */
  async upstreamDelete(ref: ObjectRef, meta: MetaData): Promise<AckOutcome> {
    await this.contact();
    return this.deps.upstream.applyDelete(this.upstreamPeer(), this.upstreamRef(ref), meta);
  }

  /** @throws FailedDependencyError when the ESS is not registered */
  async upstreamAck(ref: ObjectRef, action: UpstreamAck): Promise<AckOutcome> {
    await this.contact();
    const peer = this.upstreamPeer();
    const r = this.upstreamRef(ref);
    switch (action) {
      case 'ackreceived':
        return this.deps.upstream.ackReceived(peer, r);
      case 'ackconsumed':
        return this.deps.upstream.ackConsumed(peer, r);
      case 'ackDeleted':
        return this.deps.upstream.ackDeleted(peer, r);
    }
  }

  /** The ESS's record of an object: an ESS only ever reaches its own. */
  private recordKey(ref: ObjectRef): NotificationKey {
    return { orgID: this.peer.orgID, objectType: ref.objectType, objectID: ref.objectID, peerType: this.peer.destType, peerID: this.peer.destID };
  }

  private getRecord(key: NotificationKey): Promise<Notification | null> {
    return this.deps.notifications.getNotification(key.orgID, key.objectType, key.objectID, key.peerType, key.peerID);
  }

  private upstreamPeer(): UpstreamPeer {
    return { orgID: this.peer.orgID, peerType: this.peer.destType, peerID: this.peer.destID };
  }

  private upstreamRef(ref: ObjectRef): UpstreamRef {
    return { objectType: ref.objectType, objectID: ref.objectID, instanceID: ref.instanceID, ...(ref.dataID !== undefined ? { dataID: ref.dataID } : {}) };
  }

  /**
   * The metadata an item carries, addressed to the ESS, with the object it describes (null when
   * gone); null when the record is stale.
   */
  private async describe(rec: Notification): Promise<{ meta: MetaData; obj: StoredObject | null } | null> {
    const { store } = this.deps;
    const obj = await store.getObject(rec.orgID, rec.objectType, rec.objectID);
    const addressed = { destinationType: this.peer.destType, destinationID: this.peer.destID };
    if (SERVED_AS_DELETION.includes(rec.status)) {
      // The object is removed at once on delete (see Sender.onObjectDeleted), and an
      // ESS-originated one once the app confirmed its deletion: a gone object is described by
      // the metadata its deletion keeps (deletions.ts), as the reference sends it, else by its
      // key and the instance the record is about.
      const kept = obj === null ? await store.getDeletion(rec.orgID, rec.objectType, rec.objectID) : null;
      const base = obj?.meta ?? (kept !== null && kept.meta.instanceID === rec.instanceID ? kept.meta : null) ?? {
        ...emptyMetaData(),
        destinationOrgID: rec.orgID,
        objectType: rec.objectType,
        objectID: rec.objectID,
        instanceID: rec.instanceID,
        dataID: rec.dataID,
      };
      return { meta: orderedMetaData({ ...base, ...addressed, deleted: true }), obj };
    }
    // An object replaced between the two reads: its new record is served by the next call.
    if (obj === null || obj.meta.instanceID !== rec.instanceID) return null;
    return { meta: orderedMetaData({ ...obj.meta, ...addressed }), obj };
  }

  /**
   * Marks an update as served before it is: from now on the ESS may hold the object, so its
   * deletion must be sent (see Sender.retire). False when the record moved meanwhile (a newer
   * instance, or the object's deletion dropped it): the next call serves what it says then.
   */
  private async markServed(rec: Notification): Promise<boolean> {
    if (rec.status !== NEVER_SERVED) return true;
    const key: NotificationKey = { orgID: rec.orgID, objectType: rec.objectType, objectID: rec.objectID, peerType: rec.peerType, peerID: rec.peerID };
    return this.deps.notifications.updateNotificationIf(key, { status: NEVER_SERVED, instanceID: rec.instanceID }, { status: MAY_HOLD });
  }
}
