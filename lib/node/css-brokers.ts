/**
 * The broker connections of a CSS: one shared by every org (the embedded broker, or
 * BROKER_ADDRESS), and on a multi-org CSS one more for each org whose settings
 * (PUT /api/v1/organizations/{org}) name a broker `address` of its own, dialled with the org's
 * user and password (sealed at rest, opened here: lib/security/org-secrets.ts). The org settings
 * are read again every 3 × RESEND_INTERVAL (the reference polls them every 30 s); a changed org
 * is dialled again, a removed one hung up. [ref sync-protocol §2 "one MQTT client per org",
 * mqttCommunication UpdateOrganization]
 *
 * Divergence: an org stored without an address uses the shared broker (the reference dials
 * `{org}.{BROKER_ADDRESS}`).
 */
import type { Logger } from '../log/logger.js';
import { brokerSettingsOf, type OrgSecrets } from '../security/org-secrets.js';
import type { Organization, Store } from '../store/types.js';
import type { CssMqttChannel } from '../transport/mqtt/css-adapter.js';
import { MqttNotConnectedError, type MqttConnection, type MqttConnectionOptions } from '../transport/mqtt/mqtt-connection.js';
import { openCssConnection, subscribeEvents, type SubscriptionMode } from '../transport/mqtt/shared-subscriptions.js';

/** Where an org's broker is, from its `address` (`tcp://h:p`, `ssl://h:p` as the reference writes it, or `mqtt://`, `mqtts://`). */
export function parseBrokerAddress(address: string): { protocol: 'mqtt' | 'mqtts'; host: string; port: number } | null {
  const m = /^(tcp|ssl|tls|mqtt|mqtts):\/\/(\[[^\]]+\]|[^:/]+)(?::(\d{1,5}))?\/?$/.exec(address.trim());
  if (m === null) return null;
  const secure = m[1] === 'ssl' || m[1] === 'tls' || m[1] === 'mqtts';
  const port = m[3] !== undefined ? Number(m[3]) : secure ? 8883 : 1883;
  if (port < 1 || port > 65535) return null;
  const host = m[2]!.startsWith('[') ? m[2]!.slice(1, -1) : m[2]!;
  return { protocol: secure ? 'mqtts' : 'mqtt', host, port };
}

/** How long one attempt at an org's broker may take. */
const ORG_CONNECT_MS = 10_000;

interface OrgLink {
  /** What the link was made from: a change of it means dialling again. */
  version: string;
  url: string;
  conn: MqttConnection | null;
  /** Why the last attempt failed. */
  error: string | null;
}

export interface CssBrokersDeps {
  shared: MqttConnection;
  /** The options every org connection starts from (TLS material, timeouts, logging). */
  base: Omit<MqttConnectionOptions, 'host' | 'port' | 'protocol' | 'username' | 'password' | 'clientID' | 'onMessage' | 'subscriptions'>;
  store: Pick<Store, 'listOrganizations'>;
  secrets: OrgSecrets | null;
  /** Whether orgs may have brokers of their own (a multi-org CSS). */
  perOrg: boolean;
  /**
   * MQTT_SHARED_GROUP: the group the shareable filters are subscribed in, on every broker that
   * has shared subscriptions; '' = plain subscriptions (the embedded broker).
   */
  group: string;
  pollMs: number;
  log: Logger;
}

export class CssBrokers implements CssMqttChannel {
  private readonly orgs = new Map<string, OrgLink>();
  /** Filters every CSS of the group shares (each message reaches one of them). */
  private shareable: readonly string[] = [];
  /** Filters this CSS takes every message of. */
  private plain: readonly string[] = [];
  private handler: (topic: string, payload: Buffer, org: string | null) => void = () => undefined;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private refreshing: Promise<void> | null = null;

  constructor(private readonly deps: CssBrokersDeps) {}

  /** Messages of the shared connection (whose onMessage hands them here). */
  deliverShared(topic: string, payload: Buffer): void {
    this.handler(topic, payload, null);
  }

  /**
   * Starts dialling the orgs' own brokers (not awaited: a broker that is away must not hold the
   * CSS's start), then looks at their settings again every `pollMs`.
   */
  start(): void {
    if (!this.deps.perOrg) return;
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.deps.pollMs);
    this.timer.unref();
  }

  /** @returns how the shared broker took the filters (an org's own broker may differ: it says so in its log) */
  async subscribe(filters: readonly string[], opts: { shared?: boolean } = {}): Promise<SubscriptionMode> {
    const { group, log } = this.deps;
    if (opts.shared === true) {
      this.shareable = [...new Set([...this.shareable, ...filters])];
      const mode = await subscribeEvents(this.deps.shared, filters, group, log);
      for (const link of this.orgs.values()) if (link.conn !== null) await subscribeEvents(link.conn, filters, group, log);
      return mode;
    }
    this.plain = [...new Set([...this.plain, ...filters])];
    await this.deps.shared.subscribe(filters);
    for (const link of this.orgs.values()) await link.conn?.subscribe(filters);
    return 'plain';
  }

  /** Ends plain subscriptions (shared ones are for the process's life). */
  async unsubscribe(filters: readonly string[]): Promise<void> {
    this.plain = this.plain.filter((f) => !filters.includes(f));
    await this.deps.shared.unsubscribe(filters);
    for (const link of this.orgs.values()) await link.conn?.unsubscribe(filters);
  }

  onMessage(handler: (topic: string, payload: Buffer, org: string | null) => void): void {
    this.handler = handler;
  }

  private connectionOf(org: string): MqttConnection | null {
    const link = this.orgs.get(org);
    return link === undefined ? this.deps.shared : link.conn;
  }

  publish(org: string, topic: string, payload: Buffer, opts: { qos: 0 | 1 }): Promise<void> {
    const conn = this.connectionOf(org);
    if (conn === null) return Promise.reject(new MqttNotConnectedError(`publish on ${topic} (the broker of org ${org})`));
    return conn.publish(topic, payload, opts);
  }

  maxPayload(org: string, topic: string): number {
    return (this.connectionOf(org) ?? this.deps.shared).maxPayload(topic);
  }

  connected(org: string): boolean {
    return this.connectionOf(org)?.connected ?? false;
  }

  ownBroker(org: string): boolean {
    return this.orgs.has(org);
  }

  /** The orgs with brokers of their own, for the health report. */
  orgStatus(): Array<{ orgID: string; broker: string; connected: boolean; lastError?: string }> {
    return [...this.orgs].map(([orgID, l]) => ({ orgID, broker: l.url, connected: l.conn?.connected ?? false, ...(l.error !== null ? { lastError: l.error } : {}) }));
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== null) clearInterval(this.timer);
    await this.refreshing;
    for (const link of this.orgs.values()) await link.conn?.close();
    this.orgs.clear();
  }

  /** Reads the org settings and dials, re-dials or hangs up as they say; one pass at a time. */
  refresh(): Promise<void> {
    this.refreshing ??= this.pass().finally(() => (this.refreshing = null));
    return this.refreshing;
  }

  private async pass(): Promise<void> {
    let stored: Organization[];
    try {
      stored = await this.deps.store.listOrganizations();
    } catch (err) {
      this.deps.log.warn({ err }, 'could not read the organizations’ broker settings; trying again later');
      return;
    }
    const wanted = new Map(stored.filter((o) => o.address !== '').map((o) => [o.orgID, o]));
    for (const [orgID, link] of this.orgs) {
      if (wanted.has(orgID)) continue;
      this.orgs.delete(orgID);
      await link.conn?.close();
      this.deps.log.info({ org: orgID }, 'the organization has no broker of its own any more: its ESS nodes use the shared broker');
    }
    await Promise.all([...wanted.values()].map((org) => this.dial(org)));
  }

  private async dial(org: Organization): Promise<void> {
    const version = JSON.stringify([org.address, org.user, org.password, org.lastUpdate]);
    const link = this.orgs.get(org.orgID);
    if (link !== undefined && link.version === version && link.conn !== null) return;
    const where = parseBrokerAddress(org.address);
    if (where === null) {
      this.orgs.set(org.orgID, { version, url: org.address, conn: null, error: 'the address is not a broker URL (tcp://host:port or ssl://host:port)' });
      if (link?.version !== version) this.deps.log.error({ org: org.orgID, address: org.address }, "the organization's broker address is not a broker URL: use tcp://host:port or ssl://host:port");
      await link?.conn?.close();
      return;
    }
    const url = `${where.protocol}://${where.host.includes(':') ? `[${where.host}]` : where.host}:${where.port}`;
    const fresh: OrgLink = { version, url, conn: null, error: null };
    this.orgs.set(org.orgID, fresh);
    await link?.conn?.close();
    try {
      const settings = this.deps.secrets !== null ? brokerSettingsOf(org, this.deps.secrets) : { user: org.user, password: org.password };
      const conn = await openCssConnection({
        ...this.deps.base,
        ...where,
        // One attempt per pass: the next pass tries again.
        firstConnectTimeoutMs: Math.min(this.deps.base.firstConnectTimeoutMs ?? ORG_CONNECT_MS, ORG_CONNECT_MS),
        ...(settings.user !== '' ? { username: settings.user, password: settings.password } : {}),
        // [ref mqttCommunication UpdateOrganization] an org's client is `A:{org}:CSS`.
        clientID: `A:${org.orgID}:CSS`,
        subscriptions: this.plain,
        onMessage: (topic, payload) => this.handler(topic, payload, org.orgID),
      }, this.deps.group, this.deps.log);
      if (this.closed || this.orgs.get(org.orgID) !== fresh) {
        await conn.close();
        return;
      }
      try {
        if (this.shareable.length > 0) await subscribeEvents(conn, this.shareable, this.deps.group, this.deps.log);
      } catch (err) {
        await conn.close();
        throw err;
      }
      fresh.conn = conn;
      this.deps.log.info({ org: org.orgID, broker: url }, "connected to the organization's own broker");
    } catch (err) {
      fresh.error = err instanceof Error ? err.message : String(err);
      this.deps.log.error({ org: org.orgID, broker: url, reason: fresh.error }, "could not connect to the organization's own broker; trying again later");
    }
  }
}
