/**
 * The ESS side of the HTTP SPI: registers with the CSS, polls it, and works through what it
 * is sent and what the Receiver says is owed: downloads (spi-download.ts) and acks. The ESS
 * always initiates; the CSS never connects to it. One loop, stopped by `stop()`; every
 * failure is retried, none escapes as an unhandled rejection. Poll items and owed work are
 * handled several at a time (the reference handles them one by one in its poll goroutine).
 * [ref sync-protocol §1 "ESS behaviour", §3]
 */
import { setMaxListeners } from 'node:events';
import { Readable } from 'node:stream';
import {
  decodeFields,
  emptyMetaData,
  goJson,
  isStorageFull,
  METADATA_INT64_KEYS,
  METADATA_KEYS,
  orderedMetaData,
  parseJson,
  type MetaData,
} from '../../model/index.js';
import type { Notification } from '../../store/notification-types.js';
import type { BlobStore } from '../../store/types.js';
import { ORIGIN_OWED, type OriginSender } from '../../sync/origin-sender.js';
import type { Receiver } from '../../sync/receiver.js';
import { storageFullFeedback, verifyDownloadedData } from '../../sync/data-check.js';
import { retryDelay } from '../../sync/resend-scheduler.js';
import { isUntrustedCertificate } from './css-link-health.js';
import { CredentialsRefusedError, NotRegisteredError, refusal, SpiConnection, type SpiConnectionDeps } from './spi-connection.js';
import { downloadData, keepWholeData, type SpiDownloadDeps } from './spi-download.js';
import { INLINE_PARAM, parseInlineData, type InlineData } from './spi-inline-data.js';
import { EarlyDownloads } from './spi-early.js';
import { EARLY_ENTRY, EARLY_PARAM, SPI_PREFIX, type SpiObjectAction } from './spi-paths.js';
import { answerPolled, isOriginAnswer, sendOriginOwed } from './spi-upload.js';

export interface SpiClientDeps extends SpiConnectionDeps {
  receiver: Receiver;
  blobs: BlobStore;
  /** HTTP_POLLING_INTERVAL, ms: the longest wait between two idle polls. */
  pollingIntervalMs: number;
  /** RESEND_INTERVAL, ms: the wait after a failure (registration, network). */
  resendIntervalMs: number;
  /**
   * Seconds the CSS may hold an empty poll (`?wait=`, our extension); 0 = the reference's
   * adaptive polling, what a reference CSS expects (compatibility mode).
   */
  longPollSeconds: number;
  /** Objects published here, owed to the CSS (spi-upload.ts); absent = this ESS sends nothing. */
  origin?: OriginSender;
  /** Bytes per data PUT of an upload (MAX_DATA_CHUNK_SIZE); default 5 MiB. */
  uploadChunkSize?: number;
  /** ESS_PING_INTERVAL, ms: how often a registered ESS pings the CSS. */
  pingIntervalMs?: number;
  /**
   * Asks the CSS for the data of objects up to this many bytes inside the poll answer
   * (`?inline=`, our extension); 0 or absent = never, as in compatibility mode.
   */
  inlineDataLimit?: number;
  /** Objects worked on at once (downloads and acks); 1 = the reference's one by one. */
  concurrency?: number;
  /**
   * Asks the CSS for early-data offers (`?early=1`, our extension, spi-early.ts): the data of an
   * upload still arriving is downloaded while it arrives. Off in compatibility mode.
   */
  earlyData?: boolean;
  now?: () => number;
}

/** Outbound acks read per loop turn; the rest wait for the next turn. */
const ACK_BATCH = 500;
/** The longest wait between two attempts of one owed step, in RESEND_INTERVALs. */
const RETRY_CAP_INTERVALS = 6;
/** Default of SpiClientDeps.pingIntervalMs: the reference's ESS_PING_INTERVAL of 1 h. */
const DEFAULT_PING_INTERVAL_MS = 3_600_000;
/** Default of SpiClientDeps.concurrency: enough to hide round trips, few enough for 2 cores. */
const DEFAULT_CONCURRENCY = 32;
/**
 * Poll items handled at once that need no data request (inline data, deletes, answers about
 * this ESS's own objects): each holds at most its inline data, already in memory.
 */
const LIGHT_CONCURRENCY = 256;
/** Default of SpiClientDeps.uploadChunkSize: the reference's MaxDataChunkSize. */
const DEFAULT_UPLOAD_CHUNK = 5 * 1024 * 1024;

/** Runs `fn` over `items`, at most `limit` at a time; stops taking new ones once `stop()` says so. */
async function eachLimit<T>(items: readonly T[], limit: number, stop: () => boolean, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length && !stop()) await fn(items[next++]!);
  };
  const results = await Promise.allSettled(Array.from({ length: Math.min(limit, items.length) }, worker));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
}

/** The poll's MetaData: known keys of the right JSON type are taken, the rest keep their defaults. */
function toMetaData(raw: unknown): MetaData | null {
  if (typeof raw !== 'object' || raw === null) return null;
  const src = raw as Record<string, unknown>;
  const meta = emptyMetaData();
  const out = meta as unknown as Record<string, unknown>;
  for (const k of METADATA_KEYS) {
    const v = src[k];
    const d = out[k];
    if (v === undefined) continue;
    if (typeof v === typeof d || ((k === 'destinationsList' || k === 'destinationPolicy') && (v === null || typeof v === 'object'))) out[k] = v;
  }
  return meta.objectID !== '' && meta.objectType !== '' ? meta : null;
}

interface PollItem {
  type: string;
  meta: MetaData;
  /** The object's data when the CSS sent it along (spi-inline-data.ts). */
  inline: InlineData | null;
  /** The SHA-256 the CSS states for the data of an update (with early data asked for). */
  statedSha256?: string;
  /** Bytes on offer in an early-data entry. */
  size?: number;
}

function parsePoll(text: string): PollItem[] {
  const value = parseJson(text, METADATA_INT64_KEYS);
  if (!Array.isArray(value)) throw new Error('poll answer is not a JSON array');
  const out: PollItem[] = [];
  for (const entry of value as unknown[]) {
    const f = decodeFields(entry, { Type: 'string', MetaData: 'any', Data: 'string', DataSHA256: 'string', Size: 'any' }, 'Notification');
    const meta = toMetaData(f.MetaData);
    if (typeof f.Type !== 'string' || meta === null) continue;
    out.push({
      type: f.Type,
      meta,
      inline: parseInlineData(f),
      ...(typeof f.DataSHA256 === 'string' && /^[0-9a-f]{64}$/.test(f.DataSHA256) ? { statedSha256: f.DataSHA256 } : {}),
      ...(typeof f.Size === 'number' && Number.isSafeInteger(f.Size) ? { size: f.Size } : {}),
    });
  }
  return out;
}

export class SpiClient {
  private readonly abort = new AbortController();
  private readonly conn: SpiConnection;
  private readonly concurrency: number;
  private readonly now: () => number;
  private loop: Promise<void> | null = null;
  private wakeUp: (() => void) | null = null;
  /** Cancels the long-poll in flight, if any; see wake(). */
  private pollAbort: AbortController | null = null;
  /** wake() was called since the loop last flushed its outbound work. */
  private woken = false;
  /**
   * When the retries attempt() scheduled fall due, oldest first (each is now + RESEND_INTERVAL,
   * so pushing keeps the order). A long-poll is cut to end by the next one, else a retry would
   * sit out the CSS's hold instead of going after RESEND_INTERVAL.
   */
  private readonly retriesDue: number[] = [];
  /** When the loop last read the due outbound work: retries due by then were in it. */
  private flushedAt = 0;
  private registered = false;
  /** An app asked for everything again (`POST /api/v1/resend`) and the CSS has not acked it yet. */
  private resendOwed = false;
  /** When the next ping is due (epoch ms); set by each registration and ping. */
  private nextPingAt = Infinity;
  private failing = false;
  /** When a full storage was last logged (epoch ms): once a minute is enough for the operator. */
  private storageFullLoggedAt = -Infinity;
  /** Data taken while the CSS still receives it; null when not asked for. */
  private readonly early: EarlyDownloads | null;

  constructor(private readonly deps: SpiClientDeps) {
    this.now = deps.now ?? Date.now;
    // Every request in flight listens on the stop signal; concurrency puts many on it at once.
    setMaxListeners(0, this.abort.signal);
    this.conn = new SpiConnection(deps, this.abort.signal);
    this.concurrency = Math.max(1, deps.concurrency ?? DEFAULT_CONCURRENCY);
    this.early = deps.earlyData === true ? new EarlyDownloads({ conn: this.conn, blobs: deps.blobs, signal: this.abort.signal, log: deps.log }) : null;
  }

  start(): void {
    this.loop ??= this.run().catch((err: unknown) => this.deps.log.warn({ err }, 'the SPI client loop ended with an error'));
  }

  async stop(): Promise<void> {
    this.abort.abort();
    this.wakeUp?.();
    this.pollAbort?.abort();
    await this.loop;
    this.conn.destroy();
  }

  /**
   * Cuts the current wait short: the app did something the CSS must hear of. A long-poll in
   * flight is a wait too: it is dropped, else the ack would sit out the CSS's hold.
   */
  wake(): void {
    this.woken = true;
    this.wakeUp?.();
    this.pollAbort?.abort();
  }

  private get stopped(): boolean {
    return this.abort.signal.aborted;
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wakeUp = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakeUp = done;
    });
  }

  /**
   * Register, then poll: back to back while polls bring work, else after a tenth of the polling
   * interval more per idle poll, up to the interval, as the reference ESS does (1 s, 2 s, … 10 s
   * with the default 10 s). [ref sync-protocol §1 Registration, Polling] With long-poll
   * the CSS does the waiting, so polls go back to back; only an empty answer that came well
   * before its wait (a CSS that ignores `wait`) falls back to the idle back-off, so such a
   * CSS is not polled in a tight loop.
   */
  private async run(): Promise<void> {
    let idleWait = 0;
    while (!this.stopped) {
      try {
        if (!this.registered) await this.register();
        else if (this.now() >= this.nextPingAt) await this.ping();
        if (this.resendOwed) await this.sendResend();
        this.woken = false;
        this.flushedAt = this.now();
        await this.flushOutbound();
        const started = this.now();
        const { items, heldMs } = await this.poll();
        // A short poll in long-poll mode (after a wake, or with a retry due) is followed by a long one at once.
        const ignoredWait = heldMs > 0 && this.now() - started < heldMs / 2;
        const backOff = items === 0 && (this.deps.longPollSeconds === 0 || ignoredWait);
        idleWait = backOff ? Math.min(idleWait + Math.max(1, Math.round(this.deps.pollingIntervalMs / 10)), this.deps.pollingIntervalMs) : 0;
        if (this.failing) this.deps.log.info({ css: this.deps.baseUrl }, 'the CSS answers again');
        this.failing = false;
        await this.sleep(idleWait);
      } catch (err) {
        if (this.stopped) return;
        if (err instanceof NotRegisteredError) {
          this.registered = false;
          this.deps.health?.setRegistered(false);
          continue;
        }
        if (isStorageFull(err)) this.noteStorageFull(err);
        else this.noteCssFailure(err);
        await this.sleep(this.deps.resendIntervalMs);
      }
    }
  }

  /**
   * Logs a failed step of the loop once per episode, as what it is: refused credentials and an
   * untrusted certificate are errors (nothing improves until an operator acts), an unreachable
   * CSS a warning. The retries of an episode are debug lines.
   */
  private noteCssFailure(err: unknown): void {
    if (this.failing) {
      this.deps.log.debug({ err }, 'CSS still failing');
      return;
    }
    this.failing = true;
    const css = this.deps.baseUrl;
    if (err instanceof CredentialsRefusedError) {
      this.deps.log.error({ err, css, user: this.deps.user }, "the CSS refuses this ESS's credentials (HTTP_CSS_USER and HTTP_CSS_PASSWORD, or cssCredentials in its users file); retrying every RESEND_INTERVAL");
    } else if (isUntrustedCertificate(err)) {
      this.deps.log.error({ err, css }, "the CSS's certificate is not trusted: set HTTP_CSS_CA_CERTIFICATE to the CA that signed it, and make HTTP_CSS_HOST a name the certificate holds; retrying every RESEND_INTERVAL");
    } else {
      this.deps.log.warn({ err, css }, 'cannot reach the CSS; retrying every RESEND_INTERVAL');
    }
  }

  /**
   * `register`, or `register-new` when the CSS does not know this ESS (404). Our store is on
   * disk, hence persistent-storage=true. [ref sync-protocol §1 Registration, §3 Registration]
   */
  private async register(): Promise<void> {
    const who = this.who();
    let res = await this.conn.call('PUT', `${SPI_PREFIX}register/${who}?persistent-storage=true`);
    if (res.status === 404) {
      // What this ESS published is owed again, its unconfirmed deletions kept. [ref sync-protocol §3 Registration step 5]
      const deletions = (await this.deps.origin?.deletionsInFlight()) ?? [];
      await this.deps.receiver.onRegisterNew();
      await this.deps.origin?.onRegisterNew(deletions);
      res = await this.conn.call('PUT', `${SPI_PREFIX}register-new/${who}?persistent-storage=true`);
    }
    if (res.status !== 204) throw refusal('registration', res);
    this.registered = true;
    this.deps.health?.setRegistered(true);
    this.nextPingAt = this.now() + this.pingIntervalMs;
    this.deps.log.info({ css: this.deps.baseUrl }, 'registered with the CSS');
  }

  /**
   * Asks the CSS to send everything addressed to this ESS again (`POST /api/v1/resend` on the
   * ESS); sent by the loop, and again after each failure until the CSS acks it.
   * [ref sync-protocol §3 "resend", Resend timer]
   */
  requestResend(): void {
    this.resendOwed = true;
    this.wake();
  }

  private async sendResend(): Promise<void> {
    const res = await this.conn.call('PUT', `${SPI_PREFIX}objects/${encodeURIComponent(this.deps.orgID)}/resend`);
    if (res.status === 424) throw new NotRegisteredError();
    if (res.status !== 204) throw refusal('resend', res);
    this.resendOwed = false;
    this.deps.log.info({ css: this.deps.baseUrl }, 'the CSS will send everything again');
  }

  /**
   * Tells the CSS this ESS is alive (its destination's last ping). A CSS that forgot the ESS
   * answers 404: register again, which becomes register-new. [ref sync-protocol §1 Ping]
   */
  private async ping(): Promise<void> {
    const res = await this.conn.call('PUT', `${SPI_PREFIX}ping/${this.who()}`);
    if (res.status === 404 || res.status === 424) throw new NotRegisteredError();
    if (res.status !== 204) throw refusal('ping', res);
    this.nextPingAt = this.now() + this.pingIntervalMs;
  }

  private who(): string {
    const { orgID, destinationType, destinationID } = this.deps;
    return [orgID, destinationType, destinationID].map(encodeURIComponent).join('/');
  }

  private get pingIntervalMs(): number {
    return this.deps.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS;
  }

  /**
   * One poll; a long one unless in compatibility mode, woken meanwhile (the owed acks go
   * first) or with a retry due. [ref sync-protocol §1 Poll]
   * @returns how many notifications it brought, and how long the CSS was asked to hold it (ms)
   */
  private async poll(): Promise<{ items: number; heldMs: number }> {
    const holdS = this.holdSeconds();
    const params = [
      ...((this.deps.inlineDataLimit ?? 0) > 0 ? [`${INLINE_PARAM}=${this.deps.inlineDataLimit}`] : []),
      ...(this.early !== null ? [`${EARLY_PARAM}=1`] : []),
    ];
    const inline = params.join('&');
    if (holdS === 0) return { items: await this.handlePoll(await this.conn.call('GET', `${SPI_PREFIX}objects/${inline === '' ? '' : `?${inline}`}`)), heldMs: 0 };
    const ac = new AbortController();
    this.pollAbort = ac;
    // stop() may have come during the flush, before there was a poll to abort.
    if (this.stopped) ac.abort();
    try {
      const res = await this.conn.request('GET', `${SPI_PREFIX}objects/?wait=${holdS}${inline === '' ? '' : `&${inline}`}`, { signal: ac.signal });
      const answer = { status: res.statusCode ?? 0, body: await this.conn.text(res) };
      // Past this point a wake() must not cut the answer's handling short.
      this.pollAbort = null;
      return { items: await this.handlePoll(answer), heldMs: holdS * 1000 };
    } catch (err) {
      // Dropped by wake(): not a failure, the loop sends what is owed and polls again.
      if (ac.signal.aborted && !this.stopped) return { items: 0, heldMs: 0 };
      throw err;
    } finally {
      if (this.pollAbort === ac) this.pollAbort = null;
    }
  }

  /** Seconds the next poll may be held: 0 = a plain poll; never past the next retry due. */
  private holdSeconds(): number {
    if (this.deps.longPollSeconds === 0 || this.woken) return 0;
    while (this.retriesDue.length > 0 && this.retriesDue[0]! <= this.flushedAt) this.retriesDue.shift();
    const next = this.retriesDue[0];
    // Rounded up: a hold ending just before the retry is due would be followed by a busy loop of plain polls.
    return next === undefined ? this.deps.longPollSeconds : Math.max(0, Math.min(this.deps.longPollSeconds, Math.ceil((next - this.now()) / 1000)));
  }

  /** Applies one poll answer. @returns how many notifications it brought. */
  private async handlePoll(res: { status: number; body: string }): Promise<number> {
    if (res.status === 204) return 0;
    if (res.status === 424) throw new NotRegisteredError();
    if (res.status !== 200) throw refusal('poll', res);
    const items = parsePoll(res.body);
    // One record per (object, peer): no two items of a poll are about the same object, so they
    // may be handled in any order. The concurrency limit is about downloads (sockets, memory);
    // the other items only wait for commits, which the more of them share the better.
    const downloads: PollItem[] = [];
    const others: PollItem[] = [];
    for (const item of items) (item.type === 'update' && item.inline === null ? downloads : others).push(item);
    // A client told to work one by one (the reference's way) does so for every item.
    const light = this.concurrency === 1 ? 1 : Math.max(LIGHT_CONCURRENCY, this.concurrency);
    const handle = (item: PollItem): Promise<void> => this.handleItem(item);
    await Promise.all([eachLimit(downloads, this.concurrency, () => this.stopped, handle), eachLimit(others, light, () => this.stopped, handle)]);
    return items.length;
  }

  private async handleItem(item: PollItem): Promise<void> {
    if (item.type === 'update') await this.onUpdate(item.meta, item.inline, item.statedSha256);
    else if (item.type === EARLY_ENTRY) this.early?.start(item.meta, item.size ?? null);
    else if (item.type === 'delete') await this.onDelete(item.meta);
    else if (isOriginAnswer(item.type) && this.deps.origin !== undefined) await answerPolled({ conn: this.conn, origin: this.deps.origin }, item.type, item.meta);
    else this.deps.log.debug({ type: item.type, objectID: item.meta.objectID }, 'poll notification type not handled yet');
  }

  /** [ref sync-protocol §3 Normal update steps 2–5] */
  private async onUpdate(meta: MetaData, inline: InlineData | null, statedSha256?: string): Promise<void> {
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
    // A stale or repeated update is acked anyway, so the CSS stops serving it. [ref sync-protocol §3]
    const updated = this.conn.sendAction(meta, 'updated');
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

  /** An update whose data came inline is acked by `received` alone: the CSS takes it from `update`. */
  private async sendReceived(meta: MetaData): Promise<void> {
    const rec = await this.deps.receiver.recordOf(meta);
    if (rec !== null) await this.attempt(rec);
  }

  /**
   * A new instance whose data its poll entry carried, stored complete in one step (see
   * Receiver.applyUpdateWithData) once the data's SHA-256 is the one the CSS stated.
   * @returns false when the usual path must take the update (held already, a digest
   *   mismatch: that path reports it and fetches the data)
   */
  private async storeInline(meta: MetaData, inline: InlineData): Promise<boolean> {
    if (inline.data.length !== meta.objectSize) return false;
    const { blobs, receiver } = this.deps;
    const written = await blobs.write(Readable.from([inline.data]), { expectedSize: meta.objectSize, signal: this.abort.signal });
    if (verifyDownloadedData(inline.sha256, written.sha256).kind === 'mismatch' || (await receiver.applyUpdateWithData(meta, written)) !== 'stored') {
      await blobs.delete(written.blobId);
      return false;
    }
    return true;
  }

  /**
   * A new instance whose data was downloaded early (spi-early.ts), stored complete in one step
   * as inline data is, once that data is the one the update states.
   * @returns false when the usual path must take the update
   */
  private async storeEarly(meta: MetaData, statedSha256: string | undefined): Promise<boolean> {
    const written = (await this.early?.take(meta, statedSha256)) ?? null;
    if (written === null) return false;
    if ((await this.deps.receiver.applyUpdateWithData(meta, written)) === 'stored') return true;
    await this.deps.blobs.delete(written.blobId);
    return false;
  }

  /**
   * Completes an object with the data its poll entry carried, as a download would have.
   * @returns false when the object did not take it (not waiting for data, or a bad digest): the
   *   normal path then applies, with a data GET if the data is still owed.
   */
  private async keepInline(meta: MetaData, inline: InlineData): Promise<boolean> {
    const rec = await this.deps.receiver.recordOf(meta);
    if (rec === null || (rec.status !== 'handleUpdate' && rec.status !== 'getdata')) return false;
    const obj = await this.deps.receiver.partial(rec);
    if (obj === null) return false;
    return keepWholeData(this.downloadDeps(), obj.meta, Readable.from([inline.data]), inline.sha256);
  }

  private downloadDeps(): SpiDownloadDeps {
    return { conn: this.conn, receiver: this.deps.receiver, blobs: this.deps.blobs, resendIntervalMs: this.deps.resendIntervalMs, signal: this.abort.signal };
  }

  /** [ref sync-protocol §3 Delete steps 2–3] */
  private async onDelete(meta: MetaData): Promise<void> {
    await this.deps.receiver.applyDelete(meta);
    await this.conn.sendAction(meta, 'ackDelete');
  }

  /**
   * Sends what the Receiver's records say is owed: `received`, `consumed`, `deleted`, and
   * downloads that did not finish. A failed one waits RESEND_INTERVAL. [ref sync-protocol §3 Resend timer]
   */
  private async flushOutbound(): Promise<void> {
    const owed = [...(await this.deps.receiver.outbound(ACK_BATCH)), ...((await this.deps.origin?.owed(ACK_BATCH)) ?? [])];
    await eachLimit(owed, this.concurrency, () => this.stopped, (rec) => this.attempt(rec));
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
    if (rec.status !== 'handleUpdate' && rec.status !== 'getdata') return;
    const ref = { objectType: rec.objectType, objectID: rec.objectID, instanceID: rec.instanceID, dataID: rec.dataID };
    try {
      await this.conn.sendFeedback(ref, storageFullFeedback(this.deps.resendIntervalMs));
    } catch (e) {
      this.deps.log.debug({ err: e, objectID: rec.objectID }, 'the storage-full feedback did not reach the CSS');
    }
  }

  /** Logs a full storage as what it is (not as an unreachable CSS), at most once a minute. */
  private noteStorageFull(err: unknown, objectID?: string): void {
    if (this.now() - this.storageFullLoggedAt < 60_000) return;
    this.storageFullLoggedAt = this.now();
    this.deps.log.error(
      { err, ...(objectID !== undefined ? { objectID } : {}) },
      "this node's storage is full: downloads and the records of their progress wait until space is freed; retrying every RESEND_INTERVAL",
    );
  }

  /**
   * Defers `rec`: RESEND_INTERVAL, doubled with each failure of the same step, up to six
   * intervals (the reference's 60 s chunk resend), so a CSS that refuses something is not
   * hammered, and one that comes back is not waited for long. A long-poll ends in time for it.
   */
  private async retryLater(rec: Notification): Promise<void> {
    const at = this.now() + retryDelay(this.deps.resendIntervalMs, rec.attempts, RETRY_CAP_INTERVALS * this.deps.resendIntervalMs);
    await this.deps.receiver.retryLater(rec, at);
    // Only holds read the list (and prune it): reference polling keeps nothing.
    if (this.deps.longPollSeconds > 0) this.retriesDue.push(at);
  }

  /**
   * The body of `deleted`: the object's MetaData addressed to this ESS, which a reference CSS
   * decodes to find the object and the destination. [ref sync-protocol §1 Endpoints]
   */
  private async deletedBody(rec: Notification): Promise<string> {
    const held = await this.deps.receiver.heldMeta(rec);
    const base = held ?? { ...emptyMetaData(), objectType: rec.objectType, objectID: rec.objectID, instanceID: rec.instanceID, dataID: rec.dataID };
    const { orgID, destinationType, destinationID } = this.deps;
    return goJson(orderedMetaData({ ...base, destinationOrgID: orgID, destinationType, destinationID, deleted: true }));
  }

  /**
   * @param after settles once the ack that must reach the CSS before this step's own did
   * @returns false when the step did not go through and must be retried later.
   */
  private async sendOwed(initial: Notification, after?: Promise<unknown>): Promise<boolean> {
    const { receiver, origin } = this.deps;
    if (origin !== undefined && ORIGIN_OWED.includes(initial.status)) {
      const upload = { conn: this.conn, origin, blobs: this.deps.blobs, chunkSize: this.deps.uploadChunkSize ?? DEFAULT_UPLOAD_CHUNK, resendIntervalMs: this.deps.resendIntervalMs, now: this.now, signal: this.abort.signal };
      return sendOriginOwed(upload, initial);
    }
    let rec: Notification | null = initial;
    if (rec.status === 'handleUpdate' || rec.status === 'getdata') {
      const obj = await receiver.partial(rec);
      if (obj === null) return true;
      await downloadData(this.downloadDeps(), obj.meta);
      // Complete now: its `received` goes at once; else the download was refused.
      rec = await receiver.recordOf(obj.meta);
      if (rec === null || rec.status !== 'received') return rec === null;
    }
    const action: SpiObjectAction | null = rec.status === 'received' ? 'received' : rec.status === 'consumed' ? 'consumed' : rec.status === 'deleted' ? 'deleted' : null;
    if (action === null) return true;
    await after;
    const ref = { objectType: rec.objectType, objectID: rec.objectID, instanceID: rec.instanceID, dataID: rec.dataID };
    if (!(await this.conn.sendAction(ref, action, action === 'deleted' ? await this.deletedBody(rec) : undefined))) return false;
    await receiver.acked(rec);
    return true;
  }
}
