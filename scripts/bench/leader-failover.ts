/**
 * Benchmark: leader failover of a scaled-out CSS (issue #14's target: at most 15 s after kill -9
 * of the leader; the reference takes 45–60 s). On a FerretDB started for the run, two
 * contenders share one database; the leader is killed with SIGKILL (every process of its tree)
 * and the time until the other one logs "this instance leads the periodic jobs" is measured.
 * A replacement contender is started before the next run. Then the same with a clean stop
 * (SIGTERM: the leader resigns). Default lease timings: heartbeat 2 s, TTL 8 s.
 *
 * Contenders are either whole CSS processes (`css`, the default: `dist/` with
 * STORAGE_PROVIDER=mongo, COMMUNICATION_PROTOCOL=http) or bare lease processes (`lease`: this
 * file run as a child that holds only a MongoLeaderLease; quicker, the same lease code).
 *
 *   npm run build && node dist/scripts/bench/leader-failover.js [runs=5] [css|lease]
 *
 * One JSON line per result.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MongoClient } from 'mongodb';
import { MongoLeaderLease } from '../../lib/store/mongo/mongo-lease.js';
import { startFerretDb, type FerretDb } from '../../test/helpers/ferretdb.js';
import { processTree } from '../../test/helpers/node-process.js';

const LEADS = 'this instance leads the periodic jobs';
const FOLLOWS = 'another instance leads the periodic jobs';
const SETTLE_MS = 4000;
const DEADLINE_MS = 60_000;

const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const round = (x: number, digits = 2): number => +x.toFixed(digits);

function line(o: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ bench: 'leader-failover', ...o })}\n`);
}

/** The child of `lease` mode: holds a lease on the database and logs as the CSS does. */
async function contender(url: string, database: string): Promise<void> {
  const client = new MongoClient(url, { useBigInt64: true });
  await client.connect();
  const lease = new MongoLeaderLease({ db: client.db(database) });
  lease.onChange((leading) => process.stdout.write(`${JSON.stringify({ msg: leading ? LEADS : 'this instance no longer leads the periodic jobs' })}\n`));
  await lease.start();
  if (!lease.isLeader()) process.stdout.write(`${JSON.stringify({ msg: FOLLOWS })}\n`);
  const stop = (): void => void lease.stop().then(() => client.close()).then(() => process.exit(0));
  process.once('SIGTERM', stop);
  setInterval(() => undefined, 60_000);
}

interface Contender {
  child: ChildProcess;
  root: string | null;
  /** Resolves at the first log line saying it leads, with the time it arrived. */
  leads: Promise<number>;
  /** Resolves once it has started and is contending (leading or following). */
  ready: Promise<void>;
  output(): string;
}

function launch(mode: 'css' | 'lease', url: string, database: string, root: string | null): Contender {
  const child =
    mode === 'css'
      ? spawn(process.execPath, [join(process.cwd(), 'dist', 'cmd', 'edgesync.js'), 'css'], {
          env: {
            PATH: process.env.PATH ?? '',
            PERSISTENCE_ROOT_PATH: root ?? '',
            UNSECURE_LISTENING_PORT: '0',
            SECURE_LISTENING_PORT: '0',
            COMMUNICATION_PROTOCOL: 'http',
            STORAGE_PROVIDER: 'mongo',
            MONGO_ADDRESS_CSV: url,
            MONGO_DB_NAME: database,
            LOG_LEVEL: 'info',
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        })
      : spawn(process.execPath, [process.argv[1] ?? '', 'contender', url, database], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let onLeads: (t: number) => void = () => undefined;
  let onReady: () => void = () => undefined;
  const leads = new Promise<number>((r) => (onLeads = r));
  const ready = new Promise<void>((r) => (onReady = r));
  child.stdout?.on('data', (b: Buffer) => {
    const at = nowMs();
    const text = b.toString();
    out += text;
    if (text.includes(LEADS)) {
      onLeads(at);
      onReady();
    }
    if (text.includes(FOLLOWS)) onReady();
  });
  child.stderr?.on('data', (b: Buffer) => (out += b.toString()));
  return { child, root, leads, ready, output: () => out };
}

function within<T>(p: Promise<T>, what: string, c: Contender): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${DEADLINE_MS} ms\n${c.output().slice(-4000)}`)), DEADLINE_MS)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

async function killTree(c: Contender, signal: NodeJS.Signals): Promise<void> {
  const exited = new Promise((r) => (c.child.exitCode !== null || c.child.signalCode !== null ? r(null) : c.child.once('exit', r)));
  if (signal === 'SIGKILL') {
    // Every process at once, as a container's end does: no process of the tree gets to resign.
    for (const pid of processTree(c.child.pid ?? 0)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone already.
      }
    }
  } else {
    c.child.kill(signal);
  }
  await exited;
}

async function main(): Promise<void> {
  const runs = Number(process.argv[2] ?? 5);
  const mode = (process.argv[3] ?? 'css') as 'css' | 'lease';
  if (mode !== 'css' && mode !== 'lease') throw new Error(`mode must be css or lease, not ${String(mode)}`);
  const server: FerretDb = await startFerretDb();
  const database = `failover_${process.pid}`;
  const roots: string[] = [];
  const all: Contender[] = [];
  const start = async (): Promise<Contender> => {
    const root = mode === 'css' ? await mkdtemp(join(tmpdir(), 'edgesync-bench-failover-')) : null;
    if (root !== null) roots.push(root);
    const c = launch(mode, server.url, database, root);
    all.push(c);
    await within(c.ready, 'start', c);
    return c;
  };
  try {
    let leader = await start();
    await within(leader.leads, 'first leader', leader);
    let follower = await start();
    for (const kind of ['kill', 'stop'] as const) {
      const times: number[] = [];
      for (let run = 1; run <= runs; run++) {
        // The follower has watched the lease a while, as in a long-running deployment; the
        // random part spreads the kill over the heartbeat's phase.
        await sleep(SETTLE_MS + Math.random() * 2000);
        const t0 = nowMs();
        await killTree(leader, kind === 'kill' ? 'SIGKILL' : 'SIGTERM');
        const t1 = await within(follower.leads, `takeover after ${kind}`, follower);
        const seconds = round((t1 - t0) / 1000);
        times.push(seconds);
        line({ mode, kind, run, failoverS: seconds });
        leader = follower;
        follower = await start();
      }
      const sorted = [...times].sort((a, b) => a - b);
      line({ mode, kind, runs, minS: sorted[0], medianS: sorted[Math.floor(sorted.length / 2)], maxS: sorted.at(-1), heartbeatS: 2, ttlS: 8, targetS: 15 });
    }
  } finally {
    for (const c of all) await killTree(c, 'SIGKILL');
    for (const r of roots) await rm(r, { recursive: true, force: true });
    await server.stop();
  }
}

if (process.argv[2] === 'contender') {
  await contender(process.argv[3] ?? '', process.argv[4] ?? '');
} else {
  await main();
}
