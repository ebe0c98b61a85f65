/**
 * The node's metrics (lib/telemetry/metrics.ts): a registry per node, labels bounded (org at
 * most, never an object or a peer), the store's counts read at scrape time through a short
 * cache, the durations of deliveries and transfers, and the timing of store operations.
 */
import { describe, expect, test } from '@jest/globals';
import { register as globalRegistry } from 'prom-client';
import type { NotificationCount } from '../../../lib/store/notification-types.js';
import type { DestinationsSeenCount, ObjectStatusCount } from '../../../lib/store/types.js';
import type { DeliveryRef, PeerRef } from '../../../lib/sync/sync-events.js';
import { NodeMetrics, type MetricsSources } from '../../../lib/telemetry/metrics.js';
import { MetricsEvents, type EventInstruments } from '../../../lib/telemetry/metrics-events.js';
import { measuredStore } from '../../../lib/telemetry/store-timing.js';

class FakeClock {
  t = 1_800_000_000_000;
  now = (): number => this.t;
}

/** A store whose counts are set by the test, counting how often it is asked. */
class FakeCounts {
  objects: ObjectStatusCount[] = [];
  records: NotificationCount[] = [];
  destinations: DestinationsSeenCount[] = [];
  reads = 0;
  fail = false;
  async countObjectsByStatus(): Promise<ObjectStatusCount[]> {
    this.reads++;
    if (this.fail) throw new Error('store down');
    return Promise.resolve(this.objects);
  }
  countNotifications(): Promise<NotificationCount[]> {
    return Promise.resolve(this.records);
  }
  countDestinationsSeen(): Promise<DestinationsSeenCount[]> {
    return Promise.resolve(this.destinations);
  }
}

function metricsOn(counts: FakeCounts, clock: FakeClock, more: Partial<MetricsSources> = {}): NodeMetrics {
  return new NodeMetrics({
    nodeType: 'CSS',
    store: counts,
    notifications: counts,
    deliveryStatuses: ['update', 'receivedByDest', 'consumedByDest'],
    pendingStatuses: ['update'],
    cacheMs: 5_000,
    now: clock.now,
    ...more,
  });
}

/**
 * The samples of one metric family, as `labels → value`, from the text exposition; every sample
 * carries the node's `node_type="CSS"` label (checked), left out of the keys.
 */
function samples(text: string, name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = new RegExp(`^${name}\\{(.*)\\} (\\S+)$`).exec(line);
    if (m === null) continue;
    const labels = m[1]!.split(/,(?=\w+=")/);
    expect(labels).toContain('node_type="CSS"');
    out.set(`{${labels.filter((l) => l !== 'node_type="CSS"').join(',')}}`, Number(m[2]));
  }
  return out;
}

const ref = (objectID: string, orgID = 'org1'): DeliveryRef => ({ orgID, objectType: 'model', objectID, instanceID: 7n });
const peer = (peerID: string): PeerRef => ({ peerType: 'edge', peerID });

describe('the node metrics', () => {
  test('each node has its own registry: two nodes in one process do not clash, and the global registry stays empty', async () => {
    const clock = new FakeClock();
    const a = metricsOn(new FakeCounts(), clock);
    const b = metricsOn(new FakeCounts(), clock);
    a.events.objectPublished?.(ref('m1'), { destinations: 1 });
    expect(samples((await a.scrape()).text, 'edgesync_objects_published_total').get('{org="org1"}')).toBe(1);
    expect(samples((await b.scrape()).text, 'edgesync_objects_published_total').size).toBe(0);
    expect(await globalRegistry.metrics()).not.toContain('edgesync_');
  });

  test('the text is Prometheus exposition: a TYPE line for each family, process metrics included', async () => {
    const { text, contentType } = await metricsOn(new FakeCounts(), new FakeClock()).scrape();
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    const types = new Map<string, string>();
    for (const line of text.split('\n')) {
      const m = /^# TYPE (\S+) (\S+)$/.exec(line);
      if (m !== null) types.set(m[1]!, m[2]!);
    }
    expect(types.get('edgesync_objects')).toBe('gauge');
    expect(types.get('edgesync_data_bytes_total')).toBe('counter');
    expect(types.get('edgesync_delivery_duration_seconds')).toBe('histogram');
    expect(types.get('edgesync_http_request_duration_seconds')).toBe('histogram');
    expect(types.get('edgesync_store_operation_duration_seconds')).toBe('histogram');
    expect(types.get('process_cpu_seconds_total')).toBe('counter');
  });

  test('events of many objects and peers make series per org only, never per object or peer', async () => {
    const m = metricsOn(new FakeCounts(), new FakeClock());
    for (let i = 0; i < 50; i++) {
      const obj = ref(`object-${i}`, i % 2 === 0 ? 'org1' : 'org2');
      m.events.deliveryQueued?.(obj, peer(`node-${i}`));
      m.events.dataSent?.(obj, peer(`node-${i}`), 'http', 100, 0, 100);
      m.events.deliveryStatus?.(obj, peer(`node-${i}`), 'delivered');
    }
    const { text } = await m.scrape();
    expect(text).not.toMatch(/object-\d|node-\d/);
    expect(samples(text, 'edgesync_data_bytes_total')).toEqual(
      new Map([
        ['{transport="http",direction="sent",org="org1"}', 2500],
        ['{transport="http",direction="sent",org="org2"}', 2500],
      ]),
    );
    expect(samples(text, 'edgesync_objects_transferred_total').get('{transport="http",direction="sent",org="org1"}')).toBe(25);
    expect(samples(text, 'edgesync_delivery_status_changes_total').get('{org="org2",delivery_status="delivered"}')).toBe(25);
  });

  test('a delivery is timed from queued to delivered; a transfer in pieces from its first piece to its last', async () => {
    const clock = new FakeClock();
    const m = metricsOn(new FakeCounts(), clock);
    m.events.deliveryQueued?.(ref('m1'), peer('n1'));
    clock.t += 2_000;
    m.events.dataReceived?.(ref('m1'), peer('n1'), 'mqtt', 10, 0, 30);
    clock.t += 1_000;
    m.events.dataReceived?.(ref('m1'), peer('n1'), 'mqtt', 10, 10, 30);
    clock.t += 1_000;
    m.events.dataReceived?.(ref('m1'), peer('n1'), 'mqtt', 10, 20, 30);
    m.events.deliveryStatus?.(ref('m1'), peer('n1'), 'delivered');
    // A later `consumed` of the same delivery is not timed twice.
    m.events.deliveryStatus?.(ref('m1'), peer('n1'), 'consumed');
    const { text } = await m.scrape();
    expect(samples(text, 'edgesync_delivery_duration_seconds_sum').get('{org="org1"}')).toBe(4);
    expect(samples(text, 'edgesync_delivery_duration_seconds_count').get('{org="org1"}')).toBe(1);
    expect(samples(text, 'edgesync_data_transfer_duration_seconds_sum').get('{transport="mqtt",direction="received"}')).toBe(2);
    expect(samples(text, 'edgesync_objects_transferred_total').get('{transport="mqtt",direction="received",org="org1"}')).toBe(1);
  });

  test('what is kept to time deliveries stays bounded: the oldest is forgotten', () => {
    const inc = (): void => undefined;
    const fake = { inc, observe: inc } as unknown as EventInstruments[keyof EventInstruments];
    const instruments = Object.fromEntries(['dataBytes', 'objectsTransferred', 'published', 'queued', 'statusChanges', 'resent', 'deliveryDuration', 'transferDuration'].map((k) => [k, fake])) as unknown as EventInstruments;
    const events = new MetricsEvents(instruments, Date.now, 3);
    for (let i = 0; i < 100; i++) {
      events.deliveryQueued(ref(`m${i}`), peer('n1'));
      events.dataSent(ref(`m${i}`), peer('n1'), 'http', 1, 0, 10);
    }
    expect(events.tracked).toBe(6);
  });

  test("the store's counts are read at scrape time, once per scrape, and reused for the cache time", async () => {
    const clock = new FakeClock();
    const counts = new FakeCounts();
    const m = metricsOn(counts, clock);
    counts.objects = [{ orgID: 'org1', status: 'ready', count: 3 }];
    counts.records = [
      { orgID: 'org1', status: 'update', deliveryStatus: 'delivering', count: 2 },
      { orgID: 'org1', status: 'receivedByDest', deliveryStatus: 'delivered', count: 5 },
      // Not a delivery of this node (an upstream record): left out of the deliveries.
      { orgID: 'org1', status: 'receivedpending', deliveryStatus: 'pending', count: 9 },
    ];
    counts.destinations = [{ orgID: 'org1', total: 10, seen: [4, 6, 9] }];
    let { text } = await m.scrape();
    expect(counts.reads).toBe(1);
    expect(samples(text, 'edgesync_objects').get('{org="org1",status="ready"}')).toBe(3);
    expect(samples(text, 'edgesync_deliveries')).toEqual(
      new Map([
        ['{org="org1",delivery_status="delivering"}', 2],
        ['{org="org1",delivery_status="delivered"}', 5],
      ]),
    );
    expect(samples(text, 'edgesync_notifications_pending').get('{org="org1"}')).toBe(2);
    // Exclusive buckets: 4 within a minute, 2 more within an hour, 3 more within a day, 1 older.
    expect(samples(text, 'edgesync_destinations')).toEqual(
      new Map([
        ['{org="org1",last_contact="1m"}', 4],
        ['{org="org1",last_contact="1h"}', 2],
        ['{org="org1",last_contact="1d"}', 3],
        ['{org="org1",last_contact="older"}', 1],
      ]),
    );

    counts.objects = [{ orgID: 'org1', status: 'ready', count: 4 }];
    clock.t += 4_000;
    ({ text } = await m.scrape());
    expect(counts.reads).toBe(1);
    expect(samples(text, 'edgesync_objects').get('{org="org1",status="ready"}')).toBe(3);
    clock.t += 1_000;
    ({ text } = await m.scrape());
    expect(counts.reads).toBe(2);
    expect(samples(text, 'edgesync_objects').get('{org="org1",status="ready"}')).toBe(4);
  });

  test('a failed read of the store fails that scrape only; the next one reads again', async () => {
    const clock = new FakeClock();
    const counts = new FakeCounts();
    const m = metricsOn(counts, clock);
    counts.fail = true;
    await expect(m.scrape()).rejects.toThrow('store down');
    counts.fail = false;
    await expect(m.scrape()).resolves.toMatchObject({ text: expect.stringContaining('edgesync_objects') });
    expect(counts.reads).toBe(2);
  });

  test('requests are counted by route template, method and status', async () => {
    const m = metricsOn(new FakeCounts(), new FakeClock());
    m.observeRequest('/api/v1/objects/{orgID}/{objectType}/{objectID}', 'PUT', 204, 0.01);
    m.observeRequest('unmatched', 'GET', 404, 0.001);
    const count = samples((await m.scrape()).text, 'edgesync_http_request_duration_seconds_count');
    expect(count.get('{route="/api/v1/objects/{orgID}/{objectType}/{objectID}",method="PUT",code="204"}')).toBe(1);
    expect(count.get('{route="unmatched",method="GET",code="404"}')).toBe(1);
  });

  test('the request and store histograms are written as Prometheus histograms: cumulative buckets, +Inf, sum and count', async () => {
    const m = metricsOn(new FakeCounts(), new FakeClock());
    m.observeRequest('/metrics', 'GET', 200, 0.002);
    m.observeRequest('/metrics', 'GET', 200, 0.3);
    m.observeRequest('/metrics', 'GET', 200, 120);
    const { text } = await m.scrape();
    const buckets = samples(text, 'edgesync_http_request_duration_seconds_bucket');
    const at = (le: string): number | undefined => buckets.get(`{route="/metrics",method="GET",code="200",le="${le}"}`);
    expect([at('0.001'), at('0.005'), at('0.25'), at('0.5'), at('60'), at('+Inf')]).toEqual([0, 1, 1, 2, 2, 3]);
    expect(samples(text, 'edgesync_http_request_duration_seconds_sum').get('{route="/metrics",method="GET",code="200"}')).toBeCloseTo(120.302);
    expect(samples(text, 'edgesync_http_request_duration_seconds_count').get('{route="/metrics",method="GET",code="200"}')).toBe(3);
  });
});

describe('the store timing proxy', () => {
  class Store {
    #rows = new Map<string, number>([['a', 1]]);
    get(key: string): Promise<number | undefined> {
      return Promise.resolve(this.#rows.get(key));
    }
    fail(): Promise<never> {
      return Promise.reject(new Error('broken'));
    }
    name(): string {
      return 'sqlite';
    }
  }

  test('times each asynchronous method under its name, with its outcome, and keeps the store working', async () => {
    const seen: string[] = [];
    const store = measuredStore(new Store(), (op, seconds, failed) => seen.push(`${op}:${failed ? 'error' : 'ok'}:${seconds >= 0}`));
    expect(await store.get('a')).toBe(1);
    await expect(store.fail()).rejects.toThrow('broken');
    expect(store.name()).toBe('sqlite');
    expect(store).toBeInstanceOf(Store);
    await new Promise((r) => setImmediate(r));
    expect(seen).toEqual(['get:ok:true', 'fail:error:true']);
    // One wrapper per method, not one per call.
    expect(store.get).toBe(store.get);
  });
});
