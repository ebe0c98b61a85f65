/**
 * The ESS side of the protocol engine: registers with the CSS, polls it (or waits for what it
 * pushes), and works through what it is sent and what the Receiver and the OriginSender say is
 * owed: downloads (download.ts), uploads (upload.ts) and acks. It talks to its CSS only through
 * a CssLink (HTTP or MQTT) and makes every commit to the store itself; the link moves bytes.
 * One loop, stopped by `stop()`; every failure is retried, none escapes as an unhandled
 * rejection. Items and owed work are handled several at a time (the reference handles them one
 * by one in its poll goroutine). [ref sync-protocol §1 "ESS behaviour", §3]
 */
import { setMaxListeners } from 'node:events';
import { isStorageFull } from '../../model/index.js';
import type { BlobStore } from '../../store/types.js';
import type { OriginSender } from '../origin-sender.js';
import type { Receiver } from '../receiver.js';
import { CredentialsRefusedError, NotRegisteredError, type CssItem, type CssLink } from './css-link.js';
import { EarlyDownloads } from './early.js';
import { ItemPool } from './item-pool.js';
import { eachLimit, ObjectWork } from './object-work.js';
import type { SyncEvents, TransportKind } from '../sync-events.js';

export interface AgentLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface EssAgentDeps {
  /** The agent's own from now on: `stop()` closes it. */
  link: CssLink;
  receiver: Receiver;
  /** Objects published here, owed to the CSS (upload.ts); absent = this ESS sends nothing. */
  origin?: OriginSender;
  blobs: BlobStore;
  /** This ESS. */
  self: { orgID: string; destinationType: string; destinationID: string };
  /** HTTP_POLLING_INTERVAL, ms: the longest wait between two idle polls that the CSS does not hold. */
  pollingIntervalMs: number;
  /** RESEND_INTERVAL, ms: the wait after a failure (registration, network). */
  resendIntervalMs: number;
  /**
   * Seconds the CSS may hold an empty poll (HTTP `?wait=`, our extension; with MQTT, how long
   * to wait for a message); 0 = the reference's adaptive polling, what a reference CSS expects
   * over HTTP (compatibility mode). Ignored (0) when the link cannot hold polls.
   */
  longPollSeconds: number;
  /** ESS_PING_INTERVAL, ms: how often a registered ESS pings the CSS. */
  pingIntervalMs?: number;
  /** Objects worked on at once (downloads and acks); 1 = the reference's one by one. */
  concurrency?: number;
  /** Bytes per pushed range of an upload (MAX_DATA_CHUNK_SIZE); default 5 MiB. */
  uploadChunkSize?: number;
  /** Bytes per durable segment of a download; the StagingWriter's default when absent. */
  segmentBytes?: number;
  log: AgentLog;
  /** Told whether this ESS is registered, for the health report. */
  health?: { setRegistered(registered: boolean): void };
  now?: () => number;
  /** Told of the data moved to and from the CSS. */
  events?: SyncEvents;
  /** How the link moves data, for the events. */
  transport?: TransportKind;
}

/** Default of EssAgentDeps.pingIntervalMs: the reference's ESS_PING_INTERVAL of 1 h. */
const DEFAULT_PING_INTERVAL_MS = 3_600_000;
/** Default of EssAgentDeps.concurrency: enough to hide round trips, few enough for 2 cores. */
const DEFAULT_CONCURRENCY = 32;
/**
 * Items handled at once that need no data request (inline data, deletes, answers about this
 * ESS's own objects) or only a light one (CssLink.lightDownloadBytes): each holds at most its
 * small data.
 */
const LIGHT_CONCURRENCY = 256;
/** Default of EssAgentDeps.uploadChunkSize: the reference's MaxDataChunkSize. */
const DEFAULT_UPLOAD_CHUNK = 5 * 1024 * 1024;

export class EssAgent {
  private readonly abort = new AbortController();
  private readonly link: CssLink;
  private readonly concurrency: number;
  private readonly now: () => number;
  /** Seconds a poll may be held; 0 when the link cannot hold one. */
  private readonly holdS: number;
  private loop: Promise<void> | null = null;
  private wakeUp: (() => void) | null = null;
  /** Cancels the held poll in flight, if any; see wake(). */
  private pollAbort: AbortController | null = null;
  /** When the held poll in flight is to end at the latest (epoch ms). */
  private pollEndsAt = 0;
  /** wake() was called since the loop last flushed its outbound work. */
  private woken = false;
  /**
   * When the retries attempt() scheduled (and other records deferred meanwhile) fall due,
   * soonest first. A held poll is cut to end by the next one, else a retry would sit out the
   * CSS's hold instead of going after RESEND_INTERVAL.
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
  /** What the agent does about each item and each owed record. */
  private readonly work: ObjectWork;
  /** Items handled as they come, for a link that pushes them (CssLink.itemsPushed); null: a poll's batch at a time. */
  private readonly pool: ItemPool | null;
  /** Items in hand at most before the next poll (with a pool). */
  private readonly lightLimit: number;
  /**
   * With a pool the loop goes round once per poll, so it reads the owed records only when
   * something may be owed: after a registration, a wake(), a retry falling due, and at least
   * every RESEND_INTERVAL. When it last did (epoch ms); -Infinity: at once.
   */
  private outboundReadAt = -Infinity;

  constructor(private readonly deps: EssAgentDeps) {
    this.link = deps.link;
    this.now = deps.now ?? Date.now;
    // Every request in flight listens on the stop signal; concurrency puts many on it at once.
    setMaxListeners(0, this.abort.signal);
    this.concurrency = Math.max(1, deps.concurrency ?? DEFAULT_CONCURRENCY);
    this.holdS = this.link.holdsPolls ? deps.longPollSeconds : 0;
    const signal = this.abort.signal;
    const fetchEarly = this.link.fetchEarly?.bind(this.link);
    const early = fetchEarly === undefined ? null : new EarlyDownloads({ fetch: fetchEarly, blobs: deps.blobs, signal, log: deps.log });
    const { receiver, blobs, self, resendIntervalMs, log, segmentBytes } = deps;
    this.work = new ObjectWork({
      link: this.link,
      receiver,
      ...(deps.origin !== undefined ? { origin: deps.origin } : {}),
      blobs,
      ...(deps.events !== undefined ? { events: deps.events } : {}),
      ...(deps.transport !== undefined ? { transport: deps.transport } : {}),
      self,
      resendIntervalMs,
      concurrency: this.concurrency,
      uploadChunkSize: deps.uploadChunkSize ?? DEFAULT_UPLOAD_CHUNK,
      ...(segmentBytes !== undefined ? { segmentBytes } : {}),
      early,
      log,
      now: this.now,
      signal,
      dueAt: (at) => this.noteDue(at),
    });
    // An agent told to work one by one (the reference's way) does so for every item.
    this.lightLimit = this.concurrency === 1 ? 1 : Math.max(LIGHT_CONCURRENCY, this.concurrency);
    this.pool =
      this.link.itemsPushed === true && this.concurrency > 1
        ? new ItemPool({
            downloads: this.concurrency,
            light: this.lightLimit,
            isDownload: (item) => this.isDownload(item),
            handle: (item) => this.work.handleItem(item),
            onError: (err) => this.itemFailed(err),
          })
        : null;
  }

  start(): void {
    if (this.loop !== null) return;
    // A CSS that pulls the data of what this ESS published asks the link, which asks us.
    const source = this.link.pushesData ? null : this.work.dataSource();
    if (source !== null) this.link.serveData?.(source);
    this.loop = this.run().catch((err: unknown) => this.deps.log.warn({ err }, 'the ESS sync loop ended with an error'));
  }

  /** Stops the loop, ends what is in flight, and closes the link. */
  async stop(): Promise<void> {
    this.abort.abort();
    this.wakeUp?.();
    this.pollAbort?.abort();
    await this.loop;
    // What is in hand sees the stop signal; an ack it waits for ends with its timeout.
    await this.pool?.idle();
    await this.link.close();
  }

  /**
   * Cuts the current wait short: the app did something the CSS must hear of. A held poll in
   * flight is a wait too: it is dropped, else the ack would sit out the CSS's hold.
   */
  wake(): void {
    this.woken = true;
    this.wakeUp?.();
    this.pollAbort?.abort();
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
   * with the default 10 s). [ref sync-protocol §1 Registration, Polling] With held polls the
   * CSS (or the link) does the waiting, so polls go back to back; only an empty answer that
   * came well before its hold (a CSS that ignores `wait`) falls back to the idle back-off, so
   * such a CSS is not polled in a tight loop.
   */
  private async run(): Promise<void> {
    let idleWait = 0;
    while (!this.stopped) {
      try {
        if (!this.registered) {
          await this.register();
          this.outboundReadAt = -Infinity;
        } else if (this.now() >= this.nextPingAt) await this.ping();
        if (this.resendOwed) await this.sendResend();
        if (this.outboundDue()) {
          this.woken = false;
          this.flushedAt = this.now();
          this.outboundReadAt = this.flushedAt;
          const pool = this.pool;
          await this.work.flushOutbound(pool === null ? undefined : (rec) => pool.holds(rec.objectType, rec.objectID));
        }
        const started = this.now();
        const { items, heldMs } = await this.poll();
        // A short poll while holds are on (after a wake, or with a retry due) is followed by a held one at once.
        const ignoredWait = heldMs > 0 && this.now() - started < heldMs / 2;
        const backOff = items === 0 && (this.holdS === 0 || ignoredWait);
        idleWait = backOff ? Math.min(idleWait + Math.max(1, Math.round(this.deps.pollingIntervalMs / 10)), this.deps.pollingIntervalMs) : 0;
        if (this.failing) this.deps.log.info({ css: this.link.address }, 'the CSS answers again');
        this.failing = false;
        await this.sleep(idleWait);
      } catch (err) {
        if (this.stopped) return;
        if (err instanceof NotRegisteredError) {
          this.registered = false;
          this.deps.health?.setRegistered(false);
          continue;
        }
        if (isStorageFull(err)) this.work.noteStorageFull(err);
        else this.noteCssFailure(err);
        await this.sleep(this.deps.resendIntervalMs);
      }
    }
  }

  /**
   * Logs a failed step of the loop once per episode, as what it is: a failure only an operator
   * can mend (refused credentials, an untrusted certificate) is an error, an unreachable CSS a
   * warning. The retries of an episode are debug lines.
   */
  private noteCssFailure(err: unknown): void {
    if (this.failing) {
      this.deps.log.debug({ err }, 'CSS still failing');
      return;
    }
    this.failing = true;
    const css = this.link.address;
    const action = this.link.operatorAction?.(err) ?? (err instanceof CredentialsRefusedError ? "the CSS refuses this ESS's credentials; retrying every RESEND_INTERVAL" : undefined);
    if (action !== undefined) this.deps.log.error({ err, css }, action);
    else this.deps.log.warn({ err, css }, 'cannot reach the CSS; retrying every RESEND_INTERVAL');
  }

  /**
   * `register`, or `register-new` when the CSS does not know this ESS. Our store is on disk,
   * hence persistent storage. [ref sync-protocol §1 Registration, §3 Registration]
   */
  private async register(): Promise<void> {
    if ((await this.link.register()) === 'unknown') {
      // Starting anew resets what the items in hand work on: they finish first (a plain
      // registration, after a reconnect, does not wait for them: some need it to go on).
      await this.pool?.idle();
      // What this ESS published is owed again, its unconfirmed deletions kept. [ref sync-protocol §3 Registration step 5]
      const deletions = (await this.deps.origin?.deletionsInFlight()) ?? [];
      await this.deps.receiver.onRegisterNew();
      await this.deps.origin?.onRegisterNew(deletions);
      await this.link.registerNew();
    }
    this.registered = true;
    this.deps.health?.setRegistered(true);
    this.nextPingAt = this.now() + (this.deps.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS);
    this.deps.log.info({ css: this.link.address }, 'registered with the CSS');
  }

  private async sendResend(): Promise<void> {
    await this.link.resend();
    this.resendOwed = false;
    this.deps.log.info({ css: this.link.address }, 'the CSS will send everything again');
  }

  /**
   * Tells the CSS this ESS is alive (its destination's last ping). A CSS that forgot the ESS
   * says so: register again, which becomes register-new. [ref sync-protocol §1 Ping]
   */
  private async ping(): Promise<void> {
    if ((await this.link.ping()) === 'unknown') throw new NotRegisteredError('the CSS does not know this ESS');
    this.nextPingAt = this.now() + (this.deps.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS);
  }

  /**
   * One poll; a held one unless holds are off, the agent was woken meanwhile (the owed acks go
   * first) or a retry is due. [ref sync-protocol §1 Poll]
   * @returns how many items it brought, and how long it was asked to be held (ms)
   */
  private async poll(): Promise<{ items: number; heldMs: number }> {
    // With a pool, the next poll waits for room: items in hand stay bounded.
    await this.pool?.below(this.lightLimit);
    const holdS = this.holdSeconds();
    if (holdS === 0) return { items: await this.handleItems(await this.link.poll({ holdS: 0, signal: this.abort.signal })), heldMs: 0 };
    const ac = new AbortController();
    this.pollAbort = ac;
    this.pollEndsAt = this.now() + holdS * 1000;
    // stop() may have come during the flush, before there was a poll to abort.
    if (this.stopped) ac.abort();
    let items: CssItem[];
    try {
      items = await this.link.poll({ holdS, signal: ac.signal });
    } finally {
      // Past this point a wake() must not cut the items' handling short.
      if (this.pollAbort === ac) this.pollAbort = null;
    }
    // Dropped by wake(): not a failure; the loop sends what is owed and polls again.
    if (ac.signal.aborted && items.length === 0) return { items: 0, heldMs: 0 };
    return { items: await this.handleItems(items), heldMs: holdS * 1000 };
  }

  /** Whether the loop reads the owed records this round: always without a pool (see outboundReadAt). */
  private outboundDue(): boolean {
    if (this.pool === null || this.woken) return true;
    const now = this.now();
    const retry = this.retriesDue.find((at) => at > this.flushedAt);
    return (retry !== undefined && retry <= now) || now - this.outboundReadAt >= this.deps.resendIntervalMs;
  }

  /** What an item handled by the pool threw (with batches, the loop's catch takes it). */
  private itemFailed(err: unknown): void {
    if (this.stopped) return;
    if (err instanceof NotRegisteredError) {
      if (!this.registered) return;
      this.registered = false;
      this.deps.health?.setRegistered(false);
      // The loop registers again at once, not after the poll's hold.
      this.wakeUp?.();
      this.pollAbort?.abort();
      return;
    }
    if (isStorageFull(err)) this.work.noteStorageFull(err);
    else this.noteCssFailure(err);
  }

  /** Whether an item needs a download that counts against the agent's concurrency. */
  private isDownload(item: CssItem): boolean {
    return item.type === 'update' && item.inline === null && item.meta.objectSize > (this.link.lightDownloadBytes ?? -1);
  }

  /** Seconds the next poll may be held: 0 = a plain poll; never past the next retry due. */
  private holdSeconds(): number {
    if (this.holdS === 0 || this.woken) return 0;
    while (this.retriesDue.length > 0 && this.retriesDue[0]! <= this.flushedAt) this.retriesDue.shift();
    const next = this.retriesDue[0];
    // Rounded up: a hold ending just before the retry is due would be followed by a busy loop of plain polls.
    return next === undefined ? this.holdS : Math.max(0, Math.min(this.holdS, Math.ceil((next - this.now()) / 1000)));
  }

  /** Applies what one poll brought. @returns how many items. */
  private async handleItems(items: CssItem[]): Promise<number> {
    if (this.pool !== null) {
      this.pool.add(items);
      return items.length;
    }
    // One record per (object, peer): no two items of a poll are about the same object, so they
    // may be handled in any order. The concurrency limit is about downloads (sockets, memory);
    // the other items only wait for commits, which the more of them share the better.
    const downloads: CssItem[] = [];
    const others: CssItem[] = [];
    for (const item of items) (this.isDownload(item) ? downloads : others).push(item);
    const handle = (item: CssItem): Promise<void> => this.work.handleItem(item);
    await Promise.all([eachLimit(downloads, this.concurrency, () => this.stopped, handle), eachLimit(others, this.lightLimit, () => this.stopped, handle)]);
    return items.length;
  }

  /** Keeps `at` in retriesDue, in order. Only holds read the list (and prune it): plain polling keeps nothing. */
  private noteDue(at: number): void {
    if (this.holdS === 0) return;
    let i = this.retriesDue.length;
    while (i > 0 && this.retriesDue[i - 1]! > at) i--;
    this.retriesDue.splice(i, 0, at);
    // With a pool, items fail while a poll is held: one held past the retry ends, so the loop
    // holds the next one only until the retry is due.
    if (this.pool !== null && at < this.pollEndsAt) this.pollAbort?.abort();
  }

}
