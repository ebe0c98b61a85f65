/**
 * What the ESS agent (agent.ts) does about one thing at a time: an item the CSS sent (an
 * update, with its data fetched, inline or early; a delete; an answer about an object published
 * here) and each record the Receiver or the OriginSender says is owed (downloads, acks,
 * uploads), with the retries, back-off and storage-full reports they need. Every commit to the
 * store is made here or in what it calls (download.ts, upload.ts); the link only moves bytes.
 * [ref sync-protocol §3 Normal update, Delete, Resend timer]
 */
import { Readable } from 'node:stream';
import { emptyMetaData, isStorageFull, type MetaData } from '../../model/index.js';
import type { Notification } from '../../store/notification-types.js';
import type { BlobStore } from '../../store/types.js';
import { ReceivedSignature, storageFullFeedback, verifyDownloadedData } from '../data-check.js';
import type { OriginSender } from '../origin-sender.js';
import type { Receiver } from '../receiver.js';
import { retryDelay } from '../resend-scheduler.js';
import { EARLY_DATA_ITEM, NotRegisteredError, type CssItem, type CssLink, type EssObjectRef, type OwnDataSource } from './css-link.js';
import { downloadData, keepWholeData, noteReceived, type DownloadDeps } from './download.js';
import type { EarlyDownloads } from './early.js';
import { DOWNLOAD_OWED, ORIGIN_OWED, RECEIVER_MESSAGES } from '../notification-states.js';
import { answerCss, isOriginAnswer, ownDataSource, sendOriginOwed, type UploadDeps } from './upload.js';
import type { SyncEvents, TransportKind } from '../sync-events.js';

export interface ObjectWorkDeps {
  link: CssLink;
  receiver: Receiver;
  /** Objects published here, owed to the CSS; absent = this ESS sends nothing. */
  origin?: OriginSender;
  blobs: BlobStore;
  /** This ESS. */
  self: { orgID: string; destinationType: string; destinationID: string };
  /** RESEND_INTERVAL, ms. */
  resendIntervalMs: number;
  /** Owed records worked on at once. */
  concurrency: number;
  /** Bytes per pushed range of an upload (MAX_DATA_CHUNK_SIZE). */
  uploadChunkSize: number;
  /** Bytes per durable segment of a download; the StagingWriter's default when absent. */
  segmentBytes?: number;
  /** Data taken while the CSS still receives it; null when the link offers none. */
  early: EarlyDownloads | null;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void; debug(obj: object, msg: string): void; error(obj: object, msg: string): void };
  now: () => number;
  /** Aborted when the agent stops. */
  signal: AbortSignal;
  /** Told when a deferred record falls due (epoch ms), so that a held poll ends in time for it. */
  dueAt: (at: number) => void;
  /** Told of the data moved to and from the CSS. */
  events?: SyncEvents;
  /** How the link moves data, for the events. */
  transport?: TransportKind;
}

/** Owed records read per flush; the rest wait for the next one. */
const ACK_BATCH = 500;
/** The longest wait between two attempts of one owed step, in RESEND_INTERVALs. */
const RETRY_CAP_INTERVALS = 6;
/** A full storage is logged at most this often: once a minute is enough for the operator. */
const STORAGE_FULL_LOG_MS = 60_000;

/** Runs `fn` over `items`, at most `limit` at a time; stops taking new ones once `stop()` says so. */
export async function eachLimit<T>(items: readonly T[], limit: number, stop: () => boolean, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length && !stop()) await fn(items[next++]!);
  };
  const results = await Promise.allSettled(Array.from({ length: Math.min(limit, items.length) }, worker));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
}

const refOf = (rec: Notification): EssObjectRef => ({ objectType: rec.objectType, objectID: rec.objectID, instanceID: rec.instanceID, dataID: rec.dataID });

export class ObjectWork {
  private readonly now: () => number;
  /** When a full storage was last logged (epoch ms). */
  private storageFullLoggedAt = -Infinity;

  constructor(private readonly deps: ObjectWorkDeps) {
    this.now = deps.now;
  }

  private get stopped(): boolean {
    return this.deps.signal.aborted;
  }

  /** One item the CSS sent. */
  async handleItem(item: CssItem): Promise<void> {
    const { origin } = this.deps;
    if (item.type === 'update') await this.onUpdate(item);
    else if (item.type === EARLY_DATA_ITEM) this.deps.early?.start(item.meta, item.size ?? null);
    else if (item.type === 'delete') await this.onDelete(item.meta);
    else if (isOriginAnswer(item.type) && origin !== undefined) await answerCss(this.uploadDeps(origin), item.type, item.meta);
    else this.deps.log.debug({ type: item.type, objectID: item.meta.objectID }, 'item type not handled');
  }

  /** What a link serves a CSS that pulls the data of objects published here (upload.ts); null when nothing is published here. */
  dataSource(): OwnDataSource | null {
    return this.deps.origin === undefined ? null : ownDataSource(this.uploadDeps(this.deps.origin));
  }

  /** [ref sync-protocol §3 Normal update steps 2–5] */
  private async onUpdate({ meta, inline, statedSha256 }: CssItem): Promise<void> {
    if (inline !== null && (await this.storeInline(meta, inline))) return this.sendReceived(meta);
    if (inline === null && (await this.storeEarly(meta, statedSha256))) return this.sendReceived(meta);
    const outcome = await this.deps.receiver.applyUpdate(meta);
    if (outcome !== 'stale' && inline !== null && (await this.keepInline(meta, inline))) return this.sendReceived(meta);
    if (outcome === 'received') {
      // Complete with nothing to fetch (noData, a metaOnly update keeping the data held, a repeat
      // of an instance held whole): `received` alone, no `updated`, as the reference ESS does
      // (reference-traffic publish-by-type-update-delete.jsonl seq 13, 20). [ref notificationHandler.go handleUpdate]
      const rec = await this.deps.receiver.recordOf(meta);
      if (rec !== null && rec.status === 'received' && rec.instanceID === meta.instanceID) return this.attempt(rec);
    }
    // A stale or repeated update is acked anyway, so the CSS stops sending it. [ref sync-protocol §3]
    const updated = this.deps.link.send(meta, 'updated');
    // Handled by the awaits below; this only keeps a failure from counting as unhandled first.
    updated.catch(() => undefined);
    if (outcome !== 'stale') {
      const rec = await this.deps.receiver.recordOf(meta);
      // The download does not wait for the CSS to take `updated`, only `received` does: the
      // CSS must hear them in that order.
      if (rec !== null) await this.attempt(rec, updated);
    }
    await updated;
  }

  /** An update whose data came along is acked by `received` alone: the CSS takes it from `update`. */
  private async sendReceived(meta: MetaData): Promise<void> {
    const rec = await this.deps.receiver.recordOf(meta);
    if (rec !== null) await this.attempt(rec);
  }

  /**
   * A new instance whose data came along with it, stored complete in one step (see
   * Receiver.applyUpdateWithData) once the data's SHA-256 is the one the CSS stated.
   * @returns false when the usual path must take the update (held already, a digest
   *   mismatch: that path reports it and fetches the data)
   */
  private async storeInline(meta: MetaData, inline: NonNullable<CssItem['inline']>): Promise<boolean> {
    if (inline.data.length !== meta.objectSize) return false;
    // A signed object goes the usual way (keepInline), which verifies it and reports a failure.
    if (new ReceivedSignature(meta).signed) return false;
    const { blobs, receiver } = this.deps;
    const written = await blobs.write(Readable.from([inline.data]), { expectedSize: meta.objectSize, signal: this.deps.signal });
    if (verifyDownloadedData(inline.sha256, written.sha256).kind === 'mismatch' || (await receiver.applyUpdateWithData(meta, written)) !== 'stored') {
      await blobs.delete(written.blobId);
      return false;
    }
    noteReceived(this.downloadDeps(), meta, written.size, 0);
    return true;
  }

  /**
   * A new instance whose data was downloaded early (early.ts), stored complete in one step as
   * inline data is, once that data is the one the update states.
   * @returns false when the usual path must take the update
   */
  private async storeEarly(meta: MetaData, statedSha256: string | undefined): Promise<boolean> {
    const written = (await this.deps.early?.take(meta, statedSha256)) ?? null;
    if (written === null) return false;
    const signature = new ReceivedSignature(meta);
    if (signature.signed) {
      // Staged before the update said which signature to expect: read once to check it. A
      // failure lets the usual path download the data again, which reports it to the CSS.
      for await (const chunk of this.deps.blobs.read(written.blobId, { signal: this.deps.signal }) as AsyncIterable<Buffer>) signature.update(chunk);
      if (signature.check()?.ok !== true) {
        await this.deps.blobs.delete(written.blobId);
        return false;
      }
    }
    if ((await this.deps.receiver.applyUpdateWithData(meta, written)) === 'stored') {
      noteReceived(this.downloadDeps(), meta, written.size, 0);
      return true;
    }
    await this.deps.blobs.delete(written.blobId);
    return false;
  }

  /**
   * Completes an object with the data that came along, as a download would have.
   * @returns false when the object did not take it (not waiting for data, or a bad digest): the
   *   normal path then applies, with a data request if the data is still owed.
   */
  private async keepInline(meta: MetaData, inline: NonNullable<CssItem['inline']>): Promise<boolean> {
    const rec = await this.deps.receiver.recordOf(meta);
    if (rec === null || !DOWNLOAD_OWED.includes(rec.status)) return false;
    const obj = await this.deps.receiver.partial(rec);
    if (obj === null) return false;
    return keepWholeData(this.downloadDeps(), obj.meta, Readable.from([inline.data]), inline.sha256);
  }

  private downloadDeps(): DownloadDeps {
    const { link, receiver, blobs, resendIntervalMs, log, signal, segmentBytes } = this.deps;
    return { link, receiver, blobs, resendIntervalMs, log, signal, ...(segmentBytes !== undefined ? { segmentBytes } : {}), ...this.observers() };
  }

  /** The events and the transport they name, when given. */
  private observers(): Pick<DownloadDeps, 'events' | 'transport'> {
    const { events, transport } = this.deps;
    return { ...(events !== undefined ? { events } : {}), ...(transport !== undefined ? { transport } : {}) };
  }

  private uploadDeps(origin: OriginSender): UploadDeps {
    const { link, blobs, self, resendIntervalMs, log, signal, uploadChunkSize, dueAt } = this.deps;
    return { link, origin, blobs, self, chunkSize: uploadChunkSize, resendIntervalMs, now: this.now, signal, log, dueAt, ...this.observers() };
  }

  /** [ref sync-protocol §3 Delete steps 2–3] */
  private async onDelete(meta: MetaData): Promise<void> {
    await this.deps.receiver.applyDelete(meta);
    await this.deps.link.send(meta, 'ackDelete');
  }

  /**
   * Sends what the Receiver's and the OriginSender's records say is owed: `received`,
   * `consumed`, `deleted`, downloads that did not finish, and what this ESS published. A failed
   * one waits RESEND_INTERVAL. [ref sync-protocol §3 Resend timer] `skip` leaves out records
   * whose object is being worked on already (an item in hand).
   */
  async flushOutbound(skip?: (rec: Notification) => boolean): Promise<void> {
    let owed = [...(await this.deps.receiver.outbound(ACK_BATCH)), ...((await this.deps.origin?.owed(ACK_BATCH)) ?? [])];
    if (skip !== undefined) owed = owed.filter((rec) => !skip(rec));
    await eachLimit(owed, this.deps.concurrency, () => this.stopped, (rec) => this.attempt(rec));
  }

  /** One owed step; a failure (other than "register again" or a stop) waits RESEND_INTERVAL. */
  private async attempt(rec: Notification, after?: Promise<unknown>): Promise<void> {
    try {
      if (!(await this.sendOwed(rec, after))) await this.retryLater(rec);
    } catch (err) {
      if (err instanceof NotRegisteredError || this.stopped) throw err;
      if (isStorageFull(err)) await this.reportStorageFull(rec, err);
      else this.deps.log.debug({ err, objectID: rec.objectID, status: rec.status }, 'will retry');
      await this.retryLater(rec);
    }
  }

  /**
   * A download that found the storage full: the operator hears it (noteStorageFull), and so
   * does the CSS, which shows the destination's error instead of an endless `delivering` and
   * offers the object again later. What was staged is kept: the retry resumes from it.
   */
  private async reportStorageFull(rec: Notification, err: unknown): Promise<void> {
    this.noteStorageFull(err, rec.objectID);
    if (!DOWNLOAD_OWED.includes(rec.status)) return;
    try {
      await this.deps.link.feedback(refOf(rec), storageFullFeedback(this.deps.resendIntervalMs));
    } catch (e) {
      this.deps.log.debug({ err: e, objectID: rec.objectID }, 'the storage-full feedback did not reach the CSS');
    }
  }

  /** Logs a full storage as what it is (not as an unreachable CSS), at most once a minute. */
  noteStorageFull(err: unknown, objectID?: string): void {
    if (this.now() - this.storageFullLoggedAt < STORAGE_FULL_LOG_MS) return;
    this.storageFullLoggedAt = this.now();
    this.deps.log.error(
      { err, ...(objectID !== undefined ? { objectID } : {}) },
      "this node's storage is full: downloads and the records of their progress wait until space is freed; retrying every RESEND_INTERVAL",
    );
  }

  /**
   * Defers `rec`: RESEND_INTERVAL, doubled with each failure of the same step, up to six
   * intervals (the reference's 60 s chunk resend), so a CSS that refuses something is not
   * hammered, and one that comes back is not waited for long. A held poll ends in time for it.
   */
  private async retryLater(rec: Notification): Promise<void> {
    const at = this.now() + retryDelay(this.deps.resendIntervalMs, rec.attempts, RETRY_CAP_INTERVALS * this.deps.resendIntervalMs);
    await this.deps.receiver.retryLater(rec, at);
    this.deps.dueAt(at);
  }

  /**
   * The body of `deleted`: the object's MetaData addressed to this ESS, which a reference CSS
   * decodes to find the object and the destination. [ref sync-protocol §1 Endpoints]
   */
  private async deletedBody(rec: Notification): Promise<MetaData> {
    const held = await this.deps.receiver.heldMeta(rec);
    const base = held ?? { ...emptyMetaData(), ...refOf(rec) };
    const { orgID, destinationType, destinationID } = this.deps.self;
    return { ...base, destinationOrgID: orgID, destinationType, destinationID, deleted: true };
  }

  /**
   * @param after settles once the ack that must reach the CSS before this step's own did
   * @returns false when the step did not go through and must be retried later.
   */
  private async sendOwed(initial: Notification, after?: Promise<unknown>): Promise<boolean> {
    const { receiver, origin } = this.deps;
    if (origin !== undefined && ORIGIN_OWED.includes(initial.status)) return sendOriginOwed(this.uploadDeps(origin), initial);
    let rec: Notification | null = initial;
    if (DOWNLOAD_OWED.includes(rec.status)) {
      const obj = await receiver.partial(rec);
      if (obj === null) return true;
      await downloadData(this.downloadDeps(), obj.meta);
      // Complete now: its `received` goes at once; else the download was refused.
      rec = await receiver.recordOf(obj.meta);
      if (rec === null || rec.status !== 'received') return rec === null;
    }
    const action = RECEIVER_MESSAGES.get(rec.status);
    if (action === undefined) return true;
    await after;
    if (!(await this.deps.link.send(refOf(rec), action, action === 'deleted' ? await this.deletedBody(rec) : undefined))) return false;
    await receiver.acked(rec);
    return true;
  }
}
