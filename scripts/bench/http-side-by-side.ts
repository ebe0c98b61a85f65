/**
 * Benchmark: one large object CSS → ESS over HTTP, ours and the reference side by side, clocked
 * the same way: from the first byte of the data upload to the object being `completelyReceived`
 * on the ESS (asked every 10 ms), both pairs started as their bins on loopback, the ESS polling
 * with HTTP_POLLING_INTERVAL=1. Rounds alternate ours / reference so that both see the same
 * machine state; every copy is read back from the ESS and its SHA-256 checked.
 *
 * The reference (open-horizon/edge-sync-service, built outside this repo: docs/interop.md) runs
 * when EDGESYNC_REFERENCE_BIN names it, with dummy auth, bolt storage and its defaults otherwise
 * (MAX_DATA_CHUNK_SIZE 5 MiB); ours with its defaults (preset users, SQLite + files).
 *
 * One JSON line per result ({"bench":"http-side-by-side","impl":"ours"|"reference",...}) and a
 * final ratio line (best of ours / best of the reference). Each result also gives the upload's
 * own time (first byte to its answer), the CPU seconds of the CSS, the ESS and this bench over
 * the clocked time (user + system, all threads), the load average at its end, and both nodes'
 * peak RSS (VmHWM, read after the read-back).
 *
 *   npm run build && EDGESYNC_REFERENCE_BIN=/path/to/edge-sync-service node dist/scripts/bench/http-side-by-side.js [sizeMiB=1024] [rounds=2]
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { SyncServiceClient } from '../../sdk/index.js';
import { adminClients, cleanUpOnSignals, cpuSeconds, nowMs, removeDir, round, rssMB, startCssWithEsses, stopNode, tempDir, until, writeRandomFile, type BenchNode } from './bench-nodes.js';

cleanUpOnSignals('http-side-by-side');

const ORG = 'bench';
const MiB = 1024 * 1024;
const DEADLINE_MS = 600_000;

type Impl = 'ours' | 'reference';

function line(impl: Impl | 'both', o: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ bench: 'http-side-by-side', impl, ...o })}\n`);
}

async function sha256Of(c: SyncServiceClient, objectType: string, objectID: string): Promise<string> {
  const hash = createHash('sha256');
  const body = await c.fetchObjectData(objectType, objectID, { signal: AbortSignal.timeout(DEADLINE_MS) });
  for await (const chunk of body as AsyncIterable<Buffer>) hash.update(chunk);
  return hash.digest('hex');
}

interface Clocked {
  /** From the first byte of the upload to `completelyReceived` on the ESS. */
  seconds: number;
  /** From the first byte of the upload to its answer. */
  uploadSeconds: number;
  /** CPU seconds (user + system, all threads) over the clocked time: CSS, ESS, this bench. */
  cpu: { css: number; ess: number; bench: number };
}

/** CPU seconds of a process so far, all threads; the bench's own when pid is null. */
async function cpuOf(pid: number | null): Promise<number> {
  if (pid !== null) return cpuSeconds(pid);
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/**
 * Publishes `file` on `onCss` for destination type `edge` and clocks it until the ESS has it.
 * `pids` are the serving processes of the CSS and the ESS, whose CPU time is taken.
 */
async function clocked(onCss: SyncServiceClient, onEss: SyncServiceClient, objectID: string, file: string, size: number, pids: { css: number; ess: number }): Promise<Clocked> {
  await onCss.updateObject({ objectID, objectType: 'large', destinationType: 'edge' });
  const who = [pids.css, pids.ess, null] as const;
  const before = await Promise.all(who.map(cpuOf));
  const start = nowMs();
  await onCss.updateObjectData('large', objectID, createReadStream(file, { highWaterMark: MiB }), { size, signal: AbortSignal.timeout(DEADLINE_MS) });
  const uploaded = nowMs();
  await until('the object completelyReceived on the ESS', Date.now() + DEADLINE_MS, 10, () => onEss.getObjectStatus('large', objectID), (s) => s === 'completelyReceived');
  const end = nowMs();
  const after = await Promise.all(who.map(cpuOf));
  const used = after.map((a, i) => round(a - before[i]!, 2));
  return { seconds: (end - start) / 1000, uploadSeconds: (uploaded - start) / 1000, cpu: { css: used[0]!, ess: used[1]!, bench: used[2]! } };
}

/** The fields of a result line. */
function figures(c: Clocked, size: number): Record<string, unknown> {
  return { metric: 'published_to_visible_MiBps', value: round(size / MiB / c.seconds), seconds: round(c.seconds, 2), uploadSeconds: round(c.uploadSeconds, 2), cpuSeconds: c.cpu, load: loadavg().map((x) => round(x, 2)) };
}

async function runOurs(file: string, size: number, expected: string, round_: number): Promise<number> {
  const nodes: BenchNode[] = [];
  const { client, closeAll } = adminClients();
  try {
    const { css, esses } = await startCssWithEsses(nodes, client, { org: ORG, destType: 'edge', ids: ['n1'], essEnv: { HTTP_POLLING_INTERVAL: '1' } });
    const ess = esses[0]!;
    const onEss = client(ess);
    await onEss.getObjectStatus('large', 'warm-up');
    const c = await clocked(client(css, ORG), onEss, `big${round_}`, file, size, { css: css.pid, ess: ess.pid });
    const intact = (await sha256Of(onEss, 'large', `big${round_}`)) === expected;
    line('ours', { round: round_, ...figures(c, size), intact, cssPeakMB: await rssMB(css.pid), essPeakMB: await rssMB(ess.pid) });
    return intact ? size / MiB / c.seconds : 0;
  } finally {
    closeAll();
    for (const node of [...nodes].reverse()) await stopNode(node);
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** One reference process with the settings of the captured traffic; resolves once it listens. */
async function startReference(bin: string, root: string, env: Record<string, string>): Promise<{ stop(): Promise<void>; port: number; pid: number }> {
  const port = await freePort();
  const conf = join(root, 'empty-sync.conf');
  await writeFile(conf, '');
  const child = spawn(bin, ['-c', conf], {
    env: {
      PATH: process.env.PATH ?? '',
      AUTHENTICATION_HANDLER: 'dummy',
      STORAGE_PROVIDER: 'bolt',
      COMMUNICATION_PROTOCOL: 'http',
      LISTENING_TYPE: 'unsecure',
      LISTENING_ADDRESS: '127.0.0.1',
      UNSECURE_LISTENING_PORT: String(port),
      PERSISTENCE_ROOT_PATH: root,
      LOG_TRACE_DESTINATION: 'stdout',
      LOG_ROOT_PATH: join(root, 'log'),
      TRACE_ROOT_PATH: join(root, 'trace'),
      // INFO: its "Listening on" line tells that it is up.
      LOG_LEVEL: 'INFO',
      TRACE_LEVEL: 'ERROR',
      RESEND_INTERVAL: '1',
      HTTP_POLLING_INTERVAL: '1',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  await until('the reference listening', Date.now() + 20_000, 50, () => Promise.resolve(out), (o) => o.includes(`Listening on ${port}`) || child.exitCode !== null);
  if (child.exitCode !== null) throw new Error(`the reference exited:\n${out}`);
  return {
    port,
    pid: child.pid ?? 0,
    stop: async () => {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await gone;
    },
  };
}

async function runReference(bin: string, file: string, size: number, expected: string, round_: number): Promise<number> {
  const cssRoot = await tempDir('edgesync-bench-refcss-');
  const essRoot = await tempDir('edgesync-bench-refess-');
  const stops: (() => Promise<void>)[] = [];
  const clients: SyncServiceClient[] = [];
  try {
    const css = await startReference(bin, cssRoot, { NODE_TYPE: 'CSS' });
    stops.push(css.stop);
    const ess = await startReference(bin, essRoot, { NODE_TYPE: 'ESS', ORG_ID: ORG, DESTINATION_TYPE: 'edge', DESTINATION_ID: 'n1', HTTP_CSS_HOST: '127.0.0.1', HTTP_CSS_PORT: String(css.port) });
    stops.unshift(ess.stop);
    const onCss = new SyncServiceClient({ url: `http://127.0.0.1:${css.port}`, appKey: `admin@${ORG}`, appSecret: '', orgID: ORG });
    const onEss = new SyncServiceClient({ url: `http://127.0.0.1:${ess.port}`, appKey: `admin@${ORG}`, appSecret: '' });
    clients.push(onCss, onEss);
    await until('the reference ESS registered', Date.now() + 60_000, 100, () => onCss.getDestinations(), (d) => d.some((x) => x.destinationID === 'n1'));
    const c = await clocked(onCss, onEss, `big${round_}`, file, size, { css: css.pid, ess: ess.pid });
    const intact = (await sha256Of(onEss, 'large', `big${round_}`)) === expected;
    line('reference', { round: round_, ...figures(c, size), intact, cssPeakMB: await rssMB(css.pid), essPeakMB: await rssMB(ess.pid) });
    return intact ? size / MiB / c.seconds : 0;
  } finally {
    for (const c of clients) c.close();
    for (const stop of stops) await stop();
    await removeDir(cssRoot);
    await removeDir(essRoot);
  }
}

async function main(): Promise<void> {
  const sizeMiB = Number(process.argv[2] ?? 1024);
  const rounds = Number(process.argv[3] ?? 2);
  const bin = process.env.EDGESYNC_REFERENCE_BIN ?? '';
  const work = await tempDir('edgesync-bench-side-');
  try {
    const file = join(work, 'payload');
    const size = sizeMiB * MiB;
    const expected = await writeRandomFile(file, size);
    const best: Record<Impl, number> = { ours: 0, reference: 0 };
    for (let r = 1; r <= rounds; r++) {
      best.ours = Math.max(best.ours, await runOurs(file, size, expected, r));
      if (bin !== '') best.reference = Math.max(best.reference, await runReference(bin, file, size, expected, r));
    }
    if (bin !== '') line('both', { metric: 'ratio_best_ours_to_best_reference', value: round(best.ours / best.reference, 2), ours: round(best.ours), reference: round(best.reference), target: '>=1' });
    else line('both', { metric: 'reference', value: null, note: 'EDGESYNC_REFERENCE_BIN not set: ours only' });
  } finally {
    await removeDir(work);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${String(err instanceof Error ? err.stack : err)}\n`);
  process.exit(1);
});
