/**
 * Wakes between the CSS instances of one database, through a `wakes` collection.
 *
 * FerretDB has no change streams, so each instance polls: one indexed range query per tick
 * (`at >= cursor`), nothing more when nothing happens. `at` is stamped on the database's clock
 * (this host's clock plus an offset measured with `hello`'s localTime), so hosts whose clocks
 * disagree stamp alike. A wake stamped before a poll but committed after it is still caught by
 * the next polls: the cursor trails each poll's start by `overlapMs`, and a seen-set keeps the
 * wakes read twice from being delivered twice. A wake committed later than `overlapMs` after its
 * stamp is missed, which costs its long-poll one wait (the notification records are the truth).
 *
 * Where the server has change streams (a replica set or mongos), the bus listens to inserts
 * instead, and falls back to polling if the stream fails.
 *
 * Publishing coalesces: wakes for one peer published while a write is under way become one
 * document. Each instance sweeps wakes older than `retainMs` now and then (one indexed delete).
 */
import type { ChangeStream, ChangeStreamInsertDocument, Collection, Db, ObjectId } from 'mongodb';
import type { PeerWakeBus, PeerWakeHandler } from '../coordination-types.js';
import { newInstanceId } from '../single-process-coordination.js';
import { ensureIndexes } from './mongo-store.js';

interface WakeDoc {
  org: string;
  peerType: string;
  peerID: string;
  /** The publishing instance, which skips its own wakes. */
  from: string;
  /** Epoch ms on the database's clock. */
  at: number;
}

export interface MongoWakeBusOptions {
  db: Db;
  instanceId?: string;
  /** Default 250 ms. */
  pollMs?: number;
  /** How far each poll reaches back before the previous one's start; default 2 s. */
  overlapMs?: number;
  /** Wakes older than this are swept; default 60 s. */
  retainMs?: number;
  /** `auto` uses change streams where the server has them; default `auto`. */
  changeStreams?: 'auto' | 'off';
  log?: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  /** This host's epoch ms; tests may inject one (the database's clock is derived from it). */
  now?: () => number;
}

const CLOCK_CHECK_MS = 60_000;

type Peer = Pick<WakeDoc, 'org' | 'peerType' | 'peerID'>;

export class MongoWakeBus implements PeerWakeBus {
  readonly instanceId: string;
  private readonly col: Collection<WakeDoc>;
  private readonly pollMs: number;
  private readonly overlapMs: number;
  private readonly retainMs: number;
  private readonly handlers = new Set<PeerWakeHandler>();
  /** Database clock minus this host's, ms. */
  private offset = 0;
  private clockCheckedAt = 0;
  private cursor = 0;
  /** Wakes already delivered, by id, with their stamp (forgotten once the cursor passes it). */
  private readonly seen = new Map<string, number>();
  private readonly pending = new Map<string, Peer>();
  private flushing: Promise<void> | null = null;
  private nextSweep = 0;
  private timer: NodeJS.Timeout | null = null;
  private polling: Promise<void> | null = null;
  private stream: ChangeStream<WakeDoc, ChangeStreamInsertDocument<WakeDoc>> | null = null;
  private stopped = true;
  private failing = false;
  private readonly now: () => number;

  constructor(private readonly opts: MongoWakeBusOptions) {
    this.now = opts.now ?? Date.now;
    this.instanceId = opts.instanceId ?? newInstanceId();
    this.col = opts.db.collection<WakeDoc>('wakes');
    this.pollMs = opts.pollMs ?? 250;
    this.overlapMs = opts.overlapMs ?? 2000;
    this.retainMs = opts.retainMs ?? 60_000;
  }

  /** How this instance hears of wakes: through a change stream, or by polling. */
  get mode(): 'change-stream' | 'poll' {
    return this.stream !== null ? 'change-stream' : 'poll';
  }

  async start(): Promise<void> {
    if (!this.stopped) return;
    await ensureIndexes(this.col, [{ key: { at: 1 }, name: 'at' }]);
    const hello = await this.checkClock();
    this.stopped = false;
    this.cursor = this.dbNow();
    this.nextSweep = this.now() + Math.random() * this.retainMs;
    const hasStreams = typeof hello.setName === 'string' || hello.msg === 'isdbgrid';
    if (this.opts.changeStreams !== 'off' && hasStreams) this.listen();
    else this.schedulePoll();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const stream = this.stream;
    this.stream = null;
    await stream?.close().catch(() => undefined);
    await this.polling;
    await this.flushing;
    this.pending.clear();
  }

  publish(orgID: string, peerType: string, peerID: string): void {
    if (this.stopped) return;
    this.pending.set(JSON.stringify([orgID, peerType, peerID]), { org: orgID, peerType, peerID });
    this.flushing ??= this.flush();
  }

  subscribe(handler: PeerWakeHandler): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  /** Writes what was published, in one insert, until nothing is pending; never rejects. */
  private async flush(): Promise<void> {
    try {
      while (this.pending.size > 0 && !this.stopped) {
        // Let the publishes of this turn of the event loop join the batch.
        await new Promise((r) => setImmediate(r));
        const at = this.dbNow();
        const docs = [...this.pending.values()].map((p) => ({ ...p, from: this.instanceId, at }));
        this.pending.clear();
        await this.col.insertMany(docs, { ordered: false }).catch((err: unknown) => this.failed(err, 'could not publish wakes to the other instances'));
      }
    } finally {
      this.flushing = null;
    }
  }

  private schedulePoll(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.polling = this.poll()
        .catch((err: unknown) => this.failed(err, 'could not read the wakes of the other instances'))
        .finally(() => {
          this.polling = null;
          this.schedulePoll();
        });
    }, this.pollMs);
    this.timer.unref();
  }

  private async poll(): Promise<void> {
    if (this.now() - this.clockCheckedAt > CLOCK_CHECK_MS) await this.checkClock();
    const start = this.dbNow();
    const docs = await this.col
      .find({ at: { $gte: this.cursor } }, { projection: { org: 1, peerType: 1, peerID: 1, from: 1, at: 1 } })
      .sort({ at: 1 })
      .toArray();
    for (const d of docs) this.deliver(d._id, d);
    this.cursor = start - this.overlapMs;
    for (const [id, at] of this.seen) if (at < this.cursor) this.seen.delete(id);
    this.failing = false;
    if (this.now() >= this.nextSweep) {
      this.nextSweep = this.now() + this.retainMs / 2;
      await this.col.deleteMany({ at: { $lt: start - this.retainMs } });
    }
  }

  private deliver(id: ObjectId, d: WakeDoc): void {
    const key = id.toHexString();
    if (this.seen.has(key)) return;
    this.seen.set(key, Number(d.at));
    if (d.from === this.instanceId) return;
    for (const h of [...this.handlers]) {
      try {
        h(d.org, d.peerType, d.peerID);
      } catch (err) {
        this.opts.log?.warn({ err }, 'a wake handler failed');
      }
    }
  }

  /** Listens to inserts; on any failure of the stream, polls from a little before the failure. */
  private listen(): void {
    const stream = this.col.watch<WakeDoc, ChangeStreamInsertDocument<WakeDoc>>([{ $match: { operationType: 'insert' } }]);
    this.stream = stream;
    stream.on('change', (ev) => this.deliver(ev.documentKey._id, ev.fullDocument));
    stream.once('error', (err: unknown) => {
      if (this.stream !== stream) return;
      this.stream = null;
      void stream.close().catch(() => undefined);
      this.opts.log?.warn({ err }, 'the change stream of wakes failed; polling instead');
      this.cursor = this.dbNow() - this.overlapMs;
      this.schedulePoll();
    });
    // Sweeping still needs a timer when no poll runs.
    const sweep = setInterval(() => {
      if (this.stream !== stream) return clearInterval(sweep);
      void this.col.deleteMany({ at: { $lt: this.dbNow() - this.retainMs } }).catch(() => undefined);
    }, this.retainMs / 2);
    sweep.unref();
  }

  private dbNow(): number {
    return this.now() + this.offset;
  }

  /** Measures the database's clock against this host's (half the round trip is the error). */
  private async checkClock(): Promise<{ setName?: unknown; msg?: unknown }> {
    const sent = this.now();
    const hello = await this.opts.db.admin().command({ hello: 1 });
    const received = this.now();
    this.clockCheckedAt = received;
    const localTime: unknown = hello.localTime;
    if (localTime instanceof Date) this.offset = localTime.getTime() - (sent + received) / 2;
    return hello;
  }

  private failed(err: unknown, msg: string): void {
    if (!this.failing) this.opts.log?.warn({ err }, `${msg}; long-polls wake at the end of their wait meanwhile`);
    this.failing = true;
  }
}
