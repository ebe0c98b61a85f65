/**
 * The ESS's resumable download (lib/sync/ess/download.ts) through the HTTP link against a small
 * HTTP server on loopback playing the CSS's data route in the ways a CSS may answer a resume:
 * 206 with our digest header, 200 with the whole data (a reference CSS may ignore Range), a
 * wrong digest, and a connection cut mid-body. The ESS side is real: SqliteStore,
 * FileBlobStore, ObjectService, Receiver, HttpCssLink.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { emptyMetaData, type MetaData } from '../../../../lib/model/index.js';
import { FileBlobStore, SqliteStore } from '../../../../lib/store/index.js';
import { ObjectService } from '../../../../lib/sync/object-service.js';
import { Receiver } from '../../../../lib/sync/receiver.js';
import { StagingWriter } from '../../../../lib/sync/staging-writer.js';
import { downloadData } from '../../../../lib/sync/ess/download.js';
import { HttpCssLink } from '../../../../lib/transport/http/http-css-link.js';

const root = mkdtempSync(join(tmpdir(), 'edgesync-spi-download-'));
let count = 0;
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

const ORG = 'org1';
const SEGMENT = 64 * 1024;
const DATA = Buffer.alloc(1024 * 1024);
for (let i = 0; i < DATA.length; i++) DATA[i] = (i * 131 + 17) % 253;
const SHA = createHash('sha256').update(DATA).digest('hex');

/** How the stand-in CSS answers a data GET. */
type Behaviour = 'ranges' | 'ranges-no-digest' | 'whole-only' | 'wrong-digest' | 'cut';

interface Served {
  ranges: (string | undefined)[];
  feedback: string[];
}

function startCss(behaviour: () => Behaviour, served: Served): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    if (req.method === 'PUT' && req.url?.endsWith('/feedback') === true) {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        served.feedback.push(body);
        res.writeHead(204).end();
      });
      return;
    }
    const range = req.headers.range;
    served.ranges.push(range);
    const how = behaviour();
    const m = /^bytes=(\d+)-(\d+)$/.exec(range ?? '');
    if (how === 'cut' && m === null) {
      // A whole download that stops after 300 KiB, as when the CSS is killed.
      res.writeHead(200, { 'content-length': DATA.length, 'x-edgesync-data-sha256': SHA });
      res.write(DATA.subarray(0, 300 * 1024), () => setTimeout(() => res.socket?.destroy(), 100));
      return;
    }
    if (m === null || how === 'whole-only') {
      res.writeHead(200, { 'content-length': DATA.length, 'x-edgesync-data-sha256': SHA }).end(DATA);
      return;
    }
    const start = Number(m[1]);
    const end = Number(m[2]);
    res.writeHead(206, {
      'content-range': `bytes ${start}-${end}/${DATA.length}`,
      'content-length': end - start + 1,
      // A reference CSS states no digest.
      ...(how === 'ranges-no-digest' ? {} : { 'x-edgesync-data-sha256': how === 'wrong-digest' ? '0'.repeat(64) : SHA }),
    });
    res.end(DATA.subarray(start, end + 1));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

describe('downloadData', () => {
  let store: SqliteStore;
  let blobs: FileBlobStore;
  let receiver: Receiver;
  let server: http.Server;
  let link: HttpCssLink;
  let log: { info(o: object, m: string): void; warn(o: object, m: string): void; debug(): void; error(o: object, m: string): void };
  let how: Behaviour;
  let served: Served;
  const logged: string[] = [];
  const stop = new AbortController();
  const meta: MetaData = { ...emptyMetaData(), destinationOrgID: ORG, objectType: 'model', objectID: 'big', destinationType: 'edge', instanceID: 10n, dataID: 10n, objectSize: DATA.length, consumers: 1 };

  beforeEach(async () => {
    const dir = join(root, String(++count));
    mkdirSync(dir);
    store = new SqliteStore({ path: join(dir, 'db') });
    await store.init();
    blobs = new FileBlobStore({ root: join(dir, 'data') });
    await blobs.init();
    const objects = new ObjectService({ store, blobs, node: { nodeType: 'ESS', orgID: ORG, destinationType: 'edge', destinationID: 'n1' }, maxDataChunkSize: 1024, maxDataSize: 0 });
    receiver = new Receiver({ notifications: store.notifications(), objects, orgID: ORG, downloads: { sessions: store, blobs } });
    how = 'ranges';
    served = { ranges: [], feedback: [] };
    server = await startCss(() => how, served);
    log = { info: (_o: object, msg: string) => void logged.push(msg), warn: (_o: object, msg: string) => void logged.push(msg), debug: () => undefined, error: (_o: object, msg: string) => void logged.push(msg) };
    link = new HttpCssLink({ baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, user: 'u', password: 'p', orgID: ORG, destinationType: 'edge', destinationID: 'n1', log });
    logged.length = 0;
    await receiver.applyUpdate(meta);
  });

  afterEach(async () => {
    await link.close();
    await new Promise((r) => server.close(r));
    await store.close();
  });

  const download = (): Promise<void> => downloadData({ link, log, receiver, blobs, resendIntervalMs: 1000, signal: stop.signal, segmentBytes: SEGMENT }, meta);

  /** Stages the first `n` bytes as an interrupted download would have, persisting the offset. */
  async function staged(n: number): Promise<string> {
    const state = await receiver.beginDownload(meta);
    const writer = StagingWriter.fresh(blobs, state.stagingId, { segmentBytes: SEGMENT });
    await writer.append(Readable.from([DATA.subarray(0, n)]), n, async (o) => void (await receiver.advanceDownload(meta, state, o)));
    expect(state.offset).toBe(n);
    return state.stagingId;
  }

  async function dataOnEss(): Promise<Buffer> {
    const obj = await store.getObject(ORG, 'model', 'big');
    expect(obj?.status).toBe('completelyReceived');
    const out: Buffer[] = [];
    for await (const c of blobs.read(obj!.blobId!)) out.push(c as Buffer);
    return Buffer.concat(out);
  }

  it('resumes with a closed Range from the persisted offset, and checks the whole digest on the 206', async () => {
    await staged(400_000);
    await download();
    expect(served.ranges).toEqual([`bytes=400000-${DATA.length - 1}`]);
    expect(logged).toContain('resuming download of model/big at offset 400000');
    expect((await dataOnEss()).equals(DATA)).toBe(true);
    expect((await store.getObject(ORG, 'model', 'big'))?.dataSha256).toBe(SHA);
    expect(await store.getUpload(ORG, 'model', 'big')).toBeNull();
    expect(await blobs.listStaging()).toEqual([]);
  });

  it('resumes a chunk at a time from a CSS that states no digest (a reference CSS reads each range into memory)', async () => {
    await staged(400_000);
    how = 'ranges-no-digest';
    const chunk = 128 * 1024;
    await downloadData({ link, log, receiver, blobs, resendIntervalMs: 1000, signal: stop.signal, segmentBytes: SEGMENT }, { ...meta, chunkSize: chunk });
    const want: string[] = [];
    for (let s = 400_000; s < DATA.length; s += chunk) want.push(`bytes=${s}-${Math.min(DATA.length, s + chunk) - 1}`);
    expect(served.ranges).toEqual(want);
    expect((await dataOnEss()).equals(DATA)).toBe(true);
  });

  it('asks our CSS, once it stated the digest, for the rest of a resume in one range', async () => {
    await staged(400_000);
    const chunk = 128 * 1024;
    await downloadData({ link, log, receiver, blobs, resendIntervalMs: 1000, signal: stop.signal, segmentBytes: SEGMENT }, { ...meta, chunkSize: chunk });
    expect(served.ranges).toEqual([`bytes=400000-${400_000 + chunk - 1}`, `bytes=${400_000 + chunk}-${DATA.length - 1}`]);
    expect((await dataOnEss()).equals(DATA)).toBe(true);
    expect((await store.getObject(ORG, 'model', 'big'))?.dataSha256).toBe(SHA);
  });

  it('starts over safely when the CSS answers the resume with the whole data (200)', async () => {
    const old = await staged(400_000);
    how = 'whole-only';
    await download();
    expect(served.ranges).toEqual([`bytes=400000-${DATA.length - 1}`]);
    expect(logged).toContain('the CSS answered a resume with the whole data; starting over from offset 0');
    expect((await dataOnEss()).equals(DATA)).toBe(true);
    expect(await blobs.listStaging()).not.toContain(old);
  });

  it('a wrong digest on a resumed download drops the staged data, reports it, and the retry starts from 0', async () => {
    await staged(400_000);
    how = 'wrong-digest';
    await download();
    expect((await store.getObject(ORG, 'model', 'big'))?.status).toBe('partiallyreceived');
    expect(served.feedback).toHaveLength(1);
    expect(served.feedback[0]).toContain('data SHA-256 mismatch');
    expect(await store.getUpload(ORG, 'model', 'big')).toBeNull();
    expect(await blobs.listStaging()).toEqual([]);
    how = 'ranges';
    await download();
    expect(served.ranges.at(-1)).toBeUndefined();
    expect((await dataOnEss()).equals(DATA)).toBe(true);
  });

  it('a connection cut mid-body keeps the synced part, and the next attempt resumes there', async () => {
    how = 'cut';
    await expect(download()).rejects.toThrow();
    const session = await store.getUpload(ORG, 'model', 'big');
    expect(session?.received).toBeGreaterThan(0);
    expect(session?.received).toBeLessThanOrEqual(300 * 1024);
    how = 'ranges';
    await download();
    expect(served.ranges.at(-1)).toBe(`bytes=${session?.received}-${DATA.length - 1}`);
    expect((await dataOnEss()).equals(DATA)).toBe(true);
  });
});
