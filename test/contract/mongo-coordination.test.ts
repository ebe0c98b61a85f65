/**
 * Coordination of CSS instances on one MongoDB-wire database (FerretDB here, as in
 * mongo-store.test.ts): the leader lease and the wake bus, several instances played by several
 * clients in this process. Short heartbeats keep the file quick; the failover time with the
 * defaults is measured by scripts/bench/leader-failover.ts, not asserted here.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { MongoClient, type Db } from 'mongodb';
import { MongoLeaderLease, type MongoLeaderLeaseOptions } from '../../lib/store/mongo/mongo-lease.js';
import { MongoWakeBus } from '../../lib/store/mongo/mongo-wake-bus.js';
import { PeerSignal } from '../../lib/sync/peer-signal.js';
import { ferretdbPath, MONGO_MISSING, startFerretDb, type FerretDb } from '../helpers/ferretdb.js';

const given = process.env.EDGESYNC_TEST_MONGO_URL;
const runnable = (given !== undefined && given !== '') || ferretdbPath() !== null;

const HEARTBEAT = 250;
const TTL = 1000;

/** Polls every 25 ms until `done()`; throws with `what` after `deadlineMs`. */
async function until(what: string, done: () => boolean, deadlineMs = 10_000): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`${what}: not after ${deadlineMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

if (!runnable) {
  console.warn(`Skipped: Mongo coordination (${MONGO_MISSING})`);
  describe.skip(`Mongo coordination (${MONGO_MISSING})`, () => {
    it('elects one leader and carries wakes between instances', () => {});
  });
} else {
  let server: FerretDb | null = null;
  let url = given ?? '';
  let dbCount = 0;
  /** Every client opened by a test, closed (and its database dropped) after it. */
  let clients: MongoClient[] = [];
  let stops: Array<() => Promise<void>> = [];
  let database = '';

  beforeAll(async () => {
    if (url === '') {
      server = await startFerretDb();
      url = server.url;
    }
  }, 30_000);

  afterAll(async () => {
    await server?.stop();
  });

  afterEach(async () => {
    for (const stop of stops.reverse()) await stop();
    stops = [];
    const admin = new MongoClient(url);
    try {
      await admin.db(database).dropDatabase();
    } finally {
      await admin.close();
    }
    for (const c of clients) await c.close();
    clients = [];
  });

  /** A database of the test's own, seen through a client of its own (one per instance). */
  async function instanceDb(fresh: boolean): Promise<Db> {
    if (fresh) database = `edgesync_coord_${process.pid}_${++dbCount}`;
    const client = new MongoClient(url, { useBigInt64: true });
    await client.connect();
    clients.push(client);
    return client.db(database);
  }

  async function lease(opts: Partial<MongoLeaderLeaseOptions> & { fresh?: boolean } = {}): Promise<MongoLeaderLease> {
    const { fresh = false, ...rest } = opts;
    const l = new MongoLeaderLease({ db: await instanceDb(fresh), heartbeatMs: HEARTBEAT, ttlMs: TTL, ...rest });
    stops.push(() => l.stop());
    return l;
  }

  /** Counts the moments two of `leases` (read again each time: it may grow) believed they led at once, checked every few ms and at each change. */
  function watchForTwoLeaders(leases: () => readonly MongoLeaderLease[]): { stop(): void; watch(l: MongoLeaderLease): void; overlaps: () => number } {
    let overlaps = 0;
    const check = (): void => {
      if (leases().filter((l) => l.isLeader()).length > 1) overlaps++;
    };
    const offs: Array<() => void> = [];
    const timer = setInterval(check, 5);
    return {
      watch: (l) => offs.push(l.onChange(check)),
      stop: () => {
        clearInterval(timer);
        for (const off of offs) off();
      },
      overlaps: () => overlaps,
    };
  }

  describe('MongoLeaderLease', () => {
    it('lets exactly one of two instances lead, and both name the same holder', async () => {
      const a = await lease({ fresh: true });
      const b = await lease();
      await Promise.all([a.start(), b.start()]);
      await until('one leader', () => a.isLeader() !== b.isLeader());
      await sleep(3 * HEARTBEAT);
      expect([a.isLeader(), b.isLeader()].filter(Boolean)).toHaveLength(1);
      const leader = a.isLeader() ? a : b;
      expect(a.holder()).toBe(leader.instanceId);
      expect(b.holder()).toBe(leader.instanceId);
    });

    it('leads at once on an empty database, and tells its listeners', async () => {
      const a = await lease({ fresh: true });
      const changes: boolean[] = [];
      a.onChange((leading) => changes.push(leading));
      await a.start();
      expect(a.isLeader()).toBe(true);
      await a.stop();
      expect(a.isLeader()).toBe(false);
      expect(changes).toEqual([true, false]);
    });

    it('hands over at the next heartbeat when the leader stops cleanly, long before the lease could expire', async () => {
      const longTtl = 60_000;
      const a = await lease({ fresh: true, ttlMs: longTtl });
      await a.start();
      expect(a.isLeader()).toBe(true);
      const b = await lease({ ttlMs: longTtl });
      await b.start();
      expect(b.isLeader()).toBe(false);
      expect(b.holder()).toBe(a.instanceId);
      const stoppedAt = Date.now();
      await a.stop();
      await until('b leads after a resigned', () => b.isLeader(), longTtl / 2);
      // Resignation, not expiry: a few heartbeats at most, on a loaded machine.
      expect(Date.now() - stoppedAt).toBeLessThan(longTtl / 4);
    });

    it('is taken over once the leader stops renewing (killed), not before the lease expired', async () => {
      const a = await lease({ fresh: true });
      await a.start();
      const b = await lease();
      await b.start();
      await sleep(2 * HEARTBEAT);
      expect(b.isLeader()).toBe(false);
      const killedAt = performance.now();
      // kill -9: the timers stop, nothing is written.
      await a.stop({ resign: false });
      let tookOverAt = 0;
      b.onChange((leading) => {
        if (leading) tookOverAt = performance.now();
      });
      await until('b takes over', () => b.isLeader(), 20 * TTL);
      // b cannot have judged the lease expired sooner than TTL after a's last renewal.
      expect(tookOverAt - killedAt).toBeGreaterThanOrEqual(TTL - HEARTBEAT);
      expect(b.holder()).toBe(b.instanceId);
    });

    it('never lets two of many racing contenders lead at once, through start, kills and resignations', async () => {
      // Stopped ones stay in the list: a killed leader must not believe it leads either.
      const all = [await lease({ fresh: true })];
      for (let i = 1; i < 6; i++) all.push(await lease());
      const watch = watchForTwoLeaders(() => all);
      for (const l of all) watch.watch(l);
      try {
        await Promise.all(all.map((l) => l.start()));
        for (let round = 0; round < 4; round++) {
          await until('a leader', () => all.some((l) => l.isLeader()), 20 * TTL);
          const leader = all.find((l) => l.isLeader())!;
          await leader.stop(round % 2 === 0 ? { resign: false } : {});
          // A new contender in place of the stopped one, on the same database.
          const fresh = await lease();
          all.push(fresh);
          watch.watch(fresh);
          await fresh.start();
        }
        await until('a leader at the end', () => all.some((l) => l.isLeader()), 20 * TTL);
        expect(watch.overlaps()).toBe(0);
      } finally {
        watch.stop();
      }
    }, 60_000);

    it('lets exactly one of many contenders win the first term on an empty database', async () => {
      const leases = [await lease({ fresh: true })];
      for (let i = 1; i < 8; i++) leases.push(await lease());
      await Promise.all(leases.map((l) => l.start()));
      expect(leases.filter((l) => l.isLeader())).toHaveLength(1);
    });

    it('refuses a TTL shorter than three heartbeats', async () => {
      const db = await instanceDb(true);
      expect(() => new MongoLeaderLease({ db, heartbeatMs: 1000, ttlMs: 2000 })).toThrow(RangeError);
    });
  });

  describe('MongoWakeBus', () => {
    async function bus(fresh = false, opts: { retainMs?: number; now?: () => number } = {}): Promise<MongoWakeBus> {
      const b = new MongoWakeBus({ db: await instanceDb(fresh), ...opts });
      stops.push(() => b.stop());
      await b.start();
      return b;
    }

    type Wake = [string, string, string];
    function collect(b: MongoWakeBus): Wake[] {
      const got: Wake[] = [];
      b.subscribe((org, type, id) => got.push([org, type, id]));
      return got;
    }

    it('polls on a server without change streams', async () => {
      const a = await bus(true);
      expect(a.mode).toBe('poll');
    });

    it('carries a wake published on one instance to the subscribers of another, not back to itself', async () => {
      const a = await bus(true);
      const b = await bus();
      const atA = collect(a);
      const atB = collect(b);
      a.publish('org1', 'edge', 'n1');
      await until('b hears the wake', () => atB.length > 0, 5000);
      await sleep(600);
      expect(atB).toEqual([['org1', 'edge', 'n1']]);
      expect(atA).toEqual([]);
    });

    it('loses no wake of a burst from two publishers, and delivers each once', async () => {
      const a = await bus(true);
      const c = await bus();
      const b = await bus();
      const atB = collect(b);
      const expected = new Set<string>();
      for (let i = 0; i < 300; i++) {
        const from = i % 2 === 0 ? a : c;
        from.publish('org1', 'edge', `n${i}`);
        expected.add(`n${i}`);
        if (i % 50 === 0) await sleep(30);
      }
      await until('b hears all 300', () => atB.length >= 300, 15_000);
      await sleep(1000);
      expect(atB.map((w) => w[2]).sort()).toEqual([...expected].sort());
    });

    it('loses no wake between hosts whose clocks are a minute apart (stamps are on the database clock)', async () => {
      const ahead = await bus(true, { now: () => Date.now() + 60_000 });
      const behind = await bus(false, { now: () => Date.now() - 60_000 });
      const b = await bus();
      const atB = collect(b);
      const atBehind = collect(behind);
      for (let i = 0; i < 20; i++) {
        ahead.publish('org1', 'edge', `a${i}`);
        behind.publish('org1', 'edge', `b${i}`);
        await sleep(20);
      }
      await until('b hears all 40', () => atB.length >= 40, 10_000);
      await until('the host behind hears all 20 of the host ahead', () => atBehind.length >= 20, 10_000);
      await sleep(600);
      expect(atB).toHaveLength(40);
      expect(atBehind.map((w) => w[2]).sort()).toEqual(Array.from({ length: 20 }, (_, i) => `a${i}`).sort());
    });

    it('sweeps old wakes', async () => {
      const a = await bus(true, { retainMs: 300 });
      const wakes = (await instanceDb(false)).collection('wakes');
      const counts: number[] = [];
      const counting = setInterval(() => void wakes.countDocuments().then((n) => counts.push(n)), 20);
      try {
        a.publish('org1', 'edge', 'n1');
        await until('the wake is written', () => counts.some((n) => n > 0), 5000);
        await until('the wake is swept', () => counts.at(-1) === 0, 10_000);
      } finally {
        clearInterval(counting);
      }
    });

    it('wakes a long-poll on instance A when instance B notifies its peer', async () => {
      const signalA = new PeerSignal(await bus(true));
      const signalB = new PeerSignal(await bus());
      const waited = signalA.wait('org1', 'edge', 'n1', 30_000).then(() => 'woken');
      const other = signalA.wait('org1', 'edge', 'n2', 1500).then(() => 'timed out');
      await sleep(50);
      signalB.notify('org1', 'edge', 'n1');
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<string>((r) => (timer = setTimeout(() => r('still waiting'), 10_000)));
      expect(await Promise.race([waited, late])).toBe('woken');
      clearTimeout(timer);
      expect(await other).toBe('timed out');
    });
  });
}
