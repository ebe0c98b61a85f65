/**
 * The CSS's embedded aedes broker, with real mqtt.js clients over loopback TCP and TLS: every
 * client logs in (the CSS's preset users), an edge node keeps to its own topics, the CSS's own
 * client and an org admin may do anything, and what is refused is logged without the secret.
 */
import { writeFile } from 'node:fs/promises';
import { connect as tcpConnect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { connectAsync, ErrorWithSubackPacket, type IClientOptions, type MqttClient } from 'mqtt';
import { PresetAuthenticator } from '../../lib/security/index.js';
import { INTERNAL_USERNAME, startEmbeddedBroker, type EmbeddedBroker } from '../../lib/transport/mqtt/embedded-broker.js';
import { openMqttConnection } from '../../lib/transport/mqtt/mqtt-connection.js';
import { commandTopic, eventTopic, CSS_EVENT_FILTER, CSS_LEADER_EVENT_FILTER } from '../../lib/transport/mqtt/topics.js';
import { Teardown, tempRoot } from '../helpers/node-process.js';
import { makeTestPki, type TestPki } from '../helpers/test-pki.js';

const t = new Teardown();
let broker: EmbeddedBroker;
let pki: TestPki;
const logged: { msg: string; obj: Record<string, unknown> }[] = [];
const log = {
  info: (obj: object, msg: string) => void logged.push({ msg, obj: obj as Record<string, unknown> }),
  warn: (obj: object, msg: string) => void logged.push({ msg, obj: obj as Record<string, unknown> }),
  debug: () => undefined,
};

const N1 = { user: 'myorg/edge/n1', pass: 'n1-secret' };
const N2 = { user: 'myorg/edge/n2', pass: 'n2-secret' };
const ADMIN = { user: 'myorg/admin', pass: 'admin-secret' };
const OTHER_ADMIN = { user: 'other/admin', pass: 'other-secret' };
const APP_USER = { user: 'myorg/app', pass: 'app-secret' };

beforeAll(async () => {
  const dir = await tempRoot(t, 'embedded-broker');
  pki = await makeTestPki(dir);
  const presetFile = join(dir, 'preset-auth.json');
  await writeFile(
    presetFile,
    JSON.stringify({
      credentials: {
        [N1.user]: { secret: N1.pass, orgID: 'myorg', username: 'edge/n1', type: 'EdgeNode' },
        [N2.user]: { secret: N2.pass, orgID: 'myorg', username: 'edge/n2', type: 'EdgeNode' },
        [ADMIN.user]: { secret: ADMIN.pass, orgID: 'myorg', username: 'admin', type: 'admin' },
        [OTHER_ADMIN.user]: { secret: OTHER_ADMIN.pass, orgID: 'other', username: 'admin', type: 'admin' },
        [APP_USER.user]: { secret: APP_USER.pass, orgID: 'myorg', username: 'app', type: 'user' },
      },
    }),
  );
  const authenticator = await PresetAuthenticator.create({ usersFile: join(dir, 'users.json'), referencePresetFile: presetFile });
  broker = await startEmbeddedBroker({ host: '127.0.0.1', port: 0, tls: { port: 0, certPem: pki.server.certPem, keyPem: pki.server.keyPem }, authenticator, orgID: 'myorg', maxPacketSize: 64 * 1024, log });
  t.add(() => broker.close());
});
afterAll(() => t.run());

async function client(who: { user: string; pass: string } | null, opts: IClientOptions = {}): Promise<MqttClient> {
  const c = await connectAsync({
    host: '127.0.0.1',
    port: broker.port,
    reconnectPeriod: 0,
    connectTimeout: 5_000,
    ...(who !== null ? { username: who.user, password: who.pass } : {}),
    ...opts,
  });
  t.add(() => c.endAsync(true));
  return c;
}

const css = (): Promise<MqttClient> => client({ user: broker.internalCredentials.username, pass: broker.internalCredentials.password });

/** The messages `c` gets within 300 ms of `act`. */
async function received(c: MqttClient, act: () => Promise<unknown>): Promise<string[]> {
  const got: string[] = [];
  const on = (topic: string, payload: Buffer): void => void got.push(`${topic} ${payload.toString()}`);
  c.on('message', on);
  await act();
  await new Promise((r) => setTimeout(r, 300));
  c.off('message', on);
  return got;
}

/** The QoS the broker granted per filter; 128 is a refusal (mqtt.js rejects on one). */
async function grantedQos(c: MqttClient, filter: string): Promise<number[]> {
  try {
    return (await c.subscribeAsync(filter, { qos: 1 })).map((g) => g.qos);
  } catch (e) {
    if (e instanceof ErrorWithSubackPacket) return e.packet.granted.map((g) => (typeof g === 'number' ? g : (g as { qos: number }).qos));
    throw e;
  }
}

function closed(c: MqttClient): Promise<void> {
  return c.connected ? new Promise((r) => c.once('close', () => r())) : Promise.resolve();
}

describe('the embedded MQTT broker', () => {
  test('binds random ports when asked for port 0, and says which', () => {
    expect(broker.port).toBeGreaterThan(0);
    expect(broker.tlsPort).toBeGreaterThan(0);
    expect(broker.tlsPort).not.toBe(broker.port);
    expect(broker.internalCredentials.username).toBe(INTERNAL_USERNAME);
    expect(broker.internalCredentials.password.length).toBeGreaterThanOrEqual(40);
  });

  test('an edge node and the CSS exchange messages on the node\'s own topics', async () => {
    const cloud = await css();
    await cloud.subscribeAsync(CSS_EVENT_FILTER, { qos: 1 });
    const n1 = await client(N1);
    expect(await grantedQos(n1, commandTopic('edge', 'n1'))).toEqual([1]);
    expect(await received(cloud, () => n1.publishAsync(eventTopic('edge', 'n1'), 'up', { qos: 1 }))).toEqual([`${eventTopic('edge', 'n1')} up`]);
    expect(await received(n1, () => cloud.publishAsync(commandTopic('edge', 'n1'), 'down', { qos: 1 }))).toEqual([`${commandTopic('edge', 'n1')} down`]);
    // A filter under its own cmd level is the node's too.
    expect(await grantedQos(n1, 'iot-2/type/edge/id/n1/cmd/#')).toEqual([1]);
  });

  test('an edge node cannot subscribe to another node\'s cmd, to evt topics or to everything', async () => {
    const n1 = await client(N1);
    for (const filter of [commandTopic('edge', 'n2'), 'iot-2/type/+/id/+/cmd/sync-cmd/fmt/bin', '#', CSS_EVENT_FILTER, eventTopic('edge', 'n1'), '$SYS/#', 'iot-2/type/edge/id/n1/#']) {
      expect([filter, await grantedQos(n1, filter)]).toEqual([filter, [128]]);
    }
    const cloud = await css();
    // Nothing meant for n2 reaches n1.
    expect(await received(n1, () => cloud.publishAsync(commandTopic('edge', 'n2'), 'for n2', { qos: 1 }))).toEqual([]);
    expect(logged.some((l) => l.msg === 'MQTT subscription refused' && l.obj.topic === commandTopic('edge', 'n2') && l.obj.username === 'edge/n1')).toBe(true);
  });

  test('an edge node that publishes as another node is cut off, and the message goes nowhere', async () => {
    const cloud = await css();
    await cloud.subscribeAsync('#', { qos: 1 });
    const n1 = await client(N1);
    const gone = closed(n1);
    const got = await received(cloud, async () => {
      n1.publish(eventTopic('edge', 'n2'), 'forged', { qos: 1 });
      await gone;
    });
    expect(got.filter((m) => m.includes('forged'))).toEqual([]);
    expect(logged.some((l) => l.msg === 'MQTT publish refused' && l.obj.topic === eventTopic('edge', 'n2') && l.obj.clientID === n1.options.clientId)).toBe(true);
    // Nor may it publish on a cmd topic, its own included.
    const again = await client(N1);
    const gone2 = closed(again);
    again.publish(commandTopic('edge', 'n1'), 'to myself', { qos: 1 });
    await gone2;
  });

  test('an admin of the CSS\'s org may do anything; an admin of another org, a plain user and anonymous clients are refused', async () => {
    const admin = await client(ADMIN);
    expect(await grantedQos(admin, '#')).toEqual([1]);
    await admin.publishAsync(commandTopic('edge', 'n1'), 'from admin', { qos: 1 });
    for (const who of [OTHER_ADMIN, APP_USER, null]) await expect(client(who)).rejects.toThrow(/Bad username or password/);
  });

  test('bad credentials are refused and logged with client id, user and address, never the secret', async () => {
    const before = logged.length;
    await expect(client({ user: N1.user, pass: 'wrong-password' }, { clientId: 'bad-client-1' })).rejects.toThrow(/Bad username or password/);
    await expect(client({ user: INTERNAL_USERNAME, pass: 'guess' })).rejects.toThrow(/Bad username or password/);
    const lines = logged.slice(before).filter((l) => l.msg === 'MQTT login refused');
    expect(lines).toHaveLength(2);
    expect(lines[0]!.obj).toMatchObject({ clientID: 'bad-client-1', username: N1.user, address: expect.stringMatching(/^127\.0\.0\.1:\d+$/) });
    const text = JSON.stringify(logged);
    expect(text).not.toContain('wrong-password');
    expect(text).not.toContain('guess');
    expect(text).not.toContain(N1.pass);
    expect(text).not.toContain(broker.internalCredentials.password);
  });

  test('speaks TLS with the node\'s server certificate', async () => {
    const n1 = await client(N1, { protocol: 'mqtts', port: broker.tlsPort!, ca: pki.ca.certPem });
    const cloud = await css();
    await n1.subscribeAsync(commandTopic('edge', 'n1'), { qos: 1 });
    expect(await received(n1, () => cloud.publishAsync(commandTopic('edge', 'n1'), 'secure', { qos: 1 }))).toEqual([`${commandTopic('edge', 'n1')} secure`]);
  });

  test('cuts off a client announcing a packet over the maximum size, before its body arrives', async () => {
    const socket = tcpConnect({ host: '127.0.0.1', port: broker.port });
    await new Promise((r) => socket.once('connect', r));
    const ended = new Promise((r) => socket.once('close', r));
    // A PUBLISH header announcing 1 MiB (variable-length 0x80 0x80 0x40), and nothing more.
    socket.write(Buffer.from([0x30, 0x80, 0x80, 0x40]));
    await ended;
    // The broker still serves others.
    const n1 = await client(N1);
    expect(n1.connected).toBe(true);
  });

  test('the CSS\'s own MqttConnection logs in with the internal credential and hears its nodes', async () => {
    const got: string[] = [];
    const conn = await openMqttConnection({
      host: '127.0.0.1',
      port: broker.port,
      protocol: 'mqtt',
      clientIDPrefix: 'CSS',
      username: broker.internalCredentials.username,
      password: broker.internalCredentials.password,
      subscriptions: [CSS_EVENT_FILTER, CSS_LEADER_EVENT_FILTER],
      onMessage: (topic, payload) => void got.push(`${topic} ${payload.toString()}`),
      firstConnectTimeoutMs: 5_000,
    });
    t.add(() => conn.close());
    const n2 = await client(N2);
    await n2.publishAsync(eventTopic('edge', 'n2', { leader: true }), 'chunk', { qos: 1 });
    await new Promise((r) => setTimeout(r, 200));
    expect(got).toEqual([`${eventTopic('edge', 'n2', { leader: true })} chunk`]);
    await conn.publish(commandTopic('edge', 'n2'), Buffer.from('ack'));
  });

  test('close() disconnects everyone and frees the ports', async () => {
    const dir = await tempRoot(t, 'embedded-broker-close');
    const other = await startEmbeddedBroker({ host: '127.0.0.1', port: 0, authenticator: await PresetAuthenticator.create({ usersFile: join(dir, 'users.json') }) });
    const c = await connectAsync({ host: '127.0.0.1', port: other.port, reconnectPeriod: 0, username: other.internalCredentials.username, password: other.internalCredentials.password });
    expect(other.connectedClients()).toBe(1);
    const gone = closed(c);
    await other.close();
    await gone;
    await expect(connectAsync({ host: '127.0.0.1', port: other.port, reconnectPeriod: 0, connectTimeout: 1_000 })).rejects.toThrow(/ECONNREFUSED/);
  });
});
