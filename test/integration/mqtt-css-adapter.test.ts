/**
 * The CSS side of the MQTT transport, alone: the adapter over a real mosquitto broker, a test
 * double of the engine (ess-session-double.ts) and a scripted ESS (a test double speaking the
 * captured reference bytes). The CSS must answer what the reference CSS answered in the captures
 * (test/fixtures/reference-traffic/mqtt-*.jsonl): the same commands, with the same fields; the
 * control messages whose content the captured ESS message fixes are compared byte for byte.
 * [ref sync-protocol §2, §3]
 */
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { destinationKey, type DestinationRef, type MetaData } from '../../lib/model/index.js';
import type { Logger } from '../../lib/log/logger.js';
import type { SyncItem, SyncItemType } from '../../lib/sync/css/types.js';
import type { UpstreamProgress, UpstreamState } from '../../lib/sync/upstream-progress.js';
import { CssMqttAdapter, type CssMqttAdapterDeps } from '../../lib/transport/mqtt/css-adapter.js';
import { decodeControl, encodeControl, type ControlMessage } from '../../lib/transport/mqtt/control-codec.js';
import { encodeData } from '../../lib/transport/mqtt/data-codec.js';
import { CssEngineDouble } from '../helpers/ess-session-double.js';
import { MOSQUITTO_MISSING, mosquittoAvailable, startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { plainChannel, referenceDataMessage, ScriptedEss, type PlainChannel } from '../helpers/mqtt-test-clients.js';
import { readMqttCapture, type CapturedMqttMessage } from '../helpers/mqtt-reference-traffic.js';

const NODE1: DestinationRef = { orgID: 'myorg', destType: 'edge', destID: 'node1' };

/** The captured payload text of message `seq` of a capture file. */
function captured(file: string, seq: number): string {
  const m = readMqttCapture(file).find((x) => x.seq === seq);
  if (m?.payload_text === undefined) throw new Error(`${file} #${seq} is not a control message`);
  return m.payload_text;
}

function capturedMessage(file: string, seq: number): CapturedMqttMessage {
  const m = readMqttCapture(file).find((x) => x.seq === seq);
  if (m === undefined) throw new Error(`${file} has no #${seq}`);
  return m;
}

function control(text: string): ControlMessage {
  const d = decodeControl(text);
  if (d.kind !== 'message') throw new Error(`not a control message: ${text.slice(0, 80)}`);
  return d.message;
}

function item(type: SyncItemType, meta: MetaData): SyncItem {
  return { type, meta, object: null };
}

/** A progress port double: what the engine holds of each upstream object, by `type/id`. */
class ProgressDouble implements UpstreamProgress {
  readonly states = new Map<string, UpstreamState>();
  readonly resumable: Array<{ peer: DestinationRef; meta: MetaData; received: number }> = [];
  of(_peer: DestinationRef, ref: { objectType: string; objectID: string }): Promise<UpstreamState> {
    return Promise.resolve(this.states.get(`${ref.objectType}/${ref.objectID}`) ?? { kind: 'awaiting', received: 0 });
  }
  awaiting(peer: DestinationRef): Promise<Array<{ meta: MetaData; received: number }>> {
    return Promise.resolve(this.resumable.filter((r) => destinationKey(r.peer) === destinationKey(peer)));
  }
}

/** A logger that keeps its info lines, to check what a refusal tells the operator. */
function recordingLogger(): Logger & { infos: Array<{ obj: object; msg: string }> } {
  const infos: Array<{ obj: object; msg: string }> = [];
  const noop = (): void => undefined;
  const log = {
    infos,
    trace: noop,
    debug: noop,
    warn: noop,
    error: noop,
    fatal: noop,
    info: (obj: object | string, msg?: string) => {
      infos.push(typeof obj === 'string' ? { obj: {}, msg: obj } : { obj, msg: msg ?? '' });
    },
    child: () => log,
    flush: noop,
  };
  return log;
}

const run = mosquittoAvailable() ? describe : describe.skip;
if (!mosquittoAvailable()) it.skip(`MQTT CSS adapter: ${MOSQUITTO_MISSING}`, () => undefined);

run('the CSS over MQTT answers as the reference CSS does', () => {
  let broker: Mosquitto;
  const teardown: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    broker = await startMosquitto();
  });
  afterAll(async () => {
    await broker?.stop();
  });
  afterEach(async () => {
    for (const t of teardown.splice(0).reverse()) await t();
  });

  async function css(opts: { engine?: CssEngineDouble; progress?: ProgressDouble; destinations?: DestinationRef[]; deps?: Partial<CssMqttAdapterDeps> } = {}) {
    const engine = opts.engine ?? new CssEngineDouble();
    const progress = opts.progress ?? new ProgressDouble();
    const log = recordingLogger();
    const channel: PlainChannel = await plainChannel(broker.url);
    teardown.push(() => channel.close());
    const adapter = new CssMqttAdapter({
      engine,
      channel,
      progress,
      mqttDestinations: () => Promise.resolve(opts.destinations ?? []),
      orgID: 'myorg',
      resendInterval: 10,
      maxInflightChunks: 4,
      maxDataChunkSize: 65536,
      log,
      ...opts.deps,
    });
    await adapter.start();
    teardown.push(() => adapter.stop());
    return { engine, progress, adapter, log };
  }

  async function ess(destID = 'node1'): Promise<ScriptedEss> {
    const e = await ScriptedEss.connect(broker.url, 'edge', destID);
    teardown.push(() => e.close());
    return e;
  }

  it('mqtt-register.jsonl: register → registerAsNew, registerNew → regack, byte for byte', async () => {
    const engine = new CssEngineDouble({ register: (_peer, action) => (action === 'register' ? 'unknown' : 'registered') });
    await css({ engine });
    const node = await ess();
    await node.send(captured('mqtt-register.jsonl', 1));
    const [asNew] = await node.waitFor(1);
    expect(asNew).toMatchObject({ kind: 'control', text: captured('mqtt-register.jsonl', 2), qos: 1 });
    await node.send(captured('mqtt-register.jsonl', 3));
    const [, regack] = await node.waitFor(2);
    expect(regack).toMatchObject({ kind: 'control', text: captured('mqtt-register.jsonl', 4) });
    expect(engine.callsOf('register')).toEqual([
      { method: 'register', peer: destinationKey(NODE1), action: 'register', persistent: true, communication: 'mqtt' },
      { method: 'register', peer: destinationKey(NODE1), action: 'register-new', persistent: true, communication: 'mqtt' },
    ]);
  });

  it('mqtt-publish-to-node.jsonl: update pushed, getdata served, received → ackreceived, consumed → ackconsumed', async () => {
    const file = 'mqtt-publish-to-node.jsonl';
    const update = control(captured(file, 1));
    const data = randomBytes(3072);
    const engine = new CssEngineDouble();
    engine.registered.add(destinationKey(NODE1));
    engine.script.data.set('demo-b/obj1', data);
    // As the engine: `updated` takes the update out of what is pending.
    engine.script.ack = (_ref, action) => {
      if (action === 'updated') engine.queue(NODE1).length = 0;
      return 'applied';
    };
    engine.queue(NODE1).push(item('update', update.meta));
    const node = await ess();
    await css({ engine, destinations: [NODE1] });

    const [pushed] = await node.waitFor(1);
    expect(pushed).toMatchObject({ kind: 'control', text: captured(file, 1), qos: 1 });

    await node.send(captured(file, 2));
    await node.send(captured(file, 3));
    const [, chunk] = await node.waitFor(2);
    const want = capturedMessage(file, 4).decoded!.tlv;
    expect(chunk?.kind).toBe('data');
    if (chunk?.kind !== 'data') return;
    expect([chunk.message.orgID, chunk.message.objectType, chunk.message.objectID, chunk.message.offset.toString(), chunk.message.instanceID.toString()]).toEqual(
      want.filter((t) => t.name !== 'data').map((t) => t.value),
    );
    expect(chunk.message.data.equals(data)).toBe(true);
    expect(engine.callsOf('ack').map((c) => c.action)).toEqual(['updated']);
    expect(engine.callsOf('openData')[0]?.range).toEqual({ start: 0, end: 65535 });

    await node.send(captured(file, 5));
    const [, , ackReceived] = await node.waitFor(3);
    expect(ackReceived).toMatchObject({ kind: 'control', text: captured(file, 6) });
    await node.send(captured(file, 7));
    const [, , , ackConsumed] = await node.waitFor(4);
    expect(ackConsumed).toMatchObject({ kind: 'control', text: captured(file, 8) });
    expect(engine.callsOf('ack').map((c) => [c.action, c.ref.instanceID])).toEqual([
      ['updated', update.meta.instanceID],
      ['received', update.meta.instanceID],
      ['consumed', update.meta.instanceID],
    ]);
    // Nothing was pushed twice: the update left the queue with `updated`.
    expect(node.controls().filter((c) => c.command === 'update')).toHaveLength(1);
  });

  it('mqtt-ess-to-css.jsonl: update → updated + getdata, the padded chunk stored, received pushed, the acks passed on', async () => {
    const file = 'mqtt-ess-to-css.jsonl';
    const update = control(captured(file, 1));
    const data = randomBytes(3072);
    const engine = new CssEngineDouble();
    engine.registered.add(destinationKey(NODE1));
    const node = await ess();
    await css({ engine, destinations: [NODE1] });

    node.onGetdata = (g) => {
      void node.send(referenceDataMessage({ orgID: 'myorg', objectType: g.meta.objectType, objectID: g.meta.objectID, offset: g.offset, instanceID: g.meta.instanceID, data }, 65536));
    };
    await node.send(captured(file, 1));
    const [updated, getdata] = await node.waitFor(2);
    expect(updated).toMatchObject({ kind: 'control', text: captured(file, 2) });
    expect(getdata).toMatchObject({ kind: 'control', text: captured(file, 3) });
    expect(engine.callsOf('upstreamUpdate')).toEqual([{ method: 'upstreamUpdate', peer: destinationKey(NODE1), ref: { objectType: 'demo-d', objectID: 'up1', instanceID: update.meta.instanceID }, meta: update.meta }]);

    await node.until(() => engine.callsOf('upstreamData').length === 1);
    const stored = engine.callsOf('upstreamData')[0]!;
    expect(stored.data).toEqual({ range: { start: 0, end: 3071, total: 3072 } });
    expect(stored.bytes.equals(data)).toBe(true);

    // The engine queues `received`; the push loop sends it.
    const received = control(captured(file, 5));
    engine.queue(NODE1).push(item('received', received.meta));
    engine.signal(NODE1);
    const [, , pushed] = await node.waitFor(3);
    expect(pushed).toMatchObject({ kind: 'control', text: captured(file, 5) });
    engine.queue(NODE1).length = 0;
    await node.send(captured(file, 6));
    engine.queue(NODE1).push(item('consumed', control(captured(file, 7)).meta));
    engine.signal(NODE1);
    const [, , , consumed] = await node.waitFor(4);
    expect(consumed).toMatchObject({ kind: 'control', text: captured(file, 7) });
    engine.queue(NODE1).length = 0;
    await node.send(captured(file, 8));
    await node.until(() => engine.callsOf('upstreamAck').length === 2);
    expect(engine.callsOf('upstreamAck').map((c) => c.action)).toEqual(['ackreceived', 'ackconsumed']);
  });

  it('mqtt-large.jsonl, cloud → edge: the ten getdata of a window of 4 get the ten chunks of 614523 bytes', async () => {
    const file = 'mqtt-large.jsonl';
    const capture = readMqttCapture(file).filter((m) => m.seq <= 22);
    const update = control(captured(file, 1));
    const data = randomBytes(614523);
    const engine = new CssEngineDouble();
    engine.registered.add(destinationKey(NODE1));
    engine.script.data.set('demo-e/big1', data);
    engine.script.ack = () => {
      engine.queue(NODE1).length = 0;
      return 'applied';
    };
    engine.queue(NODE1).push(item('update', update.meta));
    const node = await ess();
    await css({ engine, destinations: [NODE1] });
    await node.waitFor(1);
    expect(node.received[0]).toMatchObject({ text: captured(file, 1) });

    // The ESS's messages in the captured order, each once the CSS answered what came before it.
    for (const m of capture.filter((x) => x.dir === 'ess->css')) {
      await node.waitFor(capture.filter((x) => x.dir === 'css->ess' && x.seq < m.seq).length);
      await node.send(m.payload_text!);
    }
    const chunks = capture.filter((x) => x.dir === 'css->ess' && x.decoded !== undefined);
    await node.until(() => node.data().length === chunks.length);
    const got = node.data();
    expect(got.map((d) => [d.offset.toString(), d.data.length])).toEqual(chunks.map((c) => [c.decoded!.tlv.find((t) => t.name === 'offset')!.value, (c.decoded!.tlv.find((t) => t.name === 'data')!.value as { bytes: number }).bytes]));
    expect(Buffer.concat(got.map((d) => d.data)).equals(data)).toBe(true);
    expect(got.every((d) => d.instanceID === update.meta.instanceID && d.orgID === 'myorg' && d.objectID === 'big1')).toBe(true);
  });

  it('mqtt-large.jsonl, edge → cloud: updated, then getdata for 614477 bytes in a sliding window of 4, chunks stored in order', async () => {
    const file = 'mqtt-large.jsonl';
    const update = control(captured(file, 27));
    const data = randomBytes(614477);
    const engine = new CssEngineDouble();
    engine.registered.add(destinationKey(NODE1));
    const node = await ess();
    await css({ engine, destinations: [NODE1] });
    node.onGetdata = (g) => {
      const at = Number(g.offset);
      const chunk = data.subarray(at, at + 65536);
      void node.send(referenceDataMessage({ orgID: 'myorg', objectType: 'demo-e', objectID: 'big2', offset: g.offset, instanceID: g.meta.instanceID, data: chunk }, 65536), { leader: true });
    };
    await node.send(captured(file, 27), { leader: true });
    await node.until(() => engine.callsOf('upstreamData').length === 10);

    const wanted = readMqttCapture(file).filter((m) => m.seq > 27 && m.dir === 'css->ess' && m.payload_text !== undefined && ['updated', 'getdata'].includes(control(m.payload_text).command));
    expect(node.controls().map((c) => [c.command, c.offset.toString()])).toEqual(wanted.map((m) => [control(m.payload_text!).command, control(m.payload_text!).offset.toString()]));
    // The first five are fixed by the update alone: byte for byte.
    expect(node.received.slice(0, 5).map((r) => (r.kind === 'control' ? r.text : ''))).toEqual(wanted.slice(0, 5).map((m) => m.payload_text));
    const ranges = engine.callsOf('upstreamData').map((c) => c.data.range);
    expect(ranges.map((r) => r?.start)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((i) => i * 65536));
    expect(ranges.at(-1)).toEqual({ start: 589824, end: 614476, total: 614477 });
    expect(Buffer.concat(engine.callsOf('upstreamData').map((c) => c.bytes)).equals(data)).toBe(true);
    expect(update.meta.objectSize).toBe(614477);
  });

  it('stores chunks in order when they overtake each other, and asks again for a chunk that never came', async () => {
    const data = randomBytes(5 * 1000);
    const meta: MetaData = { ...control(captured('mqtt-ess-to-css.jsonl', 1)).meta, objectID: 'shuffled', objectSize: data.length, chunkSize: 1000 };
    const engine = new CssEngineDouble();
    engine.registered.add(destinationKey(NODE1));
    const node = await ess();
    await css({ engine, destinations: [NODE1], deps: { chunkRetryMs: 300 } });
    const asked = new Map<number, number>();
    let held: Buffer | null = null;
    node.onGetdata = (g) => {
      const at = Number(g.offset);
      asked.set(at, (asked.get(at) ?? 0) + 1);
      const msg = encodeData({ orgID: 'myorg', objectType: meta.objectType, objectID: meta.objectID, offset: g.offset, instanceID: meta.instanceID, data: data.subarray(at, at + 1000) });
      // Chunk 0 is held back until chunk 1 went out; the first request for chunk 2 is lost.
      if (at === 0) held = msg;
      else if (at === 2000 && asked.get(at) === 1) return;
      else void node.send(msg);
      if (at === 1000 && held !== null) void node.send(held);
    };
    await node.send(encodeControl({ command: 'update', meta }));
    await node.until(() => engine.callsOf('upstreamData').length === 5, 10_000);
    expect(engine.callsOf('upstreamData').map((c) => c.data.range?.start)).toEqual([0, 1000, 2000, 3000, 4000]);
    expect(Buffer.concat(engine.callsOf('upstreamData').map((c) => c.bytes)).equals(data)).toBe(true);
    expect(asked.get(2000)).toBe(2);
  });

  it('asks for the rest of a chunk that came short (a broker with a smaller packet limit on the ESS side)', async () => {
    const data = randomBytes(4 * 1000);
    const meta: MetaData = { ...control(captured('mqtt-ess-to-css.jsonl', 1)).meta, objectID: 'short', objectSize: data.length, chunkSize: 1000 };
    const engine = new CssEngineDouble();
    engine.registered.add(destinationKey(NODE1));
    const node = await ess();
    await css({ engine, destinations: [NODE1], deps: { chunkRetryMs: 300 } });
    // The ESS sends at most 600 bytes per message, from wherever it is asked.
    node.onGetdata = (g) => {
      const at = Number(g.offset);
      void node.send(encodeData({ orgID: 'myorg', objectType: meta.objectType, objectID: meta.objectID, offset: g.offset, instanceID: meta.instanceID, data: data.subarray(at, Math.min(at + 600, data.length)) }));
    };
    await node.send(encodeControl({ command: 'update', meta }));
    await node.until(() => engine.callsOf('upstreamData').reduce((n, c) => n + c.bytes.length, 0) === data.length, 10_000);
    const calls = engine.callsOf('upstreamData');
    expect(Buffer.concat(calls.map((c) => c.bytes)).equals(data)).toBe(true);
    // In order, each starting where the one before ended.
    let next = 0;
    for (const c of calls) {
      expect(c.data.range?.start).toBe(next);
      next = (c.data.range?.end ?? -1) + 1;
    }
  });

  it('resumes a pull a stop cut short from the bytes the engine holds', async () => {
    const data = randomBytes(614477);
    const meta = control(captured('mqtt-large.jsonl', 27)).meta;
    const engine = new CssEngineDouble();
    engine.registered.add(destinationKey(NODE1));
    const progress = new ProgressDouble();
    progress.resumable.push({ peer: NODE1, meta, received: 131072 });
    const node = await ess();
    node.onGetdata = (g) => {
      const at = Number(g.offset);
      void node.send(encodeData({ orgID: 'myorg', objectType: 'demo-e', objectID: 'big2', offset: g.offset, instanceID: meta.instanceID, data: data.subarray(at, at + 65536) }));
    };
    await css({ engine, progress, destinations: [NODE1] });
    await node.until(() => engine.callsOf('upstreamData').length === 8);
    expect(node.controls()[0]).toMatchObject({ command: 'getdata', offset: 131072n });
    expect(engine.callsOf('upstreamData').map((c) => c.data.range?.start)[0]).toBe(131072);
    expect(engine.callsOf('upstreamData').at(-1)?.data.range).toEqual({ start: 589824, end: 614476, total: 614477 });
  });

  it('refuses a message whose payload names another ESS than its topic, and changes nothing', async () => {
    const { engine, log } = await css();
    engine.registered.add(destinationKey({ ...NODE1, destID: 'node2' }));
    const intruder = await ess('node2');
    // node2 claims node1's receipt, and publishes an object as node1.
    await intruder.send(captured('mqtt-publish-to-node.jsonl', 5));
    await intruder.send(captured('mqtt-ess-to-css.jsonl', 1));
    // Then a message of its own, answered: the refusals above were handled before it.
    await intruder.send(captured('mqtt-register.jsonl', 3).replace('"node1"', '"node2"'));
    await intruder.waitFor(1);
    expect(intruder.controls().map((c) => c.command)).toEqual(['regack']);
    expect(engine.calls.filter((c) => c.method !== 'register' && c.method !== 'pending')).toEqual([]);
    const refusals = log.infos.filter((l) => l.msg.startsWith('refused an MQTT message'));
    expect(refusals.map((r) => r.obj)).toEqual([
      expect.objectContaining({ topic: 'iot-2/type/edge/id/node2/evt/sync-cmd/fmt/bin', command: 'received', claimed: 'myorg/edge/node1' }),
      expect.objectContaining({ topic: 'iot-2/type/edge/id/node2/evt/sync-cmd/fmt/bin', command: 'update', claimed: 'myorg/edge/node1' }),
    ]);
  });

  it('drops garbage without a crash and goes on answering', async () => {
    const { engine } = await css();
    const node = await ess();
    const valid = encodeData({ orgID: 'myorg', objectType: 't', objectID: 'i', offset: 0n, instanceID: 1n, data: Buffer.from('x') });
    for (const junk of [
      randomBytes(100),
      Buffer.from('{'),
      Buffer.from('{"version":{"Major":2,"Minor":0},"command":"register"}'),
      Buffer.from('{"version":{"Major":1,"Minor":0},"command":"register","meta":{"instanceID":"x"}}'),
      Buffer.from('{"version":{"Major":1,"Minor":0},"command":"fly"}'),
      Buffer.from('{"version":{"Major":1,"Minor":0},"command":"register"}'),
      valid.subarray(0, 30),
      valid,
      Buffer.alloc(0),
    ]) {
      await node.send(junk);
    }
    await node.send(captured('mqtt-register.jsonl', 3));
    await node.waitFor(1);
    expect(node.controls().map((c) => c.command)).toEqual(['regack']);
    expect(engine.calls.filter((c) => c.method !== 'pending')).toHaveLength(1);
  });

  it('answers a getdata for data it cannot serve with a not-found feedback, as the reference', async () => {
    const { engine } = await css();
    engine.registered.add(destinationKey(NODE1));
    const node = await ess();
    await node.send(captured('mqtt-publish-to-node.jsonl', 3));
    const [feedback] = await node.waitFor(1);
    expect(feedback?.kind === 'control' && feedback.message).toMatchObject({ command: 'feedback', feedbackCode: 5, feedbackFromOrigin: true, meta: { objectID: 'obj1' } });
  });

  it('pushes a new item without repeating the others, and repeats an unanswered one after RESEND_INTERVAL', async () => {
    const engine = new CssEngineDouble();
    engine.registered.add(destinationKey(NODE1));
    const a = control(captured('mqtt-publish-to-node.jsonl', 1)).meta;
    const b = { ...a, objectID: 'obj2' };
    engine.queue(NODE1).push(item('update', a));
    const node = await ess();
    await css({ engine, destinations: [NODE1], deps: { resendInterval: 1 } });
    await node.waitFor(1);
    engine.queue(NODE1).push(item('update', b));
    engine.signal(NODE1);
    await node.waitFor(2);
    expect(node.controls().map((c) => c.meta.objectID)).toEqual(['obj1', 'obj2']);
    await node.waitFor(4, 5000);
    expect(node.controls().map((c) => c.meta.objectID).slice(2).sort()).toEqual(['obj1', 'obj2']);
  });

  it('registration starts a push loop; a resend is acked with ackresend and everything pending goes again', async () => {
    const engine = new CssEngineDouble();
    const meta = control(captured('mqtt-publish-to-node.jsonl', 1)).meta;
    engine.queue(NODE1).push(item('update', meta));
    const node = await ess();
    await css({ engine });
    await node.send(captured('mqtt-register.jsonl', 1));
    await node.waitFor(2);
    expect(node.controls().map((c) => c.command)).toEqual(['regack', 'update']);
    await node.send(encodeControl({ command: 'resend', destination: { destinationOrgID: 'myorg', destinationType: 'edge', destinationID: 'node1', communication: 'mqtt' } }));
    await node.waitFor(4);
    expect(node.controls().map((c) => c.command)).toEqual(['regack', 'update', 'ackresend', 'update']);
    expect(node.controls()[2]?.destination).toMatchObject({ destinationType: 'edge', destinationID: 'node1' });
    expect(engine.callsOf('resend')).toHaveLength(1);
  });

  it('stops pushing to an ESS that registered again over HTTP, and starts again when it comes back over MQTT', async () => {
    const engine = new CssEngineDouble();
    engine.registered.add(destinationKey(NODE1));
    const { adapter } = await css({ engine, destinations: [NODE1] });
    const node = await ess();
    expect(adapter.stats().pushLoops).toBe(1);
    engine.communication = 'http';
    engine.signal(NODE1);
    const deadline = Date.now() + 5000;
    while (adapter.stats().pushLoops > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(adapter.stats().pushLoops).toBe(0);
    engine.communication = 'mqtt';
    await node.send(captured('mqtt-register.jsonl', 1));
    await node.waitFor(1);
    // The loop starts once the regack is out.
    await node.until(() => adapter.stats().pushLoops === 1);
    expect(adapter.stats().pushLoops).toBe(1);
  });

  it('keeps two thousand idle ESS nodes as waits, and stops them all at once', async () => {
    const engine = new CssEngineDouble();
    const peers = Array.from({ length: 2000 }, (_, i) => ({ orgID: 'myorg', destType: 'edge', destID: `n${i}` }));
    for (const p of peers) engine.registered.add(destinationKey(p));
    const { adapter } = await css({ engine, destinations: peers });
    const deadline = Date.now() + 10_000;
    while (engine.waiting < peers.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(engine.waiting).toBe(peers.length);
    expect(engine.callsOf('pending')).toHaveLength(peers.length);
    expect(adapter.stats().pushLoops).toBe(peers.length);
    await adapter.stop();
    expect(engine.waiting).toBe(0);
    expect(adapter.stats().pushLoops).toBe(0);
  });
});
