/**
 * ESS → CSS over HTTP on the real binaries: an object an app publishes on the ESS reaches the
 * CSS (metadata, then its data, in chunks when large), a CSS app consumes it and the ESS keeps
 * only its metadata; a deletion on the ESS reaches the CSS and, once a CSS app confirms it,
 * nothing is left on either side; an ESS restart loses nothing it owed.
 * [ref sync-protocol §1 "Upload of ESS → CSS objects", "Ack semantics"; §3 "Special cases"]
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { readAll, sha } from '../helpers/bytes.js';
import { raw, startManaged, startNode, Teardown, type RunningProcess } from '../helpers/node-process.js';
import { addEssUser, essEnv, eventuallyWithin, ORG, portOf, startPair, type Pair, type PairOptions } from '../helpers/sync-pair.js';
import type { SyncServiceClient } from '../../sdk/index.js';
import { parseJson } from '../../lib/model/index.js';

jest.setTimeout(90_000);

const MIB = 1024 * 1024;
/** The ESS pushes data in chunks of this size (MAX_DATA_CHUNK_SIZE). */
const CHUNK = MIB;
/** Polling deadlines only: generous, so a loaded machine does not fail the test. */
const DEADLINE_MS = 40_000;
const eventually = eventuallyWithin(DEADLINE_MS);

interface RecordRow {
  peer_type: string;
  peer_id: string;
  status: string;
  data_offset: number;
}

/** The notification records a node holds about one object (read from its database file). */
function rowsOf(node: RunningProcess, objectID: string): RecordRow[] {
  const db = new Database(join(node.root, 'sync', 'db', 'edgesync.db'), { readonly: true, fileMustExist: true });
  try {
    return db.prepare('SELECT peer_type, peer_id, status, data_offset FROM notifications WHERE object_id = ?').all(objectID) as RecordRow[];
  } finally {
    db.close();
  }
}

function recordsOf(node: RunningProcess, objectID: string): string[] {
  return rowsOf(node, objectID).map((r) => `${r.peer_type}/${r.peer_id}:${r.status}`);
}

/** A pair whose ESS pushes in chunks of `chunkSize` bytes; it long-polls unless `reference`. */
function pairOptions(reference: boolean, chunkSize = CHUNK): PairOptions {
  return { deadlineMs: DEADLINE_MS, reference, chunkSize };
}

// The main scenario in both modes: with our extensions (long-poll), and the reference protocol
// only (EDGESYNC_REFERENCE_PROTOCOL), what our ESS speaks to a reference CSS.
describe.each([
  ['with our extensions', false],
  ['in reference-protocol mode', true],
])('objects published on an ESS, synced to its CSS over HTTP, %s', (_mode, reference) => {
  const t = new Teardown();
  let p: Pair;
  const DATA = randomBytes(300 * 1024);
  beforeAll(async () => {
    p = await startPair(t, pairOptions(reference));
  });
  afterAll(() => t.run());

  test('an object published with its data arrives on the CSS with identical bytes, completelyReceived, its origin the ESS', async () => {
    await p.onEss.updateObject({ objectID: 'r1', objectType: 'report', version: '1.0' }, DATA);
    await eventually('status on the CSS', () => p.onCss.getObjectStatus('report', 'r1'), (s) => s === 'completelyReceived');
    const meta = await p.onCss.getObject('report', 'r1');
    expect([meta?.originType, meta?.originID, meta?.objectSize, meta?.version]).toEqual(['edge', 'n1', DATA.length, '1.0']);
    expect(sha(await readAll(await p.onCss.fetchObjectData('report', 'r1')))).toBe(sha(DATA));
    // CSS apps find it in the ordinary listing of received objects.
    expect((await p.onCss.listObjects('report')).map((m) => m.objectID)).toEqual(['r1']);
    // The ESS heard it arrived (the CSS's `received`, answered with `ackreceived`).
    await eventually('records', () => Promise.resolve([...recordsOf(p.ess, 'r1'), ...recordsOf(p.css, 'r1')]), (r) => r.join() === 'Cloud/Cloud:receivedByDest,edge/n1:ackreceived');
  });

  test('consumed by a CSS app: the ESS keeps only the metadata (consumedByDest), and the CSS copy goes', async () => {
    await p.onCss.markObjectConsumed('report', 'r1');
    await eventually('status on the ESS', () => p.onEss.getObjectStatus('report', 'r1'), (s) => s === 'consumedByDest');
    await expect(p.onEss.fetchObjectData('report', 'r1')).rejects.toThrow();
    await eventually('status on the CSS', () => p.onCss.getObjectStatus('report', 'r1'), (s) => s === null);
    await eventually('records', () => Promise.resolve([...recordsOf(p.ess, 'r1'), ...recordsOf(p.css, 'r1')]), (r) => r.length === 0);
  });

  test('deleted on the ESS: the CSS app sees deleted: true and confirms; both sides are clean', async () => {
    await p.onEss.updateObject({ objectID: 'd1', objectType: 'report' }, 'short-lived');
    await eventually('status on the CSS', () => p.onCss.getObjectStatus('report', 'd1'), (s) => s === 'completelyReceived');
    await p.onEss.deleteObject('report', 'd1');
    const listed = await eventually('deleted on the CSS', () => p.onCss.listObjects('report'), (l) => l.some((m) => m.objectID === 'd1' && m.deleted));
    expect(listed.find((m) => m.objectID === 'd1')?.deleted).toBe(true);
    await expect(p.onCss.fetchObjectData('report', 'd1')).rejects.toThrow();
    await p.onCss.markObjectDeleted('report', 'd1');
    await eventually('gone from the CSS', () => p.onCss.getObjectStatus('report', 'd1'), (s) => s === null);
    expect(await p.onEss.getObjectStatus('report', 'd1')).toBeNull();
    await eventually('records', () => Promise.resolve([...recordsOf(p.ess, 'd1'), ...recordsOf(p.css, 'd1')]), (r) => r.length === 0);
  });

  test('a multi-MiB object goes in Content-Range chunks and arrives intact', async () => {
    const big = randomBytes(5 * MIB + 12345);
    // Metadata first, then the data streamed into the ESS: the object is sent once it is ready.
    await p.onEss.updateObject({ objectID: 'big', objectType: 'report' });
    await p.onEss.updateObjectData('report', 'big', big);
    await eventually('status on the CSS', () => p.onCss.getObjectStatus('report', 'big'), (s) => s === 'completelyReceived');
    const meta = await p.onCss.getObject('report', 'big');
    // The CSS records the size of the first chunk of a chunked upload.
    expect([meta?.objectSize, meta?.uploadChunkSize]).toEqual([big.length, CHUNK]);
    expect(sha(await readAll(await p.onCss.fetchObjectData('report', 'big')))).toBe(sha(big));
  });

  test('a newer instance published meanwhile supersedes the older one', async () => {
    await p.onEss.updateObject({ objectID: 'v', objectType: 'report', version: '1' }, randomBytes(3 * MIB));
    const second = randomBytes(2 * MIB);
    await p.onEss.updateObject({ objectID: 'v', objectType: 'report', version: '2' }, second);
    await eventually('version on the CSS', async () => (await p.onCss.getObject('report', 'v'))?.version ?? null, (v) => v === '2');
    await eventually('status on the CSS', () => p.onCss.getObjectStatus('report', 'v'), (s) => s === 'completelyReceived');
    expect(sha(await readAll(await p.onCss.fetchObjectData('report', 'v')))).toBe(sha(second));
  });
});

describe('ESS restarts while it owes the CSS an object', () => {
  /** Small chunks, so that an upload takes long enough to be cut in the middle. */
  const SMALL = 1024;
  const t = new Teardown();
  let p: Pair;
  /** The ESS running now (restarted on the same directory). */
  let ess: RunningProcess;
  beforeAll(async () => {
    p = await startPair(t, pairOptions(false, SMALL));
    ess = p.ess;
  });
  afterAll(() => t.run());

  async function restartEss(port: string): Promise<SyncServiceClient> {
    ess = await startNode({ mode: 'ess', root: p.ess.root, env: essEnv(port, pairOptions(false, SMALL)) });
    const running = ess;
    t.add(() => running.stop());
    // The credentials are printed on the first start only.
    const client = await ess.client({ appKey: p.ess.admin!.appKey, appSecret: p.ess.admin!.secret });
    t.add(() => Promise.resolve(client.close()));
    return client;
  }

  test('killed in the middle of an upload, the ESS keeps the offset the CSS acked and finishes the upload after its restart; the data arrives intact', async () => {
    const data = randomBytes(MIB + 3);
    await p.onEss.updateObject({ objectID: 'cut', objectType: 'report' });
    await p.onEss.updateObjectData('report', 'cut', data);
    const progress = await eventually('upload under way', () => Promise.resolve(rowsOf(ess, 'cut')), (r) => r[0]?.status === 'data' && r[0].data_offset > 0);
    await ess.kill();
    // What it had pushed is remembered, not lost with the process.
    const kept = rowsOf(ess, 'cut')[0];
    expect(kept?.status).toMatch(/^(data|updated|receivedByDest)$/);
    if (kept?.status === 'data') expect(kept.data_offset).toBeGreaterThanOrEqual(progress[0]!.data_offset);
    await restartEss(portOf(p.css));
    await eventually('status on the CSS', () => p.onCss.getObjectStatus('report', 'cut'), (s) => s === 'completelyReceived');
    expect(sha(await readAll(await p.onCss.fetchObjectData('report', 'cut')))).toBe(sha(data));
  });

  test('published while the CSS is away and killed before it could send, the object is sent once both are back', async () => {
    const admin = p.css.admin!;
    const port = portOf(p.css);
    // The CSS goes away: the ESS can only record what it owes.
    expect(await p.css.stop()).toBe(0);
    // One ESS per data directory: the one of the previous test stops before another starts on it.
    expect(await ess.stop()).toBe(0);
    const onEss = await restartEss(port);
    const data = randomBytes(64 * 1024 + 7);
    await onEss.updateObject({ objectID: 'late', objectType: 'report' }, data);
    await onEss.updateObject({ objectID: 'tiny', objectType: 'report', noData: true });
    // The ESS dies without a chance to do anything more.
    await ess.kill();
    const css = await startNode({ mode: 'css', root: p.css.root, env: { UNSECURE_LISTENING_PORT: port } });
    t.add(() => css.stop());
    await restartEss(port);
    const onCss = await css.client({ orgID: ORG, appKey: admin.appKey, appSecret: admin.secret });
    t.add(() => Promise.resolve(onCss.close()));
    await eventually('status on the CSS', () => onCss.getObjectStatus('report', 'late'), (s) => s === 'completelyReceived');
    expect(sha(await readAll(await onCss.fetchObjectData('report', 'late')))).toBe(sha(data));
    await eventually('status of tiny on the CSS', () => onCss.getObjectStatus('report', 'tiny'), (s) => s === 'completelyReceived');
  });
});

/**
 * The CSS's SPI for ESS-originated objects, spoken by raw requests as an ESS would: what it
 * refuses and why, with nothing partial kept. [ref sync-protocol §1 Endpoints, "Upload of ESS → CSS objects"]
 */
describe('the CSS taking objects from an ESS, message by message', () => {
  const t = new Teardown();
  let css: RunningProcess;
  let onCss: SyncServiceClient;
  const N9 = { user: 'org1/edge/n9', pass: 's9' };
  const spi = (method: string, path: string, body?: string, headers: Record<string, string> = {}): ReturnType<typeof raw> =>
    raw(css, method, `/spi/v1/${path}`, { auth: N9, headers: { 'X-Sync-Service-Dest': 'org1/edge/n9', ...headers }, ...(body !== undefined ? { body } : {}) });
  const metaJson = (m: Record<string, unknown>): string => JSON.stringify({ objectID: 'x', objectType: 'report', instanceID: 5, dataID: 5, objectSize: 10, ...m });
  const DATA10 = Buffer.from('0123456789');
  const put = (path: string, data: Buffer, range?: string): ReturnType<typeof raw> =>
    raw(css, 'PUT', `/spi/v1/${path}`, { auth: N9, body: data, headers: { 'X-Sync-Service-Dest': 'org1/edge/n9', ...(range !== undefined ? { 'Content-Range': range } : {}) } });

  beforeAll(async () => {
    css = await startManaged(t, { mode: 'css', env: { EDGESYNC_MAX_DATA_SIZE: '1000' } });
    onCss = await css.client({ orgID: ORG });
    t.add(() => Promise.resolve(onCss.close()));
    await onCss.putOrganization({ orgID: ORG });
    await addEssUser(css, { destinationID: 'n9', secret: N9.pass });
    await eventually('the CSS knows n9', () => spi('GET', 'objects/'), (r) => r.status !== 403);
  });
  afterAll(() => t.run());

  test('an ESS that is not registered cannot hand objects over (424)', async () => {
    expect((await spi('PUT', 'objects/org1/report/x/5/5/update', metaJson({}))).status).toBe(424);
    expect((await spi('PUT', 'register-new/org1/edge/n9?persistent-storage=true')).status).toBe(204);
  });

  test('garbage, a payload that contradicts the path, another org, or too much data: 4xx, nothing stored', async () => {
    const refused = await Promise.all([
      spi('PUT', 'objects/org1/report/x/5/5/update', 'not json'),
      spi('PUT', 'objects/org1/report/x/5/5/update', metaJson({ instanceID: 'five' })),
      spi('PUT', 'objects/org1/report/x/5/5/update', metaJson({ objectID: 'y' })),
      spi('PUT', 'objects/org1/report/x/5/5/update', metaJson({ instanceID: 6 })),
      spi('PUT', 'objects/org2/report/x/5/5/update', metaJson({ destinationOrgID: 'org2' })),
      spi('PUT', 'objects/org1/report/x/5/5/update', metaJson({ objectSize: 5000 })),
    ]);
    expect(refused.map((r) => r.status)).toEqual([400, 400, 400, 400, 403, 413]);
    expect(refused[0]?.text).toMatch(/^Invalid JSON in HTTP message body\. Error: /);
    expect(await onCss.getObjectStatus('report', 'x')).toBeNull();
  });

  test('data before its metadata is 409; after it, a bad Content-Range or size is 400 and leaves the object waiting', async () => {
    expect((await put('objects/org1/report/x/5/5/data', DATA10)).status).toBe(409);
    expect((await spi('PUT', 'objects/org1/report/x/5/5/update', metaJson({}))).status).toBe(204);
    expect(await onCss.getObjectStatus('report', 'x')).toBe('partiallyreceived');
    const refused = await Promise.all([
      put('objects/org1/report/x/5/5/data', DATA10.subarray(0, 3), 'bytes 5-2/10'),
      put('objects/org1/report/x/5/5/data', DATA10.subarray(0, 4), 'bytes 0-3/11'),
      put('objects/org1/report/x/5/5/data', DATA10.subarray(4), 'bytes 4-9/10'),
      put('objects/org1/report/x/5/5/data', DATA10.subarray(0, 9)),
    ]);
    expect(refused.map((r) => r.status)).toEqual([400, 400, 400, 400]);
    expect(await onCss.getObjectStatus('report', 'x')).toBe('partiallyreceived');
  });

  test('chunks complete the object; the poll says received until acked; repeats are acked, stale ones 409', async () => {
    expect((await put('objects/org1/report/x/5/5/data', DATA10.subarray(0, 4), 'bytes 0-3/10')).status).toBe(204);
    expect((await put('objects/org1/report/x/5/5/data', DATA10.subarray(0, 4), 'bytes 0-3/10')).status).toBe(204);
    expect((await put('objects/org1/report/x/5/5/data', DATA10.subarray(4), 'bytes 4-9/10')).status).toBe(204);
    expect(await onCss.getObjectStatus('report', 'x')).toBe('completelyReceived');
    expect((await readAll(await onCss.fetchObjectData('report', 'x'))).equals(DATA10)).toBe(true);
    const polled = await spi('GET', 'objects/');
    expect(parseJson(polled.text)).toEqual([expect.objectContaining({ Type: 'received', MetaData: expect.objectContaining({ objectID: 'x', instanceID: 5, originID: 'n9' }) })]);
    expect((await spi('PUT', 'objects/org1/report/x/5/5/update', metaJson({}))).status).toBe(204);
    expect((await spi('PUT', 'objects/org1/report/x/4/4/update', metaJson({ instanceID: 4, dataID: 4 }))).status).toBe(409);
    expect((await spi('PUT', 'objects/org1/report/x/4/4/ackreceived')).status).toBe(409);
    expect((await spi('PUT', 'objects/org1/report/x/5/5/ackreceived')).status).toBe(204);
    expect((await spi('PUT', 'objects/org1/report/x/5/5/ackreceived')).status).toBe(204);
    expect((await spi('GET', 'objects/')).status).toBe(204);
  });
});
