/**
 * Counters and checks behind `GET /api/v1/health`. [ref rest-api §3.7]
 */
import type { Store } from '../store/types.js';

export type HealthColor = 'green' | 'yellow' | 'red';

export interface HealthReport {
  general: { nodeType: 'CSS' | 'ESS'; healthStatus: HealthColor; upTime: number };
  dbHealth: {
    dbStatus: HealthColor;
    disconnectedFromDB: boolean;
    lastDisconnectFromDBDuration?: number;
    dbReadFailures: number;
    dbWriteFailures: number;
    timeSinceLastReadWriteError?: number;
  };
  usage?: { clientRequests: number; registeredESS: number; storedObjects: number };
  /** An ESS's link to its CSS (our addition; see lib/transport/http/css-link-health.ts). */
  cssHealth?: CssHealth;
  /** A CSS's MQTT connection, when it talks MQTT. [ref common/health.go MQTTHealthStatusInfo] */
  mqttHealth?: MqttHealth;
  /** Ours: a CSS of several instances on one database; which of them runs the periodic jobs. */
  leadership?: LeadershipHealth;
}

/** The `leadership` section: the leader lease as this instance sees it. It does not colour the report. */
export interface LeadershipHealth {
  /** Whether this instance holds the lease (runs maintenance and resends). */
  leader: boolean;
  /** This instance's id in the lease: host:pid:random. */
  instanceId: string;
  /** The instance holding the lease when last seen; omitted when none does (during a failover). */
  holder?: string;
}

/**
 * The `mqttHealth` section: the reference's fields (`mqttConnectionStatus` …
 * `timeSinceLastPublishError`), then ours. Its colour counts in `general.healthStatus`.
 */
export interface MqttHealth {
  mqttConnectionStatus: HealthColor;
  subscribeFailures: number;
  publishFailures: number;
  disconnectedFromMQTTBroker: boolean;
  /** Milliseconds of the current disconnection, or of the last one once reconnected. */
  lastDisconnectFromBrokerDuration?: number;
  /** Seconds since the last failed publish. */
  timeSinceLastPublishError?: number;
  /** Ours: the broker connected to, e.g. `mqtt://127.0.0.1:1883`. */
  broker: string;
  /** Ours: connections made after the first. */
  reconnects: number;
  /** Ours: the orgs with brokers of their own (multi-org CSS), and whether each is connected. */
  organizations?: Array<{ orgID: string; broker: string; connected: boolean; lastError?: string }>;
  /** Ours: ESS nodes pushed to over MQTT. */
  mqttESS: number;
  /** Ours: objects whose data is being pulled from an ESS. */
  upstreamTransfers: number;
  /** Ours: clients connected to the embedded broker, when the CSS runs it. */
  embeddedBrokerClients?: number;
}

/** The `cssHealth` section; its colour counts in `general.healthStatus`. */
export interface CssHealth {
  cssStatus: HealthColor;
  cssConnectionStatus: string;
  css: string;
  registered: boolean;
  lastSuccessfulExchange?: string;
  timeSinceLastSuccessfulExchange: number;
  reason?: string;
}

const SEVERITY: Record<HealthColor, number> = { green: 0, yellow: 1, red: 2 };

export class HealthMonitor {
  private readonly startedAt = Date.now();
  private clientRequests = 0;
  private dbReadFailures = 0;
  private dbWriteFailures = 0;
  private lastDbError = 0;
  private disconnectedSince = 0;

  constructor(
    private readonly nodeType: 'CSS' | 'ESS',
    private readonly store: Store,
    /** Orgs whose registered ESSs count in `usage.registeredESS`. */
    private readonly orgs: () => Promise<string[]>,
    /** An ESS's link to its CSS, when it syncs with one. */
    private readonly cssLink?: { report(): CssHealth },
    /** A CSS's MQTT transport; `report()` is undefined until it started. */
    private readonly mqtt?: { report(): MqttHealth | undefined },
    /** A scaled-out CSS's leader lease. */
    private readonly lease?: { isLeader(): boolean; holder(): string | null; readonly instanceId: string },
  ) {}

  countRequest(): void {
    this.clientRequests++;
  }

  recordDbFailure(kind: 'read' | 'write'): void {
    if (kind === 'read') this.dbReadFailures++;
    else this.dbWriteFailures++;
    this.lastDbError = Date.now();
  }

  async report(details: boolean): Promise<HealthReport> {
    const now = Date.now();
    let connected = true;
    try {
      await this.store.ping();
      this.disconnectedSince = 0;
    } catch {
      connected = false;
      if (this.disconnectedSince === 0) this.disconnectedSince = now;
    }
    const recentError = this.lastDbError !== 0 && now - this.lastDbError < 60_000;
    const dbStatus: HealthColor = !connected ? 'red' : recentError ? 'yellow' : 'green';
    const report: HealthReport = {
      general: { nodeType: this.nodeType, healthStatus: dbStatus, upTime: Math.floor((now - this.startedAt) / 1000) },
      dbHealth: { dbStatus, disconnectedFromDB: !connected, dbReadFailures: this.dbReadFailures, dbWriteFailures: this.dbWriteFailures },
    };
    if (this.cssLink !== undefined) {
      report.cssHealth = this.cssLink.report();
      if (SEVERITY[report.cssHealth.cssStatus] > SEVERITY[dbStatus]) report.general.healthStatus = report.cssHealth.cssStatus;
    }
    const mqtt = this.mqtt?.report();
    if (mqtt !== undefined) {
      report.mqttHealth = mqtt;
      if (SEVERITY[mqtt.mqttConnectionStatus] > SEVERITY[report.general.healthStatus]) report.general.healthStatus = mqtt.mqttConnectionStatus;
    }
    if (this.lease !== undefined) {
      const holder = this.lease.holder();
      report.leadership = { leader: this.lease.isLeader(), instanceId: this.lease.instanceId, ...(holder !== null ? { holder } : {}) };
    }
    if (this.disconnectedSince !== 0) report.dbHealth.lastDisconnectFromDBDuration = now - this.disconnectedSince;
    if (this.lastDbError !== 0) report.dbHealth.timeSinceLastReadWriteError = Math.floor((now - this.lastDbError) / 1000);
    if (details && connected) {
      let registeredESS = 0;
      for (const org of await this.orgs()) registeredESS += (await this.store.listDestinations(org)).length;
      report.usage = { clientRequests: this.clientRequests, registeredESS, storedObjects: await this.store.countObjects() };
    }
    return report;
  }
}
