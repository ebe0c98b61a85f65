/**
 * The CSS's push to its MQTT ESS nodes: one loop per registered ESS asks the engine what is
 * queued for it (`pending()`), publishes each item as a control message, then waits for work.
 * MQTT has no poll: what the HTTP ESS learns by polling, the MQTT ESS hears pushed.
 *
 * An item stays pending until the ESS answers it; it is published again only once it has been
 * pending a whole resend interval since it was last published, so a signal for a new object
 * does not repeat the others. [ref sync-protocol §3 "Resend timer"; the reference waits 6×]
 *
 * Thousands of ESS nodes cost little: an idle loop is one pending wait in the engine (a timer
 * and a waiter), and it only queries again when woken or when something it sent falls due.
 */
import { FailedDependencyError, destinationKey, destinationLabel, type DestinationRef } from '../../model/index.js';
import type { Logger } from '../../log/logger.js';
import type { CssSyncEngine, EssSession, PendingItemKey, SyncItem } from '../../sync/css/types.js';

export interface CssPushLoopsDeps {
  engine: CssSyncEngine;
  /** Publishes one item to its ESS (QoS 1); rejects when the broker does not take it. */
  send(peer: DestinationRef, item: SyncItem): Promise<void>;
  /**
   * Resolves when messages can be published (the broker connection is up), or on `signal`:
   * while the broker is away the loops wait here instead of asking the engine in vain.
   */
  ready?(peer: DestinationRef, signal: AbortSignal): Promise<void>;
  /** RESEND_INTERVAL in ms: how long an item waits for its answer before it is published again. */
  resendIntervalMs: number;
  log: Logger;
  /** Epoch ms; tests inject a fake clock. */
  now?: () => number;
}

/** Items asked of the engine per round; more wait their turn (they are answered and leave). */
const BATCH = 500;

/**
 * Publishes of a round awaiting their PUBACK at once: one by one, each item would wait a round
 * trip to the broker; the client writes them in order all the same.
 */
const PUBLISH_WINDOW = 64;

/**
 * How long a loop with nothing outstanding sleeps unless woken: the engine wakes it when it
 * queues something, so this only bounds the delay of a wake-up that was missed (another
 * process queued it). [ref sync-protocol §3: the reference resends after 6× the interval]
 */
const IDLE_FACTOR = 6;

/**
 * Each round reads every item still pending (those pushed lately too, skipped once read), and a
 * round may follow every PUT or answer: with many pending, reading them would take most of the
 * CSS's time. So a round that read `n` items is followed by the next one no sooner than n × this
 * after it started (500 items: 100 ms), unless the ESS registered again. Nothing is lost: the
 * next round pushes what came meanwhile.
 */
const ROUND_GAP_PER_ITEM_MS = 0.2;

/** After an error (a store or broker hiccup) a loop waits this long before it asks again. */
const ERROR_PAUSE_MS = 1000;

/** Resolves after `ms`, or at once when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** The identity of one thing queued: a new instance or another command is a new item. */
function itemKey(item: SyncItem | PendingItemKey): string {
  const { objectType, objectID, instanceID } = 'meta' in item ? item.meta : item;
  return `${item.type}\u0000${objectType}\u0000${objectID}\u0000${instanceID}`;
}

class PushLoop {
  /** Item → epoch ms it was last published. */
  private readonly lastSent = new Map<string, number>();
  /** Aborted to cut the current wait short (new work, a re-registration, stop). */
  private wake = new AbortController();
  /**
   * The last round listed a full batch: more may wait behind what it pushed, and the ESS's
   * answers make room for them (see answered()).
   */
  private backlog = false;
  /** Items the last round read (see ROUND_GAP_PER_ITEM_MS). */
  private listed = 0;
  /** Aborted to skip the gap before the next round (a re-registration, stop). */
  private gap = new AbortController();
  private readonly stopping = new AbortController();
  private stopped = false;
  /** Set as the loop returns: a registration arriving then starts a new loop. */
  ended = false;
  readonly done: Promise<void>;

  constructor(
    readonly peer: DestinationRef,
    private readonly deps: CssPushLoopsDeps,
    private readonly now: () => number,
    onEnd: () => void,
    /** One round, then the loop ends (see CssPushLoops.once). */
    private readonly single = false,
  ) {
    this.done = this.run().finally(onEnd);
  }

  /** Publishes everything pending at once, as if nothing had been sent (the ESS registered again). */
  restart(): void {
    this.lastSent.clear();
    this.wake.abort();
    this.gap.abort();
  }

  /**
   * The ESS answered something pushed: with a backlog, a round goes at once to push what the
   * answer made room for, instead of at the next resend.
   */
  answered(): void {
    if (this.backlog) this.wake.abort();
  }

  stop(): void {
    this.stopped = true;
    this.stopping.abort();
    this.wake.abort();
    this.gap.abort();
  }

  private get stopSignal(): AbortSignal {
    return this.stopping.signal;
  }

  private async run(): Promise<void> {
    try {
      await (this.single ? this.once() : this.loop());
    } finally {
      this.ended = true;
    }
  }

  private async once(): Promise<void> {
    await this.deps.ready?.(this.peer, this.stopSignal);
    if (this.stopped) return;
    try {
      await this.round(this.deps.engine.session(this.peer));
    } catch (err) {
      // The owner's loop (or the next registration) pushes it: nothing is lost here.
      if (!this.stopped) this.deps.log.debug({ err, destination: destinationLabel(this.peer), org: this.peer.orgID }, 'a single push round to an MQTT ESS failed');
    }
  }

  private async loop(): Promise<void> {
    const log = this.deps.log;
    const longest = this.deps.resendIntervalMs * IDLE_FACTOR;
    while (!this.stopped) {
      // The wait starts before the round, so that work queued while the round runs is not missed.
      await this.deps.ready?.(this.peer, this.stopSignal);
      if (this.stopped) return;
      // A session per round: one remembers the registration it saw (lib/sync/css/ess-session.ts).
      const session = this.deps.engine.session(this.peer);
      const wake = new AbortController();
      this.wake = wake;
      const woken = session.waitForWork(longest, wake.signal);
      const gap = new AbortController();
      this.gap = gap;
      const startedAt = Date.now();
      let waitMs: number;
      try {
        waitMs = await this.round(session);
      } catch (err) {
        wake.abort();
        await woken;
        if (err instanceof FailedDependencyError) {
          // Not (or no longer) registered: nothing to push until it registers again.
          log.debug({ destination: destinationLabel(this.peer), org: this.peer.orgID, reason: err.message }, 'push loop ends: the ESS is not registered over MQTT');
          return;
        }
        if (this.stopped) return;
        log.warn({ err, destination: destinationLabel(this.peer), org: this.peer.orgID }, 'could not push to an MQTT ESS; trying again');
        await sleep(ERROR_PAUSE_MS, this.stopSignal);
        continue;
      }
      if (!this.stopped) await (waitMs < longest ? Promise.race([woken, sleep(waitMs, wake.signal)]) : woken);
      wake.abort();
      await woken;
      const rest = startedAt + this.listed * ROUND_GAP_PER_ITEM_MS - Date.now();
      if (rest > 0) await sleep(rest, gap.signal);
    }
  }

  /**
   * Publishes `due` in order, up to PUBLISH_WINDOW awaiting their PUBACK at once; each is
   * noted as sent once the broker took it. Throws the first failure, once the others settled.
   */
  private async publishAll(due: ReadonlyArray<{ key: string; item: SyncItem }>): Promise<void> {
    let next = 0;
    let failure: { err: unknown } | null = null;
    const worker = async (): Promise<void> => {
      while (next < due.length && !this.stopped && failure === null) {
        const { key, item } = due[next++]!;
        try {
          await this.deps.send(this.peer, item);
          this.lastSent.set(key, this.now());
        } catch (err) {
          failure ??= { err };
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(PUBLISH_WINDOW, due.length) }, worker));
    if (failure !== null) throw (failure as { err: unknown }).err;
  }

  /** One round: publishes what is due; returns how long to wait before the next one. */
  private async round(session: EssSession): Promise<number> {
    // An ESS that registered again over HTTP polls for itself (the session keeps the record read
    // here for `pending`, which then costs no second lookup).
    const dest = await session.destination();
    if (dest === null) throw new FailedDependencyError(`${destinationLabel(this.peer)} is not registered`);
    if (dest.communication !== 'mqtt') throw new FailedDependencyError(`${destinationLabel(this.peer)} syncs over ${dest.communication} now`);
    const interval = this.deps.resendIntervalMs;
    const seen = new Set<string>();
    const recent = (key: string): boolean => {
      const last = this.lastSent.get(key);
      return last !== undefined && this.now() - last < interval;
    };
    // A push is not a delivery: the ESS may be away (see EssSession.pending). What was pushed
    // lately is not read again: each round would read every object still awaiting its answer.
    const items = await session.pending(BATCH, {
      markServed: false,
      pushed: true,
      skip: (item) => {
        const key = itemKey(item);
        seen.add(key);
        return recent(key);
      },
    });
    // Answered items leave the listing: a full one means more wait behind (see answered()).
    this.backlog = seen.size >= BATCH;
    this.listed = seen.size;
    const due: Array<{ key: string; item: SyncItem }> = [];
    for (const item of items) {
      const key = itemKey(item);
      seen.add(key);
      if (!recent(key)) due.push({ key, item });
    }
    await this.publishAll(due);
    // Answered (or replaced) items leave the map: it stays as small as what is outstanding.
    for (const key of this.lastSent.keys()) if (!seen.has(key)) this.lastSent.delete(key);
    if (this.lastSent.size === 0) return interval * IDLE_FACTOR;
    const now = this.now();
    let next = Infinity;
    for (const at of this.lastSent.values()) next = Math.min(next, at + interval - now);
    return Math.max(next, 1);
  }
}

/** The push loops of one CSS, by ESS. */
export class CssPushLoops {
  private readonly loops = new Map<string, PushLoop>();
  /** Single rounds under way (see once). */
  private readonly singles = new Map<string, PushLoop>();
  private readonly now: () => number;
  private closed = false;

  constructor(private readonly deps: CssPushLoopsDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** Starts the ESS's loop unless it runs; `fresh` re-publishes everything pending at once. */
  ensure(peer: DestinationRef, opts: { fresh?: boolean } = {}): void {
    if (this.closed) return;
    const key = destinationKey(peer);
    const running = this.loops.get(key);
    if (running !== undefined && !running.ended) {
      if (opts.fresh === true) running.restart();
      return;
    }
    const loop: PushLoop = new PushLoop(peer, this.deps, this.now, () => {
      if (this.loops.get(key) === loop) this.loops.delete(key);
    });
    this.loops.set(key, loop);
  }

  /**
   * Publishes what is pending for the ESS once, as if nothing had been sent, without keeping a
   * loop: a CSS that does not own the ESS's loop (another instance does, see
   * docs/adr/0021-mqtt-scale-out.md) answers a registration so, at once. A round already under
   * way for the ESS is not doubled; one with a loop here restarts the loop instead.
   */
  once(peer: DestinationRef): void {
    if (this.closed) return;
    const key = destinationKey(peer);
    const running = this.loops.get(key);
    if (running !== undefined && !running.ended) {
      running.restart();
      return;
    }
    if (this.singles.has(key)) return;
    const single: PushLoop = new PushLoop(peer, this.deps, this.now, () => {
      if (this.singles.get(key) === single) this.singles.delete(key);
    }, true);
    this.singles.set(key, single);
  }

  /** Ends every loop and round, and stays usable (this CSS stops owning the loops); resolves when none publishes any more. */
  async stopAll(): Promise<void> {
    const loops = [...this.loops.values(), ...this.singles.values()];
    this.loops.clear();
    this.singles.clear();
    for (const l of loops) l.stop();
    await Promise.all(loops.map((l) => l.done));
  }

  /** The ESS answered something pushed to it (see PushLoop.answered). */
  answered(peer: DestinationRef): void {
    const loop = this.loops.get(destinationKey(peer));
    if (loop !== undefined && !loop.ended) loop.answered();
  }

  /** How many ESS nodes have a loop (for the health report and tests). */
  get size(): number {
    return this.loops.size;
  }

  /** Ends every loop; resolves when none is publishing any more. */
  async stop(): Promise<void> {
    this.closed = true;
    await this.stopAll();
  }
}
