/**
 * MQTT clients for tests of the CSS adapter against a real broker:
 * - `plainChannel`: the adapter's CssMqttChannel over a bare mqtt.js client (a test double of
 *   the product's connection: no reconnect logic, nothing else);
 * - `ScriptedEss`: a test double of an ESS that publishes the bytes a test gives it on its event
 *   topic and collects what the CSS publishes on its command topic.
 */
import { connectAsync, type MqttClient } from 'mqtt';
import type { CssMqttChannel } from '../../lib/transport/mqtt/css-adapter.js';
import { decodeControl, type ControlMessage } from '../../lib/transport/mqtt/control-codec.js';
import { decodeData, encodeData, isDataMessage, type DataMessage } from '../../lib/transport/mqtt/data-codec.js';
import { commandTopic, eventTopic } from '../../lib/transport/mqtt/topics.js';

export interface PlainChannel extends CssMqttChannel {
  close(): Promise<void>;
}

/** A CssMqttChannel over one mqtt.js client (MQTT 3.1.1, clean session). */
export async function plainChannel(url: string, opts: { maxPacketSize?: number } = {}): Promise<PlainChannel> {
  const client = await connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0, clientId: `css-test-${process.pid}-${Math.random().toString(16).slice(2)}` });
  return {
    subscribe: async (filters) => {
      await client.subscribeAsync([...filters], { qos: 1 });
      return 'plain';
    },
    unsubscribe: async (filters) => {
      await client.unsubscribeAsync([...filters]);
    },
    onMessage: (handler) => {
      client.on('message', (topic, payload) => handler(topic, payload, null));
    },
    publish: async (_org, topic, payload, o) => {
      await client.publishAsync(topic, payload, { qos: o.qos });
    },
    maxPayload: (_org, topic) => (opts.maxPacketSize ?? 256 * 1024 * 1024) - 5 - 2 - Buffer.byteLength(topic) - 2,
    connected: () => client.connected,
    ownBroker: () => false,
    close: () => client.endAsync(),
  };
}

/** What the scripted ESS received from the CSS. */
export type Received = { kind: 'control'; message: ControlMessage; text: string; qos: number } | { kind: 'data'; message: DataMessage; bytes: number; qos: number };

export class ScriptedEss {
  readonly received: Received[] = [];
  private readonly listeners = new Set<() => void>();
  /** Called on every `getdata` the CSS sends (a test answers it with data, or not). */
  onGetdata: ((msg: ControlMessage) => void) | null = null;

  private constructor(
    private readonly client: MqttClient,
    readonly destType: string,
    readonly destID: string,
  ) {
    client.on('message', (_topic, payload, packet) => {
      if (isDataMessage(payload)) {
        const d = decodeData(payload);
        if (d.kind === 'message') this.received.push({ kind: 'data', message: { ...d.message, data: Buffer.from(d.message.data) }, bytes: payload.length, qos: packet.qos });
      } else {
        const c = decodeControl(payload);
        if (c.kind === 'message') {
          this.received.push({ kind: 'control', message: c.message, text: payload.toString('utf8'), qos: packet.qos });
          if (c.message.command === 'getdata') this.onGetdata?.(c.message);
        }
      }
      for (const l of [...this.listeners]) l();
    });
  }

  /** Connects as the ESS `destType/destID` and subscribes to its command topic. */
  static async connect(url: string, destType = 'edge', destID = 'node1', login: { username?: string; password?: string } = {}): Promise<ScriptedEss> {
    const client = await connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0, clientId: `ess-test-${destType}-${destID}-${Math.random().toString(16).slice(2)}`, ...login });
    await client.subscribeAsync(commandTopic(destType, destID), { qos: 1 });
    return new ScriptedEss(client, destType, destID);
  }

  /** Publishes on the ESS's event topic (QoS 0, as the reference ESS does). */
  async send(payload: Buffer | string, opts: { leader?: boolean; topic?: string } = {}): Promise<void> {
    await this.client.publishAsync(opts.topic ?? eventTopic(this.destType, this.destID, { leader: opts.leader === true }), typeof payload === 'string' ? Buffer.from(payload) : payload, { qos: 0 });
  }

  /** Waits until `count` messages have been received in all (default 5 s). */
  async waitFor(count: number, timeoutMs = 5000): Promise<Received[]> {
    await this.until(() => this.received.length >= count, timeoutMs, `${count} messages (got ${this.received.length})`);
    return this.received.slice(0, count);
  }

  /** Waits until `test` holds (checked on every message received, and every 20 ms for the rest). */
  until(test: () => boolean, timeoutMs = 5000, what = 'a condition'): Promise<void> {
    if (test()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!test()) return;
        clearTimeout(timer);
        clearInterval(poll);
        this.listeners.delete(check);
        resolve();
      };
      const poll = setInterval(check, 20);
      const timer = setTimeout(() => {
        clearInterval(poll);
        this.listeners.delete(check);
        reject(new Error(`timed out waiting for ${what}; received: ${this.received.map((r) => (r.kind === 'control' ? r.message.command : `data@${r.message.offset}`)).join(', ')}`));
      }, timeoutMs);
      this.listeners.add(check);
    });
  }

  /** The control messages received, in order. */
  controls(): ControlMessage[] {
    return this.received.flatMap((r) => (r.kind === 'control' ? [r.message] : []));
  }

  /** The data messages received, in order. */
  data(): DataMessage[] {
    return this.received.flatMap((r) => (r.kind === 'data' ? [r.message] : []));
  }

  close(): Promise<void> {
    return this.client.endAsync();
  }
}

/**
 * A data message as a reference peer writes it: the TLVs, then zero padding up to the chunk
 * size (traffic README obs. 15).
 */
export function referenceDataMessage(msg: DataMessage, chunkSize: number): Buffer {
  const bytes = encodeData(msg);
  const padding = Math.max(0, chunkSize - msg.data.length);
  return Buffer.concat([bytes, Buffer.alloc(padding)]);
}
