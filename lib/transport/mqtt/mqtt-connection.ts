/**
 * One connection to an MQTT broker, for the CSS and ESS adapters: connects as the reference
 * does (MQTT 3.1.1, clean session, keepalive 120 s, client id `CSS-`/`ESS-` + 19 digits
 * [ref sync-protocol §2 "Transport settings", traffic README obs. 13]), reconnects with a
 * backoff capped at 30 s, subscribes again after every reconnect, then tells the adapter
 * (`onConnect`): the ESS registers again after each one.
 *
 * Each attempt is a fresh mqtt.js client with its own reconnection turned off: when a
 * connection drops, its client is ended, which fails the publishes still waiting for their
 * PUBACK, and the next attempt starts clean. A publish is never queued while disconnected:
 * it fails at once (MqttNotConnectedError), and the sync engine's resend timers decide what
 * to send again. Nothing here knows what the messages mean.
 */
import { randomBytes } from 'node:crypto';
import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import mqtt, { MqttClient, type IClientOptions, type IConnackPacket, type IPublishPacket } from 'mqtt';
import { loadMqttTls, type MqttTlsSettings } from './mqtt-tls.js';
import { coalesceWrites } from './write-coalescing.js';
import { connectPacketSocket } from './packet-socket.js';

export type MqttQoS = 0 | 1;

/** The largest MQTT packet: 1 header byte, 4 length bytes, 268,435,455 bytes. [MQTT-2.2.3] */
export const MQTT_MAX_PACKET_SIZE = 268_435_460;
/** Our default cap on a packet (sent and accepted), when the broker states none. */
export const DEFAULT_MAX_PACKET_SIZE = 256 * 1024 * 1024;

export interface MqttConnectionOptions extends MqttTlsSettings {
  host: string;
  port: number;
  /** `mqtts` for TLS. */
  protocol: 'mqtt' | 'mqtts';
  /** TLS: accept a broker certificate that does not verify (the reference's MQTT_ALLOW_INVALID_CERTIFICATES). */
  allowInvalidCertificates?: boolean;
  username?: string;
  password?: string;
  /** The client id; by default the reference's `<prefix>-` and 19 random digits. */
  clientID?: string;
  clientIDPrefix: 'CSS' | 'ESS';
  /** 4 = MQTT 3.1.1 (the default, as the reference), 5 = MQTT 5. */
  protocolVersion?: 4 | 5;
  /** 120 s as the reference. */
  keepaliveSeconds?: number;
  /** One attempt's limit, TCP + TLS + CONNACK. Default 30 s. */
  attemptTimeoutMs?: number;
  /** How long `openMqttConnection` waits for the first connection (MQTT_BROKER_CONNECT_TIMEOUT). Default 300 s. */
  firstConnectTimeoutMs?: number;
  /** First delay between attempts (1 s); it doubles up to `maxReconnectDelayMs` (30 s, as the reference). */
  reconnectDelayMs?: number;
  maxReconnectDelayMs?: number;
  /**
   * Opens the byte stream to the broker instead of a TCP or TLS socket to host:port (the
   * embedded broker's in-process connection); called for each attempt.
   */
  stream?: () => Duplex;
  /** Our cap on a packet; an MQTT 5 broker's CONNACK may lower it. Default 256 MiB. */
  maxPacketSize?: number;
  /** Subscribed on every connection, before `onConnect`. */
  subscriptions?: readonly string[];
  /** Subscription QoS; 1 by default, so the QoS 1 publishes of a peer arrive as QoS 1. */
  subscribeQos?: MqttQoS;
  /**
   * After each connection, once the subscriptions are in place; `first` on the first one. The
   * first call is awaited by `openMqttConnection`, so it should not wait for an answer.
   */
  onConnect?: (first: boolean) => void | Promise<void>;
  /** Every message received; a handler that throws is logged and does not stop the others. */
  onMessage?: (topic: string, payload: Buffer, packet: IPublishPacket) => void;
  log?: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void; error(obj: object, msg: string): void; debug(obj: object, msg: string): void };
}

export type MqttConnectionState = 'connecting' | 'connected' | 'reconnecting' | 'closed';

/** For health and metrics. */
export interface MqttConnectionStatus {
  state: MqttConnectionState;
  broker: string;
  clientID: string;
  /** When the current connection was made (epoch ms), or null. */
  connectedSince: number | null;
  /** Connections made after the first. */
  reconnects: number;
  lastError: string | null;
}

/** The first connection could not be made, or the broker refused our credentials. */
export class MqttConnectError extends Error {
  /** The CONNACK reason code when the broker refused us. */
  readonly reasonCode: number | undefined;
  constructor(message: string, reasonCode?: number) {
    super(message);
    this.name = 'MqttConnectError';
    this.reasonCode = reasonCode;
  }
}

/** A publish or subscribe while no connection is up. */
export class MqttNotConnectedError extends Error {
  constructor(what: string) {
    super(`MQTT ${what}: not connected to the broker`);
    this.name = 'MqttNotConnectedError';
  }
}

/** A publish larger than the broker (or our cap) takes. */
export class MqttPacketTooLargeError extends Error {
  constructor(size: number, max: number) {
    super(`MQTT packet of ${size} bytes exceeds the maximum packet size of ${max} bytes`);
    this.name = 'MqttPacketTooLargeError';
  }
}

/** A publish the connection lost before its acknowledgement, or the broker refused; a subscription the broker refused. */
export class MqttOperationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MqttOperationError';
  }
}

/** CONNACK codes that mean "your credentials or identity": retrying with the same ones is useless. */
const AUTH_REFUSALS = new Set([2, 4, 5, 0x85, 0x86, 0x87, 0x8c]);

/**
 * CONNACK codes that mean "not this protocol version": 1 from an MQTT 3.1.1 broker, 0x84 from an
 * MQTT 5 one. Retrying with the same version is useless; the caller may dial again at 3.1.1.
 */
export const PROTOCOL_REFUSALS: ReadonlySet<number> = new Set([1, 0x84]);

/** `CSS-` or `ESS-` and 19 random digits, as the reference names its clients. */
export function referenceClientID(prefix: 'CSS' | 'ESS'): string {
  // A random int64 in [10^18, 2^63): always 19 digits.
  const span = 2n ** 63n - 10n ** 18n;
  return `${prefix}-${10n ** 18n + (randomBytes(8).readBigUInt64BE() % span)}`;
}

function varintBytes(n: number): number {
  return n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4;
}

/** Size of a PUBLISH packet on the wire (no MQTT 5 properties). */
export function publishPacketSize(topic: string, payloadBytes: number, qos: MqttQoS, protocolVersion: 4 | 5): number {
  const remaining = 2 + Buffer.byteLength(topic) + (qos > 0 ? 2 : 0) + (protocolVersion === 5 ? 1 : 0) + payloadBytes;
  return 1 + varintBytes(remaining) + remaining;
}

function noTrace(): void {}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export interface MqttConnection {
  /** Adds filters to the subscriptions (kept across reconnects). @throws MqttOperationError, MqttNotConnectedError */
  subscribe(filters: readonly string[]): Promise<void>;
  unsubscribe(filters: readonly string[]): Promise<void>;
  /**
   * Publishes; QoS 1 resolves on the PUBACK.
   * @throws MqttNotConnectedError, MqttPacketTooLargeError, MqttOperationError
   */
  publish(topic: string, payload: Buffer, opts?: { qos?: MqttQoS }): Promise<void>;
  /** The largest packet we may publish now: the broker's (MQTT 5 CONNACK) or our cap. */
  readonly maxPacketSize: number;
  /** The largest payload a QoS 1 publish on `topic` may carry now. */
  maxPayload(topic: string): number;
  readonly connected: boolean;
  /** 4 = MQTT 3.1.1, 5 = MQTT 5: the version this connection speaks. */
  readonly protocolVersion: 4 | 5;
  /**
   * Whether the broker takes `$share/{group}/{filter}` subscriptions, as far as it said: an MQTT 5
   * CONNACK may state that it does not; a 3.1.1 connection is never asked to (a broker that does
   * not know them would take the filter as a plain topic and deliver nothing).
   */
  readonly sharedSubscriptions: boolean;
  status(): MqttConnectionStatus;
  /** Disconnects and stops reconnecting. */
  close(): Promise<void>;
}

class Connection implements MqttConnection {
  private client: MqttClient | null = null;
  /** Per client, rejects when its connection closes (see dial). */
  private readonly lost = new WeakMap<MqttClient, Promise<never>>();
  private state: MqttConnectionState = 'connecting';
  private readonly filters = new Set<string>();
  private serverMaxPacket: number | undefined;
  private serverShares: boolean | undefined;
  private connectedSince: number | null = null;
  private reconnects = 0;
  private everConnected = false;
  private lastError: string | null = null;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private readonly cap: number;
  private readonly version: 4 | 5;
  private firstWaiter: { resolve(): void; reject(e: Error): void } | null = null;

  constructor(
    private readonly opts: MqttConnectionOptions,
    private readonly base: IClientOptions,
    readonly clientID: string,
  ) {
    this.cap = Math.min(opts.maxPacketSize ?? DEFAULT_MAX_PACKET_SIZE, MQTT_MAX_PACKET_SIZE);
    this.version = opts.protocolVersion ?? 4;
    for (const f of opts.subscriptions ?? []) this.filters.add(f);
  }

  /** Resolves on the first connection (after its subscriptions and onConnect). */
  start(timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.firstWaiter = null;
        void this.close();
        reject(new MqttConnectError(`No connection to the MQTT broker ${this.broker} within ${Math.round(timeoutMs / 1000)} s: ${this.lastError ?? 'no answer'}`));
      }, timeoutMs);
      this.firstWaiter = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.dial();
    });
  }

  get broker(): string {
    return `${this.opts.protocol}://${this.opts.host}:${this.opts.port}`;
  }

  get connected(): boolean {
    return this.state === 'connected';
  }

  get protocolVersion(): 4 | 5 {
    return this.version;
  }

  get sharedSubscriptions(): boolean {
    // [MQTT-3.2.2.3.18] absent means available.
    return this.version === 5 && this.serverShares !== false;
  }

  get maxPacketSize(): number {
    return Math.min(this.cap, this.serverMaxPacket ?? this.cap);
  }

  maxPayload(topic: string): number {
    const max = this.maxPacketSize;
    // The length field grows with the payload: take the largest that still fits.
    let payload = max - publishPacketSize(topic, 0, 1, this.version);
    while (payload > 0 && publishPacketSize(topic, payload, 1, this.version) > max) payload--;
    return Math.max(0, payload);
  }

  status(): MqttConnectionStatus {
    return { state: this.state, broker: this.broker, clientID: this.clientID, connectedSince: this.connectedSince, reconnects: this.reconnects, lastError: this.lastError };
  }

  private dial(): void {
    if (this.state === 'closed') return;
    // Plain TCP through packet-socket.ts: each packet read whole into a buffer of its own.
    const { host, port } = this.opts;
    const open = this.opts.stream ?? (this.opts.protocol === 'mqtt' ? () => connectPacketSocket({ host, port }) : undefined);
    const client = open !== undefined ? new MqttClient(() => open(), { ...this.base, reconnectPeriod: 0 }) : mqtt.connect({ ...this.base, reconnectPeriod: 0 });
    this.client = client;
    // mqtt.js fails the QoS 1 publishes a lost connection leaves unacknowledged, not a QoS 0 one
    // waiting for its socket to drain: that one would never settle (and whoever awaits it, say
    // the answer to a getdata, would wait for ever). Every publish on this client ends with it.
    const lost = new Promise<never>((_resolve, reject) => client.once('close', () => reject(new MqttOperationError('the connection to the MQTT broker was lost'))));
    lost.catch(() => undefined);
    this.lost.set(client, lost);
    // Nagle would hold each small packet (a PUBACK, a control message) until the previous one is
    // acked, some 40 ms per round trip with delayed ACKs: our messages are small and many.
    // Instead, what one turn of the event loop writes goes out together (see coalesceWrites).
    if (client.stream instanceof Socket) {
      client.stream.setNoDelay(true);
      const flush = coalesceWrites(client.stream);
      client.on('packetsend', flush);
    }
    let over = false;
    client.on('connect', (connack: IConnackPacket) => void this.connectedWith(client, connack));
    client.on('message', (topic, payload, packet) => this.deliver(topic, payload, packet));
    client.on('error', (err) => {
      this.lastError = describe(err);
      const code = (err as { code?: unknown }).code;
      if (typeof code === 'number' && PROTOCOL_REFUSALS.has(code) && !this.everConnected && this.firstWaiter !== null) {
        // Not our credentials: the version. Said at once, so that the caller may try 3.1.1.
        const w = this.firstWaiter;
        this.firstWaiter = null;
        void this.close();
        w.reject(new MqttConnectError(`The MQTT broker ${this.broker} refused MQTT ${this.version === 5 ? '5' : '3.1.1'}: ${this.lastError}`, code));
        return;
      }
      if (typeof code === 'number' && AUTH_REFUSALS.has(code)) {
        this.opts.log?.warn({ broker: this.broker, clientID: this.clientID, username: this.opts.username ?? '', reason: this.lastError }, 'the MQTT broker refused the connection');
        // On the first connection, wrong credentials are a configuration error: say so now.
        if (!this.everConnected && this.firstWaiter !== null) {
          const w = this.firstWaiter;
          this.firstWaiter = null;
          void this.close();
          w.reject(new MqttConnectError(`The MQTT broker ${this.broker} refused the connection: ${this.lastError}`, code));
        }
      }
    });
    client.on('close', () => {
      if (over) return;
      over = true;
      const wasConnected = this.state === 'connected';
      this.connectedSince = null;
      // Fails the publishes still waiting for an acknowledgement.
      client.end(true);
      if (this.state === 'closed') return;
      this.state = this.everConnected ? 'reconnecting' : 'connecting';
      if (wasConnected) this.opts.log?.warn({ broker: this.broker, clientID: this.clientID }, 'lost the connection to the MQTT broker; reconnecting');
      this.scheduleRetry();
    });
  }

  private scheduleRetry(): void {
    const first = this.opts.reconnectDelayMs ?? 1_000;
    const max = this.opts.maxReconnectDelayMs ?? 30_000;
    const delay = Math.min(max, first * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    // ±20 %: many ESS nodes that lost one broker must not all come back in the same instant.
    const jittered = Math.round(delay * (0.8 + Math.random() * 0.4));
    this.opts.log?.debug({ broker: this.broker, inMs: jittered, lastError: this.lastError }, 'next MQTT connection attempt');
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.dial();
    }, Math.min(jittered, max));
  }

  private async connectedWith(client: MqttClient, connack: IConnackPacket): Promise<void> {
    if (client !== this.client || this.state === 'closed') return;
    const first = !this.everConnected;
    this.serverMaxPacket = connack.properties?.maximumPacketSize;
    this.serverShares = connack.properties?.sharedSubscriptionAvailable;
    try {
      if (this.filters.size > 0) await this.subscribeOn(client, [...this.filters]);
    } catch (e) {
      // The reference exits when it cannot subscribe; we keep the connection and say so loudly.
      this.lastError = describe(e);
      this.opts.log?.error({ broker: this.broker, err: e }, 'the MQTT broker refused our subscriptions');
      if (first && this.firstWaiter !== null) {
        const w = this.firstWaiter;
        this.firstWaiter = null;
        void this.close();
        w.reject(e instanceof Error ? e : new MqttOperationError(describe(e)));
      }
      return;
    }
    if (client !== this.client || !client.connected) return;
    this.state = 'connected';
    this.connectedSince = Date.now();
    this.attempt = 0;
    this.everConnected = true;
    if (!first) this.reconnects++;
    this.opts.log?.info({ broker: this.broker, clientID: this.clientID, reconnect: !first }, 'connected to the MQTT broker');
    try {
      await this.opts.onConnect?.(first);
    } catch (e) {
      this.opts.log?.error({ err: e }, 'the MQTT onConnect handler failed');
    }
    if (first && this.firstWaiter !== null) {
      const w = this.firstWaiter;
      this.firstWaiter = null;
      w.resolve();
    }
  }

  private deliver(topic: string, payload: Buffer, packet: IPublishPacket): void {
    try {
      this.opts.onMessage?.(topic, payload, packet);
    } catch (e) {
      this.opts.log?.error({ err: e, topic }, 'the MQTT message handler failed');
    }
  }

  private async subscribeOn(client: MqttClient, filters: string[]): Promise<void> {
    const qos = this.opts.subscribeQos ?? 1;
    let granted;
    try {
      granted = await client.subscribeAsync(filters, { qos });
    } catch (e) {
      throw new MqttOperationError(`MQTT subscribe to ${filters.join(', ')} failed: ${describe(e)}`);
    }
    const refused = granted.filter((g) => g.qos >= 128).map((g) => g.topic);
    if (refused.length > 0) throw new MqttOperationError(`The MQTT broker refused the subscription to ${refused.join(', ')}`);
  }

  async subscribe(filters: readonly string[]): Promise<void> {
    const fresh = filters.filter((f) => !this.filters.has(f));
    for (const f of fresh) this.filters.add(f);
    if (fresh.length === 0) return;
    const client = this.client;
    // Not connected: the next connection subscribes to every filter.
    if (client === null || this.state !== 'connected') return;
    try {
      await this.subscribeOn(client, fresh);
    } catch (e) {
      for (const f of fresh) this.filters.delete(f);
      throw e;
    }
  }

  async unsubscribe(filters: readonly string[]): Promise<void> {
    for (const f of filters) this.filters.delete(f);
    const client = this.client;
    if (client === null || this.state !== 'connected' || filters.length === 0) return;
    try {
      await client.unsubscribeAsync([...filters]);
    } catch (e) {
      throw new MqttOperationError(`MQTT unsubscribe from ${filters.join(', ')} failed: ${describe(e)}`);
    }
  }

  async publish(topic: string, payload: Buffer, opts: { qos?: MqttQoS } = {}): Promise<void> {
    const qos = opts.qos ?? 1;
    const client = this.client;
    if (client === null || this.state !== 'connected') throw new MqttNotConnectedError(`publish on ${topic}`);
    const size = publishPacketSize(topic, payload.length, qos, this.version);
    if (size > this.maxPacketSize) throw new MqttPacketTooLargeError(size, this.maxPacketSize);
    try {
      const lost = this.lost.get(client);
      const published = client.publishAsync(topic, payload, { qos, retain: false });
      await (lost === undefined ? published : Promise.race([published, lost]));
    } catch (e) {
      throw new MqttOperationError(`MQTT publish on ${topic} failed: ${describe(e)}`);
    }
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.connectedSince = null;
    if (this.firstWaiter !== null) {
      const w = this.firstWaiter;
      this.firstWaiter = null;
      w.reject(new MqttConnectError(`Closed before the first connection to the MQTT broker ${this.broker}`));
    }
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const client = this.client;
    this.client = null;
    if (client === null) return;
    // A polite DISCONNECT when the link is up; a broken link is not waited for.
    await Promise.race([client.endAsync(!client.connected), new Promise((r) => setTimeout(r, 2_000).unref())]);
    client.end(true);
  }
}

/**
 * Connects to the broker and resolves once the first connection is up, subscribed, and
 * `onConnect(true)` has returned; reconnects by itself afterwards.
 * @throws MqttTlsError for unusable TLS material; MqttConnectError when the broker refuses
 *   our credentials or cannot be reached within `firstConnectTimeoutMs`
 */
export async function openMqttConnection(opts: MqttConnectionOptions): Promise<MqttConnection> {
  const tls = opts.protocol === 'mqtts' ? await loadMqttTls(opts) : {};
  const clientID = opts.clientID !== undefined && opts.clientID !== '' ? opts.clientID : referenceClientID(opts.clientIDPrefix);
  const version = opts.protocolVersion ?? 4;
  if (opts.allowInvalidCertificates === true && opts.protocol === 'mqtts') {
    opts.log?.warn({ broker: `${opts.host}:${opts.port}` }, 'MQTT broker certificate checks are off (allowInvalidCertificates): the connection can be intercepted');
  }
  const base: IClientOptions = {
    host: opts.host,
    port: opts.port,
    protocol: opts.protocol,
    clientId: clientID,
    protocolVersion: version,
    clean: true,
    keepalive: opts.keepaliveSeconds ?? 120,
    connectTimeout: opts.attemptTimeoutMs ?? 30_000,
    // We resubscribe ourselves, on each fresh client.
    resubscribe: false,
    queueQoSZero: false,
    // mqtt.js traces every packet through `debug` (DEBUG=mqttjs*); off, a no-op costs less than
    // the dozen disabled-logger checks each packet makes. Set DEBUG to trace the client again.
    ...(process.env['DEBUG'] === undefined ? { log: noTrace } : {}),
    ...(opts.username !== undefined && opts.username !== '' ? { username: opts.username } : {}),
    ...(opts.password !== undefined && opts.password !== '' ? { password: opts.password } : {}),
    ...(version === 5 ? { properties: { maximumPacketSize: Math.min(opts.maxPacketSize ?? DEFAULT_MAX_PACKET_SIZE, MQTT_MAX_PACKET_SIZE) } } : {}),
    ...(opts.protocol === 'mqtts' ? { ...tls, rejectUnauthorized: opts.allowInvalidCertificates !== true } : {}),
  };
  const conn = new Connection(opts, base, clientID);
  await conn.start(opts.firstConnectTimeoutMs ?? 300_000);
  return conn;
}
