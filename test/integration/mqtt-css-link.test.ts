/**
 * The ESS's CssLink over MQTT (lib/transport/mqtt/mqtt-css-link.ts) against a real mosquitto,
 * with a CSS played by hand (test/helpers/scripted-css.ts, a TEST DOUBLE) that speaks the bytes
 * the reference CSS sent in the captures (test/fixtures/reference-traffic/mqtt-*.jsonl). The link
 * must send what the reference ESS sent: the same commands and fields, byte for byte where the
 * capture has no ids of ours.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { emptyMetaData, parseJson, type MetaData } from '../../lib/model/index.js';
import { CredentialsRefusedError, NotRegisteredError, type EssObjectRef } from '../../lib/sync/ess/css-link.js';
import { decodeControl } from '../../lib/transport/mqtt/control-codec.js';
import { openMqttConnection, type MqttConnectionOptions } from '../../lib/transport/mqtt/mqtt-connection.js';
import { MqttCssLink, type MqttCssLinkDeps } from '../../lib/transport/mqtt/mqtt-css-link.js';
import { MOSQUITTO_MISSING, mosquittoAvailable, startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { readMqttCapture, type CapturedMqttMessage } from '../helpers/mqtt-reference-traffic.js';
import { Teardown, tempRoot } from '../helpers/node-process.js';
import { makeTestPki } from '../helpers/test-pki.js';
import { ScriptedCss, type HeardMessage } from '../helpers/scripted-css.js';

const available = mosquittoAvailable();
if (!available) console.warn(`Skipped: MQTT CssLink tests (${MOSQUITTO_MISSING})`);
const suite = available ? describe : describe.skip;

const ORG = 'myorg';
const TYPE = 'edge';
const ID = 'node1';
const CHUNK = 65536;
const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

const t = new Teardown();
/** What one test started: links and doubles on the same topics must not outlive it. */
const each = new Teardown();
let broker: Mosquitto;

beforeAll(async () => {
  if (!available) return;
  broker = await startMosquitto();
  t.add(() => broker.stop());
});
afterEach(() => each.run());
afterAll(() => t.run());

/** Line `seq` of a capture file. */
function captured(file: string, seq: number): CapturedMqttMessage {
  const line = readMqttCapture(file).find((m) => m.seq === seq);
  if (line === undefined) throw new Error(`${file} has no seq ${seq}`);
  return line;
}

/** The text of a captured control message. */
function text(file: string, seq: number): string {
  const p = captured(file, seq).payload_text;
  if (p === undefined) throw new Error(`${file} seq ${seq} is not a control message`);
  return p;
}

/** The metadata a captured control message carries. */
function metaIn(file: string, seq: number): MetaData {
  const d = decodeControl(text(file, seq));
  if (d.kind !== 'message') throw new Error(`${file} seq ${seq} does not decode`);
  return d.message.meta;
}

const refOf = (meta: MetaData): EssObjectRef => ({ objectType: meta.objectType, objectID: meta.objectID, instanceID: meta.instanceID, dataID: meta.dataID });

/**
 * What two control messages have in common when their ids may differ: the command, the keys of
 * the message and of its meta, and every meta field but the ids and `destinationType`/`ID`
 * (the reference ESS leaves those empty in its acks).
 */
function shape(raw: string): unknown {
  const msg = parseJson(raw) as Record<string, unknown>;
  const meta = msg.meta as Record<string, unknown>;
  return { keys: Object.keys(msg), command: msg.command, metaKeys: Object.keys(meta), offsetPresent: 'offset' in msg, destination: msg.destination };
}

/** A link to the broker with short timeouts. */
function startLink(over: Partial<MqttCssLinkDeps> = {}): MqttCssLink {
  const link = new MqttCssLink({
    connect: (h) =>
      openMqttConnection({
        host: '127.0.0.1',
        port: broker.port,
        protocol: 'mqtt',
        clientIDPrefix: 'ESS',
        subscriptions: h.subscriptions,
        onConnect: h.onConnect,
        onMessage: h.onMessage,
        reconnectDelayMs: 100,
        maxReconnectDelayMs: 500,
        firstConnectTimeoutMs: 5_000,
      }),
    address: broker.url,
    orgID: ORG,
    destinationType: TYPE,
    destinationID: ID,
    maxInflightChunks: 4,
    timeouts: { registerMs: 3_000, ackMs: 1_500, chunkMs: 300, chunkTries: 6, connectRetryMs: 200 },
    log: silent,
    ...over,
  });
  each.add(() => link.close());
  return link;
}

async function startCss(): Promise<ScriptedCss> {
  const css = await ScriptedCss.start(broker.url, TYPE, ID);
  each.add(() => css.close());
  return css;
}

/** Registers `link` with the double answering `regack`. */
async function registered(link: MqttCssLink, css: ScriptedCss): Promise<void> {
  const outcome = link.register();
  await css.nextCommand('register');
  await css.send({ command: 'regack' });
  expect(await outcome).toBe('registered');
}

/** Reads a stream to its end. */
async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

suite('the ESS link over MQTT, against a scripted CSS on mosquitto', () => {
  test('registers as the reference ESS does: register → registerAsNew → registerNew → regack, byte for byte', async () => {
    const css = await startCss();
    const link = startLink();
    const file = 'mqtt-register.jsonl';
    const first = link.register();
    const register = await css.nextCommand('register');
    expect(register.raw.toString('utf8')).toBe(text(file, 1));
    expect(register.leader).toBe(false);
    await css.sendRaw(text(file, 2));
    expect(await first).toBe('unknown');
    // Until it registers anew, the agent hears that it is not registered.
    await expect(link.poll({ holdS: 0, signal: new AbortController().signal })).rejects.toBeInstanceOf(NotRegisteredError);
    const again = link.registerNew();
    const registerNew = await css.nextCommand('registerNew');
    expect(registerNew.raw.toString('utf8')).toBe(text(file, 3));
    await css.sendRaw(text(file, 4));
    await again;
    expect(await link.poll({ holdS: 0, signal: new AbortController().signal })).toEqual([]);
  });

  test('a registration nobody answers fails after its timeout (the agent retries it)', async () => {
    const link = startLink({ timeouts: { registerMs: 300 } });
    await expect(link.register()).rejects.toThrow(/did not answer register/);
  });

  test('a CSS object to the node: update → updated → getdata → data → received → ackreceived → consumed → ackconsumed, as captured', async () => {
    const css = await startCss();
    const link = startLink();
    await registered(link, css);
    const file = 'mqtt-publish-to-node.jsonl';
    await css.sendRaw(text(file, 1));
    const [item] = await link.poll({ holdS: 5, signal: new AbortController().signal });
    expect(item?.type).toBe('update');
    const meta = item!.meta;
    expect(meta.instanceID).toBe(1796426250129678848n);
    const ref = refOf(meta);

    expect(await link.send(ref, 'updated')).toBe(true);
    expect((await css.nextCommand('updated')).raw.toString('utf8')).toBe(text(file, 2));

    const data = randomBytes(3072);
    const fetched = await link.fetchData(ref, meta, undefined, new AbortController().signal);
    expect(fetched).toMatchObject({ start: 0, total: 3072 });
    const reading = readAll(fetched.stream);
    const getdata = await css.nextCommand('getdata');
    expect(getdata.raw.toString('utf8')).toBe(text(file, 3));
    // The reference pads every chunk to its chunk size: 65631 bytes for 3072 bytes of data.
    await css.sendData({ orgID: ORG, objectType: meta.objectType, objectID: meta.objectID, offset: 0n, instanceID: meta.instanceID, data }, captured(file, 4).bytes);
    expect((await reading).equals(data)).toBe(true);

    const received = link.send(ref, 'received');
    expect((await css.nextCommand('received')).raw.toString('utf8')).toBe(text(file, 5));
    await css.sendRaw(text(file, 6));
    expect(await received).toBe(true);

    const consumed = link.send(ref, 'consumed');
    expect((await css.nextCommand('consumed')).raw.toString('utf8')).toBe(text(file, 7));
    await css.sendRaw(text(file, 8));
    expect(await consumed).toBe(true);
  });

  test('an ack that does not come makes the action false after its timeout (the agent sends it again later)', async () => {
    const css = await startCss();
    const link = startLink();
    await registered(link, css);
    const meta = metaIn('mqtt-publish-to-node.jsonl', 1);
    expect(await link.send(refOf(meta), 'received')).toBe(false);
    // An ack of another instance does not count either.
    const consumed = link.send(refOf(meta), 'consumed');
    await css.nextCommand('consumed');
    await css.send({ command: 'ackconsumed', meta: { ...meta, instanceID: meta.instanceID + 1n } });
    expect(await consumed).toBe(false);
  });

  test('an object published on the node: update → updated, getdata answered from the store, received → ackreceived, consumed → ackconsumed', async () => {
    const css = await startCss();
    const link = startLink();
    await registered(link, css);
    const file = 'mqtt-ess-to-css.jsonl';
    const data = randomBytes(3072);
    const reads: { start: number; end: number }[] = [];
    link.serveData((ref, range) => {
      reads.push(range);
      return Promise.resolve(ref.objectID === 'up1' ? Readable.from([data.subarray(range.start, range.end + 1)]) : null);
    });
    // As the ESS's store holds it: no destination (the link addresses it to the CSS from this ESS).
    const stored = { ...metaIn(file, 1), destinationOrgID: '', destinationType: '', destinationID: '', originType: '', originID: '' };
    const published = link.publish(stored);
    const update = await css.nextCommand('update');
    expect(update.raw.toString('utf8')).toBe(text(file, 1));
    expect(update.leader).toBe(false);
    await css.sendRaw(text(file, 2));
    expect(await published).toBe('taken');

    await css.sendRaw(text(file, 3));
    const chunk = await css.next((m) => m.data !== undefined);
    expect(chunk.leader).toBe(false);
    const capturedHeader = captured(file, 4).decoded!.tlv.filter((f) => f.name !== 'data').map((f) => [f.name, f.value]);
    expect([
      ['orgID', chunk.data!.orgID],
      ['objectType', chunk.data!.objectType],
      ['objectID', chunk.data!.objectID],
      ['offset', chunk.data!.offset.toString()],
      ['instanceID', chunk.data!.instanceID.toString()],
    ]).toEqual(capturedHeader);
    expect(chunk.data!.data.equals(data)).toBe(true);
    expect(reads).toEqual([{ start: 0, end: 3071 }]);

    await css.sendRaw(text(file, 5));
    const [received] = await link.poll({ holdS: 5, signal: new AbortController().signal });
    expect(received?.type).toBe('received');
    expect(await link.send(refOf(received!.meta), 'ackreceived')).toBe(true);
    expect(shape((await css.nextCommand('ackreceived')).raw.toString('utf8'))).toEqual(shape(text(file, 6)));

    await css.sendRaw(text(file, 7));
    const [consumed] = await link.poll({ holdS: 5, signal: new AbortController().signal });
    expect(consumed?.type).toBe('consumed');
    expect(await link.send(refOf(consumed!.meta), 'ackconsumed')).toBe(true);
    expect(shape((await css.nextCommand('ackconsumed')).raw.toString('utf8'))).toEqual(shape(text(file, 8)));
  });

  test('an object without data is taken by a `received` (the CSS sends no `updated`)', async () => {
    const css = await startCss();
    const link = startLink();
    await registered(link, css);
    const meta = { ...metaIn('mqtt-ess-to-css.jsonl', 1), noData: true, objectSize: 0 };
    const published = link.publish(meta);
    const update = await css.nextCommand('update');
    await css.send({ command: 'received', meta: update.control.meta });
    expect(await published).toBe('taken');
    const [item] = await link.poll({ holdS: 5, signal: new AbortController().signal });
    expect(item?.type).toBe('received');
  });

  test('614523 bytes from the CSS in padded 65536-byte chunks, out of order and one lost: at most 4 asked for at once, all of it in order', async () => {
    const css = await startCss();
    const link = startLink();
    await registered(link, css);
    const file = 'mqtt-large.jsonl';
    await css.sendRaw(text(file, 1));
    const [item] = await link.poll({ holdS: 5, signal: new AbortController().signal });
    const meta = item!.meta;
    expect(meta.objectSize).toBe(614523);
    const data = randomBytes(meta.objectSize);
    const padTo = captured(file, 6).bytes;

    const asked: number[] = [];
    const outstanding = new Set<number>();
    let most = 0;
    let dropped = false;
    const waiting: number[] = [];
    css.onHeard = (m: HeardMessage) => {
      if (m.control?.command !== 'getdata') return;
      const offset = Number(m.control.offset);
      asked.push(offset);
      outstanding.add(offset);
      most = Math.max(most, outstanding.size);
      waiting.push(offset);
      // Answered in batches, newest first; the chunk at 131072 is lost the first time.
      setTimeout(() => {
        for (const o of waiting.splice(0).reverse()) {
          if (o === 131072 && !dropped) {
            dropped = true;
            continue;
          }
          outstanding.delete(o);
          void css.sendData({ orgID: ORG, objectType: meta.objectType, objectID: meta.objectID, offset: BigInt(o), instanceID: meta.instanceID, data: data.subarray(o, o + CHUNK) }, padTo);
        }
      }, 20);
    };
    const fetched = await link.fetchData(refOf(meta), meta, undefined, new AbortController().signal);
    const got = await readAll(fetched.stream);
    css.onHeard = null;
    expect(got.length).toBe(data.length);
    expect(sha(got)).toBe(sha(data));
    expect(most).toBeLessThanOrEqual(4);
    expect(asked.filter((o) => o === 131072).length).toBeGreaterThanOrEqual(2);
    expect([...new Set(asked)].sort((a, b) => a - b)).toEqual(Array.from({ length: 10 }, (_, i) => i * CHUNK));
    // The getdata messages are the reference's, offset and all.
    const getdata = css.heard.filter((m) => m.control?.command === 'getdata');
    expect(shape(getdata.find((m) => m.control!.offset === 65536n)!.raw.toString('utf8'))).toEqual(shape(text(file, 4)));
    expect(shape(getdata.find((m) => m.control!.offset === 0n)!.raw.toString('utf8'))).toEqual(shape(text(file, 3)));
  });

  test('a range from the middle of the object: asked for from its chunk, cut to the range', async () => {
    const css = await startCss();
    const link = startLink();
    await registered(link, css);
    const meta = metaIn('mqtt-large.jsonl', 1);
    const data = randomBytes(meta.objectSize);
    css.onHeard = (m) => {
      if (m.control?.command !== 'getdata') return;
      const o = Number(m.control.offset);
      void css.sendData({ orgID: ORG, objectType: meta.objectType, objectID: meta.objectID, offset: BigInt(o), instanceID: meta.instanceID, data: data.subarray(o, o + CHUNK) });
    };
    const fetched = await link.fetchData(refOf(meta), meta, { start: 200_000, end: meta.objectSize - 1 }, new AbortController().signal);
    expect(fetched.start).toBe(200_000);
    const got = await readAll(fetched.stream);
    css.onHeard = null;
    expect(got.equals(data.subarray(200_000))).toBe(true);
    expect(css.heard.filter((m) => m.control?.command === 'getdata').map((m) => Number(m.control!.offset))[0]).toBe(196_608);
  });

  test('a chunk of another instance is dropped; the CSS saying it has no data fails the fetch', async () => {
    const css = await startCss();
    const link = startLink();
    await registered(link, css);
    const meta = metaIn('mqtt-publish-to-node.jsonl', 1);
    css.onHeard = (m) => {
      if (m.control?.command !== 'getdata') return;
      void css.sendData({ orgID: ORG, objectType: meta.objectType, objectID: meta.objectID, offset: 0n, instanceID: meta.instanceID - 1n, data: randomBytes(3072) });
      void css.send({ command: 'feedback', meta: m.control.meta, feedbackCode: 5, feedbackFromOrigin: true, reason: 'not found' });
    };
    const fetched = await link.fetchData(refOf(meta), meta, undefined, new AbortController().signal);
    await expect(readAll(fetched.stream)).rejects.toThrow(/cannot serve the data: not found/);
    css.onHeard = null;
  });

  test('614477 bytes published on the node, pulled by the CSS: update and every chunk on sync-cmd-leader, as captured', async () => {
    const css = await startCss();
    const link = startLink();
    await registered(link, css);
    const file = 'mqtt-large.jsonl';
    const data = randomBytes(614477);
    link.serveData((_ref, range) => Promise.resolve(Readable.from([data.subarray(range.start, range.end + 1)])));
    const published = link.publish(metaIn(file, 27));
    const update = await css.nextCommand('update');
    expect(update.raw.toString('utf8')).toBe(text(file, 27));
    expect(update.leader).toBe(true);
    await css.sendRaw(text(file, 28));
    expect(await published).toBe('taken');
    const requests = readMqttCapture(file).filter((m) => m.dir === 'css->ess' && m.seq >= 29 && m.payload_text?.includes('"getdata"') === true);
    expect(requests).toHaveLength(10);
    for (const r of requests) await css.sendRaw(r.payload_text!);
    const chunks: HeardMessage[] = [];
    for (let i = 0; i < 10; i++) chunks.push(await css.next((m) => m.data !== undefined));
    expect(chunks.every((c) => c.leader)).toBe(true);
    const whole = Buffer.concat(chunks.sort((a, b) => Number(a.data!.offset - b.data!.offset)).map((c) => c.data!.data));
    expect(sha(whole)).toBe(sha(data));
    const last = captured(file, 48).decoded!.tlv.find((f) => f.name === 'data')!;
    expect(chunks[9]!.data!.data.length).toBe(last.len);
  });

  test('a CSS deletion: delete → ackDelete; the app confirms: deleted → ackDeleted', async () => {
    const css = await startCss();
    const link = startLink();
    await registered(link, css);
    const meta = { ...metaIn('mqtt-publish-to-node.jsonl', 1), deleted: true };
    await css.send({ command: 'delete', meta });
    const [item] = await link.poll({ holdS: 5, signal: new AbortController().signal });
    expect(item?.type).toBe('delete');
    expect(await link.send(refOf(meta), 'ackDelete')).toBe(true);
    const ackDelete = await css.nextCommand('ackDelete');
    expect(ackDelete.control.meta).toMatchObject({ destinationOrgID: ORG, destinationType: TYPE, destinationID: ID, instanceID: meta.instanceID });
    const deleted = link.send(refOf(meta), 'deleted', meta);
    const heard = await css.nextCommand('deleted');
    expect(heard.control.meta).toMatchObject({ deleted: true, destinationType: TYPE, destinationID: ID });
    await css.send({ command: 'ackDeleted', meta: heard.control.meta });
    expect(await deleted).toBe(true);
  });

  test('a deletion published on the node: delete → ackDelete', async () => {
    const css = await startCss();
    const link = startLink();
    await registered(link, css);
    const meta = { ...metaIn('mqtt-ess-to-css.jsonl', 1), deleted: true };
    const taken = link.publishDelete(meta);
    const heard = await css.nextCommand('delete');
    expect(heard.control.meta).toMatchObject({ originType: TYPE, originID: ID, destinationOrgID: ORG, deleted: true });
    await css.send({ command: 'ackDelete', meta: heard.control.meta });
    expect(await taken).toBe(true);
  });

  test('the CSS asking for data this node does not hold gets feedback 5, as from the reference', async () => {
    const css = await startCss();
    const link = startLink();
    await registered(link, css);
    link.serveData(() => Promise.resolve(null));
    await css.sendRaw(text('mqtt-ess-to-css.jsonl', 3));
    const feedback = await css.nextCommand('feedback');
    expect(feedback.control).toMatchObject({ feedbackCode: 5, feedbackFromOrigin: true });
  });

  test('a poll holds until the CSS pushes something, or until its signal', async () => {
    const css = await startCss();
    const link = startLink();
    await registered(link, css);
    const ac = new AbortController();
    const held = link.poll({ holdS: 30, signal: ac.signal });
    setTimeout(() => ac.abort(), 100);
    expect(await held).toEqual([]);
    const waiting = link.poll({ holdS: 30, signal: new AbortController().signal });
    await css.sendRaw(text('mqtt-publish-to-node.jsonl', 1));
    expect((await waiting).map((i) => i.type)).toEqual(['update']);
  });

  test('a repeated message waits once in the queue', async () => {
    const css = await startCss();
    const link = startLink();
    await registered(link, css);
    for (let i = 0; i < 3; i++) await css.sendRaw(text('mqtt-publish-to-node.jsonl', 1));
    await css.send({ command: 'regack' });
    // The regack went after the three: once it is handled, so are they.
    await new Promise((r) => setTimeout(r, 200));
    expect(await link.poll({ holdS: 0, signal: new AbortController().signal })).toHaveLength(1);
  });

  test('ping, resend and feedback go as the reference ESS sends them', async () => {
    const css = await startCss();
    const link = startLink();
    await registered(link, css);
    // [ref sendRegisterOrPing] a ping carries the destination and persistence; a CSS that knows the ESS says nothing.
    expect(await link.ping()).toBe('registered');
    const ping = await css.nextCommand('ping');
    expect(ping.control).toMatchObject({ destination: { destinationOrgID: ORG, destinationType: TYPE, destinationID: ID, communication: 'mqtt', codeVersion: '1.0' }, persistent: true });
    // [ref ResendObjects] the resend request names the ESS (no code version); `ackresend` acks it.
    const resend = link.resend();
    const heard = await css.nextCommand('resend');
    expect(heard.control.destination).toEqual({ destinationOrgID: ORG, destinationType: TYPE, destinationID: ID, communication: 'mqtt', codeVersion: '' });
    await css.send({ command: 'ackresend' });
    await resend;
    const meta = metaIn('mqtt-publish-to-node.jsonl', 1);
    await css.sendRaw(text('mqtt-publish-to-node.jsonl', 1));
    await link.poll({ holdS: 5, signal: new AbortController().signal });
    await link.feedback(refOf(meta), { code: 2, retryInterval: 30, reason: 'disk full' });
    const feedback = await css.nextCommand('feedback');
    expect(feedback.control).toMatchObject({ feedbackCode: 2, retry: 30, reason: 'disk full', feedbackFromOrigin: false });
    expect(feedback.control.meta).toMatchObject({ objectID: meta.objectID, instanceID: meta.instanceID, destinationType: TYPE, destinationID: ID, description: meta.description });
  });

  test('a resend request nobody acks fails (the agent asks again); a ping the CSS answers with registerAsNew makes the next poll say register again', async () => {
    const css = await startCss();
    const link = startLink({ timeouts: { registerMs: 300 } });
    await registered(link, css);
    await expect(link.resend()).rejects.toThrow(/did not ack the resend/);
    await link.ping();
    await css.nextCommand('ping');
    await css.send({ command: 'registerAsNew' });
    await expect(link.poll({ holdS: 5, signal: new AbortController().signal })).rejects.toBeInstanceOf(NotRegisteredError);
  });

  test('an update the CSS answers with feedback, or not at all, is refused (the agent sends it again later)', async () => {
    const css = await startCss();
    const link = startLink({ timeouts: { ackMs: 500 } });
    await registered(link, css);
    link.serveData(() => Promise.resolve(null));
    const meta = metaIn('mqtt-ess-to-css.jsonl', 1);
    expect(await link.publish(meta)).toBe('refused');
    const published = link.publish({ ...meta, instanceID: meta.instanceID + 1n, dataID: meta.dataID + 1n });
    const update = await css.next((m) => m.control?.command === 'update' && m.control.meta.instanceID === meta.instanceID + 1n);
    await css.send({ command: 'feedback', meta: update.control!.meta, feedbackCode: 1, reason: 'cannot update object from the receiver side' });
    expect(await published).toBe('refused');
  });

  test('an update and a delete of the same object come in separate polls, in their order', async () => {
    const css = await startCss();
    const link = startLink();
    await registered(link, css);
    const meta = metaIn('mqtt-publish-to-node.jsonl', 1);
    await css.send({ command: 'update', meta });
    await css.send({ command: 'delete', meta: { ...meta, deleted: true } });
    await css.send({ command: 'regack' });
    await new Promise((r) => setTimeout(r, 200));
    expect((await link.poll({ holdS: 0, signal: new AbortController().signal })).map((i) => i.type)).toEqual(['update']);
    expect((await link.poll({ holdS: 0, signal: new AbortController().signal })).map((i) => i.type)).toEqual(['delete']);
  });

  test('registerAsNew outside a registration: the next poll says register again', async () => {
    const css = await startCss();
    const link = startLink();
    await registered(link, css);
    const held = link.poll({ holdS: 30, signal: new AbortController().signal });
    await css.send({ command: 'registerAsNew' });
    await expect(held).rejects.toBeInstanceOf(NotRegisteredError);
    await expect(link.send(refOf({ ...emptyMetaData(), objectType: 't', objectID: 'o' }), 'updated')).rejects.toBeInstanceOf(NotRegisteredError);
  });

  test('after the broker comes back, the next poll says register again, and registering works', async () => {
    const css = await startCss();
    const link = startLink();
    await registered(link, css);
    const held = link.poll({ holdS: 30, signal: new AbortController().signal }).catch((e: unknown) => e);
    await broker.restart();
    expect(await held).toBeInstanceOf(NotRegisteredError);
    const again = await startCss();
    await registered(link, again);
    expect(await link.poll({ holdS: 0, signal: new AbortController().signal })).toEqual([]);
  });
});

suite('the ESS link over MQTT, when the broker will not have it', () => {
  /** A link to `port` with these connection options; what it tells its health is kept. */
  function linkTo(port: number, opts: Partial<MqttConnectionOptions>): { link: MqttCssLink; failures: string[] } {
    const failures: string[] = [];
    const link = startLink({
      connect: (h) =>
        openMqttConnection({ host: '127.0.0.1', port, protocol: 'mqtt', clientIDPrefix: 'ESS', subscriptions: h.subscriptions, onConnect: h.onConnect, onMessage: h.onMessage, firstConnectTimeoutMs: 1_000, ...opts }),
      timeouts: { registerMs: 1_500, connectRetryMs: 200 },
      health: { succeeded: () => undefined, setRegistered: () => undefined, failed: (status) => failures.push(status) },
    });
    return { link, failures };
  }

  test('refused credentials: registration fails with CredentialsRefusedError, and the operator is told what to fix', async () => {
    const b = await startMosquitto({ users: [{ user: 'myorg/edge/node1', password: 's3cret' }] });
    t.add(() => b.stop());
    const { link, failures } = linkTo(b.port, { username: 'myorg/edge/node1', password: 'wrong' });
    const err = await link.register().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CredentialsRefusedError);
    expect(link.operatorAction(err)).toMatch(/MQTT_USER_NAME, MQTT_PASSWORD/);
    expect(failures).toContain('credentialsRefused');
  });

  test('a broker certificate it does not trust: registration fails, the health says so and the operator hears of MQTT_CA_CERTIFICATE', async () => {
    const dir = await tempRoot(t, 'mqtt-link-tls');
    const pki = await makeTestPki(dir);
    const b = await startMosquitto({ tls: { caFile: pki.ca.certFile, certFile: pki.server.certFile, keyFile: pki.server.keyFile } });
    t.add(() => b.stop());
    const { link, failures } = linkTo(b.tlsPort!, { protocol: 'mqtts' });
    const err = await link.register().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(link.operatorAction(err)).toMatch(/MQTT_CA_CERTIFICATE/);
    expect(failures).toContain('certificateUntrusted');
    // Given the CA, the link gets through (the CSS double is on the broker's plain port).
    const css = await ScriptedCss.start(b.url, TYPE, ID);
    each.add(() => css.close());
    await registered(linkTo(b.tlsPort!, { protocol: 'mqtts', ca: pki.ca.certFile }).link, css);
  });
});
