/**
 * `/metrics` on real processes: a CSS and an ESS syncing over HTTP. The CSS serves its metrics
 * on the API listener to the sync admin only (401 without credentials, 403 to an org admin);
 * the ESS also on its METRICS_PORT listener, without credentials. A publish shows in the
 * figures: objects by status, bytes sent over HTTP, deliveries delivered, requests by route
 * template; the text is Prometheus' exposition format.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { freePort } from '../helpers/mosquitto.js';
import { BIN, raw, Teardown } from '../helpers/node-process.js';
import { eventuallyWithin, ORG, startPair, type Pair } from '../helpers/sync-pair.js';

jest.setTimeout(60_000);

const run = promisify(execFile);
const eventually = eventuallyWithin(20_000);

/** `name{labels}` with the labels in name order: prom-client writes a family's default label first or last. */
function sampleKey(name: string, labels: readonly string[]): string {
  return `${name}{${[...labels].sort().join(',')}}`;
}

/** Sample values of the text exposition, by sampleKey. */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^(\w+)\{(.*)\} (\S+)$/.exec(line);
    if (m !== null) out.set(sampleKey(m[1]!, m[2]!.split(/,(?=\w+=")/)), Number(m[3]));
  }
  return out;
}

/** The value of one sample (labels as `a="x",b="y"`, the node's own added), 0 when absent: a counter or gauge not yet set. */
const value = (samples: Map<string, number>, name: string, labels: string, node: 'CSS' | 'ESS' = 'CSS'): number =>
  samples.get(sampleKey(name, [...labels.split(/,(?=\w+=")/), `node_type="${node}"`])) ?? 0;

describe('/metrics of a CSS and an ESS syncing over HTTP', () => {
  const t = new Teardown();
  let p: Pair;
  let essMetricsPort: number;

  const scrapeCss = async (): Promise<Map<string, number>> => {
    const res = await raw(p.css, 'GET', '/metrics');
    expect(res.status).toBe(200);
    return parse(res.text);
  };
  const scrapeEss = async (): Promise<Map<string, number>> => {
    const res = await fetch(`http://127.0.0.1:${essMetricsPort}/metrics`);
    expect(res.status).toBe(200);
    return parse(await res.text());
  };

  beforeAll(async () => {
    essMetricsPort = await freePort();
    p = await startPair(t, { deadlineMs: 20_000, env: { METRICS_PORT: String(essMetricsPort) } });
    await run(process.execPath, [BIN, 'users', 'add', `${ORG}/orgadmin`, '--type', 'admin', '--org', ORG, '--secret', 'oa', '--persistence-root-path', p.css.root]);
  });
  afterAll(() => t.run());

  test('the text is the Prometheus exposition format: TYPE and HELP for each family', async () => {
    const res = await raw(p.css, 'GET', '/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const types = new Map<string, string>();
    for (const line of res.text.split('\n')) {
      const m = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
      if (m !== null) types.set(m[1]!, m[2]!);
    }
    for (const [name, type] of Object.entries({
      edgesync_objects: 'gauge',
      edgesync_deliveries: 'gauge',
      edgesync_destinations: 'gauge',
      edgesync_notifications_pending: 'gauge',
      edgesync_data_bytes_total: 'counter',
      edgesync_notifications_resent_total: 'counter',
      edgesync_delivery_duration_seconds: 'histogram',
      edgesync_http_request_duration_seconds: 'histogram',
      edgesync_store_operation_duration_seconds: 'histogram',
      edgesync_long_poll_waiters: 'gauge',
      process_resident_memory_bytes: 'gauge',
    })) {
      expect([name, types.get(name)]).toEqual([name, type]);
      expect(res.text).toContain(`# HELP ${name} `);
    }
    // Every sample line is `name{labels} value` with a number.
    for (const line of res.text.split('\n').filter((l) => l !== '' && !l.startsWith('#'))) expect(line).toMatch(/^[a-zA-Z_:][\w:]*(\{.*\})? -?(\d|NaN|\+Inf)/);
  });

  test('the CSS answers 401 without (valid) credentials, 403 to an org admin, 200 to the sync admin', async () => {
    const none = await raw(p.css, 'GET', '/metrics', { auth: null });
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Basic realm="edgesync metrics"/);
    expect((await raw(p.css, 'GET', '/metrics', { auth: { user: p.css.admin!.appKey, pass: 'wrong' } })).status).toBe(401);
    await eventually('the org admin known', () => raw(p.css, 'GET', '/metrics', { auth: { user: `${ORG}/orgadmin`, pass: 'oa' } }).then((r) => r.status), (s) => s === 403);
    expect((await raw(p.css, 'GET', '/metrics')).status).toBe(200);
  });

  test('a publish shows: objects by status, bytes sent over HTTP, deliveries delivered, requests by route template', async () => {
    const before = await scrapeCss();
    const data = 'metrics are counted';
    await p.onCss.updateObject({ objectType: 'model', objectID: 'metered', destinationType: 'edge', destinationID: 'n1' }, data);
    await eventually('delivered to the ESS', () => p.onCss.getObjectDestinations('model', 'metered'), (d) => d.some((x) => x.status === 'delivered'));

    const after = await scrapeCss();
    expect(value(after, 'edgesync_data_bytes_total', `transport="http",direction="sent",org="${ORG}"`) - value(before, 'edgesync_data_bytes_total', `transport="http",direction="sent",org="${ORG}"`)).toBe(data.length);
    expect(value(after, 'edgesync_delivery_status_changes_total', `org="${ORG}",delivery_status="delivered"`)).toBeGreaterThan(value(before, 'edgesync_delivery_status_changes_total', `org="${ORG}",delivery_status="delivered"`));
    expect(value(after, 'edgesync_objects_published_total', `org="${ORG}"`)).toBe(value(before, 'edgesync_objects_published_total', `org="${ORG}"`) + 1);
    expect(value(after, 'edgesync_delivery_duration_seconds_count', `org="${ORG}"`)).toBeGreaterThanOrEqual(1);
    const put = 'route="/api/v1/objects/{orgID}/{objectType}/{objectID}",method="PUT",code="204"';
    expect(value(after, 'edgesync_http_request_duration_seconds_count', put)).toBe(value(before, 'edgesync_http_request_duration_seconds_count', put) + 1);
    expect(value(after, 'edgesync_http_request_duration_seconds_count', 'route="/spi/v1/objects",method="GET",code="200"')).toBeGreaterThan(0);
    expect(value(after, 'edgesync_store_operation_duration_seconds_count', 'operation="putObject",outcome="ok"')).toBeGreaterThan(0);
    // Read from the store at scrape time, cached a few seconds.
    const gauges = await eventually(
      'the store gauges',
      scrapeCss,
      (s) => value(s, 'edgesync_objects', `org="${ORG}",status="ready"`) >= 1 && value(s, 'edgesync_deliveries', `org="${ORG}",delivery_status="delivered"`) >= 1,
    );
    expect(value(gauges, 'edgesync_destinations', `org="${ORG}",last_contact="1m"`)).toBe(1);
    // No label names an object or a destination.
    expect([...after.keys()].some((k) => k.includes('metered') || k.includes('"n1"'))).toBe(false);
  });

  test('the ESS counts what it received, on its METRICS_PORT listener without credentials', async () => {
    await p.onCss.updateObject({ objectType: 'model', objectID: 'to-edge', destinationType: 'edge' }, 'bytes for the edge');
    const ess = await eventually('received on the ESS', scrapeEss, (s) => value(s, 'edgesync_objects', `org="${ORG}",status="completelyReceived"`, 'ESS') >= 1);
    expect(value(ess, 'edgesync_data_bytes_total', `transport="http",direction="received",org="${ORG}"`, 'ESS')).toBeGreaterThanOrEqual('bytes for the edge'.length);
    expect((await fetch(`http://127.0.0.1:${essMetricsPort}/other`)).status).toBe(404);
  });
});
