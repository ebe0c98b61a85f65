/**
 * The ACL routes on the real binary, and the ACLs they store at work in the authorization of
 * object requests. [ref rest-api §1.5, §3.5, §4.3, §4.4]
 *
 * Identities come from the dummy authenticator (its appKey forms, rest-api §4.1): `admin@org1`
 * is org1's admin, `org1/oadm` an object admin, `alice@org1` and `bob@org1` users,
 * `n1%org1` a node, `root@sys` the sync admin.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { raw, startManaged, Teardown, tempRoot, type RunningProcess } from '../helpers/node-process.js';
import type { SyncServiceClient } from '../../sdk/index.js';

jest.setTimeout(30_000);

const as = (user: string): { user: string; pass: string } => ({ user, pass: 'any' });
const ADMIN = as('admin@org1');
const SA = as('root@sys');
const ALICE = as('alice@org1');
const BOB = as('bob@org1');
const NODE = as('n1%org1');
const OADM = as('org1/oadm');
const OTHER_ADMIN = as('admin@org2');

const S = '/api/v1/security';
const entry = (Username: string, ACLUserType: string, ACLRole: string): { Username: string; ACLUserType: string; ACLRole: string } => ({ Username, ACLUserType, ACLRole });
const bulk = (action: string, users: unknown[]): string => JSON.stringify({ action, users });

async function startDummyCss(t: Teardown): Promise<RunningProcess> {
  const root = await tempRoot(t, 'acl');
  await mkdir(join(root, 'sync'), { recursive: true });
  await writeFile(join(root, 'sync', 'dummy-auth.json'), JSON.stringify({ regularUsers: ['alice', 'bob'], syncAdmins: ['root'], exchangeAdmins: ['oadm-never'] }));
  return startManaged(t, { mode: 'css', root, env: { AUTHENTICATION_HANDLER: 'dummy', LISTENING_ADDRESS: '127.0.0.1' } });
}

describe('ACL routes on a CSS', () => {
  const t = new Teardown();
  let css: RunningProcess;
  let admin: SyncServiceClient;

  beforeAll(async () => {
    css = await startDummyCss(t);
    admin = await css.client({ orgID: 'org1', appKey: ADMIN.user, appSecret: ADMIN.pass });
    t.add(() => Promise.resolve(admin.close()));
  });
  afterAll(() => t.run());

  describe('who may use them, checked in the reference order', () => {
    test.each([
      ['no credentials', null],
      ['an object admin', OADM],
      ['a user', ALICE],
      ['a node', NODE],
      ['the admin of another org', OTHER_ADMIN],
    ])('%s gets 403 Unauthorized', async (_who, auth) => {
      for (const [method, path] of [
        ['GET', `${S}/objects/org1`],
        ['PUT', `${S}/objects/org1/model`],
        ['DELETE', `${S}/objects/org1/model/user/alice`],
        ['POST', `${S}/objects/org1`],
      ] as const) {
        const res = await raw(css, method, path, { auth, ...(method === 'PUT' ? { body: bulk('add', []) } : {}) });
        expect([method, res.status, res.text]).toEqual([method, 403, 'Unauthorized']);
      }
    });

    test('the role comes before the depth: a user gets 403 on a path of any depth, an admin 400', async () => {
      expect((await raw(css, 'GET', `${S}/a/b/c/d/e/f`, { auth: ALICE })).status).toBe(403);
      expect(await raw(css, 'GET', `${S}/a/b/c/d/e/f`, { auth: OTHER_ADMIN })).toMatchObject({ status: 400, text: '' });
      expect(await raw(css, 'GET', `${S}/objects`, { auth: ADMIN })).toMatchObject({ status: 400, text: '' });
      expect(await raw(css, 'GET', `${S}/`, { auth: ADMIN })).toMatchObject({ status: 400, text: '' });
    });

    test('the org comes before the ACL type, which comes before the method', async () => {
      expect((await raw(css, 'GET', `${S}/bogus/org1`, { auth: OTHER_ADMIN })).status).toBe(403);
      expect(await raw(css, 'GET', `${S}/bogus/org1`, { auth: ADMIN })).toMatchObject({ status: 400, text: '' });
      expect(await raw(css, 'POST', `${S}/bogus/org1`, { auth: ADMIN })).toMatchObject({ status: 400, text: '' });
      expect(await raw(css, 'POST', `${S}/objects/org1`, { auth: ADMIN })).toMatchObject({ status: 405, text: '' });
    });

    test('the sync admin manages the ACLs of any org', async () => {
      expect((await raw(css, 'PUT', `${S}/objects/org9/t`, { auth: SA, body: bulk('add', [entry('u', 'user', 'aclReader')]) })).status).toBe(204);
      const res = await raw(css, 'GET', `${S}/objects/org9?key=t`, { auth: SA });
      expect(res.status).toBe(200);
      expect(JSON.parse(res.text)).toEqual([entry('u', 'user', 'aclReader')]);
    });

    test('the subtree root without its slash redirects, as the other collections do', async () => {
      const res = await raw(css, 'GET', `${S}?all_keys=true`, { auth: ADMIN });
      expect(res.status).toBe(301);
      expect(res.headers.get('location')).toBe(`${S}/?all_keys=true`);
    });
  });

  describe('reading and changing ACLs (through the SDK, which speaks the server format)', () => {
    test('an org without ACLs answers 404 with an empty body, which the SDK reads as empty', async () => {
      expect(await raw(css, 'GET', `${S}/destinations/org1`, { auth: ADMIN })).toMatchObject({ status: 404, text: '' });
      expect(await raw(css, 'GET', `${S}/destinations/org1?all_keys=true`, { auth: ADMIN })).toMatchObject({ status: 404, text: '' });
      expect(await admin.getAcl('destinations')).toEqual([]);
      expect(await admin.listAclKeys('destinations')).toEqual([]);
    });

    test('add creates the ACL; GET shows the entries with capitalised keys, indented as Go does', async () => {
      await admin.addToAcl('objects', 'model', [
        { Username: 'alice', ACLUserType: 'user', ACLRole: 'aclWriter' },
        { Username: 'n1', ACLUserType: 'node', ACLRole: 'aclReader' },
      ]);
      const res = await raw(css, 'GET', `${S}/objects/org1?key=model`, { auth: ADMIN });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/json');
      expect(res.text).toBe(JSON.stringify([entry('alice', 'user', 'aclWriter'), entry('n1', 'node', 'aclReader')], null, 2));
    });

    test('keys in any case are read; an entry already there keeps its role', async () => {
      const body = JSON.stringify({ ACTION: 'Add', USERS: [{ username: 'alice', aclusertype: 'user', aclrole: 'aclReader' }, { uSeRnAmE: 'bob', ACLUSERTYPE: 'user', AclRole: 'aclReader' }] });
      expect((await raw(css, 'PUT', `${S}/objects/org1/model`, { auth: ADMIN, body })).status).toBe(204);
      expect(await admin.getAcl('objects', 'model')).toEqual([entry('alice', 'user', 'aclWriter'), entry('n1', 'node', 'aclReader'), entry('bob', 'user', 'aclReader')]);
    });

    test('acl_usertype narrows the entries to users or nodes', async () => {
      expect(await admin.getAcl('objects', 'model', { aclUserType: 'node' })).toEqual([entry('n1', 'node', 'aclReader')]);
      expect((await raw(css, 'GET', `${S}/objects/org1?key=model&acl_usertype=user`, { auth: ADMIN })).text).not.toContain('"n1"');
    });

    test('the path key of a GET is ignored: the key query names the ACL (none: the * ACL)', async () => {
      expect(await raw(css, 'GET', `${S}/objects/org1/model`, { auth: ADMIN })).toMatchObject({ status: 404, text: '' });
      expect(JSON.parse((await raw(css, 'GET', `${S}/objects/org1/other?key=model`, { auth: ADMIN })).text)).toHaveLength(3);
      expect(await raw(css, 'GET', `${S}/objects/org1/model/x`, { auth: ADMIN })).toMatchObject({ status: 400, text: '' });
    });

    test('PUT without a key changes the * ACL, and all_keys lists the keys', async () => {
      await admin.addToAcl('objects', undefined, [{ Username: '*', ACLUserType: 'user', ACLRole: 'aclReader' }]);
      expect(await admin.getAcl('objects')).toEqual([entry('*', 'user', 'aclReader')]);
      expect(await admin.getAcl('objects', '*')).toEqual([entry('*', 'user', 'aclReader')]);
      expect(await admin.listAclKeys('objects')).toEqual(['*', 'model']);
    });

    test('a destinations ACL has no roles: whatever role comes in, na is stored', async () => {
      await admin.addToAcl('destinations', 'edge', [{ Username: 'alice', ACLUserType: 'user', ACLRole: 'aclWriter' }, { Username: 'bob', ACLUserType: 'user' }]);
      expect(await admin.getAcl('destinations', 'edge')).toEqual([entry('alice', 'user', 'na'), entry('bob', 'user', 'na')]);
    });

    test('remove and DELETE take entries out; the ACL goes with its last entry; absent entries are no error', async () => {
      await admin.removeFromAcl('destinations', 'edge', [{ Username: 'bob', ACLUserType: 'user' }, { Username: 'nobody', ACLUserType: 'node' }]);
      expect(await admin.getAcl('destinations', 'edge')).toEqual([entry('alice', 'user', 'na')]);
      await admin.deleteAclEntry('destinations', 'edge', 'user', 'alice');
      await admin.deleteAclEntry('destinations', 'edge', 'user', 'alice');
      expect(await admin.listAclKeys('destinations')).toEqual([]);
    });

    test("the reference SDKs' usernames format is accepted and changes nothing (204)", async () => {
      const before = await admin.getAcl('objects', 'model');
      for (const action of ['add', 'remove']) {
        const res = await raw(css, 'PUT', `${S}/objects/org1/model`, { auth: ADMIN, body: JSON.stringify({ action, usernames: ['carol'] }) });
        expect(res).toMatchObject({ status: 204, text: '' });
      }
      expect(await admin.getAcl('objects', 'model')).toEqual(before);
    });

    test('a PUT with 3 or 4 segments after the org is 200 with an empty body and changes nothing', async () => {
      const before = await admin.listAclKeys('objects');
      for (const path of [`${S}/objects/org1/model/user`, `${S}/objects/org1/model/user/alice`]) {
        expect(await raw(css, 'PUT', path, { auth: ADMIN, body: bulk('add', [entry('zed', 'user', 'aclWriter')]) })).toMatchObject({ status: 200, text: '' });
      }
      expect(await admin.listAclKeys('objects')).toEqual(before);
    });

    test('DELETE needs exactly 5 segments (a trailing slash makes 6)', async () => {
      for (const path of [`${S}/objects/org1/model/user`, `${S}/objects/org1/model/user/bob/`, `${S}/objects/org1/model`]) {
        expect(await raw(css, 'DELETE', path, { auth: ADMIN })).toMatchObject({ status: 400, text: '' });
      }
    });
  });

  describe('bad input: the reference messages, 400', () => {
    test.each([
      ['', 'Invalid JSON for update. Error: EOF\n'],
      ['{"action":', 'Invalid JSON for update. Error: unexpected EOF\n'],
      ['{"action":"add","users":"alice"}', 'Invalid JSON for update. Error: json: cannot unmarshal string into Go struct field bulkACLUpdate.users of type []common.ACLentry\n'],
      ['{"action":"add","users":[7]}', 'Invalid JSON for update. Error: json: cannot unmarshal number into Go struct field bulkACLUpdate.users of type common.ACLentry\n'],
      ['{"action":"add","users":[{"Username":7}]}', 'Invalid JSON for update. Error: json: cannot unmarshal number into Go struct field ACLentry.users.Username of type string\n'],
      ['{"action":3}', 'Invalid JSON for update. Error: json: cannot unmarshal number into Go struct field bulkACLUpdate.action of type string\n'],
      ['{"action":"grant","users":[]}', 'Invalid action (grant) in payload.\n'],
      [bulk('add', [entry('alice', 'admin', 'aclWriter')]), 'Invalid ACL entry for update. Error: aclUserType "admin" is invalid for ACL entry {alice admin aclWriter}, it should be "user", or "node"\n'],
      [bulk('add', [entry(' ', 'user', 'aclWriter')]), 'Invalid ACL entry for update. Error: username/nodename cannot be empty for ACL entry {  user aclWriter}.\n'],
      [bulk('remove', [entry('', 'node', '')]), 'Invalid ACL entry for update. Error: "Username" cannot be empty for ACL entry { node }.\n'],
      [bulk('add', [entry('alice', 'user', 'owner')]), 'Invalid ACL entry for update. Error: aclRole "owner" is invalid for ACL entry {alice user owner}, it should be "aclWriter", or "aclReader"\n'],
      [bulk('add', [null]), 'Invalid ACL entry for update. Error: aclUserType "" is invalid for ACL entry {  }, it should be "user", or "node"\n'],
    ])('PUT %s', async (body, message) => {
      const res = await raw(css, 'PUT', `${S}/objects/org1/model`, { auth: ADMIN, body });
      expect(res.status).toBe(400);
      expect(res.text).toBe(message);
    });

    test('names with characters outside the reference set, without a trailing newline', async () => {
      expect((await raw(css, 'PUT', `${S}/objects/org1/a%3Cb`, { auth: ADMIN, body: bulk('add', []) })).text).toBe('Key (destination type/object type) a&lt;b contains invalid characters');
      expect((await raw(css, 'GET', `${S}/objects/org1?key=a%27b`, { auth: ADMIN })).text).toBe('Key (destination type/object type) a&#39;b contains invalid characters');
      expect((await raw(css, 'DELETE', `${S}/objects/org1/model/user/a%3Eb`, { auth: ADMIN })).text).toBe('Username (a&gt;b) contains invalid characters');
      expect((await raw(css, 'DELETE', `${S}/objects/org1/model/admin/alice`, { auth: ADMIN })).text).toBe('Invalid acl user type admin in URL. The value should be "user" or "node"');
      expect((await raw(css, 'GET', `${S}/objects/org%20x`, { auth: SA })).text).toBe('Organization ID (org x) contains invalid characters');
    });

    test('a bad acl_usertype or all_keys query', async () => {
      expect((await raw(css, 'GET', `${S}/objects/org1?acl_usertype=admin`, { auth: ADMIN })).text).toBe('Invalid acl user type admin in URL. If specified, the value should be "user" or "node"\n');
      expect(await raw(css, 'GET', `${S}/objects/org1?all_keys=maybe`, { auth: ADMIN })).toMatchObject({ status: 400, text: '' });
    });
  });

  describe('the stored ACLs decide what users and nodes may do with objects', () => {
    const obj = (objectID: string, objectType = 'report'): string => JSON.stringify({ meta: { objectType, objectID, destinationType: 'edge' } });

    test('a user without an ACL entry may not publish; with aclWriter on the type and the destination type it may', async () => {
      expect((await raw(css, 'PUT', '/api/v1/objects/org1/report/r1', { auth: BOB, body: obj('r1') })).status).toBe(403);
      await admin.addToAcl('objects', 'report', [{ Username: 'bob', ACLUserType: 'user', ACLRole: 'aclWriter' }]);
      // [ref rest-api §4.4 step 3] the destination type must be open to the user too.
      expect((await raw(css, 'PUT', '/api/v1/objects/org1/report/r1', { auth: BOB, body: obj('r1') })).status).toBe(403);
      await admin.addToAcl('destinations', 'edge', [{ Username: 'bob', ACLUserType: 'user' }]);
      expect((await raw(css, 'PUT', '/api/v1/objects/org1/report/r1', { auth: BOB, body: obj('r1') })).status).toBe(204);
    });

    test('removing the entry takes the right away at once (no stale cache)', async () => {
      await admin.deleteAclEntry('objects', 'report', 'user', 'bob');
      expect((await raw(css, 'PUT', '/api/v1/objects/org1/report/r2', { auth: BOB, body: obj('r2') })).status).toBe(403);
    });

    test('aclReader reads every object of the type but may not write; the * user entry of the * ACL opens reading to every user', async () => {
      await admin.addToAcl('objects', 'report', [{ Username: 'n1', ACLUserType: 'node', ACLRole: 'aclReader' }]);
      expect((await raw(css, 'GET', '/api/v1/objects/org1/report/r1', { auth: NODE })).status).toBe(200);
      expect((await raw(css, 'PUT', '/api/v1/objects/org1/report/r1', { auth: NODE, body: obj('r1') })).status).toBe(403);
      // alice is in no report ACL, but the * ACL holds `*` for users (added above).
      expect((await raw(css, 'GET', '/api/v1/objects/org1/report/r1', { auth: ALICE })).status).toBe(200);
      await admin.removeFromAcl('objects', undefined, [{ Username: '*', ACLUserType: 'user' }]);
      expect((await raw(css, 'GET', '/api/v1/objects/org1/report/r1', { auth: ALICE })).status).toBe(403);
    });

    test('an ACL entry of one org gives nothing in another', async () => {
      const org2 = await css.client({ orgID: 'org2', appKey: OTHER_ADMIN.user, appSecret: 'x' });
      await org2.addToAcl('objects', 'report', [{ Username: 'bob', ACLUserType: 'user', ACLRole: 'aclWriter' }]);
      await org2.addToAcl('destinations', 'edge', [{ Username: 'bob', ACLUserType: 'user' }]);
      org2.close();
      expect((await raw(css, 'PUT', '/api/v1/objects/org1/report/r3', { auth: BOB, body: obj('r3') })).status).toBe(403);
    });
  });
});

describe('ACL routes on an ESS', () => {
  const t = new Teardown();
  let ess: RunningProcess;

  beforeAll(async () => {
    ess = await startManaged(t, {
      mode: 'ess',
      env: { ORG_ID: 'org1', DESTINATION_TYPE: 'edge', DESTINATION_ID: 'n1', HTTP_CSS_HOST: '127.0.0.1', HTTP_CSS_PORT: '1', LISTENING_TYPE: 'unsecure', LISTENING_ADDRESS: '127.0.0.1' },
    });
  });
  afterAll(() => t.run());

  test('are not served, as in the reference: 404 page not found, with or without the slash', async () => {
    for (const path of [`${S}/objects/org1`, `${S}/`, S, `${S}/objects/org1/model/user/alice`]) {
      const res = await raw(ess, 'GET', path);
      expect([path, res.status, res.text]).toEqual([path, 404, '404 page not found\n']);
    }
  });
});
