/**
 * The mosquitto helper the MQTT tests stand on: a broker that takes anonymous clients or only
 * its users, applies its ACL, restarts on the same port, and is gone after kill and stop.
 */
import { afterAll, describe, expect, test } from '@jest/globals';
import { connectAsync, type IClientOptions, type MqttClient } from 'mqtt';
import { MOSQUITTO_MISSING, mosquittoAvailable, startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';

const available = mosquittoAvailable();
if (!available) console.warn(`Skipped: mosquitto helper tests (${MOSQUITTO_MISSING})`);
const suite = available ? describe : describe.skip;
const title = available ? 'the mosquitto test helper' : `the mosquitto test helper (skipped: ${MOSQUITTO_MISSING})`;

const clients: MqttClient[] = [];
const brokers: Mosquitto[] = [];

afterAll(async () => {
  for (const c of clients) await c.endAsync(true);
  for (const b of brokers) await b.stop();
});

async function broker(opts: Parameters<typeof startMosquitto>[0] = {}): Promise<Mosquitto> {
  const b = await startMosquitto(opts);
  brokers.push(b);
  return b;
}

async function client(b: Mosquitto, opts: IClientOptions = {}): Promise<MqttClient> {
  const c = await connectAsync(b.url, { reconnectPeriod: 0, connectTimeout: 5_000, ...opts });
  clients.push(c);
  return c;
}

/** The messages `c` receives on `topic` within `ms`. */
async function received(c: MqttClient, topic: string, publish: () => Promise<unknown>, ms = 500): Promise<string[]> {
  const got: string[] = [];
  c.on('message', (t, payload) => {
    if (t === topic) got.push(payload.toString());
  });
  await publish();
  await new Promise((r) => setTimeout(r, ms));
  return got;
}

suite(title, () => {
  test('an open broker passes a message between two anonymous clients', async () => {
    const b = await broker();
    expect(b.url).toBe(`mqtt://127.0.0.1:${b.port}`);
    const sub = await client(b);
    await sub.subscribeAsync('t/1', { qos: 1 });
    const pub = await client(b);
    expect(await received(sub, 't/1', () => pub.publishAsync('t/1', 'hello', { qos: 1 }))).toEqual(['hello']);
  });

  test('a broker with users refuses anonymous clients and wrong passwords and takes the right one', async () => {
    const b = await broker({ users: [{ user: 'org1/edge/n1', password: 's1' }] });
    await expect(client(b)).rejects.toThrow(/Not authorized|Connection refused/i);
    await expect(client(b, { username: 'org1/edge/n1', password: 'wrong' })).rejects.toThrow(/Not authorized|Bad username or password|Connection refused/i);
    const ok = await client(b, { username: 'org1/edge/n1', password: 's1' });
    expect(ok.connected).toBe(true);
    expect(b.log()).toMatch(/not authorised|not authorized/i);
  });

  test('a user added while the broker runs can connect at once, and the others still can', async () => {
    const b = await broker({ users: [{ user: 'css', password: 'pc' }] });
    await expect(client(b, { username: 'org1/edge/n4', password: 's4' })).rejects.toThrow();
    await b.addUsers([{ user: 'org1/edge/n4', password: 's4' }]);
    expect((await client(b, { username: 'org1/edge/n4', password: 's4' })).connected).toBe(true);
    expect((await client(b, { username: 'css', password: 'pc' })).connected).toBe(true);
  });

  test("an ACL pattern keeps each user to its own topics (mosquitto's %u)", async () => {
    const users = [
      { user: 'n1', password: 'p1' },
      { user: 'n2', password: 'p2' },
      { user: 'css', password: 'pc' },
    ];
    const acl = ['user css', 'topic readwrite #', '', 'pattern readwrite nodes/%u/#', ''].join('\n');
    const b = await broker({ users, acl });
    const css = await client(b, { username: 'css', password: 'pc' });
    await css.subscribeAsync('nodes/+/up', { qos: 1 });
    const n1 = await client(b, { username: 'n1', password: 'p1' });
    const n2 = await client(b, { username: 'n2', password: 'p2' });
    await n1.subscribeAsync('nodes/n1/down', { qos: 1 });
    // n2 may subscribe to n1's topic and publish on it, but the broker passes nothing either way.
    await n2.subscribeAsync('nodes/n1/down', { qos: 1 }).catch(() => undefined);
    expect(await received(n2, 'nodes/n1/down', () => css.publishAsync('nodes/n1/down', 'for n1', { qos: 1 }))).toEqual([]);
    expect(await received(css, 'nodes/n1/up', () => n2.publishAsync('nodes/n1/up', 'forged', { qos: 1 }))).toEqual([]);
    expect(await received(css, 'nodes/n1/up', () => n1.publishAsync('nodes/n1/up', 'genuine', { qos: 1 }))).toEqual(['genuine']);
  });

  test('an ACL replaced while the broker runs applies to new subscriptions at once', async () => {
    const users = [
      { user: 'org1/edge/n1', password: 'p1' },
      { user: 'css', password: 'pc' },
    ];
    const b = await broker({ users, acl: 'user css\ntopic readwrite #\n' });
    const css = await client(b, { username: 'css', password: 'pc' });
    const n1 = await client(b, { username: 'org1/edge/n1', password: 'p1' });
    await n1.subscribeAsync('iot-2/type/edge/id/n1/cmd/x', { qos: 1 });
    expect(await received(n1, 'iot-2/type/edge/id/n1/cmd/x', () => css.publishAsync('iot-2/type/edge/id/n1/cmd/x', 'before', { qos: 1 }))).toEqual([]);
    await b.setAcl('user css\ntopic readwrite #\n\nuser org1/edge/n1\ntopic read iot-2/type/edge/id/n1/cmd/#\n');
    const again = await client(b, { username: 'org1/edge/n1', password: 'p1' });
    await again.subscribeAsync('iot-2/type/edge/id/n1/cmd/x', { qos: 1 });
    expect(await received(again, 'iot-2/type/edge/id/n1/cmd/x', () => css.publishAsync('iot-2/type/edge/id/n1/cmd/x', 'after', { qos: 1 }))).toEqual(['after']);
  });

  test('a restart keeps the port, and a client that reconnects passes messages again', async () => {
    const b = await broker();
    const port = b.port;
    const c = await client(b, { reconnectPeriod: 100 });
    await b.restart();
    expect(b.port).toBe(port);
    await new Promise<void>((resolve) => (c.connected ? resolve() : c.once('connect', () => resolve())));
    await c.subscribeAsync('t/2', { qos: 1 });
    expect(await received(c, 't/2', () => c.publishAsync('t/2', 'again', { qos: 1 }))).toEqual(['again']);
  });

  test('after kill the port refuses connections until restart', async () => {
    const b = await broker();
    await b.kill();
    await expect(client(b)).rejects.toThrow();
    await b.restart();
    expect((await client(b)).connected).toBe(true);
  });

  test('max_packet_size drops a message larger than the limit', async () => {
    const b = await broker({ maxPacketSize: 4096 });
    const c = await client(b, { reconnectPeriod: 0 });
    await c.subscribeAsync('t/3', { qos: 0 });
    const errors: Error[] = [];
    c.on('error', (e) => errors.push(e));
    const got = await received(c, 't/3', () => c.publishAsync('t/3', Buffer.alloc(8192), { qos: 0 }).catch(() => undefined));
    expect(got).toEqual([]);
  });
});
