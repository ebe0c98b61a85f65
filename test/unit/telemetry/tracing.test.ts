import { createHash } from 'node:crypto';
import { beforeEach, describe, expect, it } from '@jest/globals';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { deliveryTraceId, objectLogFields } from '../../../lib/model/log-fields.js';
import { traceIdMixin, type Logger } from '../../../lib/log/logger.js';
import { DeliveryIdGenerator, DeliveryTraces, publicationSpanId } from '../../../lib/telemetry/tracing-observer.js';
import { OutageReportingExporter, parseOtlpHeaders, startTracing, tracesUrl, tracingEnabled, type TracingConfig } from '../../../lib/telemetry/tracing.js';
import type { DeliveryRef } from '../../../lib/sync/sync-events.js';

const INSTANCE = 1733400000123456789n; // beyond 2^53: must survive exactly
const obj: DeliveryRef = { orgID: 'org1', objectType: 'model', objectID: 'm1', instanceID: INSTANCE };
const cam = { peerType: 'camera', peerID: 'c1' };
const cloud = { peerType: 'Cloud', peerID: 'Cloud' };

/** A tracer whose spans land in memory, and a clock the test moves. */
function harness(opts: { ess?: boolean; maxOpen?: number; maxOpenMs?: number } = {}) {
  const exporter = new InMemorySpanExporter();
  const ids = new DeliveryIdGenerator();
  const provider = new BasicTracerProvider({ idGenerator: ids, spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const clock = { now: 1_700_000_000_000 };
  const traces = new DeliveryTraces(provider.getTracer('test'), ids, { ...opts, transport: 'http', now: () => clock.now });
  const spans = (): ReadableSpan[] => exporter.getFinishedSpans();
  const named = (name: string): ReadableSpan[] => spans().filter((s) => s.name === name);
  return { traces, clock, spans, named };
}

const ms = (s: ReadableSpan, which: 'startTime' | 'endTime'): number => s[which][0] * 1000 + s[which][1] / 1e6;

describe('the trace id of a delivery', () => {
  it('is the first 16 bytes of SHA-256 of org/type/id/instance, so every node and tool computes the same', () => {
    const expected = createHash('sha256').update(`org1/model/m1/${INSTANCE}`).digest().subarray(0, 16).toString('hex');
    expect(deliveryTraceId('org1', 'model', 'm1', INSTANCE)).toBe(expected);
    expect(deliveryTraceId('org1', 'model', 'm1', INSTANCE.toString())).toBe(expected);
    expect(expected).toMatch(/^[0-9a-f]{32}$/);
  });

  it('differs between instances of one object and between objects', () => {
    const a = deliveryTraceId('org1', 'model', 'm1', INSTANCE);
    expect(deliveryTraceId('org1', 'model', 'm1', INSTANCE + 1n)).not.toBe(a);
    expect(deliveryTraceId('org1', 'model', 'm2', INSTANCE)).not.toBe(a);
    expect(deliveryTraceId('org2', 'model', 'm1', INSTANCE)).not.toBe(a);
  });
});

describe('log lines of a delivery', () => {
  const mixin = traceIdMixin();

  it('carry the trace id when they name the object and its instance', () => {
    const fields = objectLogFields('org1', 'model', 'm1', { type: 'camera', id: 'c1' }, INSTANCE);
    expect(fields).toEqual({ object: 'org1/model/m1', destination: 'camera/c1', instance: INSTANCE.toString() });
    expect(mixin(fields)).toEqual({ traceId: deliveryTraceId('org1', 'model', 'm1', INSTANCE) });
  });

  it('carry none when the instance is not named, or the line is about something else', () => {
    expect(mixin(objectLogFields('org1', 'model', 'm1'))).toEqual({});
    expect(mixin({ css: 'http://127.0.0.1:1' })).toEqual({});
    expect(mixin({ object: 'not-an-object-key', instance: '1' })).toEqual({});
  });
});

describe('delivery spans', () => {
  let h: ReturnType<typeof harness>;
  beforeEach(() => {
    h = harness();
  });

  it('a publication is a root span with the derived trace and span ids', () => {
    h.traces.objectPublished(obj, { destinations: 2 });
    const [publish] = h.named('publish');
    expect(publish?.spanContext().traceId).toBe(deliveryTraceId('org1', 'model', 'm1', INSTANCE));
    expect(publish?.spanContext().spanId).toBe(publicationSpanId(obj));
    expect(publish?.parentSpanContext).toBeUndefined();
    expect(publish?.attributes).toMatchObject({ 'edgesync.org': 'org1', 'edgesync.object.instance': INSTANCE.toString(), 'edgesync.destinations': 2 });
  });

  it('an instance heard of as published twice still has one publication span (its id is derived)', () => {
    h.traces.objectPublished(obj, { destinations: 1 });
    h.traces.objectPublished(obj, { destinations: 1 });
    expect(h.named('publish')).toHaveLength(1);
  });

  it('each destination gets one span, child of the publication, from queued to consumed, with delivered as an event', () => {
    h.traces.objectPublished(obj, { destinations: 1 });
    const queued = h.clock.now;
    h.traces.deliveryQueued(obj, cam);
    h.clock.now += 100;
    h.traces.dataSent(obj, cam, 'http', 600, 0, 1000);
    h.traces.dataSent(obj, cam, 'http', 400, 600, 1000);
    h.clock.now += 100;
    h.traces.deliveryStatus(obj, cam, 'delivered');
    expect(h.named('deliver')).toHaveLength(0); // not over until consumed
    h.clock.now += 300;
    h.traces.deliveryStatus(obj, cam, 'consumed');

    const [deliver] = h.named('deliver');
    expect(deliver?.kind).toBe(SpanKind.PRODUCER);
    expect(deliver?.spanContext().traceId).toBe(deliveryTraceId('org1', 'model', 'm1', INSTANCE));
    expect(deliver?.parentSpanContext?.spanId).toBe(publicationSpanId(obj));
    expect(deliver?.spanContext().spanId).not.toBe(publicationSpanId(obj));
    expect(deliver?.attributes).toEqual({
      'edgesync.org': 'org1',
      'edgesync.object.type': 'model',
      'edgesync.object.id': 'm1',
      'edgesync.object.instance': INSTANCE.toString(),
      'edgesync.peer.type': 'camera',
      'edgesync.peer.id': 'c1',
      'edgesync.transport': 'http',
      'edgesync.bytes': 1000,
      'edgesync.status': 'consumed',
    });
    expect(deliver?.events.map((e) => e.name)).toEqual(['delivered']);
    expect(ms(deliver!, 'startTime')).toBe(queued);
    expect(ms(deliver!, 'endTime')).toBe(queued + 500);
    expect(h.traces.openCount).toBe(0);
  });

  it('an error ends the delivery with an error status carrying the reason', () => {
    h.traces.deliveryQueued(obj, cam);
    h.traces.deliveryStatus(obj, cam, 'error', 'data check failed');
    const [deliver] = h.named('deliver');
    expect(deliver?.status).toEqual({ code: SpanStatusCode.ERROR, message: 'data check failed' });
  });

  it('a delivery first seen at a later step (another process queued it, or before a restart) starts there and says so', () => {
    h.traces.deliveryStatus(obj, cam, 'delivered');
    h.clock.now += 50;
    h.traces.deliveryStatus(obj, cam, 'consumed');
    const [deliver] = h.named('deliver');
    expect(deliver?.attributes['edgesync.resumed']).toBe(true);
    expect(ms(deliver!, 'endTime') - ms(deliver!, 'startTime')).toBe(50);
  });

  it('a delivery waiting as pending starts when it was queued as pending, not resumed', () => {
    h.traces.deliveryStatus(obj, cam, 'pending');
    h.clock.now += 70;
    h.traces.deliveryQueued(obj, cam);
    h.traces.deliveryStatus(obj, cam, 'delivering');
    h.traces.deliveryStatus(obj, cam, 'consumed');
    const [deliver] = h.named('deliver');
    expect(deliver?.attributes['edgesync.resumed']).toBeUndefined();
    expect(deliver?.events.map((e) => e.name)).toEqual(['pending', 'delivering']);
    expect(ms(deliver!, 'endTime') - ms(deliver!, 'startTime')).toBe(70);
  });

  it('a newer instance for the same destination ends the older one\'s delivery as superseded', () => {
    const newer = { ...obj, instanceID: INSTANCE + 1n };
    h.traces.deliveryQueued(obj, cam);
    h.traces.deliveryQueued(newer, cam);
    expect(h.named('deliver').map((s) => [s.attributes['edgesync.object.instance'], s.attributes['edgesync.status']])).toEqual([[INSTANCE.toString(), 'superseded']]);
    // A late word about the older instance does not end the newer delivery.
    h.traces.deliveryStatus(obj, cam, 'consumed');
    expect(h.traces.openCount).toBe(1);
    h.traces.deliveryStatus(newer, cam, 'consumed');
    expect(h.traces.openCount).toBe(0);
    expect(h.named('deliver').at(-1)?.spanContext().traceId).toBe(deliveryTraceId('org1', 'model', 'm1', INSTANCE + 1n));
  });

  it('on a CSS, bytes from an ESS open nothing: the CSS reports no end for what it receives', () => {
    h.traces.dataReceived(obj, cam, 'http', 10, 0, 10);
    expect(h.traces.openCount).toBe(0);
  });

  it('keeps a bounded number of deliveries open: the oldest is forgotten, and its span starts late', () => {
    const small = harness({ maxOpen: 2 });
    const peers = ['c1', 'c2', 'c3'].map((peerID) => ({ peerType: 'camera', peerID }));
    for (const p of peers) small.traces.deliveryQueued(obj, p);
    expect(small.traces.openCount).toBe(2);
    expect(small.traces.evicted).toBe(1);
    small.traces.deliveryStatus(obj, peers[0]!, 'consumed');
    expect(small.named('deliver')[0]?.attributes['edgesync.resumed']).toBe(true);
  });
});

describe('deliveries that never end here', () => {
  it('are forgotten after maxOpenMs, when the next delivery opens', () => {
    const aged = harness({ maxOpenMs: 1000 });
    aged.traces.deliveryQueued(obj, cam);
    aged.clock.now += 1000;
    aged.traces.deliveryQueued(obj, { peerType: 'camera', peerID: 'c2' });
    expect(aged.traces.openCount).toBe(1);
    expect(aged.traces.evicted).toBe(1);
  });
});

describe('spans on an ESS', () => {
  it('an object from the CSS is received, from its first bytes to consumed, in the same trace', () => {
    const h = harness({ ess: true });
    h.traces.dataReceived(obj, cloud, 'http', 1000, 0, 1000);
    h.traces.deliveryStatus(obj, cloud, 'delivered');
    h.traces.deliveryStatus(obj, cloud, 'consumed');
    const [receive] = h.named('receive');
    expect(receive?.kind).toBe(SpanKind.CONSUMER);
    expect(receive?.spanContext().traceId).toBe(deliveryTraceId('org1', 'model', 'm1', INSTANCE));
    expect(receive?.parentSpanContext?.spanId).toBe(publicationSpanId(obj));
    expect(receive?.attributes).toMatchObject({ 'edgesync.peer.type': 'Cloud', 'edgesync.bytes': 1000, 'edgesync.status': 'consumed' });
  });

  it('an object its app published is delivered to the CSS', () => {
    const h = harness({ ess: true });
    h.traces.objectPublished(obj, { destinations: 1 });
    h.traces.deliveryStatus(obj, cloud, 'consumed');
    expect(h.named('deliver')).toHaveLength(1);
    expect(h.named('receive')).toHaveLength(0);
  });
});

describe('tracing setup', () => {
  const base: TracingConfig = {
    otlpEndpoint: '',
    otlpTracesEndpoint: '',
    otlpHeaders: '',
    otelServiceName: '',
    traceExportDelay: 5000,
    nodeType: 'CSS',
    orgID: '',
    destinationType: 'Cloud',
    destinationID: 'Cloud',
    communicationProtocol: 'http',
  };

  it('is off, with nothing built, when no endpoint is set', () => {
    expect(tracingEnabled(base)).toBe(false);
    expect(startTracing(base, silentRecorder().log)).toBeNull();
  });

  it('posts to <endpoint>/v1/traces, or to the traces endpoint as given', () => {
    expect(tracesUrl({ otlpEndpoint: 'http://c:4318/', otlpTracesEndpoint: '' })).toBe('http://c:4318/v1/traces');
    expect(tracesUrl({ otlpEndpoint: 'http://c:4318', otlpTracesEndpoint: 'http://t:1/x' })).toBe('http://t:1/x');
  });

  it('reads headers as OpenTelemetry writes them: key=value pairs, values URL-encoded', () => {
    expect(parseOtlpHeaders('authorization=Bearer%20abc, x-tenant = a=b ,')).toEqual({ authorization: 'Bearer abc', 'x-tenant': 'a=b' });
  });
});

describe('a collector that is down', () => {
  it('is reported once per outage, not per export, and its return once', () => {
    const results: number[] = [1, 1, 1, 0, 0, 1];
    const inner: SpanExporter = { export: (_spans, done) => done({ code: results.shift() ?? 0 }), shutdown: () => Promise.resolve() };
    const rec = silentRecorder();
    const exporter = new OutageReportingExporter(inner, 'http://127.0.0.1:1/v1/traces', rec.log);
    for (let i = 0; i < 6; i++) exporter.export([], () => undefined);
    expect(rec.lines).toEqual(['warn', 'info', 'warn']);
  });
});

/** A logger that only notes the level of each line. */
function silentRecorder(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const note = (level: string) => () => void lines.push(level);
  const log: Logger = {
    trace: note('trace'),
    debug: note('debug'),
    info: note('info'),
    warn: note('warn'),
    error: note('error'),
    fatal: note('fatal'),
    child: () => log,
    flush: () => undefined,
  };
  return { log, lines };
}
