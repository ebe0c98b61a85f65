/**
 * Benchmark: CSS → ESS over HTTP on the real binaries, in both ESS modes (long-poll, the
 * default, and EDGESYNC_REFERENCE_PROTOCOL=true). Per mode a fresh CSS and ESS are started
 * (temp dirs, random ports, LOG_LEVEL warning, default polling and resend intervals), then:
 *
 * - latency: 50 objects of 1 KiB inline data, addressed by type `edge`, published one after
 *   another; each is timed from its PUT's 204 to its status on the ESS being
 *   `completelyReceived` (polled every 2 ms). Prints p50, p95 and max in ms.
 * - throughput: 2000 objects of 1 KiB published by 16 concurrent SDK clients; timed from the
 *   first PUT to all 2000 listed by the ESS (counted every 200 ms, every 20 ms from 90% on).
 *   Prints objects/s and seconds.
 *
 * One JSON line per result. EDGESYNC_BENCH_NODE_FLAGS adds node flags to both nodes (profiling).
 *
 *   npx tsc -p tsconfig.build.json && node dist/scripts/bench/sync-http.js [longpoll|reference]
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SyncServiceClient } from '../../sdk/index.js';

type Mode = 'longpoll' | 'reference';

const run = promisify(execFile);
const BIN = join(process.cwd(), 'dist', 'cmd', 'edgesync.js');
const ORG = 'bench';
const KiB = 1024;
const LATENCY_OBJECTS = 50;
const THROUGHPUT_OBJECTS = 2000;
const PUBLISHERS = 16;
/** Bound of every waiting loop. */
const DEADLINE_MS = 120_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;

function line(mode: Mode, o: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ bench: 'sync-http', mode, ...o })}\n`);
}

/** Polls `probe` until `done`, or throws once `deadline` (a Date.now() value) has passed. */
async function until<T>(what: string, deadline: number, everyMs: number, probe: () => Promise<T>, done: (v: T) => boolean): Promise<T> {
  for (;;) {
    const v = await probe();
    if (done(v)) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not done before the deadline (last: ${JSON.stringify(v)})`);
    await sleep(everyMs);
  }
}

interface Node {
  child: ChildProcess;
  root: string;
  url: string;
  user: string;
  secret: string;
  /** The node's self-signed certificate, when its first URL is HTTPS. */
  ca?: Buffer;
}

/** Runs the bin (its shebang's node flags apply) in a temp dir and waits for its API URL. */
async function startNode(mode: 'css' | 'ess', env: Record<string, string>, nodes: Node[]): Promise<Node> {
  const root = await mkdtemp(join(tmpdir(), `edgesync-bench-${mode}-`));
  // EDGESYNC_BENCH_NODE_FLAGS (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`) runs the nodes under
  // node with those flags, for profiling; otherwise the bin runs with its shebang's flags.
  const flags = (process.env.EDGESYNC_BENCH_NODE_FLAGS ?? '').split(' ').filter((f) => f !== '');
  const child = spawn(flags.length > 0 ? process.execPath : BIN, flags.length > 0 ? [...flags, '--max-semi-space-size=1', BIN, mode] : [mode], {
    env: { PATH: process.env.PATH ?? '', PERSISTENCE_ROOT_PATH: root, ...(process.env.UV_THREADPOOL_SIZE !== undefined ? { UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE } : {}), UNSECURE_LISTENING_PORT: '0', SECURE_LISTENING_PORT: '0', LOG_LEVEL: 'warning', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const node: Node = { child, root, url: '', user: '', secret: '' };
  nodes.push(node);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
    process.stderr.write(d);
  });
  node.url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${mode} did not start in 20 s:\n${out}`)), 20_000);
    const check = (): void => {
      const m = /API:\s+(\S+)\/api\/v1/.exec(out);
      if (m?.[1] !== undefined && /password:\s+\S+/.test(out)) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout?.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${mode} exited with ${code}:\n${out}`));
    });
  });
  node.user = /user:\s+(\S+)/.exec(out)?.[1] ?? 'admin';
  node.secret = /password:\s+(\S+)/.exec(out)?.[1] ?? '';
  if (node.url.startsWith('https:')) node.ca = await readFile(join(root, 'sync', 'certs', 'cert.pem'));
  return node;
}

async function stopNode(node: Node): Promise<void> {
  const { child } = node;
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
  await rm(node.root, { recursive: true, force: true });
}

function percentile(sorted: number[], p: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] ?? NaN;
}

const round = (x: number, digits = 1): number => +x.toFixed(digits);

async function benchMode(mode: Mode): Promise<void> {
  const nodes: Node[] = [];
  const clients: SyncServiceClient[] = [];
  const client = (node: Node, orgID?: string): SyncServiceClient => {
    const c = new SyncServiceClient({ url: node.url, appKey: node.user, appSecret: node.secret, ...(node.ca ? { ca: node.ca } : {}), ...(orgID !== undefined ? { orgID } : {}) });
    clients.push(c);
    return c;
  };
  try {
    const css = await startNode('css', {}, nodes);
    const onCss = client(css, ORG);
    await onCss.putOrganization({ orgID: ORG });
    await run(process.execPath, [BIN, 'users', 'add', `${ORG}/edge/n1`, '--type', 'edgenode', '--org', ORG, '--username', 'edge/n1', '--secret', 's', '--persistence-root-path', css.root]);
    const ess = await startNode(
      'ess',
      {
        ORG_ID: ORG,
        DESTINATION_TYPE: 'edge',
        DESTINATION_ID: 'n1',
        HTTP_CSS_HOST: '127.0.0.1',
        HTTP_CSS_PORT: new URL(css.url).port,
        HTTP_CSS_USER: `${ORG}/edge/n1`,
        HTTP_CSS_PASSWORD: 's',
        EDGESYNC_REFERENCE_PROTOCOL: String(mode === 'reference'),
      },
      nodes,
    );
    const onEss = client(ess);
    await until('registration', Date.now() + DEADLINE_MS, 100, () => onCss.getDestinations(), (d) => d.some((x) => x.destinationType === 'edge' && x.destinationID === 'n1'));

    // 1. latency, one object at a time.
    const latencies: number[] = [];
    const latDeadline = Date.now() + DEADLINE_MS;
    for (let i = 0; i < LATENCY_OBJECTS; i++) {
      const objectID = `lat-${i}`;
      await onCss.updateObject({ objectID, objectType: 'lat', destinationType: 'edge' }, randomBytes(KiB));
      const t0 = nowMs();
      await until(`${objectID} on the ESS`, latDeadline, 2, () => onEss.getObjectStatus('lat', objectID), (s) => s === 'completelyReceived');
      latencies.push(nowMs() - t0);
    }
    const sorted = [...latencies].sort((a, b) => a - b);
    line(mode, { metric: 'latency_p50_ms', value: round(percentile(sorted, 50)) });
    line(mode, { metric: 'latency_p95_ms', value: round(percentile(sorted, 95)) });
    line(mode, { metric: 'latency_max_ms', value: round(sorted[sorted.length - 1] ?? NaN) });

    // 2. throughput, 16 publishers sharing one queue of 2000 objects.
    const publishers = Array.from({ length: PUBLISHERS }, () => client(css, ORG));
    const payload = randomBytes(KiB);
    let next = 0;
    const thrDeadline = Date.now() + DEADLINE_MS;
    const t0 = nowMs();
    const publishing = Promise.all(
      publishers.map(async (c) => {
        while (next < THROUGHPUT_OBJECTS && Date.now() < thrDeadline) {
          const objectID = `thr-${next++}`;
          await c.updateObject({ objectID, objectType: 'thr', destinationType: 'edge' }, payload);
        }
      }),
    );
    let publishedAt = NaN;
    void publishing.then(
      () => (publishedAt = nowMs()),
      () => undefined,
    );
    let publishError: Error | undefined;
    publishing.catch((err: unknown) => (publishError = err instanceof Error ? err : new Error(String(err))));
    // Listing 2000 objects costs the ESS real CPU: counted every 200 ms until 90% are there,
    // then every 20 ms, so the probe neither slows the run down nor blurs its end.
    for (let seen = 0; seen < THROUGHPUT_OBJECTS; ) {
      if (publishError !== undefined) throw publishError;
      if (Date.now() > thrDeadline) throw new Error(`all objects on the ESS: ${seen} before the deadline`);
      await sleep(seen < THROUGHPUT_OBJECTS * 0.9 ? 200 : 20);
      seen = (await onEss.listObjects('thr')).length;
    }
    const seconds = (nowMs() - t0) / 1000;
    await publishing;
    line(mode, { metric: 'throughput_objects_per_s', value: round(THROUGHPUT_OBJECTS / seconds), objects: THROUGHPUT_OBJECTS, publishers: PUBLISHERS });
    // How long the CSS took to accept the 2000 PUTs, for reading the figure.
    line(mode, { metric: 'throughput_seconds', value: round(seconds, 2), objects: THROUGHPUT_OBJECTS, publishSeconds: round((publishedAt - t0) / 1000, 2) });
  } finally {
    for (const c of clients) c.close();
    // ESS first, then CSS.
    for (const node of [...nodes].reverse()) await stopNode(node);
  }
}

const MODES = ['longpoll', 'reference'] as const;
// `node sync-http.js longpoll` runs one mode; no argument runs both.
const only = process.argv[2];
for (const mode of MODES) if (only === undefined || only === mode) await benchMode(mode);
