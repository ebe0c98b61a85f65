/**
 * The object routes of the REST API (rest-api §1.2, O1–O20) on the real binary: a CSS (paths
 * carry the org) and an ESS (paths without it). Object data in depth is object-data.test.ts;
 * refused input is bad-input.test.ts.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import type { IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { BIN, raw, startManaged, Teardown, type RunningProcess } from '../helpers/node-process.js';
import type { ObjectInput, SyncServiceClient } from '../../sdk/index.js';
import { parseJson, stringifyJson } from '../../lib/model/index.js';

jest.setTimeout(30_000);

const run = promisify(execFile);

const ORG = 'org1';
/** The CSS runs with a small MaxDataChunkSize so that `chunkSize` is visibly the configured one. */
const CHUNK = 1048576;
const ESS_ENV = { ORG_ID: 'org1', DESTINATION_TYPE: 'edge', DESTINATION_ID: 'n1', HTTP_CSS_HOST: '127.0.0.1', HTTP_CSS_PORT: '1' };
const OTHER = { user: 'other', pass: 's3cret' };
const ALICE = { user: 'alice', pass: 'alice-s3cret' };

/** Every MetaData key, in the order the reference serializes them. [ref rest-api §2] */
const META_KEYS = [
  'objectID',
  'objectType',
  'destinationOrgID',
  'destinationID',
  'destinationType',
  'destinationsList',
  'destinationPolicy',
  'expiration',
  'version',
  'description',
  'link',
  'inactive',
  'activationTime',
  'noData',
  'metaOnly',
  'destinationDataUri',
  'sourceDataUri',
  'consumers',
  'autodelete',
  'originID',
  'originType',
  'deleted',
  'instanceID',
  'dataID',
  'objectSize',
  'chunkSize',
  'uploadChunkSize',
  'hashAlgorithm',
  'publicKey',
  'signature',
  'public',
  'ownerID',
];

const POLICY = {
  properties: [{ name: 'color', value: 'blue' }],
  services: [{ orgID: 'svcorg', arch: 'amd64', serviceName: 'svc', version: '[1.0.0,2.0.0)' }],
};

const t = new Teardown();
let css: RunningProcess;
let ess: RunningProcess;
/** The CSS's sync admin, in org1. */
let client: SyncServiceClient;
/** The ESS's sync admin. */
let essClient: SyncServiceClient;

/** Adds a user with the CLI and waits until the running node accepts it (it reloads the users file). */
async function addUser(node: RunningProcess, auth: { user: string; pass: string }, type: string, org: string): Promise<void> {
  const args = [BIN, 'users', 'add', auth.user, '--type', type, '--org', org, '--secret', auth.pass, '--persistence-root-path', node.root];
  await run(process.execPath, args);
  const deadline = Date.now() + 10_000;
  while ((await raw(node, 'GET', '/api/v1/health', { auth })).status !== 200) {
    if (Date.now() > deadline) throw new Error(`${auth.user} is still refused 10 s after being added`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** PUT of an object body as JSON through raw(), for the wire-level answer. */
function putRaw(path: string, body: unknown, auth?: { user: string; pass: string }): ReturnType<typeof raw> {
  return raw(css, 'PUT', path, { body: JSON.stringify(body), ...(auth ? { auth } : {}) });
}

/** A request to the ESS over HTTPS trusting its self-signed certificate (fetch would refuse it). */
async function essRaw(method: string, path: string, body?: string): Promise<{ status: number; headers: IncomingHttpHeaders; text: string }> {
  const ca = await readFile(join(ess.root, 'sync', 'certs', 'cert.pem'));
  const url = new URL(ess.url);
  const admin = ess.admin!;
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: url.hostname,
        port: url.port,
        method,
        path,
        ca,
        agent: false,
        headers: { authorization: `Basic ${Buffer.from(`${admin.appKey}:${admin.secret}`).toString('base64')}` },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** The node's log lines at error level or above (pino JSON on its output). */
function errorLines(node: RunningProcess): string[] {
  return node
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{') && (JSON.parse(line) as { level: number }).level >= 50);
}

function ids(list: readonly { objectID: string }[]): string[] {
  return list.map((o) => o.objectID).sort();
}

beforeAll(async () => {
  [css, ess] = await Promise.all([
    startManaged(t, { mode: 'css', env: { MAX_DATA_CHUNK_SIZE: String(CHUNK) } }),
    startManaged(t, { mode: 'ess', env: ESS_ENV }),
  ]);
  client = await css.client({ orgID: ORG });
  essClient = await ess.client();
  t.add(() => Promise.resolve(client.close()));
  t.add(() => Promise.resolve(essClient.close()));
  for (const orgID of [ORG, 'org2', 'orgp', 'orgf', 'orgempty']) await client.putOrganization({ orgID });
  await addUser(css, OTHER, 'admin', 'org2');
  await addUser(css, ALICE, 'admin', ORG);
});
afterAll(() => t.run());

describe('O1 GET /objects/{org}/{type}/{id}: metadata', () => {
  test('answers all 32 keys in wire order, indented by 2 spaces, with <, > and & escaped as Go does', async () => {
    await client.updateObject({ objectID: 'm1', objectType: 'meta', description: 'x < y & z', version: '1.0' });
    const res = await raw(css, 'GET', `/api/v1/objects/${ORG}/meta/m1`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const meta = parseJson(res.text) as Record<string, unknown>;
    expect(Object.keys(meta)).toEqual(META_KEYS);
    const goStyle = stringifyJson(meta, 2).replace(/[<>&]/g, (c) => `\\u00${c.charCodeAt(0).toString(16)}`);
    expect(res.text).toBe(goStyle);
    expect(res.text).toContain('"description": "x \\u003c y \\u0026 z"');
    expect(meta).toMatchObject({ objectID: 'm1', objectType: 'meta', destinationsList: null, destinationPolicy: null, version: '1.0' });
  });

  test('an unknown object is 404 for a reader of the type, which the SDK reports as null', async () => {
    const res = await raw(css, 'GET', `/api/v1/objects/${ORG}/meta/nope`);
    expect(res.status).toBe(404);
    expect(res.text).toBe('');
    expect(await client.getObject('meta', 'nope')).toBeNull();
  });
});

describe('O2 PUT /objects/{org}/{type}/{id}: create or replace', () => {
  test('answers 204 and fills in the server-side fields, ignoring those the client sent', async () => {
    const body = { meta: { objectID: 'd1', objectType: 'put', ownerID: 'someone/else', instanceID: 7, chunkSize: 3, objectSize: 99 } };
    const res = await putRaw(`/api/v1/objects/${ORG}/put/d1`, body);
    expect(res.status).toBe(204);
    expect(res.text).toBe('');
    const meta = (await client.getObject('put', 'd1'))!;
    expect(meta).toMatchObject({
      destinationOrgID: ORG,
      consumers: 1,
      originID: 'Cloud',
      originType: 'Cloud',
      ownerID: '/admin',
      chunkSize: CHUNK,
      objectSize: 0,
      dataID: 0n,
      uploadChunkSize: 0,
      deleted: false,
    });
    expect(meta.instanceID > 2n ** 53n && meta.instanceID !== 7n).toBe(true);
    expect(await client.getObjectStatus('put', 'd1')).toBe('notReady');
  });

  test('every store gets a new, larger instanceID', async () => {
    await client.updateObject({ objectID: 'd2', objectType: 'put' });
    const first = (await client.getObject('put', 'd2'))!;
    await client.updateObject({ objectID: 'd2', objectType: 'put', description: 'second' });
    const second = (await client.getObject('put', 'd2'))!;
    expect(second.description).toBe('second');
    expect(second.instanceID).toBeGreaterThan(first.instanceID);
  });

  test('consumers -1 means unlimited (2147483647)', async () => {
    await client.updateObject({ objectID: 'd3', objectType: 'put', consumers: -1 });
    expect((await client.getObject('put', 'd3'))!.consumers).toBe(2147483647);
  });

  test('ownerID is forced to userOrg/userID of the caller', async () => {
    const res = await putRaw(`/api/v1/objects/${ORG}/put/d4`, { meta: { objectID: 'd4', objectType: 'put', ownerID: 'x/y' } }, ALICE);
    expect(res.status).toBe(204);
    expect((await client.getObject('put', 'd4'))!.ownerID).toBe(`${ORG}/alice`);
  });

  test('keys match case-insensitively and unknown keys (the SDKs\' doNotSend) are ignored', async () => {
    const res = await putRaw(`/api/v1/objects/${ORG}/put/d5`, { meta: { OBJECTID: 'd5', objecttype: 'put', Description: 'any case', doNotSend: true } });
    expect(res.status).toBe(204);
    expect((await client.getObject('put', 'd5'))!.description).toBe('any case');
  });

  test('an explicit origin is kept', async () => {
    await client.updateObject({ objectID: 'd6', objectType: 'put', originID: 'factory', originType: 'builder' });
    expect(await client.getObject('put', 'd6')).toMatchObject({ originID: 'factory', originType: 'builder' });
  });
});

describe('O3 DELETE /objects/{org}/{type}/{id}', () => {
  test('answers 204; the object is then gone (404)', async () => {
    await client.updateObject({ objectID: 'x1', objectType: 'del' });
    const res = await raw(css, 'DELETE', `/api/v1/objects/${ORG}/del/x1`);
    expect(res.status).toBe(204);
    expect(res.text).toBe('');
    expect((await raw(css, 'GET', `/api/v1/objects/${ORG}/del/x1`)).status).toBe(404);
  });

  test('a sync admin deleting a missing object gets 400 with the reference text', async () => {
    const res = await raw(css, 'DELETE', `/api/v1/objects/${ORG}/del/missing`);
    expect(res.status).toBe(400);
    expect(res.text).toBe('Failed to delete the object. Error: Object not found\n');
    await expect(client.deleteObject('del', 'missing')).rejects.toMatchObject({ status: 400 });
  });

  test('an org admin deleting a missing object gets 404', async () => {
    const res = await raw(css, 'DELETE', `/api/v1/objects/${ORG}/del/missing`, { auth: ALICE });
    expect(res.status).toBe(404);
  });
});

describe('O4 / O5 GET /objects/{org}/{type}: listings', () => {
  test('O4 lists only objects received from the other side, so on a lone CSS it is 404 (SDK: [])', async () => {
    await client.updateObject({ objectID: 'l1', objectType: 'list' }, 'data');
    for (const query of ['', '?received=true', '?all_objects=false']) {
      const res = await raw(css, 'GET', `/api/v1/objects/${ORG}/list${query}`);
      expect([query, res.status, res.text]).toEqual([query, 404, '']);
    }
    expect(await client.listObjects('list')).toEqual([]);
    expect(await client.listObjects('list', { received: true })).toEqual([]);
  });

  test('O4/O5 refuse a query value that is not a Go bool', async () => {
    expect((await raw(css, 'GET', `/api/v1/objects/${ORG}/list?received=maybe`)).status).toBe(400);
    expect((await raw(css, 'GET', `/api/v1/objects/${ORG}/list?all_objects=yes`)).status).toBe(400);
  });

  test('O5 all_objects=true lists every object of the type whatever its status', async () => {
    await client.updateObject({ objectID: 'l2', objectType: 'list', destinationsList: ['edge:n1'] });
    const res = await raw(css, 'GET', `/api/v1/objects/${ORG}/list?all_objects=true`);
    expect(res.status).toBe(200);
    const list = parseJson(res.text) as Record<string, unknown>[];
    expect(list.map((o) => Object.keys(o))).toEqual([
      ['orgID', 'objectType', 'objectID', 'destinations'],
      ['orgID', 'objectType', 'objectID', 'destinations'],
    ]);
    const sdk = await client.listAllObjects('list');
    expect(sdk.sort((a, b) => a.objectID.localeCompare(b.objectID))).toEqual([
      { orgID: ORG, objectType: 'list', objectID: 'l1', destinations: [] },
      { orgID: ORG, objectType: 'list', objectID: 'l2', destinations: [{ destinationType: 'edge', destinationID: 'n1', status: 'pending', message: '' }] },
    ]);
  });

  test('O5 of a type without objects is 404', async () => {
    expect((await raw(css, 'GET', `/api/v1/objects/${ORG}/nosuchtype?all_objects=true`)).status).toBe(404);
    expect(await client.listAllObjects('nosuchtype')).toEqual([]);
  });
});

describe('O6 PUT /objects/{org}/{type}: webhooks', () => {
  const path = `/api/v1/objects/${ORG}/hooks`;

  test('register and delete answer 204; the action is case-insensitive', async () => {
    await client.registerWebhook('hooks', 'http://127.0.0.1:9/hook');
    await client.deleteWebhook('hooks', 'http://127.0.0.1:9/hook');
    const res = await putRaw(path, { action: 'REGISTER', url: 'https://example.com/hook' });
    expect([res.status, res.text]).toEqual([204, '']);
  });

  test('an unparsable URL is 400 "Invalid webhook"', async () => {
    const res = await putRaw(path, { action: 'register', url: '::not a url' });
    expect([res.status, res.text]).toEqual([400, 'Invalid webhook\n']);
  });

  test('a scheme other than http/https is 400 with the reference\'s (sic) text', async () => {
    const res = await putRaw(path, { action: 'register', url: 'ftp://example.com/hook' });
    expect([res.status, res.text]).toEqual([400, 'Invalid destination data URI\n']);
  });

  test('an unknown action quietly answers 204', async () => {
    const res = await putRaw(path, { action: 'subscribe', url: 'http://example.com/hook' });
    expect([res.status, res.text]).toEqual([204, '']);
  });

  test('a body that is not JSON is 400 "Invalid JSON for update"', async () => {
    const res = await raw(css, 'PUT', path, { body: 'register me' });
    expect(res.status).toBe(400);
    expect(res.text).toMatch(/^Invalid JSON for update\. Error: .+\n$/);
  });
});

describe('O7–O9 app marks on an object of the sending side', () => {
  beforeAll(() => client.updateObject({ objectID: 'mk', objectType: 'marks' }));

  test('O7 consumed is 400: only received objects can be consumed', async () => {
    const res = await raw(css, 'PUT', `/api/v1/objects/${ORG}/marks/mk/consumed`);
    expect(res.status).toBe(400);
    expect(res.text).toBe('Failed to mark the object as consumed. Error: Invalid attempt to mark object in status notReady as consumed\n\n');
  });

  test('O8 received is 400 likewise', async () => {
    const res = await raw(css, 'PUT', `/api/v1/objects/${ORG}/marks/mk/received`);
    expect(res.status).toBe(400);
    expect(res.text).toBe('Failed to mark the object as received. Error: Invalid attempt to mark object in status notReady as received\n\n');
  });

  test('O9 deleted is 400: only an object deleted by the other side can be confirmed', async () => {
    const res = await raw(css, 'PUT', `/api/v1/objects/${ORG}/marks/mk/deleted`);
    expect(res.status).toBe(400);
    expect(res.text).toBe("Failed to confirm object's deletion. Error: Invalid attempt to confirm deletion of object in status notReady\n\n");
  });

  test('on a missing object each mark names what it could not find', async () => {
    const expected: [string, string][] = [
      ['consumed', 'Failed to mark the object as consumed. Error: Failed to find object to mark as consumed\n'],
      ['received', 'Failed to mark the object as received. Error: Failed to find object to mark as received\n'],
      ['deleted', "Failed to confirm object's deletion. Error: Failed to find object to confirm deletion\n"],
    ];
    for (const [op, text] of expected) {
      const res = await raw(css, 'PUT', `/api/v1/objects/${ORG}/marks/none/${op}`);
      expect([op, res.status, res.text]).toEqual([op, 400, text]);
    }
  });

  test('the SDK surfaces these as BadRequestError with the body', async () => {
    await expect(client.markObjectConsumed('marks', 'mk')).rejects.toMatchObject({ name: 'BadRequestError', status: 400 });
    await expect(client.markObjectReceived('marks', 'mk')).rejects.toMatchObject({ name: 'BadRequestError', status: 400 });
    await expect(client.markObjectDeleted('marks', 'mk')).rejects.toMatchObject({ name: 'BadRequestError', status: 400 });
  });
});

describe('O10 PUT …/activate', () => {
  test('makes an inactive object active', async () => {
    await client.updateObject({ objectID: 'a1', objectType: 'act', inactive: true });
    expect((await client.getObject('act', 'a1'))!.inactive).toBe(true);
    await client.activateObject('act', 'a1');
    expect((await client.getObject('act', 'a1'))!.inactive).toBe(false);
  });

  test('a missing object is 400 "Object not found"', async () => {
    const res = await raw(css, 'PUT', `/api/v1/objects/${ORG}/act/none/activate`);
    expect([res.status, res.text]).toEqual([400, 'Failed to mark the object as active. Error: Object not found\n']);
  });
});

describe('O12 GET …/status', () => {
  test('is the bare status string with the reference\'s "plain/text" content type', async () => {
    await client.updateObject({ objectID: 's1', objectType: 'stat' });
    const res = await raw(css, 'GET', `/api/v1/objects/${ORG}/stat/s1/status`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('plain/text');
    expect(res.text).toBe('notReady');
  });

  test('follows the object: ready once it has data, ready at once for a noData object', async () => {
    await client.updateObject({ objectID: 's2', objectType: 'stat' });
    await client.updateObjectData('stat', 's2', Buffer.from('payload'));
    expect(await client.getObjectStatus('stat', 's2')).toBe('ready');
    await client.updateObject({ objectID: 's3', objectType: 'stat', noData: true });
    expect(await client.getObjectStatus('stat', 's3')).toBe('ready');
  });

  test('an unknown object is 404 (SDK: null)', async () => {
    expect((await raw(css, 'GET', `/api/v1/objects/${ORG}/stat/none/status`)).status).toBe(404);
    expect(await client.getObjectStatus('stat', 'none')).toBeNull();
  });
});

describe('O13–O15 …/destinations', () => {
  test('O13 lists the destinationsList entries as pending, with all four keys', async () => {
    await client.updateObject({ objectID: 'g1', objectType: 'dest', destinationsList: ['edge:n1', 'gateway:g7'] });
    const res = await raw(css, 'GET', `/api/v1/objects/${ORG}/dest/g1/destinations`);
    expect(res.status).toBe(200);
    const list = parseJson(res.text) as Record<string, unknown>[];
    expect(list.map((d) => Object.keys(d))).toEqual([
      ['destinationType', 'destinationID', 'status', 'message'],
      ['destinationType', 'destinationID', 'status', 'message'],
    ]);
    expect(list).toEqual([
      { destinationType: 'edge', destinationID: 'n1', status: 'pending', message: '' },
      { destinationType: 'gateway', destinationID: 'g7', status: 'pending', message: '' },
    ]);
  });

  test('O13 for a single destinationType/destinationID', async () => {
    await client.updateObject({ objectID: 'g2', objectType: 'dest', destinationType: 'edge', destinationID: 'n9' });
    expect(await client.getObjectDestinations('dest', 'g2')).toEqual([{ destinationType: 'edge', destinationID: 'n9', status: 'pending', message: '' }]);
  });

  test('O13 is 404 for a broadcast while no ESS is registered, and for an unknown object', async () => {
    await client.updateObject({ objectID: 'g3', objectType: 'dest' });
    expect((await raw(css, 'GET', `/api/v1/objects/${ORG}/dest/g3/destinations`)).status).toBe(404);
    expect(await client.getObjectDestinations('dest', 'g3')).toEqual([]);
    expect((await raw(css, 'GET', `/api/v1/objects/${ORG}/dest/none/destinations`)).status).toBe(404);
  });

  test('O14 PUT replaces the list (204)', async () => {
    await client.updateObject({ objectID: 'g4', objectType: 'dest', destinationsList: ['edge:n1'] });
    const res = await raw(css, 'PUT', `/api/v1/objects/${ORG}/dest/g4/destinations`, { body: JSON.stringify(['edge:n2', 'edge:n3']) });
    expect([res.status, res.text]).toEqual([204, '']);
    expect((await client.getObject('dest', 'g4'))!.destinationsList).toEqual(['edge:n2', 'edge:n3']);
    expect((await client.getObjectDestinations('dest', 'g4')).map((d) => d.destinationID)).toEqual(['n2', 'n3']);
  });

  test('O14 refuses < and >, malformed JSON, and a missing object', async () => {
    await client.updateObject({ objectID: 'g5', objectType: 'dest', destinationsList: ['edge:n1'] });
    const path = `/api/v1/objects/${ORG}/dest/g5/destinations`;
    const angle = await raw(css, 'PUT', path, { body: JSON.stringify(['edge:<n2>']) });
    expect([angle.status, angle.text]).toEqual([
      400,
      'Unsupported char in destinationsList. Error: destinationsList contains unsupported char: < or > (edge:<n2>)\n',
    ]);
    const bad = await raw(css, 'PUT', path, { body: '["edge:n2"' });
    expect(bad.status).toBe(400);
    expect(bad.text).toMatch(/^Invalid JSON for update\. Error: /);
    expect((await client.getObject('dest', 'g5'))!.destinationsList).toEqual(['edge:n1']);
    const missing = await raw(css, 'PUT', `/api/v1/objects/${ORG}/dest/none/destinations`, { body: '["edge:n2"]' });
    expect(missing.status).toBe(404);
  });

  test('O15 POST adds and removes destinations', async () => {
    await client.updateObject({ objectID: 'g6', objectType: 'dest', destinationsList: ['edge:n1'] });
    await client.addOrRemoveDestinations('dest', 'g6', 'add', ['edge:n2', 'edge:n1']);
    expect((await client.getObject('dest', 'g6'))!.destinationsList).toEqual(['edge:n1', 'edge:n2']);
    await client.addOrRemoveDestinations('dest', 'g6', 'remove', ['edge:n1']);
    expect((await client.getObject('dest', 'g6'))!.destinationsList).toEqual(['edge:n2']);
  });

  test('O15 refuses an unknown action and malformed JSON with the reference texts', async () => {
    await client.updateObject({ objectID: 'g7', objectType: 'dest', destinationsList: ['edge:n1'] });
    const path = `/api/v1/objects/${ORG}/dest/g7/destinations`;
    const action = await raw(css, 'POST', path, { body: JSON.stringify({ action: 'replace', destinations: ['edge:n2'] }) });
    expect([action.status, action.text]).toEqual([400, 'Invalid action (replace) in payload.\n']);
    const bad = await raw(css, 'POST', path, { body: '{"action":' });
    expect(bad.status).toBe(400);
    expect(bad.text).toMatch(/^Invalid JSON for add\/remove destinations\. Error: /);
    expect((await client.getObject('dest', 'g7'))!.destinationsList).toEqual(['edge:n1']);
  });
});

describe('O11 / O18 destination policies (org orgp)', () => {
  let policyClient: SyncServiceClient;
  beforeAll(async () => {
    policyClient = await css.client({ orgID: 'orgp' });
    await policyClient.updateObject({ objectID: 'p1', objectType: 'pol', destinationPolicy: POLICY });
    const other = { ...POLICY, services: [{ orgID: 'svcorg', arch: 'arm64', serviceName: 'other', version: '1.0.0' }] };
    await policyClient.updateObject({ objectID: 'p2', objectType: 'pol', destinationPolicy: other });
    await policyClient.updateObject({ objectID: 'plain', objectType: 'pol' });
  });
  afterAll(() => policyClient.close());

  test('O18 lists the objects that have a policy, with the policy before the destinations', async () => {
    const res = await raw(css, 'GET', '/api/v1/objects/orgp?destination_policy=true');
    expect(res.status).toBe(200);
    const list = parseJson(res.text) as { objectID: string; destinationPolicy: { timestamp: number } }[];
    expect(ids(list)).toEqual(['p1', 'p2']);
    for (const entry of list) {
      expect(Object.keys(entry)).toEqual(['orgID', 'objectType', 'objectID', 'destinationPolicy', 'destinations']);
      expect(entry.destinationPolicy.timestamp).toBeGreaterThan(0);
    }
    const p1 = (await policyClient.getObject('pol', 'p1'))!;
    expect(p1.destinationPolicy).toMatchObject({ properties: [{ name: 'color', value: 'blue' }], services: POLICY.services });
  });

  test('O18 `service` keeps the objects whose policy names that service; half a name is 400', async () => {
    expect(ids(await policyClient.listObjectsWithDestinationPolicy({ service: 'svcorg/svc' }))).toEqual(['p1']);
    expect((await raw(css, 'GET', '/api/v1/objects/orgp?destination_policy=true&service=svcorg')).status).toBe(400);
  });

  test('O18 `since` (Unix nanoseconds, exact to the nanosecond) keeps policies stored at or after it', async () => {
    const res = await raw(css, 'GET', '/api/v1/objects/orgp?destination_policy=true');
    // The stamps as written in the JSON (an int64 for Go and Python clients): JSON.parse would round them.
    const stamps = [...res.text.matchAll(/"timestamp": (\d+)/g)].map((m) => BigInt(m[1]!));
    expect(stamps).toHaveLength(2);
    const oldest = stamps.reduce((a, b) => (a < b ? a : b));
    const newest = stamps.reduce((a, b) => (a > b ? a : b));
    expect(ids(await policyClient.listObjectsWithDestinationPolicy({ since: 1n }))).toEqual(['p1', 'p2']);
    expect(ids(await policyClient.listObjectsWithDestinationPolicy({ since: oldest }))).toEqual(['p1', 'p2']);
    expect((await policyClient.listObjectsWithDestinationPolicy({ since: newest })).length).toBeGreaterThanOrEqual(1);
    expect(await policyClient.listObjectsWithDestinationPolicy({ since: newest + 1n })).toEqual([]);
    expect((await raw(css, 'GET', '/api/v1/objects/orgp?destination_policy=true&since=9223372036854775808')).status).toBe(400);
    expect((await raw(css, 'GET', '/api/v1/objects/orgp?destination_policy=true&since=0')).status).toBe(400);
    expect((await raw(css, 'GET', '/api/v1/objects/orgp?destination_policy=true&since=yesterday')).status).toBe(400);
  });

  test('O11 policyreceived (204) hides the object from O18 unless received=true', async () => {
    const res = await raw(css, 'PUT', '/api/v1/objects/orgp/pol/p1/policyreceived');
    expect([res.status, res.text]).toEqual([204, '']);
    expect(ids(await policyClient.listObjectsWithDestinationPolicy())).toEqual(['p2']);
    expect(ids(await policyClient.listObjectsWithDestinationPolicy({ received: true }))).toEqual(['p1', 'p2']);
    await policyClient.markPolicyReceived('pol', 'p2');
    expect((await raw(css, 'GET', '/api/v1/objects/orgp?destination_policy=true')).status).toBe(404);
  });
});

describe('O19 filters and O20 list_object_type (org orgf)', () => {
  let f: SyncServiceClient;
  const inDays = (d: number): string => new Date(Date.now() + d * 86_400_000).toISOString().replace(/\.\d+Z$/, 'Z');
  beforeAll(async () => {
    f = await css.client({ orgID: 'orgf' });
    const objects: ObjectInput[] = [
      { objectID: 'a', objectType: 'ta', destinationsList: ['edge:n1', 'gw:g2'], noData: true },
      { objectID: 'b', objectType: 'ta', destinationType: 'gw', destinationID: 'g1' },
      { objectID: 'c', objectType: 'tb', expiration: inDays(1), destinationPolicy: POLICY },
      { objectID: 'd', objectType: 'tb', expiration: inDays(10) },
    ];
    for (const o of objects) await f.updateObject(o);
  });
  afterAll(() => f.close());

  const filtered = async (filters: Parameters<SyncServiceClient['listObjectsWithFilters']>[0]): Promise<string[]> =>
    ids(await f.listObjectsWithFilters(filters));

  test('objectType, and objectID only together with it', async () => {
    expect(await filtered({ objectType: 'ta' })).toEqual(['a', 'b']);
    expect(await filtered({ objectType: 'ta', objectID: 'b' })).toEqual(['b']);
    expect(await filtered({ objectID: 'b' })).toEqual(['a', 'b', 'c', 'd']);
  });

  test('destinationType matches the meta\'s destinationType, else a destinationsList prefix', async () => {
    expect(await filtered({ destinationType: 'edge' })).toEqual(['a']);
    expect(await filtered({ destinationType: 'gw' })).toEqual(['a', 'b']);
    expect(await filtered({ destinationType: 'gw', destinationID: 'g1' })).toEqual(['b']);
    expect(await filtered({ destinationType: 'edge', destinationID: 'n1' })).toEqual(['a']);
  });

  test('noData, expirationTimeBefore (objects without expiration excluded) and destinationPolicy', async () => {
    expect(await filtered({ noData: true })).toEqual(['a']);
    expect(await filtered({ noData: false })).toEqual(['b', 'c', 'd']);
    expect(await filtered({ expirationTimeBefore: inDays(5) })).toEqual(['c']);
    expect(await filtered({ expirationTimeBefore: inDays(30) })).toEqual(['c', 'd']);
    expect(await filtered({ destinationPolicy: true })).toEqual(['c']);
    expect(await filtered({ destinationPolicy: false })).toEqual(['a', 'b', 'd']);
    expect(await filtered({ destinationPolicy: true, dpService: 'svcorg/svc', dpPropertyName: 'color' })).toEqual(['c']);
    expect(await filtered({ destinationPolicy: true, dpPropertyName: 'size' })).toEqual([]);
  });

  test('answers full MetaData, 404 when nothing matches, 400 for a bad bool or time', async () => {
    const res = await raw(css, 'GET', '/api/v1/objects/orgf?filters=true&objectType=ta&objectID=b');
    expect(res.status).toBe(200);
    const [meta] = parseJson(res.text) as Record<string, unknown>[];
    expect(Object.keys(meta!)).toEqual(META_KEYS);
    expect((await raw(css, 'GET', '/api/v1/objects/orgf?filters=true&objectType=none')).status).toBe(404);
    expect((await raw(css, 'GET', '/api/v1/objects/orgf?filters=true&noData=perhaps')).status).toBe(400);
    expect((await raw(css, 'GET', '/api/v1/objects/orgf?filters=true&expirationTimeBefore=tomorrow')).status).toBe(400);
  });

  test('O20 lists the distinct object types; 404 in an org without objects', async () => {
    const res = await raw(css, 'GET', '/api/v1/objects/orgf?list_object_type=true');
    expect(res.status).toBe(200);
    expect((parseJson(res.text) as string[]).sort()).toEqual(['ta', 'tb']);
    expect((await f.listObjectTypes()).sort()).toEqual(['ta', 'tb']);
    expect((await raw(css, 'GET', '/api/v1/objects/orgempty?list_object_type=true')).status).toBe(404);
  });

  test('the first non-empty selector decides and must be true', async () => {
    expect((await raw(css, 'GET', '/api/v1/objects/orgf?destination_policy=false&filters=true')).status).toBe(400);
    expect((await raw(css, 'GET', '/api/v1/objects/orgf?destination_policy=&filters=true&objectType=ta')).status).toBe(200);
    expect((await raw(css, 'GET', '/api/v1/objects/orgf?filters=1&list_object_type=true&objectType=ta')).status).toBe(200);
    expect((await raw(css, 'GET', '/api/v1/objects/orgf?filters=no&list_object_type=true')).status).toBe(400);
    expect((await raw(css, 'GET', '/api/v1/objects/orgf')).status).toBe(400);
    expect((await raw(css, 'GET', '/api/v1/objects/orgf?unknown=true')).status).toBe(400);
  });
});

describe('dispatch and wire conventions', () => {
  beforeAll(() => client.updateObject({ objectID: 'w1', objectType: 'wire' }));

  test('op names match case-insensitively and one trailing slash is tolerated', async () => {
    for (const path of ['/wire/w1/STATUS', '/wire/w1/Status/', '/wire/w1/status/']) {
      const res = await raw(css, 'GET', `/api/v1/objects/${ORG}${path}`);
      expect([path, res.status, res.text]).toEqual([path, 200, 'notReady']);
    }
    expect((await raw(css, 'GET', `/api/v1/objects/${ORG}/wire/w1/`)).status).toBe(200);
  });

  test('an unknown op or depth is 400 once authenticated, 403 before', async () => {
    expect((await raw(css, 'PUT', `/api/v1/objects/${ORG}/wire/w1/frobnicate`)).status).toBe(400);
    expect((await raw(css, 'GET', `/api/v1/objects/${ORG}/wire/w1/status/extra`)).status).toBe(400);
    expect((await raw(css, 'PUT', `/api/v1/objects/${ORG}/wire/w1/frobnicate`, { auth: null })).status).toBe(403);
  });

  test('no credentials, or a wrong password, is 403 "Unauthorized" without a challenge', async () => {
    for (const auth of [null, { user: css.admin!.appKey, pass: 'wrong' }, { user: 'nobody', pass: 'x' }]) {
      const res = await raw(css, 'GET', `/api/v1/objects/${ORG}/wire/w1`, { auth });
      expect([res.status, res.text]).toEqual([403, 'Unauthorized']);
      expect(res.headers.get('www-authenticate')).toBeNull();
    }
    const wrong = await css.client({ orgID: ORG, appSecret: 'wrong' });
    await expect(wrong.getObject('wire', 'w1')).rejects.toMatchObject({ name: 'UnauthorizedError', status: 403 });
    wrong.close();
  });

  test('a method a path does not list is 405 with an empty body, but 403 comes first', async () => {
    const res = await raw(css, 'POST', `/api/v1/objects/${ORG}/wire/w1`);
    expect([res.status, res.text]).toEqual([405, '']);
    expect(res.headers.get('allow')).toBeNull();
    expect((await raw(css, 'PATCH', `/api/v1/objects/${ORG}/wire/w1/status`)).status).toBe(405);
    expect((await raw(css, 'POST', `/api/v1/objects/${ORG}/wire/w1`, { auth: null })).status).toBe(403);
  });

  test('the objects subtree root without its slash redirects (301) with the query kept', async () => {
    const res = await raw(css, 'GET', '/api/v1/objects?x');
    expect(res.status).toBe(301);
    expect(res.headers.get('location')).toBe('/api/v1/objects/?x');
  });

  test('an unregistered path is 404 "404 page not found"', async () => {
    for (const path of ['/api/v1/nothing', '/nothing']) {
      const res = await raw(css, 'GET', path);
      expect([path, res.status, res.text]).toEqual([path, 404, '404 page not found\n']);
    }
  });

  test('API answers carry the no-cache, HSTS and request-id headers, successes and errors alike', async () => {
    const answers = [
      await raw(css, 'GET', `/api/v1/objects/${ORG}/wire/w1`),
      await raw(css, 'PUT', `/api/v1/objects/${ORG}/wire/w1/activate`),
      await raw(css, 'GET', `/api/v1/objects/${ORG}/wire/w1`, { auth: null }),
      await raw(css, 'PUT', `/api/v1/objects/${ORG}/wire/w1/frobnicate`),
    ];
    expect(answers.map((a) => a.status)).toEqual([200, 204, 403, 400]);
    for (const a of answers) {
      expect(a.headers.get('cache-control')).toBe('no-store, no-cache, must-revalidate');
      expect(a.headers.get('pragma')).toBe('no-cache');
      expect(a.headers.get('strict-transport-security')).toBe('max-age=63072000; includeSubDomains; preload');
      expect(a.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    }
    expect(new Set(answers.map((a) => a.headers.get('x-request-id'))).size).toBe(answers.length);
  });
});

describe('public objects across orgs', () => {
  let stranger: SyncServiceClient;
  beforeAll(async () => {
    await client.updateObject({ objectID: 'pub', objectType: 'shared', public: true }, 'public bytes');
    await client.updateObject({ objectID: 'priv', objectType: 'shared' }, 'private bytes');
    stranger = await css.client({ orgID: ORG, appKey: OTHER.user, appSecret: OTHER.pass });
  });
  afterAll(() => stranger.close());

  test('an admin of another org reads a public object: metadata, status, destinations and data', async () => {
    expect((await stranger.getObject('shared', 'pub'))!.public).toBe(true);
    expect(await stranger.getObjectStatus('shared', 'pub')).toBe('ready');
    expect(await stranger.getObjectDestinations('shared', 'pub')).toEqual([]);
    const chunks: Buffer[] = [];
    for await (const c of await stranger.fetchObjectData('shared', 'pub')) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('public bytes');
  });

  test('…and sees only public objects in listings', async () => {
    expect((await stranger.listAllObjects('shared')).map((o) => o.objectID)).toEqual(['pub']);
  });

  test('a private object, or a missing one, is 403 for them (not 404)', async () => {
    for (const id of ['priv', 'missing']) {
      const res = await raw(css, 'GET', `/api/v1/objects/${ORG}/shared/${id}`, { auth: OTHER });
      expect([id, res.status, res.text]).toEqual([id, 403, 'Unauthorized']);
    }
    const data = await raw(css, 'GET', `/api/v1/objects/${ORG}/shared/priv/data`, { auth: OTHER });
    expect([data.status, data.text]).toEqual([403, 'Unauthorized. The object may not exist or be public.\n']);
  });

  test('public is not enough to mark, change or delete the object', async () => {
    const before = await client.getObject('shared', 'pub');
    for (const op of ['consumed', 'received', 'deleted', 'activate', 'policyreceived']) {
      const res = await raw(css, 'PUT', `/api/v1/objects/${ORG}/shared/pub/${op}`, { auth: OTHER });
      expect([op, res.status]).toEqual([op, 403]);
    }
    await expect(stranger.updateObject({ objectID: 'pub', objectType: 'shared', public: true, description: 'mine' })).rejects.toMatchObject({ status: 403 });
    await expect(stranger.updateObjectData('shared', 'pub', Buffer.from('mine'))).rejects.toMatchObject({ status: 403 });
    await expect(stranger.deleteObject('shared', 'pub')).rejects.toMatchObject({ status: 403 });
    expect(await client.getObject('shared', 'pub')).toEqual(before);
  });
});

describe('the object routes on an ESS (no org in the path)', () => {
  test('PUT and GET: the ESS is the origin and the owner, the org is its own', async () => {
    await essClient.updateObject({ objectID: 'e1', objectType: 'up' });
    const meta = (await essClient.getObject('up', 'e1'))!;
    expect(Object.keys(meta)).toEqual(META_KEYS);
    expect(meta).toMatchObject({ destinationOrgID: 'org1', originType: 'edge', originID: 'n1', ownerID: 'org1/n1', consumers: 1 });
    expect(await essClient.getObjectStatus('up', 'e1')).toBe('notReady');
  });

  test('data up and down, status, O5 listing; O4 is 404 with nothing received', async () => {
    await essClient.updateObject({ objectID: 'e2', objectType: 'up' });
    await essClient.updateObjectData('up', 'e2', Buffer.from('from the edge'));
    expect(await essClient.getObjectStatus('up', 'e2')).toBe('ready');
    const chunks: Buffer[] = [];
    for await (const c of await essClient.fetchObjectData('up', 'e2')) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('from the edge');
    expect((await essClient.listAllObjects('up')).map((o) => o.objectID).sort()).toEqual(['e1', 'e2']);
    await expect(essClient.listObjects('up')).resolves.toEqual([]);
  });

  test('activate works; the receive-side marks are 400 on an object it sends', async () => {
    await essClient.updateObject({ objectID: 'e3', objectType: 'up', inactive: true });
    await essClient.activateObject('up', 'e3');
    expect((await essClient.getObject('up', 'e3'))!.inactive).toBe(false);
    await expect(essClient.markObjectConsumed('up', 'e3')).rejects.toMatchObject({
      status: 400,
      body: 'Failed to mark the object as consumed. Error: Invalid attempt to mark object in status notReady as consumed\n\n',
    });
  });

  test('policyreceived is a bare 400; destinations are 404 to read and 400 to change', async () => {
    await essClient.updateObject({ objectID: 'e4', objectType: 'up' });
    await expect(essClient.markPolicyReceived('up', 'e4')).rejects.toMatchObject({ status: 400, body: '' });
    expect((await essRaw('GET', '/api/v1/objects/up/e4/destinations')).status).toBe(404);
    await expect(essClient.updateObjectDestinations('up', 'e4', ['edge:n2'])).rejects.toMatchObject({
      status: 400,
      body: "ESS doesn't support destinations update\n",
    });
    await expect(essClient.addOrRemoveDestinations('up', 'e4', 'add', ['edge:n2'])).rejects.toMatchObject({ status: 400 });
  });

  test('webhooks register (204)', async () => {
    await essClient.registerWebhook('up', 'http://127.0.0.1:9/hook');
    await essClient.deleteWebhook('up', 'http://127.0.0.1:9/hook');
  });

  test('delete answers 204; a second delete is 400 "Object not found"', async () => {
    await essClient.updateObject({ objectID: 'e5', objectType: 'up' });
    await essClient.deleteObject('up', 'e5');
    expect(await essClient.getObject('up', 'e5')).toBeNull();
    await expect(essClient.deleteObject('up', 'e5')).rejects.toMatchObject({ status: 400, body: 'Failed to delete the object. Error: Object not found\n' });
  });

  test('a destinationsList or an expiration is refused on an ESS', async () => {
    await expect(essClient.updateObject({ objectID: 'e6', objectType: 'up', destinationsList: [] })).rejects.toMatchObject({ status: 400 });
    await expect(essClient.updateObject({ objectID: 'e6', objectType: 'up', expiration: '2099-01-01T00:00:00Z' })).rejects.toMatchObject({
      status: 400,
      body: 'Object expiration is disabled on ESS\n',
    });
    expect(await essClient.getObject('up', 'e6')).toBeNull();
  });

  test('the CSS-only org listings are not there: 301 to the subtree, then 400', async () => {
    const redirect = await essRaw('GET', '/api/v1/objects?destination_policy=true');
    expect([redirect.status, redirect.headers.location]).toEqual([301, '/api/v1/objects/?destination_policy=true']);
    expect((await essRaw('GET', '/api/v1/objects/?destination_policy=true')).status).toBe(400);
  });

  test('the ESS answers over HTTPS with the same 403 for missing credentials', async () => {
    const anon = await ess.client({ appKey: 'nobody', appSecret: 'x' });
    await expect(anon.getObject('up', 'e1')).rejects.toMatchObject({ status: 403, body: 'Unauthorized' });
    anon.close();
  });
});

describe('afterwards', () => {
  test('nothing above was taken for a server failure: neither node logged at error level', () => {
    for (const node of [css, ess]) expect(errorLines(node)).toEqual([]);
  });
});
