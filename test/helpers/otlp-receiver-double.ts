/**
 * A test double of an OTLP/HTTP traces receiver (what an OpenTelemetry Collector, Jaeger or Tempo
 * offers on :4318): it takes `POST /v1/traces`, decodes the request and keeps the spans, flattened,
 * for a test to look at. No collector runs here, hence the double.
 *
 * OpenTelemetry's Node OTLP/HTTP exporter sends OTLP's JSON encoding (ids in hex, times as
 * strings of nanoseconds), gzipped when OTEL_EXPORTER_OTLP_COMPRESSION says so. A protobuf body
 * is answered 415, so a change of encoding fails the test loudly instead of losing spans.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

export type AttributeValue = string | number | boolean | null;

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** '' for a root span. */
  parentSpanId: string;
  name: string;
  kind: number;
  startMs: number;
  endMs: number;
  attributes: Record<string, AttributeValue>;
  events: { name: string; attributes: Record<string, AttributeValue> }[];
  status: { code: number; message?: string };
  /** The exporting process's resource (`service.name`, …). */
  resource: Record<string, AttributeValue>;
}

export interface OtlpReceiverDouble {
  /** Base URL, for OTEL_EXPORTER_OTLP_ENDPOINT. */
  readonly endpoint: string;
  readonly spans: ReceivedSpan[];
  /** Export requests taken (a batch each). */
  readonly requests: number;
  /** From now on answers every export with this status (a collector in trouble), or, with null, takes them again. */
  failWith(status: number | null): void;
  /** Waits until `pick` finds something in the spans received, or fails after `timeoutMs`. */
  waitFor<T>(pick: (spans: readonly ReceivedSpan[]) => T | undefined, timeoutMs?: number): Promise<T>;
  close(): Promise<void>;
}

interface JsonKeyValue {
  key: string;
  value?: { stringValue?: string; intValue?: string | number; doubleValue?: number; boolValue?: boolean };
}
interface JsonSpan {
  traceId?: string;
  spanId?: string;
  parentSpanId?: string;
  name?: string;
  kind?: number;
  startTimeUnixNano?: string | number;
  endTimeUnixNano?: string | number;
  attributes?: JsonKeyValue[];
  events?: { name?: string; attributes?: JsonKeyValue[] }[];
  status?: { code?: number; message?: string };
}
interface JsonRequest {
  resourceSpans?: { resource?: { attributes?: JsonKeyValue[] }; scopeSpans?: { spans?: JsonSpan[] }[] }[];
}

/** OTLP/JSON says hex; base64 is what a protobuf-to-JSON mapping would give: accept both. */
function hexId(id: string | undefined): string {
  if (id === undefined || id === '') return '';
  return /^[0-9a-f]+$/i.test(id) && (id.length === 32 || id.length === 16) ? id.toLowerCase() : Buffer.from(id, 'base64').toString('hex');
}

function attributes(list: JsonKeyValue[] | undefined): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  for (const { key, value } of list ?? []) {
    if (value?.stringValue !== undefined) out[key] = value.stringValue;
    else if (value?.intValue !== undefined) out[key] = Number(value.intValue);
    else if (value?.doubleValue !== undefined) out[key] = value.doubleValue;
    else if (value?.boolValue !== undefined) out[key] = value.boolValue;
    else out[key] = null;
  }
  return out;
}

const nanosToMs = (n: string | number | undefined): number => Number(BigInt(n ?? 0) / 1_000_000n);

export function decodeOtlpJson(body: JsonRequest): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rs of body.resourceSpans ?? []) {
    const resource = attributes(rs.resource?.attributes);
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        out.push({
          traceId: hexId(s.traceId),
          spanId: hexId(s.spanId),
          parentSpanId: hexId(s.parentSpanId),
          name: s.name ?? '',
          kind: s.kind ?? 0,
          startMs: nanosToMs(s.startTimeUnixNano),
          endMs: nanosToMs(s.endTimeUnixNano),
          attributes: attributes(s.attributes),
          events: (s.events ?? []).map((e) => ({ name: e.name ?? '', attributes: attributes(e.attributes) })),
          status: { code: s.status?.code ?? 0, ...(s.status?.message !== undefined ? { message: s.status.message } : {}) },
          resource,
        });
      }
    }
  }
  return out;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const body = Buffer.concat(chunks);
  return req.headers['content-encoding'] === 'gzip' ? gunzipSync(body) : body;
}

/** Starts the double on a random loopback port. */
export async function startOtlpReceiverDouble(): Promise<OtlpReceiverDouble> {
  const spans: ReceivedSpan[] = [];
  let requests = 0;
  let failure: number | null = null;
  const server: Server = createServer((req, res) => {
    void (async () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      const body = await readBody(req);
      if (failure !== null) {
        res.writeHead(failure, { 'content-type': 'application/json' }).end('{"code":3,"message":"refused by the test"}');
        return;
      }
      if (!(req.headers['content-type'] ?? '').startsWith('application/json')) {
        res.writeHead(415, { 'content-type': 'text/plain' }).end('this double decodes OTLP/JSON only');
        return;
      }
      requests++;
      spans.push(...decodeOtlpJson(JSON.parse(body.toString('utf8')) as JsonRequest));
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    })().catch(() => res.writeHead(400).end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    spans,
    get requests() {
      return requests;
    },
    failWith(status) {
      failure = status;
    },
    async waitFor(pick, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = pick(spans);
        if (found !== undefined) return found;
        if (Date.now() > deadline) throw new Error(`the OTLP double did not get the expected spans in ${timeoutMs} ms; it has: ${spans.map((s) => `${s.name}@${s.resource['service.name']}`).join(', ')}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
