/**
 * Benchmark: how long a long-poll wake takes from one CSS instance to another through the
 * database (MongoWakeBus on a FerretDB started for the run, polled every 250 ms). Two buses,
 * two clients, one process: A publishes a wake for a peer, B's subscriber is timed; one wake
 * at a time at a random moment (`single`), then bursts of 200 distinct peers (`burst`: the
 * time until the last of them arrived). It bounds what a scaled-out CSS adds to the reaction
 * time of a long-poll held on another instance than the one the work was queued on.
 *
 *   npm run build && node dist/scripts/bench/peer-wake-latency.js [wakes=50]
 *
 * One JSON line per result.
 */
import { MongoClient } from 'mongodb';
import { MongoWakeBus } from '../../lib/store/mongo/mongo-wake-bus.js';
import { startFerretDb } from '../../test/helpers/ferretdb.js';

const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const round = (x: number): number => Math.round(x);

function line(o: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ bench: 'peer-wake-latency', ...o })}\n`);
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? NaN;
}

async function main(): Promise<void> {
  const wakes = Number(process.argv[2] ?? 50);
  const server = await startFerretDb();
  const clients = [new MongoClient(server.url), new MongoClient(server.url)];
  const database = `wakes_${process.pid}`;
  try {
    const [a, b] = clients.map((c) => new MongoWakeBus({ db: c.db(database) }));
    if (a === undefined || b === undefined) return;
    await a.start();
    await b.start();
    const arrived = new Map<string, number>();
    b.subscribe((_org, _type, id) => arrived.set(id, nowMs()));

    const single: number[] = [];
    for (let i = 0; i < wakes; i++) {
      await sleep(Math.random() * 300);
      const id = `s${i}`;
      const t0 = nowMs();
      a.publish('org1', 'edge', id);
      while (!arrived.has(id) && nowMs() - t0 < 10_000) await sleep(2);
      single.push((arrived.get(id) ?? Infinity) - t0);
    }
    single.sort((x, y) => x - y);
    line({ kind: 'single', mode: b.mode, wakes, p50Ms: round(percentile(single, 50)), p95Ms: round(percentile(single, 95)), maxMs: round(single.at(-1) ?? NaN), pollMs: 250 });

    for (let burst = 0; burst < 3; burst++) {
      const ids = Array.from({ length: 200 }, (_, i) => `b${burst}-${i}`);
      const t0 = nowMs();
      for (const id of ids) a.publish('org1', 'edge', id);
      const deadline = t0 + 10_000;
      while (!ids.every((id) => arrived.has(id)) && nowMs() < deadline) await sleep(5);
      const got = ids.filter((id) => arrived.has(id));
      line({ kind: 'burst', run: burst + 1, peers: ids.length, lastArrivedMs: round(Math.max(...got.map((id) => arrived.get(id) ?? 0)) - t0), lost: ids.length - got.length });
    }
    await a.stop();
    await b.stop();
  } finally {
    for (const c of clients) await c.close();
    await server.stop();
  }
}

await main();
