/**
 * A publish never outlives its connection (lib/transport/mqtt/mqtt-connection.ts): mqtt.js
 * fails the unacknowledged QoS 1 publishes of a lost connection, but a QoS 0 one waiting for its
 * socket to drain would wait for ever, and so would whoever awaits it (the answer to a getdata,
 * and the messages of its ESS queued behind it). Against a broker faked on a socket: it accepts
 * the connection, stops reading, then drops it.
 */
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from '@jest/globals';
import { MqttOperationError, openMqttConnection, type MqttConnection } from '../../../../lib/transport/mqtt/mqtt-connection.js';

/** CONNACK, session not present, accepted (MQTT 3.1.1). */
const CONNACK = Buffer.from([0x20, 0x02, 0x00, 0x00]);

describe('an MQTT connection that is lost', () => {
  let server: Server | null = null;
  let conn: MqttConnection | null = null;
  afterEach(async () => {
    await conn?.close();
    server?.close();
  });

  it('fails a QoS 0 publish still waiting for its socket to drain, as it fails a QoS 1 one', async () => {
    let socket: Socket | null = null;
    server = createServer((s) => {
      socket = s;
      s.once('data', () => {
        s.write(CONNACK);
        // A broker that reads nothing more: the client's socket fills up.
        s.pause();
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    conn = await openMqttConnection({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, protocol: 'mqtt', clientIDPrefix: 'CSS', reconnectDelayMs: 60_000 });
    const big = conn.publish('t', Buffer.alloc(16 * 1024 * 1024), { qos: 0 }).then(() => 'published', (e: unknown) => e);
    const small = conn.publish('t', Buffer.from('x'), { qos: 1 }).then(() => 'published', (e: unknown) => e);
    await new Promise((r) => setTimeout(r, 100));
    socket!.destroy();
    const outcomes = await Promise.race([Promise.all([big, small]), new Promise((r) => setTimeout(() => r('still waiting after 5 s'), 5000))]);
    expect(Array.isArray(outcomes)).toBe(true);
    for (const outcome of outcomes as unknown[]) expect(outcome).toBeInstanceOf(MqttOperationError);
  });
});
