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
