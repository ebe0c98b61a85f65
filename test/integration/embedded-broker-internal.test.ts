/**
 * The CSS's own client on its embedded broker through the in-process connection
 * (EmbeddedBroker.connectInternal): it logs in with the internal credentials as over a socket,
 * and what it publishes reaches a node on TCP intact, large payloads too, and back.
 */
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { connectAsync, type MqttClient } from 'mqtt';
import { PresetAuthenticator } from '../../lib/security/index.js';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../lib/transport/mqtt/embedded-broker.js';
import { openMqttConnection, type MqttConnection } from '../../lib/transport/mqtt/mqtt-connection.js';
import { commandTopic, CSS_EVENT_FILTER, eventTopic } from '../../lib/transport/mqtt/topics.js';
import { Teardown, tempRoot } from '../helpers/node-process.js';

const t = new Teardown();
let broker: EmbeddedBroker;
const N1 = { user: 'myorg/edge/n1', pass: 'n1-secret' };

beforeAll(async () => {
  const dir = await tempRoot(t, 'embedded-broker-internal');
  const presetFile = join(dir, 'preset-auth.json');
  await writeFile(presetFile, JSON.stringify({ credentials: { [N1.user]: { secret: N1.pass, orgID: 'myorg', username: 'edge/n1', type: 'EdgeNode' } } }));
  const authenticator = await PresetAuthenticator.create({ usersFile: join(dir, 'users.json'), referencePresetFile: presetFile });
  broker = await startEmbeddedBroker({ host: '127.0.0.1', port: 0, authenticator, orgID: 'myorg' });
  t.add(() => broker.close());
});
afterAll(() => t.run());

async function node(): Promise<MqttClient> {
  const c = await connectAsync({ host: '127.0.0.1', port: broker.port, reconnectPeriod: 0, connectTimeout: 5_000, username: N1.user, password: N1.pass });
  t.add(() => c.endAsync(true));
  return c;
}

async function cssClient(onMessage: (topic: string, payload: Buffer) => void, credentials = broker.internalCredentials): Promise<MqttConnection> {
  const conn = await openMqttConnection({
    host: '127.0.0.1',
    port: broker.port,
    protocol: 'mqtt',
    clientIDPrefix: 'CSS',
    ...credentials,
    stream: () => broker.connectInternal(),
    subscriptions: [CSS_EVENT_FILTER],
    onMessage,
    firstConnectTimeoutMs: 5_000,
  });
  t.add(() => conn.close());
  return conn;
}

test('the CSS client logs in over the in-process connection and exchanges messages with a node on TCP, 5 MiB payloads intact', async () => {
  const heard: Buffer[] = [];
  const css = await cssClient((_topic, payload) => heard.push(payload));
  expect(css.connected).toBe(true);
  const n1 = await node();
  await n1.subscribeAsync(commandTopic('edge', 'n1'), { qos: 1 });
  const got: Buffer[] = [];
  n1.on('message', (_topic, payload) => got.push(payload));
  const big = randomBytes(5 * 1024 * 1024);
  const small = Buffer.from('regack');
  await css.publish(commandTopic('edge', 'n1'), big, { qos: 0 });
  await css.publish(commandTopic('edge', 'n1'), small, { qos: 1 });
  const until = Date.now() + 5000;
  while (got.length < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  expect(got.map((b) => b.length)).toEqual([big.length, small.length]);
  expect(got[0]!.equals(big)).toBe(true);

  const up = randomBytes(3 * 1024 * 1024);
  await n1.publishAsync(eventTopic('edge', 'n1'), up, { qos: 1 });
  while (heard.length < 1 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  expect(heard[0]?.equals(up)).toBe(true);
});

test('the in-process connection still asks for the internal credentials', async () => {
  await expect(cssClient(() => undefined, { username: broker.internalCredentials.username, password: 'wrong' })).rejects.toThrow(/refused/);
});
