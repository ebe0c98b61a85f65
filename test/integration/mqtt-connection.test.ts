/**
 * The MQTT connection both adapters stand on, against a real mosquitto: how it connects
 * (anonymous, with a password, over TLS with a CA and a client certificate), what it refuses
 * at start, and how it comes back after the broker restarts, subscriptions and all.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { connectAsync, type MqttClient } from 'mqtt';
import { MOSQUITTO_MISSING, mosquittoAvailable, startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { Teardown, tempRoot } from '../helpers/node-process.js';
import { makeTestPki, type TestPki } from '../helpers/test-pki.js';
import {
  MqttConnectError,
  MqttNotConnectedError,
  MqttPacketTooLargeError,
  openMqttConnection,
  referenceClientID,
  type MqttConnection,
  type MqttConnectionOptions,
} from '../../lib/transport/mqtt/mqtt-connection.js';
import { MqttTlsError, loadMqttTls } from '../../lib/transport/mqtt/mqtt-tls.js';

const available = mosquittoAvailable();
if (!available) console.warn(`Skipped: MQTT connection tests (${MOSQUITTO_MISSING})`);
const suite = available ? describe : describe.skip;

const t = new Teardown();
let pki: TestPki;
let dir: string;

beforeAll(async () => {
  dir = await tempRoot(t, 'mqtt-connection');
  pki = await makeTestPki(dir);
});
afterAll(() => t.run());

async function broker(opts: Parameters<typeof startMosquitto>[0] = {}): Promise<Mosquitto> {
  const b = await startMosquitto(opts);
  t.add(() => b.stop());
  return b;
}

async function open(opts: Partial<MqttConnectionOptions> & { port: number }): Promise<MqttConnection> {
  const c = await openMqttConnection({ host: '127.0.0.1', protocol: 'mqtt', clientIDPrefix: 'ESS', firstConnectTimeoutMs: 10_000, reconnectDelayMs: 100, ...opts });
  t.add(() => c.close());
  return c;
}

async function peer(b: Mosquitto): Promise<MqttClient> {
  const c = await connectAsync(b.url, { reconnectPeriod: 0 });
  t.add(() => c.endAsync(true));
  return c;
}

/** Resolves with the next `n` messages `on` sees. */
function collect(n: number): { handler: NonNullable<MqttConnectionOptions['onMessage']>; done: Promise<{ topic: string; payload: string; qos: number }[]> } {
  const got: { topic: string; payload: string; qos: number }[] = [];
  let resolve: (v: typeof got) => void = () => undefined;
  const done = new Promise<typeof got>((r) => (resolve = r));
  return {
    handler: (topic, payload, packet) => {
      got.push({ topic, payload: payload.toString(), qos: packet.qos });
      if (got.length === n) resolve(got);
    },
    done,
  };
}

async function until(what: string, probe: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`still waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('client ids are the reference\'s: CSS-/ESS- and 19 digits', () => {
  for (let i = 0; i < 50; i++) expect(referenceClientID(i % 2 === 0 ? 'CSS' : 'ESS')).toMatch(/^(CSS|ESS)-\d{19}$/);
});

suite('an MQTT connection to mosquitto', () => {
  test('connects anonymously with MQTT 3.1.1, clean session, keepalive 120 s; subscribes before onConnect; publishes at QoS 1', async () => {
    const b = await broker();
    const got = collect(1);
    const calls: boolean[] = [];
    const c = await open({ port: b.port, subscriptions: ['iot-2/type/edge/id/n1/cmd/sync-cmd/fmt/bin'], onMessage: got.handler, onConnect: (first) => void calls.push(first) });
    expect(calls).toEqual([true]);
    expect(c.connected).toBe(true);
    expect(c.status()).toMatchObject({ state: 'connected', broker: `mqtt://127.0.0.1:${b.port}`, reconnects: 0, lastError: null });
    expect(c.status().clientID).toMatch(/^ESS-\d{19}$/);
    const p = await peer(b);
    await p.publishAsync('iot-2/type/edge/id/n1/cmd/sync-cmd/fmt/bin', 'hello', { qos: 1 });
    expect(await got.done).toEqual([{ topic: 'iot-2/type/edge/id/n1/cmd/sync-cmd/fmt/bin', payload: 'hello', qos: 1 }]);
    // The broker's log names the protocol, the clean session and the keepalive.
    await until('the broker log line', () => b.log().includes(c.status().clientID));
    expect(b.log()).toMatch(new RegExp(`New client connected from 127\\.0\\.0\\.1:\\d+ as ${c.status().clientID} \\(p2, c1, k120\\)`));

    const back = collect(1);
    await p.subscribeAsync('iot-2/type/edge/id/n1/evt/#', { qos: 1 });
    p.on('message', (topic, payload, packet) => back.handler(topic, payload, packet));
    await c.publish('iot-2/type/edge/id/n1/evt/sync-cmd/fmt/bin', Buffer.from('up'));
    expect(await back.done).toEqual([{ topic: 'iot-2/type/edge/id/n1/evt/sync-cmd/fmt/bin', payload: 'up', qos: 1 }]);
  });

  test('uses a configured client id and MQTT 5 when asked', async () => {
    const b = await broker();
    const c = await open({ port: b.port, clientID: 'my-ess-1', protocolVersion: 5 });
    await until('the broker log line', () => b.log().includes('as my-ess-1'));
    expect(b.log()).toMatch(/as my-ess-1 \(p5, c1, k120\)/);
    expect(c.maxPacketSize).toBe(256 * 1024 * 1024);
  });

  test('logs in with a username and password; wrong ones fail the start at once with MqttConnectError', async () => {
    const b = await broker({ users: [{ user: 'myorg/edge/n1', password: 's3cret' }] });
    const c = await open({ port: b.port, username: 'myorg/edge/n1', password: 's3cret' });
    expect(c.connected).toBe(true);
    const started = Date.now();
    await expect(open({ port: b.port, username: 'myorg/edge/n1', password: 'wrong', firstConnectTimeoutMs: 30_000 })).rejects.toThrow(MqttConnectError);
    await expect(open({ port: b.port })).rejects.toThrow(/refused the connection/);
    // Not after the 30 s timeout: a refusal is final.
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  test('gives up on an unreachable broker after firstConnectTimeoutMs, saying why', async () => {
    const b = await broker();
    const port = b.port;
    await b.stop();
    await expect(open({ port, firstConnectTimeoutMs: 1_000 })).rejects.toThrow(/No connection to the MQTT broker mqtt:\/\/127\.0\.0\.1:\d+ within 1 s: .*ECONNREFUSED/);
  });

  test('talks TLS with a CA file and a client certificate; refuses an unknown CA unless told to allow it', async () => {
    const b = await broker({ tls: { caFile: pki.ca.certFile, certFile: pki.server.certFile, keyFile: pki.server.keyFile, requireCertificate: true } });
    const tlsPort = b.tlsPort!;
    const got = collect(1);
    const c = await open({ port: tlsPort, protocol: 'mqtts', ca: pki.ca.certFile, clientCert: pki.client.certFile, clientKey: pki.client.keyFile, subscriptions: ['t/tls'], onMessage: got.handler });
    await c.publish('t/tls', Buffer.from('over tls'));
    expect((await got.done)[0]?.payload).toBe('over tls');
    // The same, with the material given as PEM text.
    const pem = await open({ port: tlsPort, protocol: 'mqtts', ca: pki.ca.certPem, clientCert: pki.client.certPem, clientKey: pki.client.keyPem });
    expect(pem.connected).toBe(true);
    // No CA: the system's CAs do not know ours.
    await expect(open({ port: tlsPort, protocol: 'mqtts', clientCert: pki.client.certFile, clientKey: pki.client.keyFile, firstConnectTimeoutMs: 1_500 })).rejects.toThrow(
      /self-signed certificate in certificate chain|unable to get local issuer/,
    );
    const lax = await open({ port: tlsPort, protocol: 'mqtts', allowInvalidCertificates: true, clientCert: pki.client.certFile, clientKey: pki.client.keyFile });
    expect(lax.connected).toBe(true);
  });

  test('refuses unusable TLS material before dialling, with MqttTlsError', async () => {
    await expect(open({ port: 1, protocol: 'mqtts', ca: `${dir}/nope.pem` })).rejects.toThrow(MqttTlsError);
    await expect(open({ port: 1, protocol: 'mqtts', ca: '-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n' })).rejects.toThrow(/not a PEM X.509/);
    await expect(open({ port: 1, protocol: 'mqtts', clientCert: pki.client.certFile })).rejects.toThrow(/give both or neither/);
    await expect(open({ port: 1, protocol: 'mqtts', clientCert: pki.client.certFile, clientKey: pki.server.keyFile })).rejects.toThrow(/does not match/);
    // A relative path is under the persistence root, as in the reference.
    expect(await loadMqttTls({ ca: 'ca.crt', baseDir: dir })).toEqual({ ca: pki.ca.certPem });
  });

  test('after a broker restart: reconnects, subscribes again, calls onConnect(false); publishes fail fast while down', async () => {
    const b = await broker();
    const calls: boolean[] = [];
    const got: string[] = [];
    const c = await open({ port: b.port, subscriptions: ['t/again'], onMessage: (_t, p) => got.push(p.toString()), onConnect: (first) => void calls.push(first) });
    await c.subscribe(['t/later']);
    await b.kill();
    await until('the connection to drop', () => !c.connected);
    expect(c.status().state).toBe('reconnecting');
    await expect(c.publish('t/again', Buffer.from('x'))).rejects.toThrow(MqttNotConnectedError);
    await b.restart();
    await until('onConnect(false)', () => calls.length === 2);
    expect(calls).toEqual([true, false]);
    expect(c.status()).toMatchObject({ state: 'connected', reconnects: 1 });
    const p = await peer(b);
    await p.publishAsync('t/again', 'one', { qos: 1 });
    await p.publishAsync('t/later', 'two', { qos: 1 });
    await until('both messages', () => got.length === 2);
    expect(got.sort()).toEqual(['one', 'two']);
  });

  test('refuses a publish larger than the maximum packet size, before sending it', async () => {
    const b = await broker();
    const c = await open({ port: b.port, maxPacketSize: 1024 });
    expect(c.maxPacketSize).toBe(1024);
    const room = c.maxPayload('t/size');
    // 1 header byte, 2 length bytes, the topic with its length, the packet id.
    expect(room).toBe(1024 - 1 - 2 - (2 + 't/size'.length) - 2);
    await c.publish('t/size', Buffer.alloc(room));
    await expect(c.publish('t/size', Buffer.alloc(room + 1))).rejects.toThrow(MqttPacketTooLargeError);
  });

  test('takes the broker\'s maximum packet size from an MQTT 5 CONNACK', async () => {
    const b = await broker({ maxPacketSize: 4096 });
    const c = await open({ port: b.port, protocolVersion: 5 });
    expect(c.maxPacketSize).toBe(4096);
    await expect(c.publish('t/big', Buffer.alloc(5000))).rejects.toThrow(MqttPacketTooLargeError);
  });

  test('close() disconnects and stops reconnecting', async () => {
    const b = await broker();
    const c = await open({ port: b.port });
    await c.close();
    expect(c.status().state).toBe('closed');
    await expect(c.publish('t/x', Buffer.from('x'))).rejects.toThrow(MqttNotConnectedError);
    await b.restart();
    await new Promise((r) => setTimeout(r, 500));
    expect(c.status().state).toBe('closed');
  });
});
