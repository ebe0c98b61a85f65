/**
 * Organizations on the real binary. [ref rest-api §1.4]
 *
 * A multi-org CSS keeps a list of organizations that sync admins (SA) and org admins (ADM)
 * manage; a single-org CSS (ORG_ID) and an ESS have no such list.
 */
import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BIN, raw, startManaged, Teardown, type RunningProcess } from '../helpers/node-process.js';
import { DEFAULT_INLINE_LIMIT } from '../../lib/store/index.js';

jest.setTimeout(30_000);

const run = promisify(execFile);

/** `edgesync users add` against the node's root, as an operator would run it beside the node. */
async function addUser(node: RunningProcess, appKey: string, type: string, org: string, secret: string): Promise<void> {
  await run(process.execPath, [BIN, 'users', 'add', appKey, '--type', type, '--org', org, '--secret', secret, '--persistence-root-path', node.root]);
}

/** The running node re-reads the users file on its own; wait until it knows the new user. */
async function waitUntilAuthenticates(node: RunningProcess, auth: { user: string; pass: string }): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const res = await raw(node, 'GET', '/api/v1/health', { auth });
    if (res.status === 200) return;
    if (Date.now() > deadline) throw new Error(`${auth.user} still gets ${res.status} after 10 s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const orgBody = (orgID: string, address = `${orgID}.example:1883`): string => JSON.stringify({ orgID, user: 'u', password: 'p', address });

async function blobFiles(node: RunningProcess): Promise<string[]> {
  return readdir(join(node.root, 'sync', 'data', 'blobs'));
}

describe('organizations on a multi-org CSS', () => {
  const t = new Teardown();
  let css: RunningProcess;
  const adminA = { user: 'a1', pass: 's' };
  const adminB = { user: 'b1', pass: 's' };

  beforeAll(async () => {
    css = await startManaged(t, { mode: 'css' });
  });
  afterAll(() => t.run());

  test('the list is 404 with an empty body while no organization exists', async () => {
    const res = await raw(css, 'GET', '/api/v1/organizations');
    expect(res.status).toBe(404);
    expect(res.text).toBe('');
  });

  test('a sync admin creates an organization (204) and lists it with the hyphenated org-id key', async () => {
    const put = await raw(css, 'PUT', '/api/v1/organizations/orgA', { body: orgBody('orgA', 'broker-a:1883') });
    expect(put.status).toBe(204);
    expect(put.text).toBe('');

    const list = await raw(css, 'GET', '/api/v1/organizations');
    expect(list.status).toBe(200);
    expect(JSON.parse(list.text)).toEqual([{ 'org-id': 'orgA', address: 'broker-a:1883' }]);
  });

  test('the list also answers with a trailing slash', async () => {
    const res = await raw(css, 'GET', '/api/v1/organizations/');
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text)).toEqual([{ 'org-id': 'orgA', address: 'broker-a:1883' }]);
  });

  test('org admins added with the CLI are picked up by the running node', async () => {
    await addUser(css, adminA.user, 'admin', 'orgA', adminA.pass);
    await addUser(css, adminB.user, 'admin', 'orgB', adminB.pass);
    await waitUntilAuthenticates(css, adminA);
    await waitUntilAuthenticates(css, adminB);
  });

  test('an org admin sees only its own organization', async () => {
    await raw(css, 'PUT', '/api/v1/organizations/orgC', { body: orgBody('orgC') });
    const all = await raw(css, 'GET', '/api/v1/organizations');
    expect(JSON.parse(all.text)).toHaveLength(2);

    const res = await raw(css, 'GET', '/api/v1/organizations', { auth: adminA });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text)).toEqual([{ 'org-id': 'orgA', address: 'broker-a:1883' }]);
  });

  test('an org admin whose organization is not listed gets 200 [] rather than 404', async () => {
    const res = await raw(css, 'GET', '/api/v1/organizations', { auth: adminB });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text)).toEqual([]);
  });

  test('the list is refused (403 Unauthorized) without credentials', async () => {
    const res = await raw(css, 'GET', '/api/v1/organizations', { auth: null });
    expect(res.status).toBe(403);
    expect(res.text).toBe('Unauthorized');
  });

  test('an org admin may not create or delete another organization (403)', async () => {
    const put = await raw(css, 'PUT', '/api/v1/organizations/orgA', { auth: adminB, body: orgBody('orgA') });
    expect(put.status).toBe(403);
    expect(put.text).toBe('Unauthorized');
    const del = await raw(css, 'DELETE', '/api/v1/organizations/orgA', { auth: adminB });
    expect(del.status).toBe(403);
  });

  test('an org admin may create its own organization', async () => {
    const put = await raw(css, 'PUT', '/api/v1/organizations/orgB', { auth: adminB, body: orgBody('orgB') });
    expect(put.status).toBe(204);
    const res = await raw(css, 'GET', '/api/v1/organizations', { auth: adminB });
    expect(JSON.parse(res.text)).toEqual([{ 'org-id': 'orgB', address: 'orgB.example:1883' }]);
  });

  test('a URL org that differs from the payload orgID is 400 with the reference text', async () => {
    const res = await raw(css, 'PUT', '/api/v1/organizations/orgA', { body: orgBody('orgX') });
    expect(res.status).toBe(400);
    expect(res.text).toBe("Org ID (orgA) in the URL doesn't match the org-id (orgX) in the payload\n");
  });

  test('malformed JSON is 400 "Invalid JSON for update"', async () => {
    const res = await raw(css, 'PUT', '/api/v1/organizations/orgA', { body: '{"orgID": "orgA",' });
    expect(res.status).toBe(400);
    expect(res.text).toMatch(/^Invalid JSON for update\. Error: .+\n$/);
  });

  test('an invalid org name in the path is 400 even before authentication', async () => {
    const res = await raw(css, 'PUT', '/api/v1/organizations/bad%20org', { auth: null, body: orgBody('bad org') });
    expect(res.status).toBe(400);
    expect(res.text).toBe('Organization ID (bad org) contains invalid characters\n');
  });

  test('GET of a single organization is 405 with an empty body', async () => {
    const res = await raw(css, 'GET', '/api/v1/organizations/orgA');
    expect(res.status).toBe(405);
    expect(res.text).toBe('');
  });

  test("DELETE of an organization removes its objects and their data, and leaves other orgs' alone", async () => {
    const a = await css.client({ orgID: 'orgA' });
    const c = await css.client({ orgID: 'orgC' });
    try {
      const blobsBefore = await blobFiles(css);
      // Over the inline limit, so that each object's data is a file.
      const padding = 'x'.repeat(DEFAULT_INLINE_LIMIT);
      await a.updateObject({ objectType: 't', objectID: 'o1', destinationType: 'edge' }, `data of orgA${padding}`);
      await c.updateObject({ objectType: 't', objectID: 'keep', destinationType: 'edge' }, `data of orgC${padding}`);
      const blobsWithObjects = await blobFiles(css);
      expect(blobsWithObjects.length).toBe(blobsBefore.length + 2);

      const del = await raw(css, 'DELETE', '/api/v1/organizations/orgA');
      expect(del.status).toBe(204);
      expect(del.text).toBe('');

      // The org's objects are gone (the org itself is implicit: it may be used again at once).
      const get = await raw(css, 'GET', '/api/v1/objects/orgA/t/o1');
      expect([get.status, get.text]).toEqual([404, '']);
      const data = await raw(css, 'GET', '/api/v1/objects/orgA/t/o1/data');
      expect(data.status).toBe(404);
      const list = await raw(css, 'GET', '/api/v1/organizations');
      expect(JSON.parse(list.text)).not.toContainEqual(expect.objectContaining({ 'org-id': 'orgA' }));

      // Exactly the blob of orgA's object is deleted from disk.
      const blobsAfter = await blobFiles(css);
      expect(blobsAfter.length).toBe(blobsWithObjects.length - 1);
      expect(await c.getObject('t', 'keep')).toMatchObject({ objectID: 'keep' });
      const kept = await c.fetchObjectData('t', 'keep');
      const chunks: Buffer[] = [];
      for await (const chunk of kept as AsyncIterable<Buffer>) chunks.push(chunk);
      expect(Buffer.concat(chunks).toString()).toBe(`data of orgC${padding}`);
    } finally {
      a.close();
      c.close();
    }
  });

  test('re-creating a deleted organization starts it empty', async () => {
    expect((await raw(css, 'PUT', '/api/v1/organizations/orgA', { body: orgBody('orgA') })).status).toBe(204);
    expect((await raw(css, 'GET', '/api/v1/objects/orgA/t/o1')).status).toBe(404);
  });
});

describe('organizations on a single-org CSS (ORG_ID=org1)', () => {
  const t = new Teardown();
  let css: RunningProcess;

  beforeAll(async () => {
    css = await startManaged(t, { mode: 'css', env: { ORG_ID: 'org1' } });
  });
  afterAll(() => t.run());

  test('PUT and DELETE of an organization are 400 "Can\'t modify organizations for single organization CSS"', async () => {
    const put = await raw(css, 'PUT', '/api/v1/organizations/org1', { body: orgBody('org1') });
    expect(put.status).toBe(400);
    expect(put.text).toBe("Can't modify organizations for single organization CSS\n");
    const del = await raw(css, 'DELETE', '/api/v1/organizations/org1');
    expect(del.status).toBe(400);
    expect(del.text).toBe("Can't modify organizations for single organization CSS\n");
  });

  test('objects of org1 are served without creating the organization', async () => {
    const client = await css.client({ orgID: 'org1' });
    try {
      await client.updateObject({ objectType: 't', objectID: 'o1', destinationType: 'edge' }, 'hello');
      expect(await client.getObject('t', 'o1')).toMatchObject({ objectType: 't', objectID: 'o1', destinationOrgID: 'org1' });
    } finally {
      client.close();
    }
    // Nothing was added to the organization list.
    expect((await raw(css, 'GET', '/api/v1/organizations')).status).toBe(404);
  });

  test('objects of any other org are 404', async () => {
    const body = JSON.stringify({ meta: { objectType: 't', objectID: 'o1', destinationType: 'edge' } });
    const put = await raw(css, 'PUT', '/api/v1/objects/org2/t/o1', { body });
    expect(put.status).toBe(404);
    expect(put.text).toMatch(/org2/);
    expect((await raw(css, 'GET', '/api/v1/objects/org2/t/o1')).status).toBe(404);
  });
});

describe('organizations on an ESS', () => {
  const t = new Teardown();
  let ess: RunningProcess;

  beforeAll(async () => {
    ess = await startManaged(t, {
      mode: 'ess',
      env: { ORG_ID: 'org1', DESTINATION_TYPE: 'edge', DESTINATION_ID: 'n1', HTTP_CSS_HOST: '127.0.0.1', HTTP_CSS_PORT: '1', LISTENING_TYPE: 'unsecure' },
    });
  });
  afterAll(() => t.run());

  test('the list is 400 "ESS doesn\'t have organizations"', async () => {
    const res = await raw(ess, 'GET', '/api/v1/organizations');
    expect(res.status).toBe(400);
    expect(res.text).toBe("Failed to fetch the list of organizations. Error: ESS doesn't have organizations\n");
  });

  test('PUT and DELETE of an organization are 400', async () => {
    const put = await raw(ess, 'PUT', '/api/v1/organizations/org1', { body: orgBody('org1') });
    expect(put.status).toBe(400);
    expect(put.text).toBe("ESS can't add organization\n");
    expect((await raw(ess, 'DELETE', '/api/v1/organizations/org1')).status).toBe(400);
  });
});
