/**
 * Keeps the ESS's MQTT connection: opens it in the background (an ESS starts whether or not the
 * broker is up), tries again while the broker cannot be reached or refuses us, and hands
 * publishes to it once it is up. The connection itself (mqtt-connection.ts) reconnects after a
 * drop; this only covers the first connection, which `openMqttConnection` gives up on after
 * MQTT_BROKER_CONNECT_TIMEOUT, and a broker that refuses our credentials.
 */
import { MqttConnectError, MqttNotConnectedError, type MqttConnection, type MqttConnectionStatus } from './mqtt-connection.js';
import { MqttTlsError } from './mqtt-tls.js';

/** Why the connection cannot be made: the last two need an operator. */
export type ConnectFailure = 'unreachable' | 'credentialsRefused' | 'certificateUntrusted';

/** Node's words for a broker certificate that did not verify (mqtt.js passes on the TLS error's message only). */
const UNTRUSTED = /certificate|self[- ]signed|CERT_/i;

function classify(err: Error): ConnectFailure {
  if (err instanceof MqttConnectError && err.reasonCode !== undefined) return 'credentialsRefused';
  if (err instanceof MqttTlsError || UNTRUSTED.test(err.message)) return 'certificateUntrusted';
  return 'unreachable';
}

/** The log line of a failure, naming the settings an operator must fix when one must. */
const FAILURE_LINE: Record<ConnectFailure, string> = {
  credentialsRefused: 'the MQTT broker refuses this ESS (MQTT_USER_NAME, MQTT_PASSWORD, MQTT_CLIENT_ID, or the client certificate); retrying',
  certificateUntrusted: "the MQTT broker's certificate is not trusted, or the TLS settings are unusable (MQTT_CA_CERTIFICATE, MQTT_SSL_CERT, MQTT_SSL_KEY, BROKER_ADDRESS); retrying",
  unreachable: 'cannot reach the MQTT broker; retrying',
};

/** What the link needs of a connection. */
export type LinkConnection = Pick<MqttConnection, 'publish' | 'maxPayload' | 'close'> & Partial<Pick<MqttConnection, 'status' | 'connected'>>;

/** What the connection calls back, given to `connect`. */
export interface LinkConnectionHandlers {
  /** The filters to subscribe to on every connection. */
  subscriptions: string[];
  onConnect: (first: boolean) => void;
  onMessage: (topic: string, payload: Buffer) => void;
}

export interface LinkConnectorDeps {
  /** Opens the connection; resolves once it is up (openMqttConnection). */
  connect(handlers: LinkConnectionHandlers): Promise<LinkConnection>;
  handlers: LinkConnectionHandlers;
  /** Wait before opening again after a failure. */
  retryDelayMs: number;
  log: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void; debug(obj: object, msg: string): void };
  broker: string;
  /** Told why the connection cannot be made. */
  onFailure?(kind: ConnectFailure, reason: string): void;
}

/** How long `close` waits for a connection attempt in progress. */
const CLOSE_WAIT_MS = 2_000;

export class LinkConnector {
  private connection: LinkConnection | null = null;
  private waiters = new Set<() => void>();
  private closed = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private retryWake: (() => void) | null = null;
  /** The last failure to connect, while there is no connection. */
  private failure: { kind: ConnectFailure; error: Error } | null = null;
  private readonly opening: Promise<void>;

  constructor(private readonly deps: LinkConnectorDeps) {
    this.opening = this.open();
  }

  /** Settles once the first connection is up, or the connector is closed. */
  get opened(): Promise<void> {
    return this.opening;
  }

  /** Why the last attempt failed, while there is no connection. */
  get failureKind(): ConnectFailure | null {
    return this.connection === null ? (this.failure?.kind ?? null) : null;
  }

  /** The last reason the connection could not be made, while there is none. */
  get lastFailure(): Error | null {
    return this.connection === null ? (this.failure?.error ?? null) : null;
  }

  status(): MqttConnectionStatus | null {
    return this.connection?.status?.() ?? null;
  }

  /** The connection, once up; waits up to `ms` for the first one. @throws MqttNotConnectedError */
  async ready(ms: number): Promise<LinkConnection> {
    if (this.connection !== null) return this.connection;
    if (!this.closed && ms > 0) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, ms);
        this.waiters.add(done);
      });
    }
    if (this.connection !== null) return this.connection;
    throw new MqttNotConnectedError(this.failure !== null ? `(${this.failure.error.message})` : 'connection to the CSS');
  }

  /** The connection if up now. @throws MqttNotConnectedError */
  now(): LinkConnection {
    if (this.connection === null) throw new MqttNotConnectedError('message to the CSS');
    return this.connection;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryWake?.();
    for (const w of [...this.waiters]) w();
    // An attempt in progress cannot be cut short (openMqttConnection takes no signal): it is
    // waited for a moment, and otherwise closes its connection itself when it ends, within its
    // first-connection timeout.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.opening, new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS)))]);
    clearTimeout(timer);
    const conn = this.connection;
    this.connection = null;
    await conn?.close();
  }

  private async open(): Promise<void> {
    let reported = false;
    while (!this.closed) {
      try {
        const conn = await this.deps.connect(this.deps.handlers);
        if (this.closed) {
          await conn.close();
          return;
        }
        this.connection = conn;
        this.failure = null;
        for (const w of [...this.waiters]) w();
        return;
      } catch (err) {
        const error = err instanceof Error ? err : new Error(String(err));
        const kind = classify(error);
        this.failure = { kind, error };
        this.deps.onFailure?.(kind, error.message);
        // Once per episode: ERROR when an operator must act, else WARN; the retries are for us.
        if (!reported) {
          if (kind === 'unreachable') this.deps.log.warn({ err: error, broker: this.deps.broker }, FAILURE_LINE[kind]);
          else this.deps.log.error({ err: error, broker: this.deps.broker }, FAILURE_LINE[kind]);
          reported = true;
        } else this.deps.log.debug({ err: error }, 'MQTT broker still not reachable');
        await new Promise<void>((resolve) => {
          this.retryWake = resolve;
          this.retryTimer = setTimeout(resolve, this.deps.retryDelayMs);
        });
        this.retryTimer = null;
        this.retryWake = null;
      }
    }
  }
}
