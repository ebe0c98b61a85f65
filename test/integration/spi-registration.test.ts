/**
 * The CSS side of the HTTP SPI on the real binary: an ESS (played by raw requests with an
 * edge-node identity) registers, polls what is addressed to it, and unregisters; users see
 * the delivery status in O13 and the destinations routes. [ref sync-protocol §1, §3]
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { BIN, raw, startManaged, Teardown, type RunningProcess } from '../helpers/node-process.js';
import type { SyncServiceClient } from '../../sdk/index.js';
import { parseJson } from '../../lib/model/index.js';

jest.setTimeout(30_000);

const run = promisify(execFile);
const ORG = 'org1';
/** The ESS's credentials: an edge node's user name is its destType/destID. [ref rest-api §4.6] */
const NODE = { user: 'org1/edge/n1', pass: 's' };
const SELF = { 'X-Sync-Service-Dest': 'org1/edge/n1' };

const t = new Teardown();
let css: RunningProcess;
let client: SyncServiceClient;

/** A SPI request as the ESS edge/n1. */
function spi(method: string, path: string, headers: Record<string, string> = SELF): ReturnType<typeof raw> {
  return raw(css, method, `/spi/v1/${path}`, { auth: NODE, headers });
}

interface PollEntry {
  Type: string;
  MetaData: Record<string, unknown>;
}

async function poll(): Promise<{ status: number; entries: PollEntry[] }> {
  const res = await spi('GET', 'objects/');
  return { status: res.status, entries: res.status === 200 ? (parseJson(res.text) as PollEntry[]) : [] };
}

beforeAll(async () => {
  css = await startManaged(t, { mode: 'css' });
  client = await css.client({ orgID: ORG });
  t.add(() => Promise.resolve(client.close()));
  await client.putOrganization({ orgID: ORG });
  await run(process.execPath, [BIN, 'users', 'add', NODE.user, '--type', 'edgenode', '--org', ORG, '--username', 'edge/n1', '--secret', NODE.pass, '--persistence-root-path', css.root]);
  // The running CSS picks the users file up on its own; until then the node gets 403.
  const deadline = Date.now() + 10_000;
  while ((await spi('GET', 'objects/')).status === 403) {
    if (Date.now() > deadline) throw new Error('the CSS does not know the edge node after 10 s');
    await new Promise((r) => setTimeout(r, 200));
  }
});

afterAll(() => t.run());

describe('SPI registration and poll', () => {
  test('a poll before registering is 424', async () => {
    expect((await poll()).status).toBe(424);
  });

  test('register of an unknown ESS is 404 (register as new); register-new is 204 and lists the ESS', async () => {
    expect((await spi('PUT', 'register/org1/edge/n1?persistent-storage=true')).status).toBe(404);
    expect((await spi('PUT', 'ping/org1/edge/n1')).status).toBe(404);
    const res = await spi('PUT', 'register-new/org1/edge/n1?persistent-storage=true');
    expect([res.status, res.text]).toEqual([204, '']);
    expect((await spi('PUT', 'register/org1/edge/n1')).status).toBe(204);
    expect((await spi('PUT', 'ping/org1/edge/n1')).status).toBe(204);
    const dests = await raw(css, 'GET', `/api/v1/destinations/${ORG}`);
    expect(dests.status).toBe(200);
    expect(parseJson(dests.text)).toEqual([{ destinationOrgID: ORG, destinationType: 'edge', destinationID: 'n1', communication: 'HTTP', codeVersion: '' }]);
    expect((await poll()).status).toBe(204);
  });

  test('an object addressed to the type is polled as one update with capitalised keys; another type is not', async () => {
    await client.updateObject({ objectID: 'm1', objectType: 'model', destinationType: 'edge' }, 'hello');
    await client.updateObject({ objectID: 'x1', objectType: 'model', destinationType: 'other' }, 'not for you');
    const res = await spi('GET', 'objects/');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const entries = parseJson(res.text) as PollEntry[];
    expect(entries.map((e) => Object.keys(e))).toEqual([['Type', 'MetaData']]);
    const [entry] = entries;
    expect(entry?.Type).toBe('update');
    expect(entry?.MetaData).toMatchObject({ objectID: 'm1', objectType: 'model', destinationOrgID: ORG, destinationType: 'edge', destinationID: 'n1', objectSize: 5 });
    // Records stay pending until acked: the next poll serves the same update.
    expect((await poll()).entries.map((e) => [e.Type, e.MetaData.objectID])).toEqual([['update', 'm1']]);
  });

  test('users see the node as delivering in O13 and in the destination objects listing', async () => {
    expect(await client.getObjectDestinations('model', 'm1')).toEqual([{ destinationType: 'edge', destinationID: 'n1', status: 'delivering', message: '' }]);
    expect((await raw(css, 'GET', `/api/v1/objects/${ORG}/model/x1/destinations`)).status).toBe(404);
    const res = await raw(css, 'GET', `/api/v1/destinations/${ORG}/edge/n1/objects`);
    expect(res.status).toBe(200);
    expect(parseJson(res.text)).toEqual([{ orgID: ORG, objectType: 'model', objectID: 'm1', status: 'delivering' }]);
  });

  test('a delete of an object the node was served is polled as a delete', async () => {
    await client.updateObject({ objectID: 'd1', objectType: 'model', destinationType: 'edge', destinationID: 'n1' }, 'bye');
    expect((await poll()).entries.map((e) => [e.Type, e.MetaData.objectID])).toContainEqual(['update', 'd1']);
    await client.deleteObject('model', 'd1');
    const entries = (await poll()).entries.map((e) => [e.Type, e.MetaData.objectID, e.MetaData.deleted]);
    expect(entries).toContainEqual(['delete', 'd1', true]);
  });

  test('an object deleted before the node polled it is never polled, neither as update nor as delete', async () => {
    await client.updateObject({ objectID: 'd2', objectType: 'model', destinationType: 'edge', destinationID: 'n1' }, 'never seen');
    await client.deleteObject('model', 'd2');
    expect((await poll()).entries.filter((e) => e.MetaData.objectID === 'd2')).toEqual([]);
  });

  test('a claim for another ESS, or a path for another ESS, is 403 Unauthorized', async () => {
    const other = await spi('GET', 'objects/', { 'X-Sync-Service-Dest': 'org1/edge/n2' });
    expect([other.status, other.text]).toEqual([403, 'Unauthorized']);
    expect((await spi('GET', 'objects/', {})).status).toBe(403);
    expect((await spi('PUT', 'register-new/org1/edge/n2')).status).toBe(403);
    expect((await raw(css, 'GET', '/spi/v1/objects/', { auth: { user: NODE.user, pass: 'wrong' }, headers: SELF })).status).toBe(403);
  });

  test('a malformed SPI path is 400', async () => {
    expect((await spi('PUT', 'register/org1/edge')).status).toBe(400);
    expect((await spi('GET', 'nosuch/thing')).status).toBe(400);
  });

  test('an edge-node identity may not use the client API', async () => {
    expect((await raw(css, 'GET', `/api/v1/objects/${ORG}/model/m1`, { auth: NODE })).status).toBe(403);
    expect((await raw(css, 'GET', `/api/v1/destinations/${ORG}`, { auth: NODE })).status).toBe(403);
  });

  test('a register without persistent storage gets everything it was sent again; with it, nothing', async () => {
    await client.updateObject({ objectID: 'p1', objectType: 'model', destinationType: 'edge', destinationID: 'n1' }, 'held?');
    const served = (await poll()).entries.find((e) => e.MetaData.objectID === 'p1');
    const { instanceID, dataID } = served?.MetaData as { instanceID: bigint; dataID: bigint };
    expect((await spi('PUT', `objects/org1/model/p1/${instanceID}/${dataID}/received`)).status).toBe(204);
    const p1 = async (): Promise<string[]> => (await poll()).entries.filter((e) => e.MetaData.objectID === 'p1').map((e) => e.Type);
    expect(await p1()).toEqual([]);
    expect((await spi('PUT', 'register/org1/edge/n1?persistent-storage=true')).status).toBe(204);
    expect(await p1()).toEqual([]);
    // In-memory storage (the reference's ESS says so with false): it may have lost the object.
    expect((await spi('PUT', 'register/org1/edge/n1?persistent-storage=false')).status).toBe(204);
    expect(await p1()).toEqual(['update']);
    expect(await client.getObjectDestinations('model', 'p1')).toEqual([{ destinationType: 'edge', destinationID: 'n1', status: 'delivering', message: '' }]);
  });

  test('unregister removes the destination and its records', async () => {
    const res = await spi('PUT', 'unregister/org1/edge/n1');
    expect([res.status, res.text]).toEqual([204, '']);
    expect((await raw(css, 'GET', `/api/v1/destinations/${ORG}`)).status).toBe(404);
    expect((await raw(css, 'GET', `/api/v1/objects/${ORG}/model/m1/destinations`)).status).toBe(404);
    expect((await raw(css, 'GET', `/api/v1/destinations/${ORG}/edge/n1/objects`)).status).toBe(404);
    expect((await poll()).status).toBe(424);
  });
});
