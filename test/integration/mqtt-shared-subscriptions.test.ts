/**
 * Several CSS processes on one MQTT broker share the ESS nodes' messages through MQTT 5 shared
 * subscriptions (lib/transport/mqtt/shared-subscriptions.ts, docs/adr/0018-mqtt-scale-out.md):
 *
 * - the subscription layer against a real mosquitto 2.0: two CSS connections in one group each
 *   take a disjoint part of what ESS nodes publish at MQTT 3.1.1, as the reference ESS does, and
 *   together all of it; a broker that refuses MQTT 5 (aedes) gets plain ones at 3.1.1, with the
 *   WARN that says what it costs (a broker that refuses the shared subscription itself:
 *   test/unit/transport/mqtt/shared-subscriptions.test.ts; mosquitto 2.0 checks its ACL on the
 *   filter without the `$share/{group}/` prefix, so it cannot be made to);
 * - two CSS processes on one database (FerretDB) and one mosquitto, with ESS nodes over MQTT.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, describe, expect, test } from '@jest/globals';
import { Aedes } from 'aedes';
import { connectAsync, type MqttClient } from 'mqtt';
import { MOSQUITTO_MISSING, mosquittoAvailable, startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { Teardown } from '../helpers/node-process.js';
import type { MqttConnection } from '../../lib/transport/mqtt/mqtt-connection.js';
import { openCssConnection, subscribeEvents } from '../../lib/transport/mqtt/shared-subscriptions.js';
import { CSS_EVENT_FILTER, eventTopic } from '../../lib/transport/mqtt/topics.js';

const available = mosquittoAvailable();
if (!available) console.warn(`Skipped: MQTT shared subscription tests (${MOSQUITTO_MISSING})`);
const suite = available ? describe : describe.skip;

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
