/**
 * Traces of a delivery (issue #15), on real processes: a CSS and an HTTP ESS export to an OTLP/HTTP
 * receiver (a test double: no collector runs here). One object published, received and consumed
 * makes one trace, the same id on both nodes though nothing carries it on the wire: the CSS's
 * publication span, its span for the ESS (ending at consumed), the ESS's own span; and that trace
 * id in the story lines of the delivery. Without an endpoint: no tracing, no `traceId`.
 */
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { deliveryTraceId } from '../../lib/model/log-fields.js';
import { startManaged, Teardown, type RunningProcess } from '../helpers/node-process.js';
import { linesOf, type LogLine } from '../helpers/log-lines.js';
import { startOtlpReceiverDouble, type OtlpReceiverDouble, type ReceivedSpan } from '../helpers/otlp-receiver-double.js';
import { eventuallyWithin, ORG, startPair, type Pair } from '../helpers/sync-pair.js';

jest.setTimeout(60_000);

const DEADLINE_MS = 20_000;
/** Span kinds as OTLP numbers them (the API's enum starts one lower, at INTERNAL). */
const OTLP_PRODUCER = 4;
const OTLP_CONSUMER = 5;
const eventually = eventuallyWithin(DEADLINE_MS);



/** Waits for a line with this message (about this object, when given). */
async function logged(node: RunningProcess, msg: string, object?: string): Promise<LogLine> {
  const match = (l: LogLine): boolean => l.msg === msg && (object === undefined || l.object === object);
  const line = await eventually(`log line "${msg}" about ${object ?? 'the node'}`, () => Promise.resolve(linesOf(node).find(match) ?? null), (l) => l !== null, () => node.output());
  return line!;
}

describe('delivery traces exported over OTLP', () => {
  const t = new Teardown();
  let otlp: OtlpReceiverDouble;
  let p: Pair;
  beforeAll(async () => {
    otlp = await startOtlpReceiverDouble();
    t.add(() => otlp.close());
    // A short batch delay: spans leave within the test's patience, not after the default 5 s.
    const env = { LOG_LEVEL: 'info', OTEL_EXPORTER_OTLP_ENDPOINT: otlp.endpoint, OTEL_BSP_SCHEDULE_DELAY: '100' };
    p = await startPair(t, { deadlineMs: DEADLINE_MS, cssEnv: env, env });
  });
  afterAll(() => t.run());

  test('publish, deliver and consume make one trace across the CSS and the ESS, its id in the delivery\'s log lines', async () => {
    await p.onCss.updateObject({ objectType: 'model', objectID: 'm1', destinationType: 'edge', destinationID: 'n1' }, 'hello edge');
    const instance = (await p.onCss.getObject('model', 'm1'))!.instanceID;
    const traceId = deliveryTraceId(ORG, 'model', 'm1', instance);
    await eventually('m1 on the ESS', () => p.onEss.getObjectStatus('model', 'm1'), (s) => s === 'completelyReceived');
    await p.onEss.markObjectConsumed('model', 'm1');

    const key = `${ORG}/model/m1`;
    for (const msg of ['object published', 'object delivered', 'object consumed by destination']) expect((await logged(p.css, msg, key)).traceId).toBe(traceId);
    for (const msg of ['object received from the CSS', 'object consumed by the app']) expect((await logged(p.ess, msg, key)).traceId).toBe(traceId);
    // Lines about the node, not about a delivery, carry none.
    expect(linesOf(p.css).find((l) => l.msg === 'ESS registered')?.traceId).toBeUndefined();

    const inTrace = (service: string, name: string, done?: (s: ReceivedSpan) => boolean) => (spans: readonly ReceivedSpan[]) =>
      spans.find((s) => s.traceId === traceId && s.resource['service.name'] === service && s.name === name && (done?.(s) ?? true));
    const publish = await otlp.waitFor(inTrace('edgesync-css', 'publish'));
    const deliver = await otlp.waitFor(inTrace('edgesync-css', 'deliver', (s) => s.attributes['edgesync.status'] === 'consumed'));
    const receive = await otlp.waitFor(inTrace('edgesync-ess', 'receive', (s) => s.attributes['edgesync.status'] === 'consumed'));

    const object = { 'edgesync.org': ORG, 'edgesync.object.type': 'model', 'edgesync.object.id': 'm1', 'edgesync.object.instance': instance.toString() };
    expect(publish.parentSpanId).toBe('');
    expect(publish.attributes).toMatchObject(object);
    expect(deliver.parentSpanId).toBe(publish.spanId);
    expect(deliver.kind).toBe(OTLP_PRODUCER);
    expect(deliver.attributes).toMatchObject({ ...object, 'edgesync.peer.type': 'edge', 'edgesync.peer.id': 'n1', 'edgesync.transport': 'http', 'edgesync.bytes': 10 });
    expect(deliver.events.map((e) => e.name)).toContain('delivered');
    expect(deliver.endMs).toBeGreaterThanOrEqual(deliver.startMs);
    expect(receive.parentSpanId).toBe(publish.spanId);
    expect(receive.kind).toBe(OTLP_CONSUMER);
    expect(receive.attributes).toMatchObject({ ...object, 'edgesync.peer.type': 'Cloud', 'edgesync.peer.id': 'Cloud', 'edgesync.transport': 'http', 'edgesync.bytes': 10 });
    expect(receive.events.map((e) => e.name)).toContain('delivered');
    expect(receive.resource['edgesync.node']).toBe(`${ORG}/edge/n1`);

  });

  test('a collector in trouble costs one WARN per outage and never a delivery', async () => {
    const warnings = (): LogLine[] => linesOf(p.css).filter((l) => l.msg.startsWith('cannot export traces'));
    // 400 is not retried by the exporter: each batch fails at once.
    otlp.failWith(400);
    for (const id of ['d1', 'd2']) {
      await p.onCss.updateObject({ objectType: 'model', objectID: id, destinationType: 'edge', destinationID: 'n1' }, id);
      await eventually(`${id} on the ESS`, () => p.onEss.getObjectStatus('model', id), (s) => s === 'completelyReceived');
    }
    await eventually('the WARN', () => Promise.resolve(warnings().length), (n) => n > 0, () => p.css.output());
    otlp.failWith(null);
    await p.onCss.updateObject({ objectType: 'model', objectID: 'd3', destinationType: 'edge', destinationID: 'n1' }, 'd3');
    await otlp.waitFor((spans) => spans.find((s) => s.attributes['edgesync.object.id'] === 'd3'));
    await logged(p.css, 'exporting traces again');
    expect(warnings()).toHaveLength(1);
    expect(warnings()[0]?.level).toBe(40);
  });

  test('without an endpoint nothing is traced and the story lines carry no trace id', async () => {
    const plain = await startManaged(t, { mode: 'css', env: { LOG_LEVEL: 'info' } });
    const client = await plain.client({ orgID: ORG });
    t.add(() => Promise.resolve(client.close()));
    await client.putOrganization({ orgID: ORG });
    await client.updateObject({ objectType: 'model', objectID: 'm2', destinationType: 'edge' }, 'untraced');
    const line = await logged(plain, 'object published', `${ORG}/model/m2`);
    expect(line.instance).toMatch(/^\d+$/);
    expect(line.traceId).toBeUndefined();
    expect(linesOf(plain).filter((l) => l.component === 'tracing')).toEqual([]);
    expect(otlp.spans.filter((s) => s.attributes['edgesync.object.id'] === 'm2')).toEqual([]);
  });
});
