/**
 * The leader lease on MongoDB (or FerretDB): one document per term in `leases`.
 *
 * - **Winning a term** is inserting its document (`_id` = lease name and term number): a unique
 *   insert is atomic on FerretDB too, whose filtered updates are not (mongo-cas.ts), so two
 *   contenders never both win a term.
 * - **The holder renews** by writing `beat` + 1 into its own term's document every heartbeat
 *   (no one else writes it, so the write needs no condition), after reading that its term is
 *   still the latest.
 * - **Expiry is judged by each contender on its own clock**: a contender that has seen the same
 *   (term, beat) for `ttlMs` by its own monotonic clock takes the next term. No clocks are
 *   compared between hosts, so skew does not matter, only clock rates (equal to within far less
 *   than the margin below).
 * - **The holder stops believing first.** It counts a renewal only when the write was
 *   acknowledged within `heartbeatMs` of its start `s`, and leads until `s + ttlMs - heartbeatMs`.
 *   A contender takes over at least `ttlMs` after the renewal it last saw was written, and a
 *   renewal it did not see committed at most `heartbeatMs` after its start: the holder's belief
 *   has ended before the contender's insert (docs/adr, leader lease). A holder whose belief
 *   lapsed never renews that term again; it contends for the next one like everyone else.
 * - **A clean stop resigns** (`resigned: true`): contenders take the next term at their next
 *   heartbeat instead of waiting for expiry.
 *
 * Failover after kill -9 of the holder: between `ttlMs` and `ttlMs + 2 × heartbeatMs` (the
 * contender's last sight of a renewal, then its polls), 8 to 12 s with the defaults.
 */
import type { Collection, Db } from 'mongodb';
import type { LeaderLease, LeadershipListener } from '../coordination-types.js';
import { newInstanceId } from '../single-process-coordination.js';
import { isDuplicateKey } from './mongo-cas.js';
import { ensureIndexes } from './mongo-store.js';

interface TermDoc {
  _id: string;
  lease: string;
  term: number;
  holder: string;
  /** Bumped by each renewal: what contenders watch. */
  beat: number;
  resigned: boolean;
  /** Wall-clock times, for people reading the collection; the lease itself never compares them. */
  acquiredAt: Date;
  renewedAt: Date;
}

/** Terms kept behind the current one (for people looking into a failover); older ones are removed. */
const KEPT_TERMS = 10;

export interface MongoLeaderLeaseOptions {
  db: Db;
  /** Several leases can share the collection; default `periodic-jobs`. */
  name?: string;
  instanceId?: string;
  /** How often the holder renews and contenders look; default 2 s. */
  heartbeatMs?: number;
  /** How long a contender waits on an unchanged lease before taking over; default 8 s, at least 3 heartbeats. */
  ttlMs?: number;
  /** Monotonic milliseconds; tests may inject one. */
  clock?: () => number;
  log?: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

export class MongoLeaderLease implements LeaderLease {
  readonly instanceId: string;
  private readonly name: string;
  private readonly heartbeatMs: number;
  private readonly ttlMs: number;
  private readonly clock: () => number;
  private readonly col: Collection<TermDoc>;
  private readonly listeners = new Set<LeadershipListener>();
  private readonly log: MongoLeaderLeaseOptions['log'];

  /** The term this instance holds, while it holds the latest one. */
  private term: number | null = null;
  private beat = 0;
  /** Start of the last renewal (or the insert) acknowledged in time: the holder leads until anchor + ttl - heartbeat. */
  private anchor: number | null = null;
  /** What a contender last saw of the latest term, and since when (its own clock). */
  private seen: { term: number; beat: number; since: number } | null = null;
  private lastHolder: string | null = null;
  private reported = false;
  private failing = false;

  private timer: NodeJS.Timeout | null = null;
  private expiry: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = true;

  constructor(opts: MongoLeaderLeaseOptions) {
    this.instanceId = opts.instanceId ?? newInstanceId();
    this.name = opts.name ?? 'periodic-jobs';
    this.heartbeatMs = opts.heartbeatMs ?? 2000;
    this.ttlMs = opts.ttlMs ?? 8000;
    if (this.ttlMs < 3 * this.heartbeatMs) throw new RangeError(`lease TTL ${this.ttlMs} ms must be at least 3 heartbeats (${3 * this.heartbeatMs} ms)`);
    this.clock = opts.clock ?? (() => performance.now());
    this.col = opts.db.collection<TermDoc>('leases');
    this.log = opts.log;
  }

  async start(): Promise<void> {
    if (!this.stopped) return;
    await ensureIndexes(this.col, [{ key: { lease: 1, term: -1 }, name: 'lease_term' }]);
    this.stopped = false;
    // The first look is awaited: on an empty or resigned lease the caller leads on return.
    await this.beatOnce();
  }

  /** Resigns when holding the lease (unless `resign: false`, which tests use to play a killed holder). */
  async stop(opts: { resign?: boolean } = {}): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    if (this.expiry !== null) clearTimeout(this.expiry);
    this.timer = this.expiry = null;
    await this.running;
    const term = this.term;
    this.term = this.anchor = null;
    this.report();
    if (term !== null && opts.resign !== false) {
      await this.col.updateOne({ _id: this.idOf(term) }, { $set: { resigned: true, renewedAt: new Date() } }).catch((err: unknown) => {
        this.log?.warn({ err }, 'could not resign the leader lease; another instance takes over when it expires');
      });
    }
  }

  isLeader(): boolean {
    return !this.stopped && this.term !== null && this.anchor !== null && this.clock() < this.anchor + this.ttlMs - this.heartbeatMs;
  }

  holder(): string | null {
    return this.isLeader() ? this.instanceId : this.lastHolder;
  }

  onChange(listener: LeadershipListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** One heartbeat, then the next one scheduled; never rejects. */
  private beatOnce(): Promise<void> {
    const t0 = this.clock();
    this.running = this.heartbeat(t0)
      .then(
        () => {
          if (this.failing) this.log?.info({ instanceId: this.instanceId }, 'the leader lease is reachable again');
          this.failing = false;
        },
        (err: unknown) => {
          if (!this.failing) this.log?.warn({ err, instanceId: this.instanceId }, 'the leader lease could not be read or renewed; retrying every heartbeat');
          this.failing = true;
        },
      )
      .finally(() => {
        this.running = null;
        this.report();
        if (this.stopped) return;
        this.timer = setTimeout(() => void this.beatOnce(), Math.max(0, t0 + this.heartbeatMs - this.clock()));
        this.timer.unref();
      });
    return this.running;
  }

  private async heartbeat(t0: number): Promise<void> {
    const latest = await this.col.find({ lease: this.name }).sort({ term: -1 }).limit(1).next();
    const t1 = this.clock();
    this.lastHolder = latest === null || latest.resigned ? null : latest.holder;
    const mine = latest !== null && this.term !== null && Number(latest.term) === this.term && latest.holder === this.instanceId;
    if (mine) {
      if (this.anchor !== null && t0 < this.anchor + this.ttlMs - this.heartbeatMs) return this.renew(t0);
      // This instance stopped believing in its term: renewing it now could overlap a contender
      // that judged it expired; the next term is safe (whoever inserts it first).
      this.term = this.anchor = null;
      return this.acquire(Number(latest.term) + 1);
    }
    this.term = this.anchor = null;
    if (latest === null) return this.acquire(1);
    const term = Number(latest.term);
    const beat = Number(latest.beat);
    if (latest.resigned) return this.acquire(term + 1);
    if (this.seen === null || this.seen.term !== term || this.seen.beat !== beat) {
      // The end of the read bounds from above when the holder wrote what it saw.
      this.seen = { term, beat, since: t1 };
      return;
    }
    // The start of this read bounds from below when the holder's unseen renewal could commit.
    if (t0 - this.seen.since >= this.ttlMs) await this.acquire(term + 1);
  }

  private async renew(t0: number): Promise<void> {
    const term = this.term!;
    // Bumped before the write: a write that failed may still have landed, and beats must only grow.
    const beat = ++this.beat;
    const r = await this.col.updateOne({ _id: this.idOf(term) }, { $set: { beat, renewedAt: new Date() } });
    if (r.matchedCount !== 1) {
      this.term = this.anchor = null;
      return;
    }
    if (this.clock() - t0 <= this.heartbeatMs) this.anchor = t0;
  }

  private async acquire(term: number): Promise<void> {
    const s = this.clock();
    const now = new Date();
    try {
      await this.col.insertOne({ _id: this.idOf(term), lease: this.name, term, holder: this.instanceId, beat: 0, resigned: false, acquiredAt: now, renewedAt: now });
    } catch (e) {
      if (isDuplicateKey(e)) return;
      throw e;
    }
    const acked = this.clock();
    // The insert may have filled the place of a removed old term (this instance read the
    // lease long ago): only the latest term leads.
    const latest = await this.col.find({ lease: this.name }).sort({ term: -1 }).limit(1).next();
    if (latest === null || Number(latest.term) !== term) {
      await this.col.deleteOne({ _id: this.idOf(term), holder: this.instanceId });
      return;
    }
    this.term = term;
    this.beat = 0;
    this.seen = null;
    this.lastHolder = this.instanceId;
    if (acked - s <= this.heartbeatMs) this.anchor = s;
    await this.col.deleteMany({ lease: this.name, term: { $lt: term - KEPT_TERMS } });
  }

  /** Tells the listeners when leadership changed, and arms a timer for the moment belief runs out. */
  private report(): void {
    const leading = this.isLeader();
    if (this.expiry !== null) clearTimeout(this.expiry);
    this.expiry = null;
    if (leading && this.anchor !== null) {
      this.expiry = setTimeout(() => this.report(), Math.max(0, this.anchor + this.ttlMs - this.heartbeatMs - this.clock()) + 1);
      this.expiry.unref();
    }
    if (leading === this.reported) return;
    this.reported = leading;
    for (const l of [...this.listeners]) l(leading);
  }

  private idOf(term: number): string {
    return `${this.name}:${term}`;
  }
}
