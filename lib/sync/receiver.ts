/**
 * The receiving side of the sync engine on the ESS: stores what the CSS sends and keeps one
 * notification record per object, keyed by the origin (`Cloud/Cloud`), which says what the ESS
 * still owes the CSS. Transport-agnostic: it decides, the agent (ess/agent.ts) sends through its
 * link. [ref sync-protocol §1 "ESS behaviour", §3 Normal update steps 2–7, Delete 2–6]
 *
 * Record statuses used here (their lists: notification-states.ts):
 * - `handleUpdate`: metadata stored as `partiallyreceived`, no data yet;
 * - `getdata`: the download started; `offset` says how many bytes of it are durable here;
 * - `received`: complete here, `received` not yet acked by the CSS; `ackreceived` once it is;
 * - `consumed`: the app consumed it, `consumed` is owed to the CSS;
 * - `delete`: the CSS's deletion was applied; `deleted`: the app confirmed it, `deleted` is owed.
 */
import type { MetaData } from '../model/index.js';
import type { Notification, NotificationKey, NotificationPatch, NotificationStatus, NotificationStore } from '../store/notification-types.js';
import type { BlobStore, BlobWriteResult, Store, StoredObject, UploadSession } from '../store/types.js';
import { normalizeConsumers, type ObjectService, type ReceiverListener } from './object-service.js';
import { receivedInstance } from './received-instance.js';
import type { DestinationFiles } from './destination-files.js';
import { objectLogFields } from '../model/log-fields.js';
import { DOWNLOAD_OWED, RECEIVED_COMPLETE, RECEIVED_SENT, RECEIVER_OWED } from './notification-states.js';
import type { DeliveryRef, SyncEvents } from './sync-events.js';

/** The CSS always identifies itself as `Cloud/Cloud`. [ref sync-protocol §0] */
export const CSS_PEER = { peerType: 'Cloud', peerID: 'Cloud' } as const;

/**
 * - `stale`: an older instance than the one held (or one already deleted): nothing to do.
 * - `download`: stored as `partiallyreceived`; ack `updated`, fetch the data, call completeData.
 * - `received`: this instance is complete here (no data, a link, or a repeat); ack `received`.
 */
export type UpdateOutcome = 'stale' | 'download' | 'received';


/**
 * Where downloads keep their progress across failures and restarts: one UploadSession per
 * object being downloaded (`received` = bytes durable in its staging area). The key is free on
 * the ESS: the API never uploads data into a received object. A session keeps its staging area
 * from the garbage collection at start (Store.referencedBlobIds lists session staging areas).
 */
export interface DownloadSessionDeps {
  sessions: Pick<Store, 'getUpload' | 'putUpload' | 'advanceUpload' | 'deleteUpload'>;
  blobs: Pick<BlobStore, 'createStaging' | 'deleteStaging'>;
}

/** Where the download of one instance stands: its staging area and the bytes durable there. */
export interface DownloadState {
  stagingId: string;
  offset: number;
}

export interface ReceiverDeps {
  notifications: NotificationStore;
  objects: Pick<ObjectService, 'get' | 'storeReceived' | 'dropReceived'>;
  /** The ESS's org: received objects are stored under it, whatever the CSS wrote. */
  orgID: string;
  /**
   * Persisted download progress; the ESS always has it. Without it (tests of the other steps)
   * beginDownload() throws and nothing else changes.
   */
  downloads?: DownloadSessionDeps;
  /** Epoch ms; tests inject a fake clock. */
  now?: () => number;
  /** Told (INFO) of each object received complete from the CSS and each one its apps consumed. */
  log?: { info(obj: object, msg: string): void };
  /** Writes the data of objects that name a destinationDataUri to that file (destination-files.ts). */
  dataFiles?: Pick<DestinationFiles, 'export' | 'remove'>;
  /** Told of this ESS's side of a delivery: received complete, consumed, deletion confirmed (the peer is the CSS). */
  events?: Pick<SyncEvents, 'deliveryStatus'>;
}

export class Receiver implements ReceiverListener {
  private readonly now: () => number;

  constructor(private readonly deps: ReceiverDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** The instance a delivery event names; received objects are under this ESS's org. */
  private ref(meta: Pick<MetaData, 'objectType' | 'objectID' | 'instanceID'>): DeliveryRef {
    return { orgID: this.deps.orgID, objectType: meta.objectType, objectID: meta.objectID, instanceID: meta.instanceID };
  }

  private key(meta: Pick<MetaData, 'objectType' | 'objectID'>): NotificationKey {
    return { orgID: this.deps.orgID, objectType: meta.objectType, objectID: meta.objectID, ...CSS_PEER };
  }

  private record(meta: Pick<MetaData, 'objectType' | 'objectID'>): Promise<Notification | null> {
    return this.deps.notifications.getNotification(this.deps.orgID, meta.objectType, meta.objectID, CSS_PEER.peerType, CSS_PEER.peerID);
  }

  private async putRecord(meta: MetaData, status: NotificationStatus, offset = 0): Promise<void> {
    await this.deps.notifications.putNotification({
      ...this.key(meta),
      status,
      instanceID: meta.instanceID,
      dataID: meta.dataID,
      // Delivery status is the sender's view; a receiver record reports the step it is at.
      deliveryStatus: status === 'delete' ? 'deleted' : 'delivering',
      message: '',
      resendAt: 0,
      attempts: 0,
      offset,
      lastUpdate: this.now(),
    });
  }

  /** Moves the record only while it is still about `instanceID` and in `from`. */
  private async move(meta: Pick<MetaData, 'objectType' | 'objectID'>, instanceID: bigint, from: readonly NotificationStatus[], patch: NotificationPatch): Promise<boolean> {
    const rec = await this.record(meta);
    if (rec === null || rec.instanceID !== instanceID || !from.includes(rec.status)) return false;
    return this.deps.notifications.updateNotificationIf(this.key(meta), { status: rec.status, instanceID }, { ...patch, lastUpdate: this.now() });
  }

  /**
   * An `update` from the CSS. The newest instanceID wins: an older or equal one held already
   * changes nothing, so a repeated poll item is acked again without a second download (and
   * the app sees no duplicate). [ref sync-protocol §0, §3 step 2]
   */
  async applyUpdate(input: MetaData): Promise<UpdateOutcome> {
    const meta: MetaData = { ...input, destinationOrgID: this.deps.orgID, deleted: false };
    let outcome: UpdateOutcome = 'stale';
    let previousUri = '';
    const stored = await this.deps.objects.storeReceived(this.deps.orgID, meta.objectType, meta.objectID, (existing) => {
      const held = existing?.meta.instanceID ?? -1;
      if (existing !== null && (held > meta.instanceID || (held === meta.instanceID && existing.status === 'objdeleted'))) return null;
      if (existing !== null && held === meta.instanceID) {
        outcome = RECEIVED_COMPLETE.includes(existing.status) ? 'received' : 'download';
        return null;
      }
      const row = receivedInstance(meta, existing, this.now());
      outcome = row.status === 'completelyReceived' ? 'received' : 'download';
      previousUri = existing?.meta.destinationDataUri ?? '';
      return row;
    });
    if (outcome === 'stale') return outcome;
    await this.dropMovedFile(previousUri, meta);
    // A newer instance makes the progress of an older one worthless; a complete one needs none.
    await this.dropSession(meta, (s) => outcome !== 'download' || s.instanceID !== meta.instanceID);
    const rec = await this.record(meta);
    const sameInstance = rec !== null && rec.instanceID === meta.instanceID;
    if (outcome === 'download' && !(sameInstance && DOWNLOAD_OWED.includes(rec.status))) {
      await this.putRecord(meta, 'handleUpdate');
    } else if (outcome === 'received' && !(sameInstance && RECEIVED_SENT.includes(rec.status))) {
      // metaOnly over data held: the file follows the (maybe new) destinationDataUri.
      if (stored !== null) await this.deps.dataFiles?.export(stored.meta, stored.blobId);
      await this.putRecord(meta, 'received');
      this.noteReceived(meta, meta.objectSize, 'none');
    }
    return outcome;
  }

  /**
   * An `update` whose data came with it (inline in the poll answer), already stored as
   * `written` and checked against its SHA-256: a new instance is stored complete at once, with
   * one write of the object and one of its record, as applyUpdate and then completeData would
   * leave it. Anything else is left to those two: an instance held already (complete, or
   * partly downloaded), one that needs no data, or a stale one.
   * @returns 'stored', or 'other' when nothing changed (the caller then drops `written`)
   */
  async applyUpdateWithData(input: MetaData, written: BlobWriteResult): Promise<'stored' | 'other'> {
    const meta: MetaData = { ...input, destinationOrgID: this.deps.orgID, deleted: false };
    // The file first: an app that sees the object complete finds its file in place.
    if (meta.destinationDataUri !== '' && (await this.isNewer(meta))) await this.deps.dataFiles?.export(meta, written.blobId);
    let previousUri = '';
    const stored = await this.deps.objects.storeReceived(this.deps.orgID, meta.objectType, meta.objectID, (existing) => {
      if (existing !== null && existing.meta.instanceID >= meta.instanceID) return null;
      const row = receivedInstance(meta, existing, this.now());
      if (row.status !== 'partiallyreceived') return null;
      previousUri = existing?.meta.destinationDataUri ?? '';
      return { ...row, meta: { ...row.meta, objectSize: written.size }, status: 'completelyReceived', blobId: written.blobId, dataSha256: written.sha256 };
    });
    if (stored === null) return 'other';
    await this.dropMovedFile(previousUri, meta);
    // A newer instance makes the progress of an older one worthless.
    await this.dropSession(meta, () => true);
    await this.putRecord(meta, 'received', written.size);
    this.noteReceived(meta, written.size, 'inline');
    return 'stored';
  }

  /** `transfer`: how the data came (`none`: no data, a link, or metaOnly over data held), which tests count. */
  private noteReceived(meta: MetaData, size: number, transfer: 'none' | 'inline' | 'download'): void {
    this.deps.log?.info({ ...objectLogFields(this.deps.orgID, meta.objectType, meta.objectID, undefined, meta.instanceID), size, transfer }, 'object received from the CSS');
    this.deps.events?.deliveryStatus?.(this.ref(meta), CSS_PEER, 'delivered');
  }

  /** A new instance names another destination file than the one replaced: the old file goes. */
  private async dropMovedFile(previousUri: string, meta: MetaData): Promise<void> {
    if (previousUri !== '' && previousUri !== meta.destinationDataUri) await this.deps.dataFiles?.remove({ destinationDataUri: previousUri });
  }

  /** Whether `meta` is newer than the instance held (none held counts). */
  private async isNewer(meta: MetaData): Promise<boolean> {
    const obj = await this.deps.objects.get(this.deps.orgID, meta.objectType, meta.objectID);
    return obj === null || obj.meta.instanceID < meta.instanceID;
  }

  /** The object while it still waits for the data of `meta`'s instance; else null. */
  private async partialOf(meta: MetaData): Promise<StoredObject | null> {
    const obj = await this.deps.objects.get(this.deps.orgID, meta.objectType, meta.objectID);
    return obj !== null && obj.status === 'partiallyreceived' && obj.meta.instanceID === meta.instanceID ? obj : null;
  }

  /** The record of an object. */
  recordOf(meta: Pick<MetaData, 'objectType' | 'objectID'>): Promise<Notification | null> {
    return this.record(meta);
  }

  /** The metadata held for the object `rec` is about, while it is still that instance; else null. */
  async heldMeta(rec: Notification): Promise<MetaData | null> {
    const obj = await this.deps.objects.get(rec.orgID, rec.objectType, rec.objectID);
    return obj !== null && obj.meta.instanceID === rec.instanceID ? obj.meta : null;
  }

  /** The object `rec` is about, while it still waits for the data of that instance; else null. */
  async partial(rec: Notification): Promise<StoredObject | null> {
    const obj = await this.deps.objects.get(rec.orgID, rec.objectType, rec.objectID);
    return obj !== null && obj.status === 'partiallyreceived' && obj.meta.instanceID === rec.instanceID ? obj : null;
  }

  /** The download of `meta`'s instance starts. [ref sync-protocol §3 step 4] */
  async startDownload(meta: MetaData): Promise<void> {
    await this.move(meta, meta.instanceID, ['handleUpdate'], { status: 'getdata' });
  }

  /**
   * The download of `meta`'s instance starts or resumes (the record moves to `getdata`): the
   * progress persisted for this instance and size, or else a new empty staging area. Progress
   * of another instance is discarded. The persisted offset is always below the data's size
   * (see advanceDownload), so a resume always has bytes left to ask for.
   */
  async beginDownload(meta: MetaData): Promise<DownloadState> {
    const { sessions, blobs } = this.sessionDeps();
    await this.startDownload(meta);
    const session = await sessions.getUpload(this.deps.orgID, meta.objectType, meta.objectID);
    if (session !== null && session.instanceID === meta.instanceID && session.total === meta.objectSize && (session.received < session.total || session.received === 0)) {
      return { stagingId: session.stagingId, offset: session.received };
    }
    if (session !== null) await this.dropSession(meta, () => true);
    // A crash right here leaves an area no session names: the garbage collection at start removes it.
    const stagingId = await blobs.createStaging();
    await sessions.putUpload({
      orgID: this.deps.orgID,
      objectType: meta.objectType,
      objectID: meta.objectID,
      stagingId,
      total: meta.objectSize,
      received: 0,
      chunkSize: 0,
      instanceID: meta.instanceID,
      lastUpdate: this.now(),
    });
    return { stagingId, offset: 0 };
  }

  /**
   * Bytes up to `offset` of the download `state` are durable in its staging area: persists
   * that (compare-and-set from `state.offset`) and moves `state` on. The record's `offset`
   * follows, for whoever looks at it. The caller does not persist the offset of the last
   * segment: completeData follows at once, and a resume must still have a byte to ask for.
   * @returns false when the download was discarded or taken over meanwhile: stop writing
   */
  async advanceDownload(meta: MetaData, state: DownloadState, offset: number): Promise<boolean> {
    const { sessions } = this.sessionDeps();
    const { objectType, objectID } = meta;
    const session = await sessions.getUpload(this.deps.orgID, objectType, objectID);
    if (session === null || session.stagingId !== state.stagingId || session.instanceID !== meta.instanceID) return false;
    // Both writes in one turn share one commit (one fsync); the record's offset is only shown,
    // so it may be written even when the compare-and-set, the one that counts, fails.
    const [advanced] = await Promise.all([
      sessions.advanceUpload(this.deps.orgID, objectType, objectID, state.offset, offset),
      this.deps.notifications.updateNotificationIf(this.key(meta), { status: 'getdata', instanceID: meta.instanceID }, { offset, lastUpdate: this.now() }),
    ]);
    if (advanced) state.offset = offset;
    return advanced;
  }

  /** Drops the download progress of `meta`'s object, staging area included: the next attempt starts from 0. */
  async discardDownload(meta: MetaData): Promise<void> {
    await this.dropSession(meta, () => true);
    await this.deps.notifications.updateNotificationIf(this.key(meta), { status: 'getdata', instanceID: meta.instanceID }, { offset: 0, lastUpdate: this.now() });
  }

  private sessionDeps(): DownloadSessionDeps {
    if (this.deps.downloads === undefined) throw new Error('this Receiver was built without download sessions');
    return this.deps.downloads;
  }

  /** Removes the object's download session and its staging area when `which` says so. */
  private async dropSession(meta: Pick<MetaData, 'objectType' | 'objectID'>, which: (s: UploadSession) => boolean): Promise<void> {
    const d = this.deps.downloads;
    if (d === undefined) return;
    const session = await d.sessions.getUpload(this.deps.orgID, meta.objectType, meta.objectID);
    if (session === null || !which(session)) return;
    // Session first: a crash between the two leaves an area nothing names, which GC removes.
    await d.sessions.deleteUpload(this.deps.orgID, meta.objectType, meta.objectID);
    await d.blobs.deleteStaging(session.stagingId);
  }

  /**
   * The whole data of `meta`'s instance is in a blob. Returns false when the object moved on
   * meanwhile (deleted, or a newer instance); the caller then releases the blob.
   * [ref sync-protocol §3 step 5]
   */
  async completeData(meta: MetaData, written: BlobWriteResult): Promise<boolean> {
    // The file first: an app that sees the object complete finds its file in place.
    if (meta.destinationDataUri !== '' && (await this.partialOf(meta)) !== null) await this.deps.dataFiles?.export(meta, written.blobId);
    const stored = await this.deps.objects.storeReceived(this.deps.orgID, meta.objectType, meta.objectID, (obj) => {
      if (obj === null || obj.meta.instanceID !== meta.instanceID || obj.status !== 'partiallyreceived') return null;
      return {
        ...obj,
        meta: { ...obj.meta, objectSize: written.size },
        status: 'completelyReceived',
        blobId: written.blobId,
        dataSha256: written.sha256,
        remainingConsumers: obj.meta.consumers,
        remainingReceivers: obj.meta.consumers,
      };
    });
    // Done with this instance's progress either way (its staging area, if committed, is gone already).
    await this.dropSession(meta, (s) => s.instanceID === meta.instanceID);
    if (stored === null) return false;
    if (await this.move(meta, meta.instanceID, ['handleUpdate', 'getdata'], { status: 'received', resendAt: 0, attempts: 0, offset: written.size })) this.noteReceived(meta, written.size, 'download');
    return true;
  }

  /**
   * A `delete` from the CSS: the object becomes `objdeleted` with `deleted: true` and loses its
   * data; an object never received is kept as such a placeholder so the app still hears of it.
   * A repeat, or one already confirmed by the app, changes nothing. [ref sync-protocol §3 Delete 2]
   */
  async applyDelete(input: MetaData): Promise<void> {
    const rec = await this.record(input);
    if (rec !== null && rec.instanceID === input.instanceID && (rec.status === 'delete' || rec.status === 'deleted')) return;
    let applied = false;
    let fileUri = '';
    await this.deps.objects.storeReceived(this.deps.orgID, input.objectType, input.objectID, (obj) => {
      if (obj !== null && obj.meta.instanceID > input.instanceID) return null;
      applied = true;
      fileUri = obj?.meta.destinationDataUri ?? '';
      // The deletion's instance, not the one held: an update older than the deletion that
      // arrives late must not bring the object back (and the app's confirmation matches the record).
      const meta: MetaData = { ...(obj?.meta ?? input), instanceID: input.instanceID, destinationOrgID: this.deps.orgID, deleted: true };
      const consumers = normalizeConsumers(meta.consumers);
      return { meta, status: 'objdeleted', blobId: null, dataSha256: null, remainingConsumers: consumers, remainingReceivers: consumers, policyReceived: false, lastUpdate: this.now() };
    });
    if (applied) {
      await this.dropSession(input, () => true);
      await this.deps.dataFiles?.remove({ destinationDataUri: fileUri });
      await this.putRecord(input, 'delete');
    }
  }

  /** The app consumed a received object: once every consumer has, `consumed` is owed. [ref sync-protocol §3 step 9] */
  async onReceivedObjectMarked(obj: StoredObject): Promise<void> {
    if (obj.status !== 'objconsumed') return;
    if (await this.move(obj.meta, obj.meta.instanceID, ['received', 'ackreceived'], { status: 'consumed', resendAt: 0, attempts: 0 })) {
      this.deps.log?.info(objectLogFields(this.deps.orgID, obj.meta.objectType, obj.meta.objectID, undefined, obj.meta.instanceID), 'object consumed by the app');
      this.deps.events?.deliveryStatus?.(this.ref(obj.meta), CSS_PEER, 'consumed');
    }
  }

  /** The app confirmed the CSS's deletion: `deleted` is owed. [ref sync-protocol §3 Delete 4] */
  async onDeletionConfirmed(obj: StoredObject): Promise<void> {
    if (await this.move(obj.meta, obj.meta.instanceID, ['delete'], { status: 'deleted', resendAt: 0, attempts: 0 })) this.deps.events?.deliveryStatus?.(this.ref(obj.meta), CSS_PEER, 'deleted');
  }

  /** Records with work toward the CSS that is due (a failed attempt waits for its `resendAt`). */
  async outbound(limit: number): Promise<Notification[]> {
    const now = this.now();
    const recs = await this.deps.notifications.listPendingForPeer(this.deps.orgID, CSS_PEER.peerType, CSS_PEER.peerID, RECEIVER_OWED, limit);
    return recs.filter((r) => r.resendAt <= now);
  }

  /** An attempt for `rec` failed; try again at `at` (epoch ms). */
  async retryLater(rec: Notification, at: number): Promise<void> {
    await this.deps.notifications.updateNotificationIf(keyOf(rec), { status: rec.status, instanceID: rec.instanceID }, { resendAt: at, attempts: rec.attempts + 1 });
  }

  /**
   * The CSS answered the notification `rec` stands for (the HTTP 204 is the ack; a 409 on
   * `received`, `consumed` or `deleted` counts as one too). [ref sync-protocol §1 Ack semantics]
   * After `consumed` the object and its record go; after `deleted` the record goes. [§3 step 11, Delete 6]
   */
  async acked(rec: Notification): Promise<void> {
    const { notifications, objects } = this.deps;
    const expected = { status: rec.status, instanceID: rec.instanceID };
    if (rec.status === 'received') {
      await notifications.updateNotificationIf(keyOf(rec), expected, { status: 'ackreceived', resendAt: 0, lastUpdate: this.now() });
    } else if (rec.status === 'consumed') {
      if (!(await notifications.updateNotificationIf(keyOf(rec), expected, { status: 'ackconsumed', lastUpdate: this.now() }))) return;
      const obj = await objects.get(rec.orgID, rec.objectType, rec.objectID);
      if (obj !== null && obj.meta.instanceID === rec.instanceID && obj.status === 'objconsumed') await objects.dropReceived(rec.orgID, rec.objectType, rec.objectID);
      await notifications.deleteNotification(keyOf(rec));
    } else if (rec.status === 'deleted') {
      if (await notifications.updateNotificationIf(keyOf(rec), expected, { status: 'ackDeleted', lastUpdate: this.now() })) {
        await notifications.deleteNotification(keyOf(rec));
      }
    }
  }

  /** The CSS does not know this ESS: what was agreed with it is void. [ref sync-protocol §3 Registration] */
  async onRegisterNew(): Promise<void> {
    await this.deps.notifications.deleteForPeer(this.deps.orgID, CSS_PEER.peerType, CSS_PEER.peerID);
  }
}

function keyOf(n: NotificationKey): NotificationKey {
  return { orgID: n.orgID, objectType: n.objectType, objectID: n.objectID, peerType: n.peerType, peerID: n.peerID };
}
