/**
 * The CSS's MQTT transport (COMMUNICATION_PROTOCOL mqtt or http,mqtt): the broker connection
 * and the adapter over the engine. With an empty BROKER_ADDRESS the CSS runs the embedded broker
 * (aedes) and connects to it with the broker's internal credential; otherwise it connects to
 * BROKER_ADDRESS:BROKER_PORT with the reference's MQTT_* settings. [ref sync-protocol §2, §7]
 */
import type { MqttHealth } from '../api/health-monitor.js';
import type { Config } from '../config/index.js';
import { usesEmbeddedBroker } from '../config/index.js';
import type { Logger } from '../log/logger.js';
import type { DestinationRef } from '../model/index.js';
import type { AclLookup, Authenticator } from '../security/index.js';
import type { OrgSecrets } from '../security/org-secrets.js';
import type { NotificationStore } from '../store/notification-types.js';
import type { Store } from '../store/types.js';
import type { CssSyncEngine } from '../sync/css/types.js';
import { upstreamProgress, type UpstreamProgress } from '../sync/upstream-progress.js';
import { CssMqttAdapter, type AwaitedData, type CssLeadership, type CssMqttChannel } from '../transport/mqtt/css-adapter.js';
import { startEmbeddedBroker, type EmbeddedBroker } from '../transport/mqtt/embedded-broker.js';
import { type MqttConnection, type MqttConnectionOptions } from '../transport/mqtt/mqtt-connection.js';
import { openCssConnection } from '../transport/mqtt/shared-subscriptions.js';
import type { MqttTlsSettings } from '../transport/mqtt/mqtt-tls.js';
import { CssBrokers } from './css-brokers.js';
import type { Tls } from './listeners.js';
import type { SyncEvents } from '../sync/sync-events.js';

export interface CssMqtt {
  /** Where ESS nodes reach the broker, e.g. `mqtt://127.0.0.1:1883` (printed at start). */
  urls: string[];
  /** The `mqttHealth` section of the health report. */
  health(): MqttHealth;
  /** Stops the adapter, then the connection, then the embedded broker. */
  stop(): Promise<void>;
}

export interface CssMqttDeps {
  config: Config;
  engine: CssSyncEngine;
  store: Store;
  notifications: NotificationStore;
  authenticator: Authenticator;
  /** The CSS's ACLs: on a one-org CSS they let users act for nodes on the embedded broker. */
  acls?: AclLookup;
  /** Opens the orgs' sealed broker passwords; null on a node without the key. */
  orgSecrets: OrgSecrets | null;
  /** The certificate of the embedded broker's TLS listener (EMBEDDED_BROKER_TLS_PORT). */
  tls: () => Promise<Tls>;
  /**
   * The leader lease of CSS processes sharing one database: with an external broker that has
   * shared subscriptions, the leader alone takes the chunked traffic and pushes to the ESS nodes
   * (docs/adr/0021-mqtt-scale-out.md). Without it this process acts as the only one.
   */
  leadership?: CssLeadership;
  logger: Logger;
  /** Told of the data chunks served and stored (lib/sync/sync-events.ts). */
  events?: SyncEvents;
}

function urlHost(host: string): string {
  if (host === '' || host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

/** MQTT_CA_CERTIFICATE, MQTT_SSL_CERT/KEY: toward a broker dialled with TLS. */
function brokerTls(config: Config): MqttTlsSettings {
  return {
    ca: config.mqttCACertificate,
    ...(config.mqttSSLCert !== '' ? { clientCert: config.mqttSSLCert, clientKey: config.mqttSSLKey } : {}),
    baseDir: config.persistenceRootPath,
  };
}

/** The org settings are read again every this many RESEND_INTERVALs (30 s by default, as the reference). */
const ORG_POLL_FACTOR = 3;

/** The ESS nodes registered over MQTT, in every org the CSS serves. */
async function mqttDestinations(config: Config, store: Store): Promise<DestinationRef[]> {
  const orgs = config.orgID !== '' ? [config.orgID] : await store.listOrgsInUse();
  const out: DestinationRef[] = [];
  for (const org of orgs) {
    for (const d of await store.listDestinations(org)) {
      if (d.communication === 'mqtt') out.push({ orgID: d.destinationOrgID, destType: d.destinationType, destID: d.destinationID });
    }
  }
  return out;
}

/** The store's upload of an upstream instance, for a chunk another CSS asked for (CssMqttAdapter.storeUnasked). */
function awaitedData(store: Store, progress: UpstreamProgress): AwaitedData {
  return async (peer, ref) => {
    const state = await progress.of(peer, ref);
    if (state.kind !== 'awaiting') return null;
    const obj = await store.getObject(peer.orgID, ref.objectType, ref.objectID);
    return obj === null || obj.meta.instanceID !== ref.instanceID ? null : { received: state.received, total: obj.meta.objectSize };
  };
}

/** How often the connection's state is sampled for the health report. */
const SAMPLE_MS = 1000;

/**
 * The broker connection as the health report tells it, the reference's way: red while
 * disconnected, yellow for 12 × RESEND_INTERVAL after a failed publish. [ref common/health.go
 * UpdateHealthInfo]
 */
class ConnectionTracker {
  private publishFailures = 0;
  private lastPublishError = 0;
  private disconnectedAt = 0;
  private lastOutageMs = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly conn: MqttConnection) {
    this.timer = setInterval(() => this.sample(), SAMPLE_MS);
    this.timer.unref();
  }

  publishFailed(): void {
    this.publishFailures++;
    this.lastPublishError = Date.now();
  }

  private sample(): void {
    const now = Date.now();
    if (!this.conn.connected && this.disconnectedAt === 0) this.disconnectedAt = now;
    if (this.conn.connected && this.disconnectedAt !== 0) {
      this.lastOutageMs = now - this.disconnectedAt;
      this.disconnectedAt = 0;
    }
  }

  report(resendInterval: number): Omit<MqttHealth, 'mqttESS' | 'upstreamTransfers' | 'embeddedBrokerClients'> {
    this.sample();
    const now = Date.now();
    const s = this.conn.status();
    const disconnected = !this.conn.connected;
    const sincePublishError = this.publishFailures > 0 ? Math.floor((now - this.lastPublishError) / 1000) : null;
    const color = disconnected ? 'red' : sincePublishError !== null && sincePublishError < resendInterval * 12 ? 'yellow' : 'green';
    const outage = disconnected ? now - this.disconnectedAt : this.lastOutageMs;
    return {
      mqttConnectionStatus: color,
      subscribeFailures: 0,
      publishFailures: this.publishFailures,
      disconnectedFromMQTTBroker: disconnected,
      ...(outage > 0 ? { lastDisconnectFromBrokerDuration: outage } : {}),
      ...(sincePublishError !== null ? { timeSinceLastPublishError: sincePublishError } : {}),
      broker: s.broker,
      reconnects: s.reconnects,
    };
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

export async function startCssMqtt(deps: CssMqttDeps): Promise<CssMqtt> {
  const { config, logger } = deps;
  const log = logger.child({ component: 'mqtt' });
  if (config.mqttAllowInvalidCertificates) {
    // [ref mqttCommunication newTLSConfig] the reference ignores it on a CSS too.
    log.warn('MQTT_ALLOW_INVALID_CERTIFICATES is ignored on a CSS: it always checks the certificate of its broker');
  }
  let broker: EmbeddedBroker | null = null;
  let connection: MqttConnection | null = null;
  let adapter: CssMqttAdapter | null = null;
  let orgBrokers: CssBrokers | null = null;
  // The adapter is made once the connection is up; a message before that waits for nothing.
  let deliver: (topic: string, payload: Buffer) => void = () => undefined;
  let stopTracker = (): void => undefined;
  const stop = async (): Promise<void> => {
    stopTracker();
    await adapter?.stop();
    await orgBrokers?.close();
    await connection?.close();
    await broker?.close();
  };
  try {
    let options: MqttConnectionOptions;
    let urls: string[];
    const common = {
      clientIDPrefix: 'CSS' as const,
      onMessage: (topic: string, payload: Buffer) => deliver(topic, payload),
      firstConnectTimeoutMs: config.mqttBrokerConnectTimeout * 1000,
      log,
    };
    // The embedded broker lives in this process: other CSS processes cannot share it.
    const group = usesEmbeddedBroker(config) ? '' : config.mqttSharedGroup;
    if (usesEmbeddedBroker(config)) {
      if (config.storageProvider === 'mongo') {
        log.warn(
          'the embedded MQTT broker serves this CSS process alone: ESS nodes on it sync only through this process. To run several CSS processes over MQTT, set BROKER_ADDRESS to a broker they share (mosquitto 2, for MQTT 5 shared subscriptions)',
        );
      }
      const tls = config.embeddedBrokerTlsPort !== 0 ? await deps.tls() : null;
      broker = await withPortAdvice(
        startEmbeddedBroker({
          host: config.listeningAddress === '' ? '0.0.0.0' : config.listeningAddress,
          port: config.embeddedBrokerPort,
          ...(tls !== null ? { tls: { port: config.embeddedBrokerTlsPort, certPem: tls.certPem, keyPem: tls.keyPem } } : {}),
          authenticator: deps.authenticator,
          ...(deps.acls !== undefined ? { acls: deps.acls } : {}),
          ...(config.orgID !== '' ? { orgID: config.orgID } : {}),
          log: logger.child({ component: 'mqtt-broker' }),
        }),
      );
      const host = urlHost(config.listeningAddress);
      urls = [`mqtt://${host}:${broker.port}`, ...(broker.tlsPort !== null ? [`mqtts://${host}:${broker.tlsPort}`] : [])];
      const internal = broker;
      options = { ...common, host: '127.0.0.1', port: broker.port, protocol: 'mqtt', ...broker.internalCredentials, stream: () => internal.connectInternal() };
    } else {
      options = {
        ...common,
        ...(config.mqttUseSSL ? brokerTls(config) : {}),
        host: config.brokerAddress,
        port: config.brokerPort,
        protocol: config.mqttUseSSL ? 'mqtts' : 'mqtt',
        ...(config.mqttUserName !== '' ? { username: config.mqttUserName, password: config.mqttPassword } : {}),
        ...(config.mqttClientID !== '' ? { clientID: config.mqttClientID } : {}),
      };
      urls = [`${options.protocol}://${urlHost(config.brokerAddress)}:${config.brokerPort}`];
    }
    const conn = await openCssConnection(options, group, log);
    connection = conn;
    const tracker = new ConnectionTracker(conn);
    stopTracker = () => tracker.stop();
    const brokers = new CssBrokers({
      shared: conn,
      // An org's broker is dialled with the TLS settings of the shared one (as the reference does).
      base: { ...brokerTls(config), clientIDPrefix: 'CSS', firstConnectTimeoutMs: config.mqttBrokerConnectTimeout * 1000, log },
      store: deps.store,
      secrets: deps.orgSecrets,
      perOrg: config.orgID === '',
      group,
      pollMs: ORG_POLL_FACTOR * config.resendInterval * 1000,
      log,
    });
    orgBrokers = brokers;
    deliver = (topic, payload) => brokers.deliverShared(topic, payload);
    const channel: CssMqttChannel = {
      subscribe: (filters, opts) => brokers.subscribe(filters, opts),
      unsubscribe: (filters) => brokers.unsubscribe(filters),
      onMessage: (handler) => brokers.onMessage(handler),
      publish: async (org, topic, payload, opts) => {
        try {
          await brokers.publish(org, topic, payload, opts);
        } catch (e) {
          if (!brokers.ownBroker(org)) tracker.publishFailed();
          throw e;
        }
      },
      maxPayload: (org, topic) => brokers.maxPayload(org, topic),
      connected: (org) => brokers.connected(org),
      ownBroker: (org) => brokers.ownBroker(org),
    };
    const progress = upstreamProgress({ store: deps.store, notifications: deps.notifications });
    const running = new CssMqttAdapter({
      engine: deps.engine,
      channel,
      progress,
      mqttDestinations: () => mqttDestinations(config, deps.store),
      awaitedData: awaitedData(deps.store, progress),
      ...(deps.leadership !== undefined ? { leadership: deps.leadership } : {}),
      orgID: config.orgID,
      resendInterval: config.resendInterval,
      maxInflightChunks: config.maxInflightChunks,
      maxDataChunkSize: config.maxDataChunkSize,
      log,
      ...(deps.events !== undefined ? { events: deps.events } : {}),
    });
    adapter = running;
    await running.start();
    brokers.start();
    const { subscriptions } = running.stats();
    if (subscriptions === 'shared') log.info({ group }, 'subscribed to the ESS events in an MQTT shared group: the CSS processes of the group share them');
    return {
      urls,
      health: () => {
        const stats = running.stats();
        const shared = tracker.report(config.resendInterval);
        const orgs = brokers.orgStatus();
        // An org's own broker away leaves the others working: yellow, not red.
        const color = shared.mqttConnectionStatus === 'green' && orgs.some((o) => !o.connected) ? 'yellow' : shared.mqttConnectionStatus;
        return {
          ...shared,
          mqttConnectionStatus: color,
          ...(orgs.length > 0 ? { organizations: orgs } : {}),
          mqttESS: stats.pushLoops,
          upstreamTransfers: stats.pulls,
          ...(broker !== null ? { embeddedBrokerClients: broker.connectedClients() } : {}),
        };
      },
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

/**
 * A port taken by another program is the likeliest start-up failure of the embedded broker (a
 * system mosquitto on 1883): the error names the settings that solve it.
 */
async function withPortAdvice<T>(starting: Promise<T>): Promise<T> {
  try {
    return await starting;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    throw new Error(
      `the embedded MQTT broker cannot listen: ${(err as Error).message}. Set EMBEDDED_BROKER_PORT (or EMBEDDED_BROKER_TLS_PORT) to a free port, or BROKER_ADDRESS and BROKER_PORT to use the broker already there`,
      { cause: err },
    );
  }
}
