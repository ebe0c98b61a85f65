/**
 * A real CSS process talking MQTT, driven by hand from a scripted ESS (a test double that
 * speaks the reference's messages): over mosquitto, and over the CSS's embedded broker.
 * The story of each direction: register, an object for the ESS pushed and pulled by chunks,
 * acked; an object the ESS publishes pulled by the CSS, consumed by a CSS app; and a pull a CSS
 * restart cut short, resumed from the bytes the CSS kept. [ref sync-protocol §2, §3]
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import type { MetaData } from '../../lib/model/index.js';
import { emptyMetaData } from '../../lib/model/index.js';
import { encodeControl, type ControlMessage } from '../../lib/transport/mqtt/control-codec.js';
import { encodeData } from '../../lib/transport/mqtt/data-codec.js';
import type { SyncServiceClient } from '../../sdk/index.js';
import { readAll, sha } from '../helpers/bytes.js';
import { MOSQUITTO_MISSING, mosquittoAvailable, startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { referenceDataMessage, ScriptedEss } from '../helpers/mqtt-test-clients.js';
import { readMqttCapture } from '../helpers/mqtt-reference-traffic.js';
import { startManaged, startNode, Teardown, type RunningProcess } from '../helpers/node-process.js';
import { eventuallyWithin } from '../helpers/sync-pair.js';

jest.setTimeout(90_000);

const ORG = 'myorg';
const eventually = eventuallyWithin(30_000);

function captured(file: string, seq: number): string {
  const text = readMqttCapture(file).find((m) => m.seq === seq)?.payload_text;
  if (text === undefined) throw new Error(`${file} #${seq} is not a control message`);
  return text;
}

const REGISTER = captured('mqtt-register.jsonl', 1);
const REGISTER_NEW = captured('mqtt-register.jsonl', 3);

/** An object the ESS publishes, as the reference ESS describes it (mqtt-ess-to-css.jsonl #1). */
function upstreamMeta(objectID: string, size: number, chunkSize: number, instanceID: bigint): MetaData {
  return {
    ...emptyMetaData(),
    objectID,
    objectType: 'demo-d',
    destinationOrgID: ORG,
    destinationType: 'edge',
    destinationID: 'node1',
    version: '1.0',
    consumers: 1,
    originType: 'edge',
    originID: 'node1',
    instanceID,
    dataID: instanceID,
    objectSize: size,
    chunkSize,
  };
}

/** Answers every getdata for `meta` with its chunk of `data`, as the reference ESS (padded), unless `hold` says not. */
function serve(ess: ScriptedEss, meta: MetaData, data: Buffer, hold: (offset: number) => boolean = () => false): void {
  ess.onGetdata = (g: ControlMessage) => {
    if (g.meta.objectID !== meta.objectID) return;
    const at = Number(g.offset);
    if (hold(at)) return;
    const chunk = data.subarray(at, at + meta.chunkSize);
    void ess.send(referenceDataMessage({ orgID: ORG, objectType: meta.objectType, objectID: meta.objectID, offset: g.offset, instanceID: meta.instanceID, data: chunk }, meta.chunkSize));
  };
}

async function registerNode(ess: ScriptedEss): Promise<void> {
  const before = ess.received.length;
  await ess.send(REGISTER);
  await ess.until(() => ess.controls().length > before);
  if (ess.controls().at(-1)?.command === 'registerAsNew') {
    await ess.send(REGISTER_NEW);
    await ess.until(() => ess.controls().some((c, i) => i >= before && c.command === 'regack'));
  }
}

const run = mosquittoAvailable() ? describe : describe.skip;
if (!mosquittoAvailable()) test.skip(`CSS process over MQTT: ${MOSQUITTO_MISSING}`, () => undefined);

run('a CSS process over mosquitto, with a hand-driven ESS', () => {
  const t = new Teardown();
  let broker: Mosquitto;
  let css: RunningProcess;
  let app: SyncServiceClient;
  let ess: ScriptedEss;
  let cssEnv: Record<string, string>;

  beforeAll(async () => {
    broker = await startMosquitto();
    t.add(() => broker.stop());
    cssEnv = { ORG_ID: ORG, COMMUNICATION_PROTOCOL: 'mqtt', BROKER_ADDRESS: '127.0.0.1', BROKER_PORT: String(broker.port), MQTT_USE_SSL: 'false', MAX_INFLIGHT_CHUNKS: '4' };
    css = await startManaged(t, { mode: 'css', env: cssEnv });
    app = await css.client({ orgID: ORG });
    ess = await ScriptedEss.connect(broker.url);
    t.add(() => ess.close());
  });
  afterAll(() => t.run());

  test('prints the broker it uses next to its API', () => {
    expect(css.output()).toMatch(new RegExp(`MQTT:\\s+mqtt://127\\.0\\.0\\.1:${broker.port}`));
  });

  test('an unknown ESS is told to register as new, then registered', async () => {
    await ess.send(REGISTER);
    await ess.until(() => ess.controls().length >= 1);
    expect(ess.controls()[0]?.command).toBe('registerAsNew');
    await ess.send(REGISTER_NEW);
    await ess.until(() => ess.controls().some((c) => c.command === 'regack'));
    const dests = await app.getDestinations();
    expect(dests.map((d) => [d.destinationType, d.destinationID, d.communication])).toEqual([['edge', 'node1', 'mqtt']]);
  });

  test('an object for the ESS: update pushed, data served per getdata, received and consumed acked', async () => {
    const data = randomBytes(150_000);
    await app.updateObject({ objectID: 'obj1', objectType: 'demo-b', destinationType: 'edge', destinationID: 'node1', version: '1.0' }, data);
    await ess.until(() => ess.controls().some((c) => c.command === 'update' && c.meta.objectID === 'obj1'));
    const update = ess.controls().find((c) => c.command === 'update' && c.meta.objectID === 'obj1')!;
    expect(update.meta).toMatchObject({ objectType: 'demo-b', destinationOrgID: ORG, destinationType: 'edge', destinationID: 'node1', originType: 'Cloud', originID: 'Cloud', objectSize: data.length });
    const chunk = update.meta.chunkSize;
    expect(chunk).toBeGreaterThan(0);

    await ess.send(encodeControl({ command: 'updated', meta: update.meta }));
    const offsets: bigint[] = [];
    for (let at = 0; at < data.length; at += chunk) offsets.push(BigInt(at));
    for (const offset of offsets) await ess.send(encodeControl({ command: 'getdata', meta: update.meta, offset }));
    await ess.until(() => ess.data().filter((d) => d.objectID === 'obj1').length === offsets.length);
    const chunks = ess.data().filter((d) => d.objectID === 'obj1');
    expect(chunks.map((d) => d.offset)).toEqual(offsets);
    expect(sha(Buffer.concat(chunks.map((d) => d.data)))).toBe(sha(data));
    // Data goes at QoS 0, as the reference sends it: the receiver's window asks again for what is lost.
    expect(ess.received.filter((r) => r.kind === 'data').every((r) => r.qos === 0)).toBe(true);

    await ess.send(encodeControl({ command: 'received', meta: update.meta }));
    await ess.until(() => ess.controls().some((c) => c.command === 'ackreceived' && c.meta.objectID === 'obj1'));
    await eventually('delivered', () => app.getObjectDestinations('demo-b', 'obj1'), (d) => d[0]?.status === 'delivered');
    await ess.send(encodeControl({ command: 'consumed', meta: update.meta }));
    await ess.until(() => ess.controls().some((c) => c.command === 'ackconsumed' && c.meta.objectID === 'obj1'));
    await eventually('consumed', () => app.getObjectDestinations('demo-b', 'obj1'), (d) => d[0]?.status === 'consumed');
    // Acked: the CSS does not push it again.
    expect(ess.controls().filter((c) => c.command === 'update' && c.meta.objectID === 'obj1')).toHaveLength(1);
  });

  test('an object the ESS publishes: updated, pulled in a window of 4, received pushed, consumed by a CSS app, then gone', async () => {
    const data = randomBytes(5 * 65536 + 1234);
    const meta = upstreamMeta('up1', data.length, 65536, 1796426250472201460n);
    serve(ess, meta, data);
    await ess.send(encodeControl({ command: 'update', meta }), { leader: true });
    await ess.until(() => ess.controls().some((c) => c.command === 'received' && c.meta.objectID === 'up1'));
    const sent = ess.controls().filter((c) => c.meta.objectID === 'up1');
    expect(sent.slice(0, 5).map((c) => [c.command, c.offset])).toEqual([
      ['updated', 0n],
      ['getdata', 0n],
      ['getdata', 65536n],
      ['getdata', 131072n],
      ['getdata', 196608n],
    ]);
    expect(sent.filter((c) => c.command === 'getdata').map((c) => c.offset)).toEqual([0n, 1n, 2n, 3n, 4n, 5n].map((i) => i * 65536n));
    expect(await app.getObjectStatus('demo-d', 'up1')).toBe('completelyReceived');
    expect(sha(await readAll(await app.fetchObjectData('demo-d', 'up1')))).toBe(sha(data));
    expect(await app.getObject('demo-d', 'up1')).toMatchObject({ originType: 'edge', originID: 'node1' });

    await ess.send(encodeControl({ command: 'ackreceived', meta }));
    await app.markObjectConsumed('demo-d', 'up1');
    await ess.until(() => ess.controls().some((c) => c.command === 'consumed' && c.meta.objectID === 'up1'));
    await ess.send(encodeControl({ command: 'ackconsumed', meta }));
    await eventually('the copy gone', () => app.getObject('demo-d', 'up1'), (m) => m === null);
  });

  test('the health report has an mqttHealth section, green while connected', async () => {
    const h = await app.health();
    expect((h as unknown as { mqttHealth?: unknown }).mqttHealth).toMatchObject({ mqttConnectionStatus: 'green', disconnectedFromMQTTBroker: false, publishFailures: 0, mqttESS: 1 });
  });

  test('a pull cut short by a CSS restart resumes from the bytes the CSS kept', async () => {
    const data = randomBytes(6 * 65536);
    const meta = upstreamMeta('up2', data.length, 65536, 1796426250472209999n);
    // Chunks from 131072 on are held back: the CSS keeps the first two.
    serve(ess, meta, data, (at) => at >= 131072);
    await ess.send(encodeControl({ command: 'update', meta }), { leader: true });
    await eventually('two chunks kept', () => app.getObjectStatus('demo-d', 'up2'), (s) => s === 'partiallyreceived');
    await ess.until(() => ess.controls().filter((c) => c.command === 'getdata' && c.meta.objectID === 'up2').length >= 6);
    // Give the CSS the moment to persist chunk 65536, then restart it on the same data.
    await new Promise((r) => setTimeout(r, 500));
    const { root, admin } = css;
    await css.stop();
    const before = ess.received.length;
    serve(ess, meta, data);
    css = await startNode({ mode: 'css', root, env: cssEnv });
    t.add(() => css.stop());
    app = await css.client({ orgID: ORG, appKey: admin!.appKey, appSecret: admin!.secret });
    await eventually('complete after the restart', () => app.getObjectStatus('demo-d', 'up2'), (s) => s === 'completelyReceived');
    const asked = ess.received.slice(before).flatMap((r) => (r.kind === 'control' && r.message.command === 'getdata' ? [r.message.offset] : []));
    expect(asked[0]).toBe(131072n);
    expect(sha(await readAll(await app.fetchObjectData('demo-d', 'up2')))).toBe(sha(data));
  });
});

run('a CSS process with its embedded broker', () => {
  const t = new Teardown();
  let css: RunningProcess;
  let url: string;

  beforeAll(async () => {
    css = await startManaged(t, {
      mode: 'css',
      env: { ORG_ID: ORG, COMMUNICATION_PROTOCOL: 'mqtt', EMBEDDED_BROKER_PORT: '0', AUTHENTICATION_HANDLER: 'dummy', LISTENING_ADDRESS: '127.0.0.1' },
    });
    const m = /MQTT:\s+(mqtt:\/\/\S+)/.exec(css.output());
    if (m?.[1] === undefined) throw new Error(`no broker URL printed:\n${css.output()}`);
    url = m[1];
  });
  afterAll(() => t.run());

  test('an ESS logs in as itself, registers and gets what is published for it', async () => {
    const ess = await ScriptedEss.connect(url, 'edge', 'node1', { username: `${ORG}/edge/node1`, password: 'x' });
    t.add(() => ess.close());
    await registerNode(ess);
    const app = await css.client({ orgID: ORG, appKey: `admin@${ORG}`, appSecret: '' });
    await app.updateObject({ objectID: 'e1', objectType: 'demo', destinationType: 'edge', destinationID: 'node1', version: '1.0', noData: true });
    await ess.until(() => ess.controls().some((c) => c.command === 'update' && c.meta.objectID === 'e1'));
  });

  test('the broker keeps an ESS to its own topics: another node cannot speak for it', async () => {
    const intruder = await ScriptedEss.connect(url, 'edge', 'node2', { username: `${ORG}/edge/node2`, password: 'x' });
    t.add(() => intruder.close());
    const before = (await (await css.client({ orgID: ORG, appKey: `admin@${ORG}`, appSecret: '' })).getObjectDestinations('demo', 'e1'))[0]?.status;
    await intruder.send(encodeData({ orgID: ORG, objectType: 'demo', objectID: 'e1', offset: 0n, instanceID: 1n, data: Buffer.alloc(1) }), { topic: 'iot-2/type/edge/id/node1/evt/sync-cmd/fmt/bin' }).catch(() => undefined);
    await intruder.send(encodeControl({ command: 'received', meta: { ...emptyMetaData(), objectType: 'demo', objectID: 'e1', destinationOrgID: ORG, destinationType: 'edge', destinationID: 'node1' } }), { topic: 'iot-2/type/edge/id/node1/evt/sync-cmd/fmt/bin' }).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 500));
    const after = (await (await css.client({ orgID: ORG, appKey: `admin@${ORG}`, appSecret: '' })).getObjectDestinations('demo', 'e1'))[0]?.status;
    expect(after).toBe(before);
  });
});
