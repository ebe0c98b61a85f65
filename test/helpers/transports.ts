/**
 * A CSS and any number of ESS nodes syncing over one of the three transports, on the real
 * binaries (node-process.ts) on loopback, for the transport contract suite:
 *
 * - `http`: the ESS dials the CSS's SPI, as today;
 * - `mqtt-embedded`: the CSS runs its embedded broker (COMMUNICATION_PROTOCOL=http,mqtt with no
 *   BROKER_ADDRESS) on a port the test picks, and each ESS dials it with its own credentials
 *   (the ones the CSS's authenticator knows: its edgenode user);
 * - `mqtt-mosquitto`: a real mosquitto with a password file (the CSS's user and each ESS's);
 *   CSS and ESS both dial it.
 *
 * Restarts and kills keep each node's root and ports, so the others find it again.
 * Integration tests only.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { SyncServiceClient } from '../../sdk/index.js';
import { generatedData, sha256Of } from './generated-data.js';
import { ferretdbPath, MONGO_MISSING, startFerretDb } from './ferretdb.js';
import { MOSQUITTO_MISSING, freePort, mosquittoAvailable, startMosquitto, type Mosquitto } from './mosquitto.js';
import { BIN, startNode, tempRoot, Teardown, type RunningProcess, type StartOptions } from './node-process.js';
import { eventually, ORG, portOf } from './sync-pair.js';

const run = promisify(execFile);

/** The transport, and with `-mongo` a CSS storing on MongoDB (FerretDB here) instead of SQLite. */
export type TransportKind = 'http' | 'mqtt-embedded' | 'mqtt-mosquitto' | 'http-mongo' | 'mqtt-mosquitto-mongo';

/** The transports on the default store (SQLite): what every transport suite runs on. */
export const TRANSPORT_KINDS: readonly TransportKind[] = ['http', 'mqtt-embedded', 'mqtt-mosquitto'];

/**
 * The same with a CSS on MongoDB too: for the core contract suites (lifecycle, addressing,
 * offline), whose scenarios touch every store operation. The others stay on SQLite to keep the
 * whole run within CI's time; large objects on MongoDB are the scale-out suites' (tens of MiB:
 * FerretDB, the MongoDB-wire server of the tests, scans a collection for every query and
 * serves a 128 MiB object in minutes, where MongoDB reads by index).
 */
export const TRANSPORT_KINDS_WITH_MONGO: readonly TransportKind[] = [...TRANSPORT_KINDS, 'http-mongo', 'mqtt-mosquitto-mongo'];

/** The wire a kind syncs over, whatever the CSS stores on. */
export function wireOf(kind: TransportKind): 'http' | 'mqtt-embedded' | 'mqtt-mosquitto' {
  return kind === 'http-mongo' ? 'http' : kind === 'mqtt-mosquitto-mongo' ? 'mqtt-mosquitto' : kind;
}

const onMongo = (kind: TransportKind): boolean => kind.endsWith('-mongo');

/** Why `kind` cannot run on this machine, or null when it can. */
export function transportSkipReason(kind: TransportKind): string | null {
  if (wireOf(kind) === 'mqtt-mosquitto' && !mosquittoAvailable()) return MOSQUITTO_MISSING;
  if (onMongo(kind) && ferretdbPath() === null && (process.env.EDGESYNC_TEST_MONGO_URL ?? '') === '') return MONGO_MISSING;
  return null;
}

/**
 * `describe(title + kind, body(kind))` for every transport; a transport that cannot run here is
 * reported as one skipped test whose name says why (and a console line), never dropped silently.
 */
export function describeTransports(title: string, body: (kind: TransportKind) => void, kinds: readonly TransportKind[] = TRANSPORT_KINDS): void {
  for (const kind of kinds) {
    const reason = transportSkipReason(kind);
    if (reason === null) {
      describe(`${title} [${kind}]`, () => body(kind));
      continue;
    }
    console.warn(`Skipped: ${title} [${kind}] (${reason})`);
    describe(`${title} [${kind}]`, () => {
      test.skip(`skipped: ${reason}`, () => undefined);
    });
  }
}

/** What makes one network differ from another. */
export interface NetOptions {
  /** How long an ESS may take to register (and any other wait of the helper). */
  deadlineMs: number;
  /** More environment for the CSS, e.g. { LOG_LEVEL: 'info' }. */
  cssEnv?: Record<string, string>;
  /** More environment for every ESS. */
  essEnv?: Record<string, string>;
  /**
   * mqtt-mosquitto only: an ACL that lets each ESS read only its own `cmd` topics and write only
   * its own `evt` topics (the CSS's user may do anything under iot-2/), kept up to date as ESS
   * nodes are added. Otherwise any user may use any topic.
   */
  mosquittoAcl?: boolean;
}

/**
 * The ACL of a mosquitto broker shared by the CSS and `nodes`: the topics carry type and ID but
 * no org (one broker per org, as in the reference), so a `pattern` with %u would need user names
 * shaped like the topic (`edge/id/n1`); explicit rules per user keep the ESS's own user name.
 * [ref sync-protocol §2 Topics]
 */
export function mosquittoAclFor(cssUser: string, nodes: { type: string; id: string }[]): string {
  const lines = [`user ${cssUser}`, 'topic readwrite iot-2/#', ''];
  for (const n of nodes) {
    lines.push(`user ${essUser(n.type, n.id)}`, `topic read iot-2/type/${n.type}/id/${n.id}/cmd/#`, `topic write iot-2/type/${n.type}/id/${n.id}/evt/#`, '');
  }
  return lines.join('\n');
}

/** What makes one ESS differ from another. */
export interface EssSpec {
  /** Its destination ID. */
  id: string;
  /** Its destination type: `edge` unless given. */
  type?: string;
  /** More environment for this ESS. */
  env?: Record<string, string>;
}

/** One ESS of a network: its process now (replaced by restarts) and a client of its API. */
export interface EssNode {
  readonly id: string;
  readonly type: string;
  /** The process running now. */
  readonly node: RunningProcess;
  /** A client of its API as its sync admin (a new one after each restart: read it anew). */
  readonly client: SyncServiceClient;
  /** SIGTERM; resolves with the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL, no cleanup. */
  kill(): Promise<void>;
  /** Starts it again on the same root (after `stop` or `kill`). */
  start(): Promise<void>;
}

/** A CSS, its broker when there is one, and its ESS nodes. */
export interface SyncNet {
  readonly kind: TransportKind;
  /** The CSS running now (replaced by restarts). */
  readonly css: RunningProcess;
  /** A client of the CSS's API for org1 as its sync admin (a new one after each restart: read it anew). */
  readonly onCss: SyncServiceClient;
  /** The mosquitto broker of `mqtt-mosquitto`, null otherwise. */
  readonly broker: Mosquitto | null;
  /** The CSS's user on the mosquitto broker (mqtt-mosquitto only). */
  readonly cssBrokerUser: { user: string; password: string };
  /** The port ESS nodes dial: the CSS's HTTP port, the embedded broker's, or mosquitto's. */
  readonly dialPort: number;
  /** Adds the ESS's credentials, starts it and waits until the CSS lists it as a destination. */
  addEss(spec: EssSpec): Promise<EssNode>;
  /** Starts an ESS without waiting for anything (its credentials added first unless `withoutUser`). */
  startEss(spec: EssSpec, opts?: { withoutUser?: boolean; mqttUser?: string; mqttPassword?: string }): Promise<EssNode>;
  /** The ESS `id` added before. */
  ess(id: string): EssNode;
  /** Stops (SIGTERM) or kills (SIGKILL) the CSS and starts it again on the same root and ports. */
  restartCss(how: 'stop' | 'kill'): Promise<void>;
  /** SIGKILL to the CSS, no restart (`restartCss` or `startCss` brings it back). */
  killCss(): Promise<void>;
  /** Starts the CSS again after `killCss`. */
  startCss(): Promise<void>;
}

/** The password of ESS `id` on the CSS (and on the broker). */
export const essSecret = (id: string): string => `secret-${id}`;

/** The user name an ESS logs in with, on the CSS's SPI and on the broker alike. */
export const essUser = (type: string, id: string): string => `${ORG}/${type}/${id}`;

/** Adds ESS `type/id` of org1 as an edgenode user to the CSS's database, with the CLI. */
async function addEdgeNodeUser(css: RunningProcess, type: string, id: string): Promise<void> {
  await run(process.execPath, [BIN, 'users', 'add', essUser(type, id), '--type', 'edgenode', '--org', ORG, '--username', `${type}/${id}`, '--secret', essSecret(id), '--persistence-root-path', css.root]);
}

/**
 * The usual start of a transport suite: a CSS of `kind` and one ESS `n1`, started before the
 * suite's tests (handed to `started`) and stopped after them.
 */
export function withOneEss(kind: TransportKind, deadlineMs: number, started: (s: { net: SyncNet; n1: EssNode }) => void): void {
  const t = new Teardown();
  beforeAll(async () => {
    const net = await startSyncNet(t, kind, { deadlineMs });
    started({ net, n1: await net.addEss({ id: 'n1' }) });
  });
  afterAll(() => t.run());
}

/**
 * Starts the broker (mosquitto), the CSS with org1, and nothing else: `addEss` adds nodes.
 * Everything is stopped and removed by `t`.
 */
export async function startSyncNet(t: Teardown, kind: TransportKind, o: NetOptions): Promise<SyncNet> {
  const cssUser = { user: 'edgesync-css', password: randomBytes(12).toString('hex') };
  const wire = wireOf(kind);
  const storeEnv: Record<string, string> = {};
  if (onMongo(kind)) {
    let url = process.env.EDGESYNC_TEST_MONGO_URL ?? '';
    if (url === '') {
      const server = await startFerretDb();
      t.add(() => server.stop());
      url = server.url;
    }
    Object.assign(storeEnv, { STORAGE_PROVIDER: 'mongo', MONGO_ADDRESS_CSV: url, MONGO_DB_NAME: `edgesync_net_${randomBytes(6).toString('hex')}` });
  }
  let broker: Mosquitto | null = null;
  if (wire === 'mqtt-mosquitto') {
    broker = await startMosquitto({ users: [cssUser], ...(o.mosquittoAcl === true ? { acl: mosquittoAclFor(cssUser.user, []) } : {}) });
    const b = broker;
    t.add(() => b.stop());
  }
  const embeddedPort = wire === 'mqtt-embedded' ? await freePort() : 0;

  const transportEnv: Record<string, string> =
    wire === 'http'
      ? {}
      : wire === 'mqtt-embedded'
        ? { COMMUNICATION_PROTOCOL: 'http,mqtt', BROKER_ADDRESS: '', EMBEDDED_BROKER_PORT: String(embeddedPort) }
        : { COMMUNICATION_PROTOCOL: 'mqtt', BROKER_ADDRESS: '127.0.0.1', BROKER_PORT: String(broker!.port), MQTT_USE_SSL: 'false', MQTT_USER_NAME: cssUser.user, MQTT_PASSWORD: cssUser.password };
  // The root is made (and its removal queued) first, so that a node that fails to start leaves nothing behind.
  const cssRoot = await tempRoot(t, 'css');
  const cssOptions: StartOptions = { mode: 'css', root: cssRoot, env: { RESEND_INTERVAL: '1', ...storeEnv, ...transportEnv, ...o.cssEnv } };
  let css = await startNode(cssOptions);
  // Teardown: whichever CSS runs at the end.
  t.add(() => css.stop());
  if (css.admin === null) throw new Error('the CSS printed no admin credentials');
  const cssAdmin = css.admin;
  // A restart must come back where the ESS nodes dial: the same root, the same port.
  const cssRestart: StartOptions = { ...cssOptions, env: { ...cssOptions.env, UNSECURE_LISTENING_PORT: portOf(css) } };
  const cssClient = (n: RunningProcess): Promise<SyncServiceClient> => n.client({ orgID: ORG, appKey: cssAdmin.appKey, appSecret: cssAdmin.secret });
  let onCss = await cssClient(css);
  t.add(() => Promise.resolve(onCss.close()));
  await onCss.putOrganization({ orgID: ORG });
  const cssBack = async (): Promise<void> => {
    css = await startNode(cssRestart);
    onCss.close();
    onCss = await cssClient(css);
  };

  const dialPort = wire === 'http' ? Number(portOf(css)) : wire === 'mqtt-embedded' ? embeddedPort : broker!.port;
  const esses = new Map<string, EssNode>();
  const aclNodes: { type: string; id: string }[] = [];

  function essEnvOf(spec: EssSpec, mqttUser: string, mqttPassword: string): Record<string, string> {
    const type = spec.type ?? 'edge';
    const common = { ORG_ID: ORG, DESTINATION_TYPE: type, DESTINATION_ID: spec.id, HTTP_POLLING_INTERVAL: '1', RESEND_INTERVAL: '1' };
    const transport =
      wire === 'http'
        ? { HTTP_CSS_HOST: '127.0.0.1', HTTP_CSS_PORT: String(dialPort), HTTP_CSS_USER: essUser(type, spec.id), HTTP_CSS_PASSWORD: essSecret(spec.id) }
        : { COMMUNICATION_PROTOCOL: 'mqtt', BROKER_ADDRESS: '127.0.0.1', BROKER_PORT: String(dialPort), MQTT_USE_SSL: 'false', MQTT_USER_NAME: mqttUser, MQTT_PASSWORD: mqttPassword };
    return { ...common, ...transport, ...o.essEnv, ...spec.env };
  }

  const net: SyncNet = {
    kind,
    get css() {
      return css;
    },
    get onCss() {
      return onCss;
    },
    broker,
    cssBrokerUser: cssUser,
    dialPort,
    async startEss(spec, opts = {}) {
      const type = spec.type ?? 'edge';
      if (opts.withoutUser !== true) {
        await addEdgeNodeUser(css, type, spec.id);
        await broker?.addUsers([{ user: essUser(type, spec.id), password: essSecret(spec.id) }]);
        aclNodes.push({ type, id: spec.id });
        if (broker !== null && o.mosquittoAcl === true) await broker.setAcl(mosquittoAclFor(cssUser.user, aclNodes));
      }
      const root = await tempRoot(t, `ess-${spec.id}`);
      const options: StartOptions = { mode: 'ess', root, env: essEnvOf(spec, opts.mqttUser ?? essUser(type, spec.id), opts.mqttPassword ?? essSecret(spec.id)) };
      let node = await startNode(options);
      t.add(() => node.stop());
      if (node.admin === null) throw new Error(`ESS ${spec.id} printed no admin credentials`);
      const admin = node.admin;
      let client = await node.client({ appKey: admin.appKey, appSecret: admin.secret });
      t.add(() => Promise.resolve(client.close()));
      const ess: EssNode = {
        id: spec.id,
        type,
        get node() {
          return node;
        },
        get client() {
          return client;
        },
        stop: () => node.stop(),
        kill: () => node.kill(),
        start: async () => {
          node = await startNode(options);
          client.close();
          client = await node.client({ appKey: admin.appKey, appSecret: admin.secret });
        },
      };
      esses.set(spec.id, ess);
      return ess;
    },
    async addEss(spec) {
      const ess = await net.startEss(spec);
      const type = spec.type ?? 'edge';
      await eventually(
        `registration of ${type}/${spec.id} over ${kind}`,
        () => onCss.getDestinations(),
        (d) => d.some((x) => x.destinationType === type && x.destinationID === spec.id),
        o.deadlineMs,
        () => `CSS:\n${css.output().slice(-3000)}\nESS:\n${ess.node.output().slice(-3000)}`,
      );
      return ess;
    },
    ess(id) {
      const e = esses.get(id);
      if (e === undefined) throw new Error(`no ESS ${id} in this network`);
      return e;
    },
    async restartCss(how) {
      if (how === 'stop') await css.stop();
      else await css.kill();
      await cssBack();
    },
    killCss: () => css.kill(),
    startCss: cssBack,
  };
  return net;
}

/** Where the CSS says an object stands toward each node, as sorted `type/id:status` strings (O13). */
export async function deliveries(net: SyncNet, objectType: string, objectID: string): Promise<string[]> {
  return (await net.onCss.getObjectDestinations(objectType, objectID)).map((d) => `${d.destinationType}/${d.destinationID}:${d.status}`).sort();
}

/** The last lines of every process of a network, for a failed wait to show. */
export function netLog(net: SyncNet, ...esses: EssNode[]): () => string {
  return () =>
    [
      `CSS:\n${net.css.output().slice(-4000)}`,
      ...esses.map((e) => `ESS ${e.type}/${e.id}:\n${e.node.output().slice(-4000)}`),
      ...(net.broker !== null ? [`mosquitto:\n${net.broker.log().slice(-2000)}`] : []),
    ].join('\n');
}

/** Sizes of the files in an ESS's staging directory (downloads in progress). */
export async function stagedSizes(ess: EssNode): Promise<number[]> {
  const dir = join(ess.node.root, 'sync', 'data', 'staging');
  const sizes: number[] = [];
  for (const name of await readdir(dir).catch(() => [])) sizes.push(await stat(join(dir, name)).then((s) => s.size, () => 0));
  return sizes;
}

/**
 * Watches an ESS's staging directory closely (a transfer runs at disk speed on loopback) until a
 * download holds more than `above` bytes but fewer than `below`, then runs `act` at once.
 * @returns the staged size seen
 */
export async function whenStaged(ess: EssNode, above: number, below: number, act: () => Promise<void>, deadlineMs: number, log: () => string): Promise<number> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const partial = (await stagedSizes(ess)).find((s) => s > above && s < below);
    if (partial !== undefined) {
      await act();
      return partial;
    }
    if (Date.now() > deadline) throw new Error(`no download on ${ess.type}/${ess.id} passed ${above} bytes in ${deadlineMs} ms\n${log()}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/**
 * Puts `size` generated bytes (model/`objectID`) on the CSS where no ESS looks (type
 * `unwatched`), then addresses them to the nodes of `destinationType`, so that their download
 * starts with all the data there. @returns the data's SHA-256
 */
export async function publishThenAddress(net: SyncNet, objectID: string, size: number, destinationType = 'edge'): Promise<string> {
  const data = generatedData(size);
  await net.onCss.updateObject({ objectID, objectType: 'model', destinationType: 'unwatched' });
  await net.onCss.updateObjectData('model', objectID, data.stream(), { size });
  await net.onCss.updateObject({ objectID, objectType: 'model', destinationType, metaOnly: true });
  return data.sha256;
}

/**
 * Waits until `ess` holds model/`objectID` whole, then checks its bytes, that its app sees it
 * once, that the CSS says delivered (to `ess` alone), and that nothing is left staged.
 */
export async function arrivesIntact(net: SyncNet, ess: EssNode, objectID: string, size: number, sha256: string, deadlineMs: number): Promise<void> {
  const log = netLog(net, ess);
  await eventually(`${objectID} on ${ess.type}/${ess.id}`, () => ess.client.getObjectStatus('model', objectID), (s) => s === 'completelyReceived', deadlineMs, log);
  expect(await sha256Of(await ess.client.fetchObjectData('model', objectID))).toBe(sha256);
  const listed = (await ess.client.listObjects('model')).filter((m) => m.objectID === objectID);
  expect(listed.map((m) => [m.objectID, m.objectSize])).toEqual([[objectID, size]]);
  const toward = `${ess.type}/${ess.id}:delivered`;
  await eventually(`O13 of ${objectID}`, () => deliveries(net, 'model', objectID), (d) => d.includes(toward), deadlineMs, log);
  await eventually(`nothing left staged on ${ess.type}/${ess.id}`, () => stagedSizes(ess), (s) => s.length === 0, deadlineMs, log);
}
