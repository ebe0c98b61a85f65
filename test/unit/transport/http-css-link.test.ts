/**
 * The HTTP link of an ESS (http-css-link.ts) against a CSS played on loopback: what each port
 * call puts on the wire, and how HTTP answers map onto the port's outcomes and errors.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from '@jest/globals';
import { emptyMetaData, stringifyJson, type MetaData } from '../../../lib/model/index.js';
import { DataUnavailableError, EARLY_DATA_ITEM, NotRegisteredError } from '../../../lib/sync/ess/css-link.js';
import { HttpCssLink } from '../../../lib/transport/http/http-css-link.js';

const quiet = { info: (): void => undefined, warn: (): void => undefined, debug: (): void => undefined, error: (): void => undefined };
const META: MetaData = { ...emptyMetaData(), destinationOrgID: 'org1', objectType: 'model', objectID: 'a', instanceID: 7n, dataID: 7n, objectSize: 10 };
const DATA = Buffer.from('0123456789');

interface Seen {
  line: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

let server: http.Server | null = null;
let link: HttpCssLink | null = null;
afterEach(async () => {
  await link?.close();
  await new Promise((r) => server?.close(r));
  server = null;
  link = null;
});

/** A CSS that answers every request with `answer`, recording it. */
async function css(answer: (seen: Seen, res: http.ServerResponse) => void, opts: { inlineDataLimit?: number; earlyData?: boolean } = {}): Promise<{ link: HttpCssLink; seen: Seen[] }> {
  const seen: Seen[] = [];
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const s = { line: `${req.method} ${req.url}`, headers: req.headers, body };
      seen.push(s);
      answer(s, res);
    });
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  link = new HttpCssLink({ baseUrl, user: 'org1/edge/n1', password: 'p', orgID: 'org1', destinationType: 'edge', destinationID: 'n1', log: quiet, ...opts });
  return { link, seen };
}

const status = (code: number) => (_s: Seen, res: http.ServerResponse): void => void res.writeHead(code).end();

describe('HttpCssLink registration', () => {
  it('maps 404 to an unknown ESS, on register and on ping', async () => {
    const { link, seen } = await css(status(404));
    expect(await link.register()).toBe('unknown');
    expect(await link.ping()).toBe('unknown');
    expect(seen.map((s) => s.line)).toEqual(['PUT /spi/v1/register/org1/edge/n1?persistent-storage=true', 'PUT /spi/v1/ping/org1/edge/n1']);
  });
});

describe('HttpCssLink poll', () => {
  it('asks for a hold, inline data and early offers, and turns an early offer into an EARLY_DATA_ITEM', async () => {
    const entries = [{ Type: 'edgesync-early', MetaData: META, Size: 10 }, { Type: 'update', MetaData: META, DataSHA256: 'a'.repeat(64) }];
    const { link, seen } = await css((_s, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(stringifyJson(entries)), { inlineDataLimit: 100, earlyData: true });
    const items = await link.poll({ holdS: 2, signal: new AbortController().signal });
    expect(seen[0]?.line).toBe('GET /spi/v1/objects/?wait=2&inline=100&early=1');
    expect(items.map((i) => [i.type, i.size, i.statedSha256])).toEqual([
      [EARLY_DATA_ITEM, 10, undefined],
      ['update', undefined, 'a'.repeat(64)],
    ]);
    expect(items[1]?.meta.instanceID).toBe(7n);
  });

  it('says "not registered" on 424, and ends a held poll cut short with nothing', async () => {
    const { link } = await css((s, res) => {
      if (s.line.includes('wait=')) return; // held for ever
      res.writeHead(424).end();
    });
    await expect(link.poll({ holdS: 0, signal: new AbortController().signal })).rejects.toBeInstanceOf(NotRegisteredError);
    const ac = new AbortController();
    const held = link.poll({ holdS: 30, signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    expect(await held).toEqual([]);
  });
});

describe('HttpCssLink fetchData', () => {
  it('asks a closed Range and hands back where the bytes start, the total and the stated digest', async () => {
    const { link, seen } = await css((_s, res) => void res.writeHead(206, { 'content-range': 'bytes 4-9/10', 'x-edgesync-data-sha256': 'b'.repeat(64) }).end(DATA.subarray(4)));
    const got = await link.fetchData(META, META, { start: 4, end: 9 }, new AbortController().signal);
    expect(seen[0]?.headers.range).toBe('bytes=4-9');
    expect([got.start, got.total, got.sha256]).toEqual([4, 10, 'b'.repeat(64)]);
    const out: Buffer[] = [];
    for await (const c of got.stream) out.push(c as Buffer);
    expect(Buffer.concat(out).toString()).toBe('456789');
  });

  it('reports a 200 to a ranged request as the whole data (start 0)', async () => {
    const { link } = await css((_s, res) => void res.writeHead(200, { 'content-length': 10 }).end(DATA));
    const got = await link.fetchData(META, META, { start: 4, end: 9 }, new AbortController().signal);
    got.stream.resume();
    expect([got.start, got.total]).toEqual([0, 10]);
  });

  it.each([
    ['other bytes than asked', 206, 'rangeMismatch'],
    ['a refused range (416)', 416, 'rangeRefused'],
    ['no data to give (404)', 404, 'unavailable'],
  ])('refuses %s with DataUnavailableError of that kind', async (_what, code, kind) => {
    const { link } = await css((_s, res) => void res.writeHead(code, code === 206 ? { 'content-range': 'bytes 0-9/10' } : {}).end(code === 206 ? DATA : ''));
    const fetched = link.fetchData(META, META, { start: 4, end: 9 }, new AbortController().signal);
    await expect(fetched).rejects.toBeInstanceOf(DataUnavailableError);
    await expect(fetched).rejects.toMatchObject({ kind });
  });
});

describe('HttpCssLink sending what the ESS published', () => {
  it('maps the answers to an update: 204 taken, 409 stale, anything else refused', async () => {
    let code = 204;
    const { link, seen } = await css((_s, res) => void res.writeHead(code).end());
    expect(await link.publish(META)).toBe('taken');
    code = 409;
    expect(await link.publish(META)).toBe('stale');
    code = 500;
    expect(await link.publish(META)).toBe('refused');
    expect(seen[0]?.line).toBe('PUT /spi/v1/objects/org1/model/a/7/7/update');
    expect(JSON.parse(seen[0]!.body)).toMatchObject({ objectID: 'a', instanceID: 7 });
  });

  it('takes a 409 to a delete as done: the CSS has nothing to delete', async () => {
    const { link } = await css(status(409));
    expect(await link.publishDelete({ ...META, deleted: true })).toBe(true);
  });

  it('pushes a chunk with Content-Range and the digest, the whole data without a range', async () => {
    const { link, seen } = await css(status(204));
    expect(await link.pushData(META, Readable.from([DATA.subarray(4, 8)]), { start: 4, end: 7, total: 10 }, 'c'.repeat(64))).toBe('taken');
    expect(await link.pushData(META, Readable.from([DATA]), { start: 0, end: 9, total: 10 }, null)).toBe('taken');
    expect([seen[0]?.headers['content-range'], seen[0]?.headers['x-edgesync-data-sha256'], seen[0]?.body]).toEqual(['bytes 4-7/10', 'c'.repeat(64), '4567']);
    expect([seen[1]?.headers['content-range'], seen[1]?.body]).toEqual([undefined, '0123456789']);
  });

  it('maps the refusals of a push: 409 not expected, 400 past offset 0 resume refused, 400 at 0 refused', async () => {
    let code = 409;
    const { link } = await css((_s, res) => void res.writeHead(code).end());
    const push = (start: number, end: number) => link.pushData(META, Readable.from([DATA.subarray(start, end + 1)]), { start, end, total: 10 }, null);
    expect(await push(4, 7)).toBe('notExpected');
    code = 400;
    expect(await push(4, 7)).toBe('resumeRefused');
    expect(await push(0, 3)).toBe('refused');
    code = 424;
    await expect(push(0, 3)).rejects.toBeInstanceOf(NotRegisteredError);
  });
});
