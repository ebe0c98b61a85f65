/**
 * The captured reference CSS⇄ESS HTTP traffic (test/fixtures/reference-traffic/, README there),
 * loaded as exchanges, and replayed byte for byte against one of our nodes.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';

export const TRAFFIC_DIR = join(process.cwd(), 'test', 'fixtures', 'reference-traffic');

/** A body as captured: null (none), text (byte-exact), or binary (whole when `truncated` is absent). */
export type CapturedBody = null | string | { base64: string; bytes: number; sha256: string; truncated?: boolean };

export interface Exchange {
  seq: number;
  dir: 'ess->css' | 'app->css' | 'app->ess' | 'curl->css';
  method: string;
  path: string;
  req_headers: Record<string, string>;
  req_body: CapturedBody;
  status: number;
  res_headers: Record<string, string>;
  res_body: CapturedBody;
}

export interface Note {
  seq: number;
  dir: 'note';
  text: string;
}

/** The lines of one capture file, in order. */
export function loadTraffic(file: string): (Exchange | Note)[] {
  return readFileSync(join(TRAFFIC_DIR, file), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Exchange | Note);
}

export function exchanges(file: string): Exchange[] {
  return loadTraffic(file).filter((e): e is Exchange => e.dir !== 'note');
}

/** The bytes of a captured body; throws for a truncated one, which cannot be replayed. */
export function bodyBytes(body: CapturedBody): Buffer | null {
  if (body === null) return null;
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (body.truncated === true) throw new Error(`captured body of ${body.bytes} bytes is truncated`);
  return Buffer.from(body.base64, 'base64');
}

/** `Basic user=<name>; password=<empty>` as captured → the header the peer sent. */
export function authorizationOf(captured: string): string {
  const m = /^Basic user=(.*); password=<empty>$/.exec(captured);
  if (m?.[1] === undefined) throw new Error(`unexpected captured Authorization: ${captured}`);
  return `Basic ${Buffer.from(`${m[1]}:`).toString('base64')}`;
}

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
export function replay(baseUrl: string, ex: Exchange, rewrite: (s: string) => string = (s) => s, body: Buffer | null = bodyBytes(ex.req_body)): Promise<Replayed> {
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
