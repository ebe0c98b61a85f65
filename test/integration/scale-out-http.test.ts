/**
 * Scale-out over HTTP (issue #14): two CSS processes on one MongoDB-wire database (FerretDB
 * here) behind a load balancer that sends every request to the next instance in turn
 * (test/helpers/round-robin-proxy.ts), and ESS nodes over HTTP that dial the balancer. Any
 * instance takes any request: objects reach the ESS intact, a chunked upload whose chunks land
 * on alternate instances completes, a download resumes on the other instance, a kill -9 of the
 * instance serving a transfer costs nothing but a resume, statuses read the same on both, a
 * long-poll held by one instance wakes when the other queues work, and the failed-login
 * throttle counts the clients behind the balancer (TRUSTED_PROXIES), not the balancer.
 * Real processes on loopback; docs/scale-out-http-audit.md says what each path relies on.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, readdir, stat } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { SyncServiceClient } from '../../sdk/index.js';
import { ferretdbPath, MONGO_MISSING, startFerretDb } from '../helpers/ferretdb.js';
import { generatedData, sha256Hex, sha256Of } from '../helpers/generated-data.js';
import { BIN, startNode, tempRoot, Teardown, type RunningProcess, type StartOptions } from '../helpers/node-process.js';
import { startRoundRobinProxy, type RoundRobinProxy, type RoutedRequest } from '../helpers/round-robin-proxy.js';
import { eventually as eventuallyWithDeadline, ORG } from '../helpers/sync-pair.js';

jest.setTimeout(240_000);

const run = promisify(execFile);
const MiB = 1024 * 1024;
/** Polling deadlines only: generous, so that a loaded machine does not fail the test. */
const DEADLINE_MS = 120_000;
const eventually = <T>(what: string, probe: () => Promise<T>, done: (v: T) => boolean): Promise<T> => eventuallyWithDeadline(what, probe, done, DEADLINE_MS, logs);
/**
 * The object a transfer is cut in: large enough that a watcher polling every few ms sees it
 * partly downloaded, small enough for FerretDB's pace (object data in the database).
 */
const KILL_SIZE = 40 * MiB;
/** Past the ESS's first durable segment (8 MiB), so that a resume starts past 0. */
const KILL_AT = 10 * MiB;
/** Failed logins per address before the throttle; small, to keep the test short. */
const LOGIN_LIMIT = 3;

const MONGO_URL = process.env.EDGESYNC_TEST_MONGO_URL ?? '';
const runnable = MONGO_URL !== '' || ferretdbPath() !== null;
if (!runnable) console.warn(`Skipped: scale-out over HTTP (${MONGO_MISSING})`);

const essSecret = (id: string): string => `secret-${id}`;
/** n9, the long-poll probe, is of a type of its own: objects addressed to `edge` are none of its business. */
const typeOf = (id: string): string => (id === 'n9' ? 'probe' : 'edge');
const essUser = (id: string): string => `${ORG}/${typeOf(id)}/${id}`;

/** One CSS instance: its process now and how to start it again on the same root and port. */
interface Instance {
  node: RunningProcess;
  options: StartOptions;
}

/** One ESS: its process now and how to start it again on its root. */
interface Ess {
  id: string;
  node: RunningProcess;
  /** Its sync admin, printed on its first start only. */
  admin: { appKey: string; secret: string };
  client: SyncServiceClient;
  options: StartOptions;
}

const t = new Teardown();
const css: Instance[] = [];
const esses: Ess[] = [];
let proxy: RoundRobinProxy;
let admin: { appKey: string; secret: string };
/** The org's admin through the balancer: every call to the next instance. */
let onProxy: SyncServiceClient;
/** The org's admin on one instance, bypassing the balancer. */
const direct: SyncServiceClient[] = [];

function logs(): string {
  const routed = proxy?.routed.slice(-20).map((r) => `${r.method} ${r.url} ${r.range ?? ''} -> ${r.upstream}${r.refusedBy.length > 0 ? ` (refused by ${r.refusedBy.join(',')})` : ''}`) ?? [];
  return [
    ...css.map((c, i) => `CSS ${i}:\n${c.node.output().slice(-3000)}`),
    ...esses.map((e) => `ESS ${e.id}:\n${e.node.output().slice(-3000)}`),
    `last requests through the balancer:\n${routed.join('\n')}`,
  ].join('\n');
}

const portOf = (node: RunningProcess): number => Number(new URL(node.url).port);

function clientOf(url: string): SyncServiceClient {
  const c = new SyncServiceClient({ url, appKey: admin.appKey, appSecret: admin.secret, orgID: ORG });
  t.add(() => Promise.resolve(c.close()));
  return c;
}

async function addEdgeNodeUser(root: string, id: string): Promise<void> {
  await run(process.execPath, [BIN, 'users', 'add', essUser(id), '--type', 'edgenode', '--org', ORG, '--username', `${typeOf(id)}/${id}`, '--secret', essSecret(id), '--persistence-root-path', root]);
}

/** What a CSS keeps in its root and every instance must share: the users and the org-secrets key. */
async function shareRoot(from: string, to: string): Promise<void> {
  for (const file of [join('sync', 'users.json'), join('sync', 'keys', 'org-secrets.key')]) {
    await mkdir(join(to, file, '..'), { recursive: true });
    await copyFile(join(from, file), join(to, file));
  }
}

async function startEss(id: string): Promise<Ess> {
  const root = await tempRoot(t, `ess-${id}`);
  const options: StartOptions = {
    mode: 'ess',
    root,
    env: {
      ORG_ID: ORG,
      DESTINATION_TYPE: 'edge',
      DESTINATION_ID: id,
      HTTP_CSS_HOST: '127.0.0.1',
      HTTP_CSS_PORT: String(proxy.port),
      HTTP_CSS_USER: essUser(id),
      HTTP_CSS_PASSWORD: essSecret(id),
      HTTP_POLLING_INTERVAL: '1',
      RESEND_INTERVAL: '1',
    },
  };
  const node = await startNode(options);
  const ess: Ess = { id, node, admin: node.admin!, client: await node.client({ appKey: node.admin!.appKey, appSecret: node.admin!.secret }), options };
  t.add(() => ess.node.stop());
  t.add(() => Promise.resolve(ess.client.close()));
  esses.push(ess);
  return ess;
}

async function restartEss(ess: Ess): Promise<void> {
  ess.node = await startNode(ess.options);
  ess.client.close();
  ess.client = await ess.node.client({ appKey: ess.admin.appKey, appSecret: ess.admin.secret });
}

/** Sizes of the files in an ESS's staging directory (downloads in progress). */
async function stagedSizes(ess: Ess): Promise<number[]> {
  const dir = join(ess.node.root, 'sync', 'data', 'staging');
  const sizes: number[] = [];
  for (const name of await readdir(dir).catch(() => [])) sizes.push(await stat(join(dir, name)).then((s) => s.size, () => 0));
  return sizes;
}

/** Waits, polling closely (a transfer on loopback runs at disk speed), until a download of `ess` holds more than `above` bytes and fewer than `below`. */
async function whenStaged(ess: Ess, above: number, below: number): Promise<number> {
  const deadline = Date.now() + DEADLINE_MS;
  for (;;) {
    const partial = (await stagedSizes(ess)).find((s) => s > above && s < below);
    if (partial !== undefined) return partial;
    if (Date.now() > deadline) throw new Error(`no download on ${ess.id} passed ${above} bytes\n${logs()}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** The data downloads (SPI data GETs) of one object routed so far. */
const dataGets = (objectID: string): RoutedRequest[] => proxy.routed.filter((r) => r.method === 'GET' && r.url.startsWith(`/spi/v1/objects/${ORG}/model/${objectID}/`) && r.url.endsWith('/data'));

/** Where the CSS instance `i` says the object stands toward each node, as sorted `type/id:status`. */
async function deliveriesOn(i: number, objectID: string): Promise<string[]> {
  return (await direct[i]!.getObjectDestinations('model', objectID)).map((d) => `${d.destinationType}/${d.destinationID}:${d.status}`).sort();
}

/** Waits until `ess` holds model/`objectID` whole, once, and checks its bytes; nothing is left staged. */
async function arrivesIntact(ess: Ess, objectID: string, size: number, sha256: string): Promise<void> {
  await eventually(`${objectID} on ${ess.id}`, () => ess.client.getObjectStatus('model', objectID), (s) => s === 'completelyReceived');
  expect(await sha256Of(await ess.client.fetchObjectData('model', objectID))).toBe(sha256);
  expect((await ess.client.listObjects('model')).filter((m) => m.objectID === objectID).map((m) => m.objectSize)).toEqual([size]);
  await eventually(`nothing left staged on ${ess.id}`, () => stagedSizes(ess), (s) => s.length === 0);
}

/** Both instances say the object is delivered to `ess`. */
async function deliveredOnBoth(ess: Ess, objectID: string): Promise<void> {
  for (const i of [0, 1]) await eventually(`${objectID} delivered, as CSS ${i} says`, () => deliveriesOn(i, objectID), (d) => d.includes(`edge/${ess.id}:delivered`));
}

/** Puts generated data on model/`objectID` where no ESS looks, then addresses it to the `edge` nodes: their download starts with all the data there. */
async function publishThenAddress(objectID: string, size: number): Promise<string> {
  const data = generatedData(size);
  await onProxy.updateObject({ objectID, objectType: 'model', destinationType: 'unwatched' });
  await onProxy.updateObjectData('model', objectID, data.stream(), { size });
  await onProxy.updateObject({ objectID, objectType: 'model', destinationType: 'edge', metaOnly: true });
  return data.sha256;
}

/** One SPI request as ESS `id`, straight to CSS instance `i`. */
function spi(i: number, id: string, method: string, path: string, signal?: AbortSignal): Promise<{ status: number; body: string }> {
  const auth = Buffer.from(`${essUser(id)}:${essSecret(id)}`).toString('base64');
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${css[i]!.node.url}${path}`,
      { method, headers: { authorization: `Basic ${auth}`, 'X-Sync-Service-Dest': essUser(id), 'content-length': '0' }, ...(signal ? { signal } : {}) },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** A raw API request through the balancer, as `appKey`, claiming to come from `forwardedFor`. */
async function loginThroughProxy(appKey: string, secret: string, forwardedFor: string): Promise<number> {
  const res = await fetch(`${proxy.url}/api/v1/objects/${ORG}/model`, {
    headers: { authorization: `Basic ${Buffer.from(`${appKey}:${secret}`).toString('base64')}`, 'x-forwarded-for': forwardedFor },
  });
  await res.arrayBuffer();
  return res.status;
}

(runnable ? describe : describe.skip)('two CSS processes on one database behind a round-robin balancer, ESS nodes over HTTP', () => {
  let n1: Ess;

  beforeAll(async () => {
    let url = MONGO_URL;
    if (url === '') {
      const server = await startFerretDb();
      t.add(() => server.stop());
      url = server.url;
    }
    const env = {
      STORAGE_PROVIDER: 'mongo',
      MONGO_ADDRESS_CSV: url,
      MONGO_DB_NAME: `edgesync_scale_${randomBytes(6).toString('hex')}`,
      RESEND_INTERVAL: '1',
      // The balancer is on loopback; the test's clients name themselves in X-Forwarded-For.
      TRUSTED_PROXIES: '127.0.0.1',
      LOGIN_FAILURE_LIMIT: String(LOGIN_LIMIT),
    };
    const rootA = await tempRoot(t, 'css-a');
    const rootB = await tempRoot(t, 'css-b');
    const first = await startNode({ mode: 'css', root: rootA, env });
    css.push({ node: first, options: { mode: 'css', root: rootA, env: { ...env, UNSECURE_LISTENING_PORT: String(portOf(first)) } } });
    t.add(() => css[0]!.node.stop());
    admin = first.admin!;
    for (const id of ['n1', 'n9']) await addEdgeNodeUser(rootA, id);
    // The second instance: its own root (one process per root, data-lock.ts), the same users and key.
    await shareRoot(rootA, rootB);
    const second = await startNode({ mode: 'css', root: rootB, env });
    css.push({ node: second, options: { mode: 'css', root: rootB, env: { ...env, UNSECURE_LISTENING_PORT: String(portOf(second)) } } });
    t.add(() => css[1]!.node.stop());

    proxy = await startRoundRobinProxy(css.map((c) => ({ host: '127.0.0.1', port: portOf(c.node) })));
    t.add(() => proxy.stop());
    onProxy = clientOf(proxy.url);
    for (const c of css) direct.push(clientOf(c.node.url));
    await onProxy.putOrganization({ orgID: ORG });
    n1 = await startEss('n1');
    await eventually('n1 registered, as both instances say', () => Promise.all(direct.map((d) => d.getDestinations())), (all) => all.every((d) => d.some((x) => x.destinationID === 'n1')));
  });
  afterAll(() => t.run());

  test('objects published through the balancer reach the ESS intact, whichever instance took each request', async () => {
    const small = Array.from({ length: 12 }, (_, i) => ({ id: `small-${i}`, data: randomBytes(1024 + i) }));
    for (const o of small) await onProxy.updateObject({ objectID: o.id, objectType: 'model', destinationType: 'edge' }, o.data);
    const large = generatedData(3 * MiB);
    await onProxy.updateObject({ objectID: 'large', objectType: 'model', destinationType: 'edge' });
    await onProxy.updateObjectData('model', 'large', large.stream(), { size: 3 * MiB });

    for (const o of small) {
      await eventually(`${o.id} on n1`, () => n1.client.getObjectStatus('model', o.id), (s) => s === 'completelyReceived');
      expect(await sha256Of(await n1.client.fetchObjectData('model', o.id))).toBe(sha256Hex(o.data));
    }
    await arrivesIntact(n1, 'large', 3 * MiB, large.sha256);
    await deliveredOnBoth(n1, 'large');
    // Both instances took part: the publications, and the ESS's polls, data GETs and acks.
    expect(proxy.served.every((n) => n > 10)).toBe(true);
    const spiOn = new Set(proxy.routed.filter((r) => r.url.startsWith('/spi/')).map((r) => r.upstream));
    expect([...spiOn].sort()).toEqual([0, 1]);
  });

  test('a chunked upload whose chunks land on alternate instances completes, and reaches the ESS intact', async () => {
    const CHUNK = 256 * 1024;
    const data = generatedData(8 * CHUNK + 1000);
    const size = 8 * CHUNK + 1000;
    await onProxy.updateObject({ objectID: 'chunked', objectType: 'model', destinationType: 'edge' });
    const before = proxy.routed.length;
    // The ESS's own requests share the rotation: the chunks are steered to alternate for sure.
    let turn = 0;
    proxy.steer = (r) => (r.method === 'PUT' && r.url.endsWith('/model/chunked/data') ? turn++ % 2 : undefined);
    try {
      await onProxy.updateObjectDataChunked('model', 'chunked', data.stream(), { chunkSize: CHUNK, size });
    } finally {
      proxy.steer = undefined;
    }
    const chunks = proxy.routed.slice(before).filter((r) => r.method === 'PUT' && r.range !== undefined);
    expect(chunks.map((c) => c.upstream)).toEqual([0, 1, 0, 1, 0, 1, 0, 1, 0]);
    // Either instance serves the assembled data.
    for (const d of direct) expect(await sha256Of(await d.fetchObjectData('model', 'chunked'))).toBe(data.sha256);
    await arrivesIntact(n1, 'chunked', size, data.sha256);
    await deliveredOnBoth(n1, 'chunked');
  });

  test('an ESS download cut short resumes on the other instance, from where it stopped', async () => {
    const sha256 = await publishThenAddress('resumed', KILL_SIZE);
    await whenStaged(n1, KILL_AT, KILL_SIZE);
    await n1.node.kill();
    const first = dataGets('resumed');
    expect(first.length).toBeGreaterThan(0);
    const servedFirst = first[first.length - 1]!.upstream;
    // The resume goes to the instance that did not serve the first part.
    proxy.steer = (r) => (r.method === 'GET' && r.url.includes('/model/resumed/') && r.url.endsWith('/data') ? 1 - servedFirst : undefined);
    try {
      await restartEss(n1);
      await arrivesIntact(n1, 'resumed', KILL_SIZE, sha256);
    } finally {
      proxy.steer = undefined;
    }
    await deliveredOnBoth(n1, 'resumed');
    const resumes = dataGets('resumed').slice(first.length);
    expect(resumes.length).toBeGreaterThan(0);
    expect(resumes.every((r) => r.upstream === 1 - servedFirst)).toBe(true);
    // A resume asks for the rest only: a range that starts past the bytes kept.
    const start = Number(/^bytes=(\d+)-/.exec(resumes[0]!.range ?? '')?.[1] ?? NaN);
    expect(start).toBeGreaterThan(0);
  });

  test('kill -9 of the instance serving a large transfer: the object is delivered intact through the other', async () => {
    const sha256 = await publishThenAddress('css-killed', KILL_SIZE);
    await whenStaged(n1, KILL_AT, KILL_SIZE);
    const serving = proxy.inFlight().find((r) => r.url.includes('/model/css-killed/') && r.url.endsWith('/data'));
    expect(serving).toBeDefined();
    const victim = serving!.upstream;
    await css[victim]!.node.kill();
    // The balancer finds the dead instance by its refused connections, as nginx does.
    await arrivesIntact(n1, 'css-killed', KILL_SIZE, sha256);
    const after = dataGets('css-killed').filter((r) => r.upstream === 1 - victim);
    expect(after.length).toBeGreaterThan(0);
    for (const r of after) expect(r.range).toMatch(/^bytes=[1-9]\d*-/);
    // Back on its root and port: it reads the same state as the survivor.
    css[victim]!.node = await startNode(css[victim]!.options);
    direct[victim]!.close();
    direct[victim] = clientOf(css[victim]!.node.url);
    await deliveredOnBoth(n1, 'css-killed');
  });

  test('delivery statuses read the same on both instances: delivered, then consumed', async () => {
    await onProxy.updateObject({ objectID: 'statuses', objectType: 'model', destinationType: 'edge' }, randomBytes(2048));
    await eventually('statuses on n1', () => n1.client.getObjectStatus('model', 'statuses'), (s) => s === 'completelyReceived');
    for (const i of [0, 1]) await eventually(`delivered, as CSS ${i} says`, () => deliveriesOn(i, 'statuses'), (d) => d.includes('edge/n1:delivered'));
    await n1.client.markObjectConsumed('model', 'statuses');
    for (const i of [0, 1]) await eventually(`consumed, as CSS ${i} says`, () => deliveriesOn(i, 'statuses'), (d) => d.includes('edge/n1:consumed'));
  });

  // Its own timeout is well below the poll's 60 s wait: only a wake across instances answers in time.
  test('a long-poll held by one instance answers when an object is published through the other', async () => {
    expect((await spi(0, 'n9', 'PUT', `/spi/v1/register-new/${ORG}/probe/n9`)).status).toBe(204);
    // Nothing is queued for n9: a held poll waits, here on instance 0.
    const ac = new AbortController();
    t.add(() => Promise.resolve(ac.abort()));
    const poll = spi(0, 'n9', 'GET', '/spi/v1/objects?wait=60', ac.signal);
    // Published straight to instance 1 (a metadata-only object: no data path involved).
    await new Promise((r) => setTimeout(r, 500));
    await direct[1]!.updateObject({ objectID: 'wake', objectType: 'model', destinationType: 'probe', destinationID: 'n9', noData: true });
    const answer = await poll;
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toEqual([expect.objectContaining({ Type: 'update', MetaData: expect.objectContaining({ objectID: 'wake' }) })]);
  }, 30_000);

  test('the login throttle counts each client behind the balancer (TRUSTED_PROXIES), not the balancer', async () => {
    const guesser = '198.51.100.66';
    // Each instance counts its own failures (docs/scale-out-http-audit.md): the guesser is
    // refused unchecked once the instance it reaches has seen LOGIN_LIMIT of its failures: over
    // two instances, after 2 × LOGIN_LIMIT failures at most.
    const statuses: number[] = [];
    for (let i = 0; i < 2 * LOGIN_LIMIT + 4 && !statuses.includes(429); i++) statuses.push(await loginThroughProxy(`guess${i}@${ORG}`, 'wrong', guesser));
    const firstThrottled = statuses.indexOf(429);
    expect(firstThrottled).toBeGreaterThanOrEqual(LOGIN_LIMIT);
    expect(firstThrottled).toBeLessThanOrEqual(2 * LOGIN_LIMIT);
    expect(statuses.slice(0, firstThrottled).every((s) => s === 403)).toBe(true);
    // Another client behind the same balancer is not locked out by the guesser: both instances let it in.
    for (let i = 0; i < 4; i++) expect([200, 404]).toContain(await loginThroughProxy(admin.appKey, admin.secret, '198.51.100.7'));
    // The throttle's log names the guesser, not the balancer.
    await eventually('the throttle WARN naming the client', () => Promise.resolve(css.map((c) => c.node.output()).join('\n')), (out) => out.includes(guesser));
  });
});
