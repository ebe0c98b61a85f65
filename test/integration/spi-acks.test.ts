/**
 * The CSS side of the ESS's answers about CSS-originated objects, on the real binary: an ESS
 * (played by raw requests with an edge-node identity) downloads the data, acks each step of
 * the update and delete paths, reports an error and asks for a resend; users follow the
 * delivery status in O13 and the destination listing. [ref sync-protocol §1, §3]
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { BIN, raw, startManaged, Teardown, type RunningProcess } from '../helpers/node-process.js';
import type { SyncServiceClient } from '../../sdk/index.js';
import { parseJson, stringifyJson } from '../../lib/model/index.js';

jest.setTimeout(30_000);

const run = promisify(execFile);
const ORG = 'org1';
const N1 = { user: 'org1/edge/n1', pass: 's1' };
const N2 = { user: 'org1/edge/n2', pass: 's2' };
const AS_N1 = { 'X-Sync-Service-Dest': 'org1/edge/n1' };
const DATA = 'hello, edge!';

const t = new Teardown();
let css: RunningProcess;
let client: SyncServiceClient;

interface PollEntry {
  Type: string;
  MetaData: { objectType: string; objectID: string; instanceID: bigint; dataID: bigint; deleted?: boolean };
}

/** A SPI request as the ESS edge/n1. */
function spi(method: string, path: string, opts: { body?: string; headers?: Record<string, string> } = {}): ReturnType<typeof raw> {
  return raw(css, method, `/spi/v1/${path}`, { auth: N1, headers: { ...AS_N1, ...opts.headers }, ...(opts.body !== undefined ? { body: opts.body } : {}) });
}

async function poll(): Promise<PollEntry[]> {
  const res = await spi('GET', 'objects/');
  expect([200, 204]).toContain(res.status);
  return res.status === 200 ? (parseJson(res.text) as PollEntry[]) : [];
}

async function polled(objectID: string): Promise<PollEntry | undefined> {
  return (await poll()).find((e) => e.MetaData.objectID === objectID);
}

/** `{org}/model/{id}/{instanceID}/{dataID}` of a polled entry, with an optional instance shift. */
function objPath(e: PollEntry, shift = 0n): string {
  return `objects/${ORG}/model/${e.MetaData.objectID}/${e.MetaData.instanceID + shift}/${e.MetaData.dataID}`;
}

async function o13(objectID: string): Promise<unknown> {
  return client.getObjectDestinations('model', objectID);
}

async function toward(): Promise<unknown> {
  const res = await raw(css, 'GET', `/api/v1/destinations/${ORG}/edge/n1/objects`);
  return res.status === 200 ? parseJson(res.text) : res.status;
}

async function addNode(user: { user: string; pass: string }, destID: string): Promise<void> {
  await run(process.execPath, [BIN, 'users', 'add', user.user, '--type', 'edgenode', '--org', ORG, '--username', `edge/${destID}`, '--secret', user.pass, '--persistence-root-path', css.root]);
}

beforeAll(async () => {
  css = await startManaged(t, { mode: 'css' });
  client = await css.client({ orgID: ORG });
  t.add(() => Promise.resolve(client.close()));
  await client.putOrganization({ orgID: ORG });
  await addNode(N1, 'n1');
  await addNode(N2, 'n2');
  // The running CSS picks the users file up on its own; until then the nodes get 403.
  const deadline = Date.now() + 10_000;
  const asN2 = { auth: N2, headers: { 'X-Sync-Service-Dest': 'org1/edge/n2' } };
  while ((await spi('GET', 'objects/')).status === 403 || (await raw(css, 'GET', '/spi/v1/objects/', asN2)).status === 403) {
    if (Date.now() > deadline) throw new Error('the CSS does not know the edge nodes after 10 s');
    await new Promise((r) => setTimeout(r, 200));
  }
  expect((await spi('PUT', 'register-new/org1/edge/n1?persistent-storage=true')).status).toBe(204);
});

afterAll(() => t.run());

describe('SPI data download and acks of a CSS-originated object', () => {
  let m1: PollEntry;

  test('the update is polled until acked', async () => {
    await client.updateObject({ objectID: 'm1', objectType: 'model', destinationType: 'edge' }, DATA);
    const entry = await polled('m1');
    expect(entry?.Type).toBe('update');
    m1 = entry!;
    expect((await polled('m1'))?.Type).toBe('update');
  });

  test('a stale instance is 409 for the download and the ack, and changes nothing', async () => {
    const get = await spi('GET', `${objPath(m1, 1n)}/data`);
    expect(get.status).toBe(409);
    const put = await spi('PUT', `${objPath(m1, -1n)}/updated`);
    expect([put.status, put.text]).toEqual([409, 'ignored: stale instance\n']);
    expect((await polled('m1'))?.Type).toBe('update');
    expect(await o13('m1')).toEqual([{ destinationType: 'edge', destinationID: 'n1', status: 'delivering', message: '' }]);
  });

  test('another ESS cannot ack for this one, nor ack this one’s record as itself', async () => {
    const forged = await raw(css, 'PUT', `/spi/v1/${objPath(m1)}/received`, { auth: N2, headers: AS_N1 });
    expect([forged.status, forged.text]).toEqual([403, 'Unauthorized']);
    const own = await raw(css, 'PUT', `/spi/v1/${objPath(m1)}/received`, { auth: N2, headers: { 'X-Sync-Service-Dest': 'org1/edge/n2' } });
    expect(own.status).toBe(409);
    expect((await raw(css, 'GET', `/spi/v1/${objPath(m1)}/data`, { auth: N2, headers: { 'X-Sync-Service-Dest': 'org1/edge/n2' } })).status).toBe(404);
    expect(await o13('m1')).toEqual([{ destinationType: 'edge', destinationID: 'n1', status: 'delivering', message: '' }]);
  });

  test('updated: the update is no longer polled', async () => {
    expect((await spi('PUT', `${objPath(m1)}/updated`)).status).toBe(204);
    expect(await polled('m1')).toBeUndefined();
    // A repeat is acked again so that the ESS stops sending it.
    expect((await spi('PUT', `${objPath(m1)}/updated`)).status).toBe(204);
  });

  test('the data downloads whole and by range', async () => {
    const whole = await spi('GET', `${objPath(m1)}/data`);
    expect([whole.status, whole.headers.get('content-length'), whole.text]).toEqual([200, String(DATA.length), DATA]);
    const part = await spi('GET', `${objPath(m1)}/data`, { headers: { Range: 'bytes=2-5' } });
    expect([part.status, part.headers.get('content-range'), part.headers.get('content-length'), part.text]).toEqual([206, `bytes 2-5/${DATA.length}`, '4', 'llo,']);
    // The edgesync extension: the digest of the whole stored data, on a range too, so that an
    // ESS resuming a download still checks everything it assembled.
    const digest = createHash('sha256').update(DATA).digest('hex');
    expect(whole.headers.get('x-edgesync-data-sha256')).toBe(digest);
    expect(part.headers.get('x-edgesync-data-sha256')).toBe(digest);
    expect((await spi('GET', `${objPath(m1)}/data`, { headers: { Range: 'bytes=5-2' } })).status).toBe(400);
    expect(await polled('m1')).toBeUndefined();
  });

  test('received: delivered in O13 and in the destination listing', async () => {
    expect((await spi('PUT', `${objPath(m1)}/received`)).status).toBe(204);
    expect(await o13('m1')).toEqual([{ destinationType: 'edge', destinationID: 'n1', status: 'delivered', message: '' }]);
    expect(await toward()).toEqual([{ orgID: ORG, objectType: 'model', objectID: 'm1', status: 'delivered' }]);
    expect(await polled('m1')).toBeUndefined();
  });

  test('consumed: consumed in O13; a late received changes nothing', async () => {
    expect((await spi('PUT', `${objPath(m1)}/consumed`)).status).toBe(204);
    expect(await o13('m1')).toEqual([{ destinationType: 'edge', destinationID: 'n1', status: 'consumed', message: '' }]);
    expect(await toward()).toEqual([{ orgID: ORG, objectType: 'model', objectID: 'm1', status: 'consumed' }]);
    // `received` after `consumed` is a late repeat: acked, nothing moves back.
    expect((await spi('PUT', `${objPath(m1)}/received`)).status).toBe(204);
    expect(await o13('m1')).toEqual([{ destinationType: 'edge', destinationID: 'n1', status: 'consumed', message: '' }]);
  });

  test('an ack meant for an ESS-originated object, about a CSS object, is ignored (409) and changes nothing', async () => {
    const res = await spi('PUT', `${objPath(m1)}/ackconsumed`);
    expect(res.status).toBe(409);
    expect(await o13('m1')).toEqual([{ destinationType: 'edge', destinationID: 'n1', status: 'consumed', message: '' }]);
  });

  test('feedback: error with the reason in O13; a garbage body is 400', async () => {
    await client.updateObject({ objectID: 'f1', objectType: 'model', destinationType: 'edge' }, 'x');
    const f1 = (await polled('f1'))!;
    expect(f1.Type).toBe('update');
    expect((await spi('PUT', `${objPath(f1)}/feedback`, { body: 'not json' })).status).toBe(400);
    expect((await spi('PUT', `${objPath(f1)}/feedback`, { body: '{"Code":"two"}' })).status).toBe(400);
    expect(await o13('f1')).toEqual([{ destinationType: 'edge', destinationID: 'n1', status: 'delivering', message: '' }]);
    const res = await spi('PUT', `${objPath(f1)}/feedback`, { body: '{"code":2,"retryInterval":0,"reason":"disk full"}' });
    expect(res.status).toBe(204);
    expect(await o13('f1')).toEqual([{ destinationType: 'edge', destinationID: 'n1', status: 'error', message: 'disk full' }]);
    expect(await polled('f1')).toBeUndefined();
  });

  test('resend: the errored update is pending again; the consumed one stays done', async () => {
    expect((await spi('PUT', `objects/${ORG}/resend`)).status).toBe(204);
    const entries = await poll();
    expect(entries.map((e) => [e.Type, e.MetaData.objectID])).toEqual([['update', 'f1']]);
    expect(await o13('f1')).toEqual([{ destinationType: 'edge', destinationID: 'n1', status: 'delivering', message: '' }]);
    expect(await o13('m1')).toEqual([{ destinationType: 'edge', destinationID: 'n1', status: 'consumed', message: '' }]);
    expect((await raw(css, 'PUT', '/spi/v1/objects/org2/resend', { auth: N1, headers: AS_N1 })).status).toBe(403);
  });

  test('delete: polled as delete, ackDelete marks it deleted, deleted drops the record', async () => {
    await client.deleteObject('model', 'm1');
    const del = (await polled('m1'))!;
    expect([del.Type, del.MetaData.deleted]).toEqual(['delete', true]);
    expect((await spi('GET', `${objPath(del)}/data`)).status).toBe(409);
    // Until n1 acknowledges, the object reads as objdeleted, metadata kept, data gone, and its
    // delivery status is still that of the copy n1 holds. [ref sync-protocol §3 Delete]
    expect(await client.getObject('model', 'm1')).toMatchObject({ objectID: 'm1', deleted: true, instanceID: del.MetaData.instanceID });
    expect(await client.getObjectStatus('model', 'm1')).toBe('objdeleted');
    expect(await o13('m1')).toEqual([{ destinationType: 'edge', destinationID: 'n1', status: 'consumed', message: '' }]);
    expect((await raw(css, 'GET', `/api/v1/objects/${ORG}/model/m1/data`)).status).toBe(404);
    const filtered = await raw(css, 'GET', `/api/v1/objects/${ORG}?filters=true&deleted=true`);
    expect((parseJson(filtered.text) as { objectID: string }[]).map((m) => m.objectID)).toEqual(['m1']);
    expect((await raw(css, 'DELETE', `/api/v1/objects/${ORG}/model/m1`)).status).toBe(204);
    expect((await spi('PUT', `${objPath(del, 1n)}/ackDelete`)).status).toBe(409);
    expect((await spi('PUT', `${objPath(del)}/ackDelete`)).status).toBe(204);
    expect(await polled('m1')).toBeUndefined();
    // Every destination acknowledged: the object is gone.
    expect(await client.getObject('model', 'm1')).toBeNull();
    expect(await o13('m1')).toEqual([]);
    expect((await raw(css, 'DELETE', `/api/v1/objects/${ORG}/model/m1`)).status).toBe(400);
    // `deleted` is no longer an active delivery: the listing leaves it out.
    expect(await toward()).toEqual([{ orgID: ORG, objectType: 'model', objectID: 'f1', status: 'delivering' }]);
    expect((await spi('PUT', `${objPath(del)}/ackDelete`)).status).toBe(204);
    expect((await spi('PUT', `${objPath(del)}/deleted`)).status).toBe(204);
    // The record is gone: a repeat has nothing to act on.
    expect((await spi('PUT', `${objPath(del)}/deleted`)).status).toBe(409);
    expect((await spi('PUT', `${objPath(del)}/ackDelete`)).status).toBe(409);
  });
});

describe('batched acks (edgesync extension): PUT /spi/v1/objects/{org}/acks', () => {
  const entry = (e: PollEntry, action: string, over: Record<string, unknown> = {}): Record<string, unknown> => ({
    action,
    objectType: e.MetaData.objectType,
    objectID: e.MetaData.objectID,
    instanceID: e.MetaData.instanceID,
    dataID: e.MetaData.dataID,
    ...over,
  });

  test('several acks in one request, each with the status it would get alone', async () => {
    await client.updateObject({ objectID: 'b1', objectType: 'model', destinationType: 'edge' }, 'one');
    await client.updateObject({ objectID: 'b2', objectType: 'model', destinationType: 'edge' }, 'two');
    const b1 = (await polled('b1'))!;
    const b2 = (await polled('b2'))!;
    const res = await spi('PUT', `objects/${ORG}/acks`, {
      body: stringifyJson([entry(b1, 'updated'), entry(b2, 'received'), entry(b1, 'received', { instanceID: 1n }), entry(b2, 'consumed', { objectID: 'nothing' })]),
    });
    expect([res.status, parseJson(res.text)]).toEqual([200, [204, 204, 409, 409]]);
    expect(await polled('b1')).toBeUndefined();
    expect(await o13('b2')).toEqual([{ destinationType: 'edge', destinationID: 'n1', status: 'delivered', message: '' }]);
  });

  test('garbage, acks that carry a body, another org and another ESS’s identity are refused', async () => {
    const b1 = { Type: 'update', MetaData: { objectType: 'model', objectID: 'b1', instanceID: 1, dataID: 1 } } as unknown as PollEntry;
    expect((await spi('PUT', `objects/${ORG}/acks`, { body: 'not json' })).status).toBe(400);
    expect((await spi('PUT', `objects/${ORG}/acks`, { body: stringifyJson([entry(b1, 'feedback')]) })).status).toBe(400);
    expect((await spi('GET', `objects/${ORG}/acks`)).status).toBe(405);
    expect((await raw(css, 'PUT', '/spi/v1/objects/org2/acks', { auth: N1, headers: AS_N1, body: '[]' })).status).toBe(403);
    expect((await raw(css, 'PUT', `/spi/v1/objects/${ORG}/acks`, { auth: N2, headers: AS_N1, body: '[]' })).status).toBe(403);
    expect(await o13('b2')).toEqual([{ destinationType: 'edge', destinationID: 'n1', status: 'delivered', message: '' }]);
  });
});

describe('early data (edgesync extension): GET /spi/v1/early/{org}/{type}/{id}', () => {
  test('is 404 with no upload on offer, 405 for another method, 403 for another org or identity, 424 for a node not registered', async () => {
    const none = await spi('GET', `early/${ORG}/model/none`);
    expect([none.status, none.text]).toEqual([404, 'No upload of this object is on offer\n']);
    expect((await spi('PUT', `early/${ORG}/model/none`)).status).toBe(405);
    expect((await raw(css, 'GET', '/spi/v1/early/org2/model/none', { auth: N1, headers: AS_N1 })).status).toBe(403);
    expect((await raw(css, 'GET', `/spi/v1/early/${ORG}/model/none`, { auth: N2, headers: AS_N1 })).status).toBe(403);
    expect((await raw(css, 'GET', `/spi/v1/early/${ORG}/model/none`, { auth: N2, headers: { 'X-Sync-Service-Dest': 'org1/edge/n2' } })).status).toBe(424);
  });
});
