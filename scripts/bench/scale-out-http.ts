/**
 * Benchmark: a CSS on MongoDB (STORAGE_PROVIDER=mongo; FerretDB here unless
 * EDGESYNC_TEST_MONGO_URL names a server) with one ESS over HTTP, in two setups:
 *
 * - `one-css`: one CSS process, the ESS dialling it;
 * - `two-css`: two CSS processes on the same database (each its own root, the same users file
 *   and org-secrets key) behind the round-robin test balancer (test/helpers/round-robin-proxy.ts,
 *   per request), the ESS and the publishers dialling the balancer.
 *
 * Per setup, on fresh processes and a fresh database:
 * - small: 2000 objects of 1 KiB inline data published by 16 concurrent SDK clients (after 50
 *   objects of warm-up); timed from the first PUT to all 2000 listed by the ESS (the status of
 *   the last 16 probed every 5 ms once the last PUT is accepted, then the listing every 20 ms).
 *   Prints objects/s, seconds and CPU seconds of each CSS process, the ESS and this process.
 * - large: one object of EDGESYNC_BENCH_LARGE_MIB MiB (default 1024), generated as it is sent
 *   (never in memory), uploaded with one streamed PUT; timed from the PUT's start and from its
 *   204 to `completelyReceived` on the ESS (polled every 50 ms). Then the ESS's copy is read
 *   back as a stream and SHA-256'd (not timed). Prints MiB/s and whether the copy is intact.
 *
 * EDGESYNC_BENCH_OBJECTS (2000) and EDGESYNC_BENCH_DEADLINE_S (600) change the small part's count
 * and the bound of its waits. One JSON line per result ({"bench":"scale-out-http","setup":…,"metric":…,"value":…}), and
 * the load average at each setup's start and end (other work may share the two cores). Every
 * wait is bounded; processes and temp dirs go on success, error, SIGINT and SIGTERM. The exit
 * code is 1 when a copy is not intact.
 *
 *   npm run build && node dist/scripts/bench/scale-out-http.js [all|one-css|two-css] [small|large|both]
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SyncServiceClient } from '../../sdk/index.js';
import { startFerretDb } from '../../test/helpers/ferretdb.js';
import { generatedData, sha256Of } from '../../test/helpers/generated-data.js';
import { BIN, processTree, startNode, tempRoot, Teardown, type RunningProcess } from '../../test/helpers/node-process.js';
import { startRoundRobinProxy } from '../../test/helpers/round-robin-proxy.js';
import { cpuSeconds, nowMs, round, sleep, until } from './bench-nodes.js';

type Setup = 'one-css' | 'two-css';
type Part = 'small' | 'large';

const ORG = 'bench';
const KiB = 1024;
const MiB = 1024 * KiB;
/** EDGESYNC_BENCH_OBJECTS overrides it (a shorter run on a slow database). */
const OBJECTS = Number(process.env.EDGESYNC_BENCH_OBJECTS ?? '2000');
const WARMUP = 50;
const PUBLISHERS = 16;
const LARGE_MIB = Number(process.env.EDGESYNC_BENCH_LARGE_MIB ?? '1024');
/** Bound of every waiting loop of the small part; the large one gets 1 s per MiB on top. */
const DEADLINE_MS = Number(process.env.EDGESYNC_BENCH_DEADLINE_S ?? '600') * 1000;

let failed = false;

function line(setup: Setup, o: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ bench: 'scale-out-http', setup, ...o })}\n`);
}

const load = (): number[] => loadavg().map((x) => round(x, 2));

/** The process that serves (the bin's launcher starts the node as its child). */
const servingPid = (n: RunningProcess): number => processTree(n.child.pid ?? 0).at(-1) ?? 0;

interface Net {
  css: RunningProcess[];
  ess: RunningProcess;
  /** Where publishers and the ESS go: the CSS, or the balancer. */
  entry: string;
  admin: { appKey: string; secret: string };
  essAdmin: { appKey: string; secret: string };
}

async function startNet(t: Teardown, setup: Setup): Promise<Net> {
  let url = process.env.EDGESYNC_TEST_MONGO_URL ?? '';
  if (url === '') {
    const server = await startFerretDb();
    t.add(() => server.stop());
    url = server.url;
  }
  const env = { STORAGE_PROVIDER: 'mongo', MONGO_ADDRESS_CSV: url, MONGO_DB_NAME: `edgesync_bench_${randomBytes(6).toString('hex')}`, TRUSTED_PROXIES: '127.0.0.1' };
  const rootA = await tempRoot(t, 'bench-css-a');
  const first = await startNode({ mode: 'css', root: rootA, env });
  t.add(() => first.stop());
  const admin = first.admin!;
  await promisify(execFile)(process.execPath, [BIN, 'users', 'add', `${ORG}/edge/n1`, '--type', 'edgenode', '--org', ORG, '--username', 'edge/n1', '--secret', 's', '--persistence-root-path', rootA], { timeout: 30_000 });
  const css = [first];
  let entry = first.url;
  if (setup === 'two-css') {
    const rootB = await tempRoot(t, 'bench-css-b');
    for (const file of [join('sync', 'users.json'), join('sync', 'keys', 'org-secrets.key')]) {
      await mkdir(join(rootB, file, '..'), { recursive: true });
      await copyFile(join(rootA, file), join(rootB, file));
    }
    const second = await startNode({ mode: 'css', root: rootB, env });
    t.add(() => second.stop());
    css.push(second);
    const proxy = await startRoundRobinProxy(css.map((c) => ({ host: '127.0.0.1', port: Number(new URL(c.url).port) })));
    t.add(() => proxy.stop());
    entry = proxy.url;
  }
  const onCss = new SyncServiceClient({ url: entry, appKey: admin.appKey, appSecret: admin.secret, orgID: ORG });
  await onCss.putOrganization({ orgID: ORG });
  const port = new URL(entry).port;
  const essRoot = await tempRoot(t, 'bench-ess');
  const ess = await startNode({
    mode: 'ess',
    root: essRoot,
    env: { ORG_ID: ORG, DESTINATION_TYPE: 'edge', DESTINATION_ID: 'n1', HTTP_CSS_HOST: '127.0.0.1', HTTP_CSS_PORT: port, HTTP_CSS_USER: `${ORG}/edge/n1`, HTTP_CSS_PASSWORD: 's' },
  });
  t.add(() => ess.stop());
  await until('registration of n1', Date.now() + 120_000, 100, () => onCss.getDestinations(), (d) => d.some((x) => x.destinationID === 'n1'));
  onCss.close();
  return { css, ess, entry, admin, essAdmin: ess.admin! };
}

async function small(setup: Setup, net: Net): Promise<void> {
  const clients = Array.from({ length: PUBLISHERS }, () => new SyncServiceClient({ url: net.entry, appKey: net.admin.appKey, appSecret: net.admin.secret, orgID: ORG }));
  const onEss = new SyncServiceClient({ url: net.ess.url, appKey: net.essAdmin.appKey, appSecret: net.essAdmin.secret, ca: await essCa(net.ess) });
  try {
    const payload = randomBytes(KiB);
    const deadline = Date.now() + DEADLINE_MS;
    for (let i = 0; i < WARMUP; i++) await clients[0]!.updateObject({ objectID: `w-${i}`, objectType: 'warm', destinationType: 'edge' }, payload);
    await until('the warm-up on the ESS', deadline, 20, () => onEss.listObjects('warm').catch(() => []), (l) => l.length === WARMUP);
    let next = 0;
    const pids = [...net.css.map(servingPid), servingPid(net.ess), process.pid];
    const cpu0 = await Promise.all(pids.map((p) => cpuSeconds(p)));
    const t0 = nowMs();
    await Promise.all(
      clients.map(async (c) => {
        while (next < OBJECTS && Date.now() < deadline) {
          const objectID = `o-${next++}`;
          await c.updateObject({ objectID, objectType: 'small', destinationType: 'edge' }, payload);
        }
      }),
    );
    const published = nowMs();
    line(setup, { metric: 'small_publish_seconds', value: round((published - t0) / 1000, 2), objects: OBJECTS });
    const last = Array.from({ length: PUBLISHERS }, (_, i) => `o-${OBJECTS - 1 - i}`);
    await until('the last objects on the ESS', deadline, 5, () => Promise.all(last.map((id) => onEss.getObjectStatus('small', id))), (all) => all.every((s) => s === 'completelyReceived'));
    for (let seen = (await onEss.listObjects('small')).length; seen < OBJECTS; seen = (await onEss.listObjects('small')).length) {
      if (Date.now() > deadline) throw new Error(`all objects on the ESS: ${seen} before the deadline`);
      await sleep(20);
    }
    const seconds = (nowMs() - t0) / 1000;
    const cpu = (await Promise.all(pids.map((p) => cpuSeconds(p)))).map((c, i) => round(c - cpu0[i]!, 2));
    const about = { objects: OBJECTS, bytes: KiB, publishers: PUBLISHERS };
    line(setup, { metric: 'small_objects_per_s', value: round(OBJECTS / seconds), ...about });
    line(setup, { metric: 'small_seconds', value: round(seconds, 2), publishSeconds: round((published - t0) / 1000, 2), ...about });
    line(setup, { metric: 'small_cpu_seconds', value: { css: cpu.slice(0, net.css.length), ess: cpu[net.css.length], bench: cpu[net.css.length + 1] }, ...about });
  } finally {
    for (const c of clients) c.close();
    onEss.close();
  }
}

async function large(setup: Setup, net: Net): Promise<void> {
  const size = LARGE_MIB * MiB;
  const data = generatedData(size);
  const onCss = new SyncServiceClient({ url: net.entry, appKey: net.admin.appKey, appSecret: net.admin.secret, orgID: ORG });
  const onEss = new SyncServiceClient({ url: net.ess.url, appKey: net.essAdmin.appKey, appSecret: net.essAdmin.secret, ca: await essCa(net.ess) });
  try {
    const deadline = Date.now() + DEADLINE_MS + LARGE_MIB * 1000;
    await onCss.updateObject({ objectID: 'large', objectType: 'large', destinationType: 'edge' });
    const t0 = nowMs();
    await onCss.updateObjectData('large', 'large', data.stream(), { size });
    const uploaded = nowMs();
    await until('the large object on the ESS', deadline, 50, () => onEss.getObjectStatus('large', 'large').catch(() => null), (s) => s === 'completelyReceived');
    const visible = nowMs();
    const intact = (await sha256Of(await onEss.fetchObjectData('large', 'large'))) === data.sha256;
    if (!intact) failed = true;
    const mib = (ms: number): number => round(LARGE_MIB / (ms / 1000));
    const about = { mib: LARGE_MIB };
    line(setup, { metric: 'large_published_to_visible_mib_per_s', value: mib(visible - t0), seconds: round((visible - t0) / 1000, 1), ...about });
    line(setup, { metric: 'large_upload_mib_per_s', value: mib(uploaded - t0), seconds: round((uploaded - t0) / 1000, 1), ...about });
    line(setup, { metric: 'large_transfer_mib_per_s', value: mib(visible - uploaded), seconds: round((visible - uploaded) / 1000, 1), ...about });
    line(setup, { metric: 'large_intact', value: intact, ...about });
  } finally {
    onCss.close();
    onEss.close();
  }
}

async function essCa(ess: RunningProcess): Promise<Buffer> {
  const { readFile } = await import('node:fs/promises');
  return readFile(join(ess.root, 'sync', 'certs', 'cert.pem'));
}

async function bench(setup: Setup, parts: readonly Part[]): Promise<void> {
  const t = new Teardown();
  const stop = (): void => {
    void t.run().finally(() => process.exit(130));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  line(setup, { metric: 'loadavg_start', value: load() });
  try {
    for (const part of parts) {
      // Fresh processes and a fresh database per part: one part's leftovers do not weigh on the other.
      const scoped = new Teardown();
      try {
        const net = await startNet(scoped, setup);
        if (part === 'small') await small(setup, net);
        else await large(setup, net);
      } finally {
        await scoped.run();
      }
    }
  } finally {
    await t.run();
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    line(setup, { metric: 'loadavg_end', value: load() });
  }
}

const which = process.argv[2] ?? 'all';
const partArg = process.argv[3] ?? 'both';
const setups: Setup[] = which === 'all' ? ['one-css', 'two-css'] : [which as Setup];
const parts: Part[] = partArg === 'both' ? ['small', 'large'] : [partArg as Part];
if (!setups.every((s) => s === 'one-css' || s === 'two-css') || !parts.every((p) => p === 'small' || p === 'large')) {
  process.stderr.write('usage: scale-out-http.js [all|one-css|two-css] [small|large|both]\n');
  process.exit(2);
}
for (const setup of setups) await bench(setup, parts);
process.exit(failed ? 1 : 0);
