/**
 * Reads the captured reference CSS⇄ESS wire traffic (test/fixtures/reference-traffic/, see its
 * README) for replay tests. A line's own JSON is safe for JSON.parse: the ids in it sit inside
 * strings (paths, raw bodies). Bodies stay as captured: JSON bodies are raw text, to be parsed
 * with an int64-safe parser (lib/model parseJson) or served byte for byte. Also replays what a
 * peer sent, byte for byte, against one of our nodes (`replay`).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where the fixtures live. */
export const REFERENCE_TRAFFIC_DIR = fileURLToPath(new URL('../fixtures/reference-traffic/', import.meta.url));

/** A captured body: none, UTF-8 text (byte-exact), or binary (whole when ≤ 4096 B, else its first 256 B). */
export type CapturedBody = null | string | { base64: string; bytes: number; sha256: string; truncated?: boolean };

/** Who sent a captured HTTP request. */
export type CapturedDirection = 'ess->css' | 'app->css' | 'app->ess' | 'curl->css';

/** One HTTP exchange of an HTTP capture file. Header maps keep wire casing. */
export interface CapturedExchange {
  seq: number;
  t_ms: number;
  dir: CapturedDirection;
  method: string;
  /** As on the wire, query included. */
  path: string;
  req_headers: Record<string, string>;
  req_body: CapturedBody;
  status: number;
  res_headers: Record<string, string>;
  res_body: CapturedBody;
  dur_ms: number;
  /** The connection failed. */
  error?: string;
  /** restart.jsonl only: the request during which the ESS was killed. */
  harness_note?: string;
}

/** An out-of-band event (an app step, a kill, a restart). */
export interface CapturedNote {
  seq: number;
  t_ms: number;
  dir: 'note';
  text: string;
}

export type CapturedLine = CapturedExchange | CapturedNote;

/** A body's bytes as far as the capture holds them, with what it says of the whole body. */
export interface CapturedBytes {
  /** The whole body, or only its first bytes when `complete` is false. */
  bytes: Buffer;
  /** Size of the whole body on the wire. */
  size: number;
  /** Hex SHA-256 of the whole body. */
  sha256: string;
  /** Whether `bytes` is the whole body. */
  complete: boolean;
}

const cache = new Map<string, CapturedLine[]>();

/** Every line of an HTTP capture file (e.g. `publish-to-node.jsonl`), in order. */
export function readReferenceTraffic(file: string): CapturedLine[] {
  let lines = cache.get(file);
  if (lines === undefined) {
    const text = readFileSync(join(REFERENCE_TRAFFIC_DIR, file), 'utf8');
    lines = text
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as CapturedLine);
    cache.set(file, lines);
  }
  return lines;
}

/** The HTTP exchanges of a capture file, of one direction when `dir` is given. */
export function capturedExchanges(file: string, dir?: CapturedDirection): CapturedExchange[] {
  return readReferenceTraffic(file).filter((l): l is CapturedExchange => l.dir !== 'note' && (dir === undefined || l.dir === dir));
}

/** The exchange with sequence number `seq` of a capture file; throws if it is a note or absent. */
export function capturedExchange(file: string, seq: number): CapturedExchange {
  const line = readReferenceTraffic(file).find((l) => l.seq === seq);
  if (line === undefined || line.dir === 'note') throw new Error(`${file} has no exchange with seq ${seq}`);
  return line;
}

/** The bytes of a captured body; null for no body. A text body is its UTF-8 bytes, whole. */
export function capturedBytes(body: CapturedBody): CapturedBytes | null {
  if (body === null) return null;
  if (typeof body === 'string') {
    const bytes = Buffer.from(body, 'utf8');
    return { bytes, size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex'), complete: true };
  }
  const bytes = Buffer.from(body.base64, 'base64');
  const complete = body.truncated !== true;
  if (complete && bytes.length !== body.bytes) throw new Error(`captured body holds ${bytes.length} of ${body.bytes} bytes but is not marked truncated`);
  return { bytes, size: body.bytes, sha256: body.sha256, complete };
}

/** A captured text (JSON) body; throws when the body is absent or binary. */
export function capturedText(body: CapturedBody): string {
  if (typeof body !== 'string') throw new Error('the captured body is not text');
  return body;
}

/** A captured header, looked up case-insensitively (maps keep wire casing). */
export function capturedHeader(headers: Record<string, string>, name: string): string | undefined {
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? undefined : headers[key];
}

/** A request our ESS made to a replaying CSS, as it arrived. */
export interface ReplayRequest {
  method: string;
  /** Path and query, as on the wire. */
  url: string;
  /** The path without the query. */
  path: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** What a replaying CSS answers: a status, headers (wire casing kept) and body bytes. */
export interface ReplayAnswer {
  status: number;
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** Sends the body this way instead (a streamed or cut-off answer); `body` is then ignored. */
  stream?: (res: http.ServerResponse) => void;
}

/** The answer the reference CSS gave in a captured exchange; its body must be held whole. */
export function capturedAnswer(x: CapturedExchange): ReplayAnswer {
  const body = capturedBytes(x.res_body);
  if (body !== null && !body.complete) throw new Error(`seq ${x.seq}: the capture holds only ${body.bytes.length} of ${body.size} body bytes`);
  return { status: x.status, headers: x.res_headers, ...(body !== null ? { body: body.bytes } : {}) };
}

/** Go's net/http answer to a path no handler is registered for (`http.NotFound`). */
const GO_NOT_FOUND: ReplayAnswer = { status: 404, headers: { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' }, body: '404 page not found\n' };

/**
 * What a reference CSS answers where the capture has nothing to say, read from its
 * core/communications/httpCommunication.go (commit a22068836606446c3c75d8d57977038bec8e4d7d):
 * - the identity check first: `X-Sync-Service-Dest` must equal the Basic user (dummy auth), else
 *   403 `Unauthorized` (errors.jsonl);
 * - handlers see `request.URL.Path` only, so any query (our `?wait=`, `?inline=`, `?early=`) is
 *   ignored, and a poll is answered at once: 204 when nothing is pending;
 * - `PUT /spi/v1/objects/{org}/{x}` with an `x` other than `resend` (our batched acks,
 *   `…/{org}/acks`) parses as action `x` and hits the `default:` of handleObjects: 400, empty body;
 * - a path below no registered prefix (our `/spi/v1/early/…`) gets Go's 404 page.
 * @returns null when none of these applies
 */
export function referenceCssDefault(req: ReplayRequest): ReplayAnswer | null {
  const auth = /^Basic (.+)$/.exec(req.headers.authorization ?? '');
  const user = auth === null ? null : Buffer.from(auth[1]!, 'base64').toString('utf8').split(':')[0];
  if (user === null || req.headers['x-sync-service-dest'] !== user) return { status: 403, headers: { 'Content-Type': 'text/plain; charset=utf-8' }, body: 'Unauthorized' };
  const objects = req.path.startsWith('/spi/v1/objects/') ? req.path.slice('/spi/v1/objects/'.length).split('/') : null;
  if (req.method === 'GET' && objects !== null && objects.length === 1 && objects[0] === '') return { status: 204 };
  if (req.method === 'PUT' && objects !== null && objects.length === 2 && objects[1] !== 'resend') return { status: 400, headers: { 'Content-Length': '0' } };
  if (!/^\/spi\/v1\/(register|register-new|unregister|ping|objects)\//.test(req.path)) return GO_NOT_FOUND;
  return null;
}

/** A CSS on loopback that answers our ESS as the reference CSS did in a capture. */
export interface ReplayCss {
  url: string;
  /** Every request, in arrival order. */
  readonly requests: ReplayRequest[];
  /** Requests neither the scenario nor referenceCssDefault answered (each got a 500). */
  readonly unexpected: ReplayRequest[];
  close(): Promise<void>;
}

/**
 * Starts a replaying CSS: `answer` (the scenario, from the capture) goes first, then
 * referenceCssDefault; anything else is unexpected and answered 500.
 */
export async function startReplayCss(answer: (req: ReplayRequest) => ReplayAnswer | null): Promise<ReplayCss> {
  const requests: ReplayRequest[] = [];
  const unexpected: ReplayRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = req.url ?? '';
      const seen: ReplayRequest = { method: req.method ?? '', url, path: url.split('?')[0] ?? '', headers: req.headers, body: Buffer.concat(chunks) };
      requests.push(seen);
      let reply: ReplayAnswer | null = null;
      const refused = referenceCssDefault(seen);
      if (refused?.status === 403) reply = refused;
      else reply = answer(seen) ?? refused;
      if (reply === null) {
        unexpected.push(seen);
        reply = { status: 500, body: `replay: nothing captured for ${seen.method} ${url}\n` };
      }
      res.writeHead(reply.status, reply.headers ?? {});
      if (reply.stream !== undefined) reply.stream(res);
      else res.end(reply.body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    unexpected,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

// ---- Replaying what a peer sent, against one of our nodes ----

/** The bytes of a captured body that the capture holds whole; throws for a truncated one. */
export function wholeBody(body: CapturedBody): Buffer | null {
  const b = capturedBytes(body);
  if (b !== null && !b.complete) throw new Error(`captured body of ${b.size} bytes is truncated`);
  return b?.bytes ?? null;
}

/** `Basic user=<name>; password=<empty>` as captured → the header the peer sent. */
export function authorizationOf(captured: string): string {
  const m = /^Basic user=(.*); password=<empty>$/.exec(captured);
  if (m?.[1] === undefined) throw new Error(`unexpected captured Authorization: ${captured}`);
  return `Basic ${Buffer.from(`${m[1]}:`).toString('base64')}`;
}

/** Our node's answer to a replayed request. */
export interface Replayed {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/**
 * Sends a captured request to `baseUrl` as the peer sent it: the captured headers only (no
 * Content-Type where the peer sent none), with a Content-Length, except a whole-data PUT, which
 * a reference ESS sends chunked (spi-header-inventory.jsonl). `rewrite` maps the path (e.g. to
 * our ids). `body` stands in for a body the capture holds only the start of.
 */
export function replay(baseUrl: string, ex: CapturedExchange, rewrite: (s: string) => string = (s) => s, body: Buffer | null = wholeBody(ex.req_body)): Promise<Replayed> {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(ex.req_headers)) headers[k] = k === 'Authorization' ? authorizationOf(v) : v;
  const url = new URL(rewrite(ex.path), baseUrl);
  const chunked = ex.method === 'PUT' && ex.path.endsWith('/data') && !('Content-Range' in ex.req_headers);
  if (!chunked) headers['Content-Length'] = String(body?.length ?? 0);
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: ex.method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body !== null && body.length > 0) req.write(body);
    req.end();
  });
}
