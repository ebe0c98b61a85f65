/**
 * Several CSS processes on one MQTT broker share the ESS nodes' messages through MQTT 5 shared
 * subscriptions (lib/transport/mqtt/shared-subscriptions.ts, docs/adr/0021-mqtt-scale-out.md):
 *
 * - the subscription layer against a real mosquitto 2.0: two CSS connections in one group each
 *   take a disjoint part of what ESS nodes publish at MQTT 3.1.1, as the reference ESS does, and
 *   together all of it; a broker that refuses MQTT 5 (aedes) gets plain ones at 3.1.1, with the
 *   WARN that says what it costs (a broker that refuses the shared subscription itself:
 *   test/unit/transport/mqtt/shared-subscriptions.test.ts; mosquitto 2.0 checks its ACL on the
 *   filter without the `$share/{group}/` prefix, so it cannot be made to);
 * - two CSS processes on one database (FerretDB) and one mosquitto, with ESS nodes over MQTT.
 */
import { mkdir, readdir, stat, symlink } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, jest, test } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { SyncServiceClient } from '../../sdk/index.js';
import { Aedes } from 'aedes';
import { connectAsync, type MqttClient } from 'mqtt';
import { MOSQUITTO_MISSING, mosquittoAvailable, startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { startNode, Teardown, tempRoot, type RunningProcess } from '../helpers/node-process.js';
import { ferretdbPath, MONGO_MISSING, startFerretDb } from '../helpers/ferretdb.js';
import { generatedData, sha256Hex, sha256Of } from '../helpers/generated-data.js';
import { referenceBin, startReferenceOnMqtt } from '../helpers/reference-node.js';
import { eventually, ORG } from '../helpers/sync-pair.js';
import { CssEngineDouble } from '../helpers/ess-session-double.js';
import { ScriptedEss } from '../helpers/mqtt-test-clients.js';
import { destinationKey, emptyMetaData, type DestinationRef, type MetaData } from '../../lib/model/index.js';
import type { Logger } from '../../lib/log/logger.js';
import { CssBrokers } from '../../lib/node/css-brokers.js';
import type { UpstreamProgress, UpstreamState } from '../../lib/sync/upstream-progress.js';
import { CssMqttAdapter, type CssLeadership } from '../../lib/transport/mqtt/css-adapter.js';
import { encodeControl } from '../../lib/transport/mqtt/control-codec.js';
import { encodeData } from '../../lib/transport/mqtt/data-codec.js';
import type { MqttConnection } from '../../lib/transport/mqtt/mqtt-connection.js';
import { openCssConnection, subscribeEvents } from '../../lib/transport/mqtt/shared-subscriptions.js';
import { CSS_EVENT_FILTER, eventTopic } from '../../lib/transport/mqtt/topics.js';

const available = mosquittoAvailable();
if (!available) console.warn(`Skipped: MQTT shared subscription tests (${MOSQUITTO_MISSING})`);
const suite = available ? describe : describe.skip;
const withDatabase = available && ferretdbPath() !== null;
if (available && !withDatabase) console.warn(`Skipped: two CSS processes on one database and one broker (${MONGO_MISSING})`);
const processSuite = withDatabase ? describe : describe.skip;

jest.setTimeout(240_000);

const t = new Teardown();
afterAll(() => t.run());

const GROUP = 'edgesync-css';

interface Warned {
  warnings: string[];
  warn(obj: object, msg: string): void;
}

function warnings(): Warned {
  const warned: string[] = [];
  return { warnings: warned, warn: (_obj, msg) => warned.push(msg) };
}

async function broker(opts: Parameters<typeof startMosquitto>[0] = {}): Promise<Mosquitto> {
  const b = await startMosquitto(opts);
  t.add(() => b.stop());
  return b;
}

/** A CSS's connection, subscribed to the ESS events as a CSS subscribes; collects what it takes. */
async function cssOn(port: number, log: Warned, creds: { username?: string; password?: string } = {}) {
  const got: string[] = [];
  const conn: MqttConnection = await openCssConnection(
    { host: '127.0.0.1', port, protocol: 'mqtt', clientIDPrefix: 'CSS', firstConnectTimeoutMs: 10_000, onMessage: (_topic, payload) => got.push(payload.toString()), ...creds },
    GROUP,
    log,
  );
  t.add(() => conn.close());
  const mode = await subscribeEvents(conn, [CSS_EVENT_FILTER], GROUP, log);
  return { conn, mode, got };
}

/** An ESS as the reference's paho client connects: MQTT 3.1.1, clean session. */
async function essOn(url: string, creds: { username?: string; password?: string } = {}): Promise<MqttClient> {
  const c = await connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0, ...creds });
  t.add(() => c.endAsync(true));
  return c;
}

async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

suite('CSS subscriptions on a shared MQTT broker', () => {
  test('two CSS in one group each take a disjoint part of what MQTT 3.1.1 ESS nodes publish, and together all of it', async () => {
    const b = await broker();
    const log = warnings();
    const a = await cssOn(b.port, log);
    const c = await cssOn(b.port, log);
    expect([a.conn.protocolVersion, a.mode, c.conn.protocolVersion, c.mode]).toEqual([5, 'shared', 5, 'shared']);
    const sent: string[] = [];
    for (const id of ['n1', 'n2', 'n3']) {
      const ess = await essOn(b.url);
      for (let i = 0; i < 20; i++) {
        const payload = `${id}-${i}`;
        sent.push(payload);
        await ess.publishAsync(eventTopic('edge', id), Buffer.from(payload), { qos: 1 });
      }
    }
    await until('every message taken by one CSS', () => a.got.length + c.got.length >= sent.length);
    await new Promise((r) => setTimeout(r, 200));
    expect([...a.got, ...c.got].sort()).toEqual([...sent].sort());
    expect(a.got.filter((m) => c.got.includes(m))).toEqual([]);
    // Both share the load (mosquitto hands shared messages round robin).
    expect(a.got.length).toBeGreaterThan(0);
    expect(c.got.length).toBeGreaterThan(0);
    expect(log.warnings).toEqual([]);
  });

  test('a CSS that leaves the group leaves the others every message', async () => {
    const b = await broker();
    const log = warnings();
    const a = await cssOn(b.port, log);
    const c = await cssOn(b.port, log);
    await c.conn.close();
    const ess = await essOn(b.url);
    for (let i = 0; i < 10; i++) await ess.publishAsync(eventTopic('edge', 'n1'), Buffer.from(`m${i}`), { qos: 1 });
    await until('every message taken by the CSS left', () => a.got.length >= 10);
    expect(c.got).toEqual([]);
  });

  test('a broker that refuses MQTT 5 (aedes) is dialled again at 3.1.1 with plain subscriptions, and the WARN says so', async () => {
    const aedes = await Aedes.createBroker();
    const sockets = new Set<Socket>();
    const server: Server = createServer((s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      aedes.handle(s);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.add(async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
    });
    const port = (server.address() as { port: number }).port;
    const log = warnings();
    const a = await cssOn(port, log);
    expect([a.conn.protocolVersion, a.mode]).toEqual([4, 'plain']);
    expect(log.warnings.join('\n')).toMatch(/refused MQTT 5.*several CSS processes on this broker would each take every ESS message/);
    const ess = await essOn(`mqtt://127.0.0.1:${port}`);
    await ess.publishAsync(eventTopic('edge', 'n1'), Buffer.from('hello'), { qos: 1 });
    await until('the message on the plain subscription', () => a.got.length === 1);
  });

});

const NODE1: DestinationRef = { orgID: 'myorg', destType: 'edge', destID: 'node1' };

/** A logger that keeps its WARN lines. */
function quietLogger(): Logger & { warns: string[] } {
  const warns: string[] = [];
  const noop = (): void => undefined;
  const log = { warns, trace: noop, debug: noop, info: noop, error: noop, fatal: noop, flush: noop, warn: (obj: object | string, msg?: string) => void warns.push(typeof obj === 'string' ? obj : (msg ?? '')), child: () => log };
  return log;
}

/** A leader lease double: the test says who leads. */
class Lease implements CssLeadership {
  private readonly listeners = new Set<(leader: boolean) => void>();
  constructor(private leading: boolean) {}
  isLeader(): boolean {
    return this.leading;
  }
  onChange(listener: (leader: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  set(leader: boolean): void {
    this.leading = leader;
    for (const l of [...this.listeners]) l(leader);
  }
}

/** Every upstream object awaited from byte 0, unless a test says otherwise. */
class ProgressDouble implements UpstreamProgress {
  readonly states = new Map<string, UpstreamState>();
  of(_peer: DestinationRef, ref: { objectType: string; objectID: string }): Promise<UpstreamState> {
    return Promise.resolve(this.states.get(`${ref.objectType}/${ref.objectID}`) ?? { kind: 'awaiting', received: 0 });
  }
  awaiting(): Promise<Array<{ meta: MetaData; received: number }>> {
    return Promise.resolve([]);
  }
}

function metaOf(objectID: string, size: number, chunkSize: number): MetaData {
  return { ...emptyMetaData(), objectType: 'up', objectID, destinationOrgID: 'myorg', originType: 'edge', originID: 'node1', objectSize: size, chunkSize, instanceID: 7n };
}

suite('two CSS adapters sharing one broker, one engine (the shared store)', () => {
  let b: Mosquitto;
  // Each test has a broker of its own: adapters of an earlier test would share its group.
  const tt = new Teardown();
  beforeEach(async () => {
    b = await startMosquitto();
    tt.add(() => b.stop());
  });
  afterEach(() => tt.run());

  /** A CSS's MQTT part as css-mqtt.ts makes it: a connection at MQTT 5, CssBrokers, the adapter. */
  async function cssAdapter(engine: CssEngineDouble, opts: { lease?: Lease; progress?: ProgressDouble; awaited?: () => { received: number; total: number } | null } = {}) {
    const log = quietLogger();
    let brokers: CssBrokers | null = null;
    const conn = await openCssConnection({ host: '127.0.0.1', port: b.port, protocol: 'mqtt', clientIDPrefix: 'CSS', firstConnectTimeoutMs: 10_000, onMessage: (topic, payload) => brokers?.deliverShared(topic, payload) }, GROUP, log);
    const shared = new CssBrokers({ shared: conn, base: { clientIDPrefix: 'CSS' }, store: { listOrganizations: () => Promise.resolve([]) }, secrets: null, perOrg: false, group: GROUP, pollMs: 60_000, log });
    brokers = shared;
    const adapter = new CssMqttAdapter({
      engine,
      channel: {
        subscribe: (f, o) => shared.subscribe(f, o),
        unsubscribe: (f) => shared.unsubscribe(f),
        onMessage: (h) => shared.onMessage(h),
        publish: (org, topic, payload, o) => shared.publish(org, topic, payload, o),
        maxPayload: (org, topic) => shared.maxPayload(org, topic),
        connected: (org) => shared.connected(org),
        ownBroker: () => false,
      },
      progress: opts.progress ?? new ProgressDouble(),
      mqttDestinations: () => Promise.resolve([NODE1]),
      ...(opts.awaited !== undefined ? { awaitedData: () => Promise.resolve(opts.awaited!()) } : {}),
      ...(opts.lease !== undefined ? { leadership: opts.lease } : {}),
      orgID: 'myorg',
      resendInterval: 60,
      maxInflightChunks: 4,
      maxDataChunkSize: 65536,
      log,
    });
    await adapter.start();
    tt.add(async () => {
      await adapter.stop();
      await conn.close();
    });
    return { adapter, log };
  }

  async function scriptedEss(): Promise<ScriptedEss> {
    const e = await ScriptedEss.connect(b.url, 'edge', 'node1');
    tt.add(() => e.close());
    return e;
  }

  test('each message of an ESS is handled by one CSS: as many regacks as registrations, not twice as many', async () => {
    const engine = new CssEngineDouble();
    const lease = new Lease(true);
    const a = await cssAdapter(engine, { lease });
    const c = await cssAdapter(engine, { lease: new Lease(false) });
    expect([a.adapter.stats().subscriptions, c.adapter.stats().subscriptions]).toEqual(['shared', 'shared']);
    const node = await scriptedEss();
    for (let i = 0; i < 6; i++) await node.send(encodeControl({ command: 'register', destination: { destinationOrgID: 'myorg', destinationType: 'edge', destinationID: 'node1', communication: 'mqtt', codeVersion: '1.0' }, persistent: true }));
    await node.until(() => node.controls().filter((m) => m.command === 'regack').length >= 6, 10_000, 'six regacks');
    await new Promise((r) => setTimeout(r, 300));
    expect(engine.callsOf('register')).toHaveLength(6);
    expect(node.controls().filter((m) => m.command === 'regack')).toHaveLength(6);
    expect([a.log.warns, c.log.warns]).toEqual([[], []]);
  });

  test('only the leader pushes to an ESS; when the lease moves, the new leader pushes what is pending (once more: the ESS takes repeats)', async () => {
    const engine = new CssEngineDouble();
    engine.registered.add(destinationKey(NODE1));
    const meta = metaOf('down1', 10, 0);
    engine.queue(NODE1).push({ type: 'update', meta, object: null });
    const node = await scriptedEss();
    const leaseA = new Lease(true);
    const leaseC = new Lease(false);
    const a = await cssAdapter(engine, { lease: leaseA });
    const c = await cssAdapter(engine, { lease: leaseC });
    await node.until(() => node.controls().some((m) => m.command === 'update'), 10_000, 'the update pushed');
    await new Promise((r) => setTimeout(r, 500));
    expect(node.controls().filter((m) => m.command === 'update')).toHaveLength(1);
    expect([a.adapter.stats(), c.adapter.stats()].map((x) => [x.leading, x.pushLoops])).toEqual([
      [true, 1],
      [false, 0],
    ]);

    leaseA.set(false);
    leaseC.set(true);
    await node.until(() => node.controls().filter((m) => m.command === 'update').length === 2, 10_000, 'the update pushed by the new leader');
    expect([a.adapter.stats(), c.adapter.stats()].map((x) => [x.leading, x.pushLoops])).toEqual([
      [false, 0],
      [true, 1],
    ]);
  });

  test('a multi-chunk upload (update and chunks on sync-cmd-leader) is pulled and stored by the leader alone', async () => {
    const engineA = new CssEngineDouble();
    const engineC = new CssEngineDouble();
    for (const e of [engineA, engineC]) e.registered.add(destinationKey(NODE1));
    const data = Buffer.from(Array.from({ length: 3000 }, (_, i) => i % 251));
    const meta = metaOf('up-big', data.length, 1000);
    const node = await scriptedEss();
    node.onGetdata = (g) => {
      const offset = Number(g.offset);
      const chunk = data.subarray(offset, offset + 1000);
      void node.send(encodeData({ orgID: 'myorg', objectType: 'up', objectID: 'up-big', offset: g.offset, instanceID: g.meta.instanceID, data: chunk }), { leader: true });
    };
    await cssAdapter(engineA, { lease: new Lease(true) });
    await cssAdapter(engineC, { lease: new Lease(false) });
    await node.send(encodeControl({ command: 'update', meta }), { leader: true });
    await node.until(() => Buffer.concat(engineA.callsOf('upstreamData').map((x) => x.bytes)).length >= data.length, 10_000, 'the whole object stored');
    expect(Buffer.concat(engineA.callsOf('upstreamData').map((x) => x.bytes)).equals(data)).toBe(true);
    expect(engineC.calls).toEqual([]);
  });

  test('an update on the shared topic has its data asked for in the one message the ESS meant, which any CSS takes', async () => {
    const engine = new CssEngineDouble();
    engine.registered.add(destinationKey(NODE1));
    const size = 1536 * 1024;
    const meta = metaOf('up-one', size, 2 * 1024 * 1024);
    const node = await scriptedEss();
    await cssAdapter(engine, { lease: new Lease(true) });
    await cssAdapter(engine, { lease: new Lease(false) });
    await node.send(encodeControl({ command: 'update', meta }));
    await node.until(() => node.controls().some((m) => m.command === 'getdata'), 10_000, 'a getdata');
    const asked = node.controls().filter((m) => m.command === 'getdata');
    expect(asked.map((g) => [g.offset, g.meta.chunkSize])).toEqual([[0n, 2 * 1024 * 1024]]);
  });

  test('a chunk no pull of this CSS asked for is stored when it starts where the store awaits data, dropped otherwise', async () => {
    const engine = new CssEngineDouble();
    engine.registered.add(destinationKey(NODE1));
    let awaited: { received: number; total: number } | null = { received: 4, total: 10 };
    await cssAdapter(engine, { awaited: () => awaited });
    const node = await scriptedEss();
    const chunk = (offset: number, bytes: Buffer): Buffer => encodeData({ orgID: 'myorg', objectType: 'up', objectID: 'up-small', offset: BigInt(offset), instanceID: 7n, data: bytes });
    // Not where the store stands: dropped (whoever asked for it asks again).
    await node.send(chunk(0, Buffer.from('0123')));
    // Where it stands: stored, cut at the object's end (a reference ESS pads its chunks).
    await node.send(chunk(4, Buffer.from('456789--')));
    await node.until(() => engine.callsOf('upstreamData').length === 1, 10_000, 'the chunk stored');
    const [stored] = engine.callsOf('upstreamData');
    expect(stored?.data).toEqual({ range: { start: 4, end: 9, total: 10 } });
    expect(stored?.bytes.toString()).toBe('456789');
    // Nothing awaited any more (complete, or another instance): dropped.
    awaited = null;
    await node.send(chunk(4, Buffer.from('456789')));
    await new Promise((r) => setTimeout(r, 300));
    expect(engine.callsOf('upstreamData')).toHaveLength(1);
  });
});

const MiB = 1024 * 1024;
/** Polling deadlines only. */
const DEADLINE_MS = 120_000;

processSuite('two CSS processes on one database (FerretDB) and one mosquitto, an ESS over MQTT', () => {
  const tp = new Teardown();
  let cssA: RunningProcess;
  let cssB: RunningProcess;
  let ess: RunningProcess;
  let onA: SyncServiceClient;
  let onB: SyncServiceClient;
  let onEss: SyncServiceClient;
  let mq: Mosquitto;
  let brokerEnv: Record<string, string>;
  const log = (): string => [`CSS A:\n${cssA.output().slice(-4000)}`, `CSS B:\n${cssB?.output().slice(-4000)}`, `ESS:\n${ess?.output().slice(-4000)}`, `mosquitto:\n${mq.log().slice(-1500)}`].join('\n');

  beforeAll(async () => {
    const db = await startFerretDb();
    tp.add(() => db.stop());
    const cssUser = { user: 'edgesync-css', password: 'css-secret' };
    const essLogin = { user: `${ORG}/edge/n1`, password: 'secret-n1' };
    mq = await startMosquitto({ users: [cssUser, essLogin] });
    tp.add(() => mq.stop());
    const broker = { COMMUNICATION_PROTOCOL: 'mqtt', BROKER_ADDRESS: '127.0.0.1', BROKER_PORT: String(mq.port), MQTT_USE_SSL: 'false' };
    brokerEnv = broker;
    const cssEnv = { ...broker, STORAGE_PROVIDER: 'mongo', MONGO_ADDRESS_CSV: db.url, MONGO_DB_NAME: 'edgesync_two_css', MQTT_USER_NAME: cssUser.user, MQTT_PASSWORD: cssUser.password, RESEND_INTERVAL: '1' };
    const rootA = await tempRoot(tp, 'css-a');
    cssA = await startNode({ mode: 'css', root: rootA, env: cssEnv });
    tp.add(() => cssA.stop());
    // Object data is on files until the blob store moves into the database: B reads A's directory.
    const rootB = await tempRoot(tp, 'css-b');
    await mkdir(join(rootB, 'sync'), { recursive: true });
    await symlink(join(rootA, 'sync', 'data'), join(rootB, 'sync', 'data'));
    cssB = await startNode({ mode: 'css', root: rootB, env: cssEnv });
    tp.add(() => cssB.stop());
    for (const c of [cssA, cssB]) if (c.admin === null) throw new Error('a CSS printed no admin credentials');
    onA = await cssA.client({ orgID: ORG, appKey: cssA.admin!.appKey, appSecret: cssA.admin!.secret });
    onB = await cssB.client({ orgID: ORG, appKey: cssB.admin!.appKey, appSecret: cssB.admin!.secret });
    tp.add(() => Promise.resolve(onA.close()));
    tp.add(() => Promise.resolve(onB.close()));
    await onA.putOrganization({ orgID: ORG });
    const essRoot = await tempRoot(tp, 'ess-n1');
    ess = await startNode({
      mode: 'ess',
      root: essRoot,
      env: { ...broker, ORG_ID: ORG, DESTINATION_TYPE: 'edge', DESTINATION_ID: 'n1', MQTT_USER_NAME: essLogin.user, MQTT_PASSWORD: essLogin.password, RESEND_INTERVAL: '1' },
    });
    tp.add(() => ess.stop());
    onEss = await ess.client({ appKey: ess.admin!.appKey, appSecret: ess.admin!.secret });
    tp.add(() => Promise.resolve(onEss.close()));
    for (const on of [onA, onB]) await eventually('n1 registered, as both CSS see it', () => on.getDestinations(), (d) => d.some((x) => x.destinationID === 'n1'), DEADLINE_MS, log);
  }, 120_000);
  afterAll(() => tp.run());

  test('both CSS connect at MQTT 5 and share the ESS events: no WARN about every CSS taking every message', () => {
    // mosquitto: `New client connected from … as CSS-… (p5, …)`: p5 is MQTT 5, p2 would be 3.1.1.
    expect(mq.log().match(/as CSS-\d+ \(p\d/g)?.map((m) => m.slice(-2))).toEqual(['p5', 'p5']);
    for (const c of [cssA, cssB]) expect(c.output()).not.toMatch(/would each take every ESS message/);
  });

  const statusOn = async (on: SyncServiceClient, id: string): Promise<string[]> => (await on.getObjectDestinations('model', id)).map((d) => `${d.destinationID}:${d.status}`);

  async function publish(on: SyncServiceClient, id: string, size: number): Promise<string> {
    const data = generatedData(size);
    await on.updateObject({ objectID: id, objectType: 'model', destinationType: 'edge' });
    await on.updateObjectData('model', id, data.stream(), { size });
    return data.sha256;
  }

  async function arrives(id: string, sha256: string): Promise<void> {
    await eventually(`${id} on the ESS`, () => onEss.getObjectStatus('model', id), (s) => s === 'completelyReceived', DEADLINE_MS, log);
    expect(await sha256Of(await onEss.fetchObjectData('model', id))).toBe(sha256);
  }

  test('objects published through either CSS reach the ESS intact; both CSS say delivered, then consumed', async () => {
    const small = await publish(onA, 'via-a', 3000);
    const multi = await publish(onB, 'via-b', 3 * MiB + 17);
    await arrives('via-a', small);
    await arrives('via-b', multi);
    for (const id of ['via-a', 'via-b']) {
      for (const on of [onA, onB]) await eventually(`${id} delivered`, () => statusOn(on, id), (s) => s.includes('n1:delivered'), DEADLINE_MS, log);
      await onEss.markObjectConsumed('model', id);
      for (const on of [onA, onB]) await eventually(`${id} consumed`, () => statusOn(on, id), (s) => s.includes('n1:consumed'), DEADLINE_MS, log);
    }
  });

  test('objects the ESS publishes reach the database intact through whichever CSS takes them, one message or many', async () => {
    for (const [id, size] of [['up-small', 2000], ['up-multi', 3 * MiB + 5]] as const) {
      const data = generatedData(size);
      await onEss.updateObject({ objectID: id, objectType: 'model' });
      await onEss.updateObjectData('model', id, data.stream(), { size });
      for (const on of [onA, onB]) {
        await eventually(`${id} on the CSS`, () => on.getObjectStatus('model', id), (s) => s === 'completelyReceived', DEADLINE_MS, log);
        expect(await sha256Of(await on.fetchObjectData('model', id))).toBe(data.sha256);
      }
    }
  });

  const bin = referenceBin();
  (bin !== null ? test : test.skip)('a reference ESS (MQTT 3.1.1, paho) syncs with the two CSS both ways, multi-chunk objects included (EDGESYNC_REFERENCE_BIN)', async () => {
    const login = { user: 'reference-ess', password: 'reference-secret' };
    await mq.addUsers([login]);
    const ref = await startReferenceOnMqtt(bin!, {
      mode: 'ess',
      env: { ...brokerEnv, ORG_ID: ORG, DESTINATION_TYPE: 'edge', DESTINATION_ID: 'ref1', MQTT_USER_NAME: login.user, MQTT_PASSWORD: login.password, MAX_DATA_CHUNK_SIZE: '65536' },
    });
    tp.add(() => ref.stop());
    const onRef = new SyncServiceClient({ url: ref.url, appKey: `admin@${ORG}`, appSecret: '' });
    tp.add(() => Promise.resolve(onRef.close()));
    const refLog = (): string => `${log()}\nreference ESS:\n${ref.output().slice(-4000)}`;
    for (const on of [onA, onB]) await eventually('ref1 registered', () => on.getDestinations(), (d) => d.some((x) => x.destinationID === 'ref1'), DEADLINE_MS, refLog);

    const down = randomBytes(614_523);
    await onB.updateObject({ objectID: 'to-ref', objectType: 'model', destinationType: 'edge', destinationID: 'ref1' });
    await onB.updateObjectData('model', 'to-ref', down);
    await eventually('to-ref on the reference ESS', () => onRef.getObjectStatus('model', 'to-ref').catch(() => ''), (s) => s === 'completelyReceived', DEADLINE_MS, refLog);
    expect(await sha256Of(await onRef.fetchObjectData('model', 'to-ref'))).toBe(sha256Hex(down));
    for (const on of [onA, onB]) await eventually('to-ref delivered', () => statusOn(on, 'to-ref'), (s) => s.includes('ref1:delivered'), DEADLINE_MS, refLog);

    for (const [id, size] of [['ref-up-small', 3072], ['ref-up-multi', 614_477]] as const) {
      const up = randomBytes(size);
      await onRef.updateObject({ objectID: id, objectType: 'report' });
      await onRef.updateObjectData('report', id, up);
      for (const on of [onA, onB]) {
        await eventually(`${id} on the CSS`, () => on.getObjectStatus('report', id), (s) => s === 'completelyReceived', DEADLINE_MS, refLog);
        expect(await sha256Of(await on.fetchObjectData('report', id))).toBe(sha256Hex(up));
      }
    }
  });

  // Last: it leaves one CSS.
  test('a CSS killed -9 mid-transfer of a multi-chunk object: the other serves the rest, delivered intact', async () => {
    const size = 96 * MiB;
    const sha256 = await publish(onA, 'kill-mid', size);
    const staging = join(ess.root, 'sync', 'data', 'staging');
    const deadline = Date.now() + DEADLINE_MS;
    for (;;) {
      const sizes = await Promise.all((await readdir(staging).catch(() => [])).map((n) => stat(join(staging, n)).then((x) => x.size, () => 0)));
      if (sizes.some((x) => x > 8 * MiB && x < size)) break;
      if (Date.now() > deadline) throw new Error(`no download passed 8 MiB\n${log()}`);
      await new Promise((r) => setTimeout(r, 2));
    }
    await cssA.kill();
    await arrives('kill-mid', sha256);
    await eventually('kill-mid delivered, as the CSS left says', () => statusOn(onB, 'kill-mid'), (s) => s.includes('n1:delivered'), DEADLINE_MS, log);
  });

});

