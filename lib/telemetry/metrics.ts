/**
 * A node's Prometheus metrics (prom-client), on a registry of its own: several nodes in one
 * process (tests, an embedder) never share or clash. What the node does is counted as it
 * happens (the sync events, HTTP requests, store operations); what the store holds (objects,
 * deliveries, destinations) is counted at scrape time, from grouped queries cached for
 * `cacheMs`, so that a tight scrape interval cannot load the database.
 *
 * Labels are bounded (docs/adr/0023-sync-events-and-metric-labels.md): org at most, never an
 * object, destination or node id; routes by template; store operations by port method name.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { NotificationStatus, NotificationStore } from '../store/notification-types.js';
import type { Store } from '../store/types.js';
import type { SyncEvents } from '../sync/sync-events.js';
import { LiteHistogram, type LiteSeries } from './lite-histogram.js';
import { MetricsEvents } from './metrics-events.js';
import { measuredStore } from './store-timing.js';

/** Last-contact buckets of the destinations: seen within each age, and older. */
export const LAST_CONTACT_BUCKETS: readonly { label: string; ageMs: number }[] = [
  { label: '1m', ageMs: 60_000 },
  { label: '1h', ageMs: 3_600_000 },
  { label: '1d', ageMs: 86_400_000 },
];
export const OLDER_BUCKET = 'older';

/** The default time the store's counts are reused for, ms. */
export const DEFAULT_CACHE_MS = 5_000;

export interface MetricsSources {
  nodeType: 'CSS' | 'ESS';
  store: Pick<Store, 'countObjectsByStatus' | 'countDestinationsSeen'>;
  notifications: Pick<NotificationStore, 'countNotifications'>;
  /** Record statuses of a delivery this node makes (the sending side's): the deliveries gauge counts those. */
  deliveryStatuses: readonly NotificationStatus[];
  /** Record statuses of work queued toward a peer (a poll or a push serves them): the pending gauge. */
  pendingStatuses: readonly NotificationStatus[];
  /** How the store's counts are reused between scrapes, ms (DEFAULT_CACHE_MS). */
  cacheMs?: number;
  now?: () => number;
}

/** Live state a scrape reads from the node, each as it stands. */
export interface LiveGauges {
  /** Long-polls held open now (peer-signal.ts). */
  longPollWaiters?: () => number;
  /** MQTT: per org, whether the link (ESS) or the org's broker connection (CSS) is up; null when the node has none. */
  mqttConnected?: () => readonly { org: string; connected: boolean }[] | null;
  /** MQTT, CSS with the embedded broker: clients connected to it. */
  mqttClients?: () => number | null;
}

interface StoreCounts {
  objects: Awaited<ReturnType<Store['countObjectsByStatus']>>;
  notifications: Awaited<ReturnType<NotificationStore['countNotifications']>>;
  destinations: Awaited<ReturnType<Store['countDestinationsSeen']>>;
}

/** Seconds; from a fast SQLite commit to a slow poll answer. */
const REQUEST_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const STORE_BUCKETS = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5];
const DELIVERY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 86_400];

export class NodeMetrics {
  readonly registry = new Registry();
  /** The sync engine's observer: hand to node.ts's fan-out. */
  readonly events: SyncEvents;
  private readonly requestDuration: LiteHistogram<'route' | 'method' | 'code'>;
  private readonly storeDuration: LiteHistogram<'operation' | 'outcome'>;
  // The label sets are bounded, so their series are kept: an observation then looks up one string.
  private readonly requestSeries = new Map<string, LiteSeries>();
  private readonly storeSeries = new Map<string, LiteSeries>();
  private readonly now: () => number;
  private readonly cacheMs: number;
  private counts: { at: number; read: Promise<StoreCounts> } | null = null;
  private live: LiveGauges = {};

  constructor(private readonly sources: MetricsSources) {
    this.now = sources.now ?? Date.now;
    this.cacheMs = sources.cacheMs ?? DEFAULT_CACHE_MS;
    const registers = [this.registry];
    this.registry.setDefaultLabels({ node_type: sources.nodeType });
    collectDefaultMetrics({ register: this.registry });

    const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]): Counter<L> => new Counter({ name, help, labelNames, registers });
    this.events = new MetricsEvents(
      {
        dataBytes: counter('edgesync_data_bytes_total', 'Bytes of object data sent to or received from peers (durably stored, for received).', ['transport', 'direction', 'org']),
        objectsTransferred: counter('edgesync_objects_transferred_total', 'Object data transfers completed (last byte sent or stored).', ['transport', 'direction', 'org']),
        published: counter('edgesync_objects_published_total', 'Object instances published or updated by apps on this node.', ['org']),
        queued: counter('edgesync_deliveries_queued_total', 'Deliveries queued toward a peer (one per instance and peer).', ['org']),
        statusChanges: counter('edgesync_delivery_status_changes_total', 'Deliveries that moved to a delivery status.', ['org', 'delivery_status']),
        resent: counter('edgesync_notifications_resent_total', 'Notifications offered again by the resend timer.', ['org']),
        deliveryDuration: new Histogram({ name: 'edgesync_delivery_duration_seconds', help: 'From a delivery queued to the peer saying it has the object.', labelNames: ['org'], buckets: DELIVERY_BUCKETS, registers }),
        transferDuration: new Histogram({ name: 'edgesync_data_transfer_duration_seconds', help: 'From the first piece of a data transfer in several pieces to its last.', labelNames: ['transport', 'direction'], buckets: DELIVERY_BUCKETS, registers }),
      },
      this.now,
    );
    this.requestDuration = new LiteHistogram('edgesync_http_request_duration_seconds', 'HTTP requests (REST API, SPI), by route template.', ['route', 'method', 'code'], REQUEST_BUCKETS, registers);
    this.storeDuration = new LiteHistogram('edgesync_store_operation_duration_seconds', 'Store operations, by port method.', ['operation', 'outcome'], STORE_BUCKETS, registers);
    this.storeGauges(registers);
    this.liveGauges(registers);
  }

  /** Where the node's live state is read at scrape time; set once its parts exist. */
  watch(live: LiveGauges): void {
    this.live = { ...this.live, ...live };
  }

  /** One answered HTTP request. `route` is a template (`/api/v1/objects/{orgID}/…`) or `unmatched`. */
  observeRequest(route: string, method: string, status: number, seconds: number): void {
    const key = `${route} ${method} ${status}`;
    let series = this.requestSeries.get(key);
    if (series === undefined) {
      series = this.requestDuration.series({ route, method, code: String(status) });
      this.requestSeries.set(key, series);
    }
    series.observe(seconds);
  }

  /** `target` with its store operations timed (store-timing.ts). */
  measured<T extends object>(target: T): T {
    return measuredStore(target, (operation, seconds, failed) => {
      const key = failed ? `${operation} error` : operation;
      let series = this.storeSeries.get(key);
      if (series === undefined) {
        series = this.storeDuration.series({ operation, outcome: failed ? 'error' : 'ok' });
        this.storeSeries.set(key, series);
      }
      series.observe(seconds);
    });
  }

  /** The Prometheus text exposition, and its content type. */
  async scrape(): Promise<{ contentType: string; text: string }> {
    return { contentType: this.registry.contentType, text: await this.registry.metrics() };
  }

  /**
   * The store's counts, read again once `cacheMs` has passed since the last read began: the
   * gauges of one scrape (collected together) share one read.
   */
  private storeCounts(): Promise<StoreCounts> {
    const now = this.now();
    if (this.counts !== null && now - this.counts.at < this.cacheMs) return this.counts.read;
    const since = LAST_CONTACT_BUCKETS.map((b) => now - b.ageMs);
    const { store, notifications } = this.sources;
    const read = Promise.all([store.countObjectsByStatus(), notifications.countNotifications(), store.countDestinationsSeen(since)]).then(([objects, records, destinations]) => ({
      objects,
      notifications: records,
      destinations,
    }));
    const entry = { at: now, read };
    this.counts = entry;
    // A failed read is not kept: the next scrape tries again.
    void read.catch(() => {
      if (this.counts === entry) this.counts = null;
    });
    return read;
  }

  private storeGauges(registers: Registry[]): void {
    const { deliveryStatuses, pendingStatuses } = this.sources;
    // `this` inside collect() is the gauge.
    const storeCounts = (): Promise<StoreCounts> => this.storeCounts();
    new Gauge({
      name: 'edgesync_objects',
      help: 'Objects held, by org and status (read from the store at scrape time, cached briefly).',
      labelNames: ['org', 'status'],
      registers,
      async collect() {
        const c = await storeCounts();
        this.reset();
        for (const r of c.objects) this.set({ org: r.orgID, status: r.status }, r.count);
      },
    });
    new Gauge({
      name: 'edgesync_deliveries',
      help: 'Deliveries from this node (one per object and peer), by org and delivery status.',
      labelNames: ['org', 'delivery_status'],
      registers,
      async collect() {
        const c = await storeCounts();
        this.reset();
        for (const r of c.notifications) if (deliveryStatuses.includes(r.status)) this.inc({ org: r.orgID, delivery_status: r.deliveryStatus }, r.count);
      },
    });
    new Gauge({
      name: 'edgesync_notifications_pending',
      help: 'Notifications queued toward a peer and not yet answered, by org.',
      labelNames: ['org'],
      registers,
      async collect() {
        const c = await storeCounts();
        this.reset();
        for (const r of c.notifications) if (pendingStatuses.includes(r.status)) this.inc({ org: r.orgID }, r.count);
      },
    });
    new Gauge({
      name: 'edgesync_destinations',
      help: 'Registered destinations (ESS nodes), by org and how long ago they were last in contact: within 1m, 1h, 1d, or older (each bucket exclusive).',
      labelNames: ['org', 'last_contact'],
      registers,
      async collect() {
        const c = await storeCounts();
        this.reset();
        for (const d of c.destinations) {
          let newer = 0;
          LAST_CONTACT_BUCKETS.forEach((b, i) => {
            const seen = d.seen[i] ?? 0;
            this.set({ org: d.orgID, last_contact: b.label }, seen - newer);
            newer = seen;
          });
          this.set({ org: d.orgID, last_contact: OLDER_BUCKET }, d.total - newer);
        }
      },
    });
  }

  private liveGauges(registers: Registry[]): void {
    // `this` inside collect() is the gauge.
    const live = (): LiveGauges => this.live;
    new Gauge({
      name: 'edgesync_long_poll_waiters',
      help: 'Long-polls of ESS nodes held open now.',
      registers,
      collect() {
        this.set(live().longPollWaiters?.() ?? 0);
      },
    });
    new Gauge({
      name: 'edgesync_mqtt_connected',
      help: 'MQTT: 1 while the link to the broker (per org on a CSS with org brokers) is up, 0 while it is down; absent without MQTT.',
      labelNames: ['org'],
      registers,
      collect() {
        this.reset();
        for (const c of live().mqttConnected?.() ?? []) this.set({ org: c.org }, c.connected ? 1 : 0);
      },
    });
    new Gauge({
      name: 'edgesync_mqtt_broker_clients',
      help: 'MQTT clients connected to the embedded broker of a CSS (0 without one).',
      registers,
      collect() {
        this.reset();
        const n = live().mqttClients?.() ?? null;
        if (n !== null) this.set(n);
      },
    });
  }
}
