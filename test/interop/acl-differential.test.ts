/**
 * The ACL routes, differentially: the same sequence of requests goes to a reference CSS and to
 * ours, each on its own fresh store, and every answer must match (status, content type, body).
 * Runs when EDGESYNC_REFERENCE_BIN names the reference binary (docs/interop.md). The one
 * difference we chose, the `acl_usertype` filter, is checked on its own. Left out: the subtree
 * root without its slash, which a reference built with Go 1.25 redirects with 307 where
 * rest-api §1.1 (and our router, for every collection) says 301. [ref rest-api §1.5, §3.5]
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, jest, test } from '@jest/globals';
import { startManaged, Teardown, type RunningProcess } from '../helpers/node-process.js';
import { startReference, type ReferenceProcess } from '../helpers/reference-node.js';
import { describeWithReference } from './interop-scenarios.js';

jest.setTimeout(120_000);

/** Who is who for the dummy authenticator of both (rest-api §4.1). */
const DUMMY_AUTH = JSON.stringify({ regularUsers: ['user1'], syncAdmins: ['root'], exchangeAdmins: [] });
const ADMIN = 'admin@myorg';

interface Exchange {
  method: string;
  path: string;
  body?: string;
  /** appKey; the secret is ignored by the dummy authenticator. null: no credentials. */
  as?: string | null;
}

interface Answer {
  status: number;
  contentType: string | null;
  location: string | null;
  body: string;
}

const S = '/api/v1/security';
const users = (action: string, list: unknown[]): string => JSON.stringify({ action, users: list });
const u = (Username: string, ACLUserType: string, ACLRole = ''): Record<string, string> => ({ Username, ACLUserType, ACLRole });

/** In order: later requests read what earlier ones changed. */
const SEQUENCE: Exchange[] = [
  { method: 'GET', path: `${S}/objects/myorg` },
  { method: 'GET', path: `${S}/objects/myorg?all_keys=true` },
  { method: 'PUT', path: `${S}/objects/myorg/model`, body: users('add', [u('bob', 'user', 'aclWriter'), u('n1', 'node', 'aclReader'), u('c', 'user', 'aclReader')]) },
  { method: 'PUT', path: `${S}/objects/myorg/model`, body: JSON.stringify({ ACTION: 'Add', Users: [{ username: 'bob', aclusertype: 'user', aclrole: 'aclReader' }, { USERNAME: 'd', ACLUSERTYPE: 'user', ACLROLE: 'aclWriter' }] }) },
  { method: 'GET', path: `${S}/objects/myorg?key=model` },
  { method: 'GET', path: `${S}/objects/myorg/ignored?key=model` },
  { method: 'GET', path: `${S}/objects/myorg/model` },
  { method: 'GET', path: `${S}/objects/myorg/` },
  { method: 'GET', path: `${S}/objects/myorg/a/b` },
  { method: 'GET', path: `${S}/objects/myorg?all_keys=true` },
  { method: 'GET', path: `${S}/objects/myorg?all_keys=1&key=model` },
  { method: 'GET', path: `${S}/objects/myorg?all_keys=maybe` },
  { method: 'GET', path: `${S}/objects/myorg?key=model&acl_usertype=bad` },
  { method: 'GET', path: `${S}/objects/myorg?key=a%3Cb` },
  { method: 'PUT', path: `${S}/objects/myorg`, body: users('ADD', [u('*', 'user', 'aclReader')]) },
  { method: 'PUT', path: `${S}/objects/myorg/`, body: users('add', [u('e', 'node', 'aclWriter')]) },
  { method: 'GET', path: `${S}/objects/myorg` },
  { method: 'PUT', path: `${S}/destinations/myorg/edge`, body: users('add', [u('u', 'user', 'aclWriter'), u('v', 'node')]) },
  { method: 'GET', path: `${S}/destinations/myorg?key=edge` },
  { method: 'GET', path: `${S}/destinations/myorg?all_keys=true` },
  { method: 'PUT', path: `${S}/objects/myorg/model`, body: users('add', [u('bob', 'admin', 'aclWriter')]) },
  { method: 'PUT', path: `${S}/objects/myorg/model`, body: users('add', [u(' ', 'user', 'aclWriter')]) },
  { method: 'PUT', path: `${S}/objects/myorg/model`, body: users('remove', [u('', 'user')]) },
  { method: 'PUT', path: `${S}/objects/myorg/model`, body: users('add', [u('bob', 'user', 'x')]) },
  { method: 'PUT', path: `${S}/objects/myorg/model`, body: users('zap', []) },
  { method: 'PUT', path: `${S}/objects/myorg/model`, body: '{"action":"add","users":"x"}' },
  { method: 'PUT', path: `${S}/objects/myorg/model`, body: '{"action":"add","users":[5]}' },
  { method: 'PUT', path: `${S}/objects/myorg/model`, body: '{"action":"add","users":[{"username":5}]}' },
  { method: 'PUT', path: `${S}/objects/myorg/model`, body: '{"action":"add","users":[null]}' },
  { method: 'PUT', path: `${S}/objects/myorg/model`, body: '{"action":7}' },
  { method: 'PUT', path: `${S}/objects/myorg/model`, body: '' },
  { method: 'PUT', path: `${S}/objects/myorg/model`, body: '{"action":"add","usernames":["x"]}' },
  { method: 'PUT', path: `${S}/objects/myorg/model`, body: '{"action":"remove","usernames":["bob"]}' },
  { method: 'PUT', path: `${S}/objects/myorg/a%3Cb`, body: '{}' },
  { method: 'PUT', path: `${S}/objects/myorg/model/user`, body: users('add', [u('z', 'user', 'aclWriter')]) },
  { method: 'PUT', path: `${S}/objects/myorg/model/user/z`, body: users('add', [u('z', 'user', 'aclWriter')]) },
  { method: 'GET', path: `${S}/objects/myorg?key=model` },
  { method: 'DELETE', path: `${S}/objects/myorg/model/user/bob` },
  { method: 'GET', path: `${S}/objects/myorg?key=model` },
  { method: 'PUT', path: `${S}/objects/myorg/model`, body: users('remove', [u('d', 'user'), u('nobody', 'node')]) },
  { method: 'GET', path: `${S}/objects/myorg?key=model` },
  { method: 'DELETE', path: `${S}/objects/myorg/model/admin/bob` },
  { method: 'DELETE', path: `${S}/objects/myorg/model/user/b%3Eb` },
  { method: 'DELETE', path: `${S}/objects/myorg/model/user` },
  { method: 'DELETE', path: `${S}/objects/myorg/model/user/c/` },
  { method: 'DELETE', path: `${S}/objects/myorg/model/user/absent` },
  { method: 'DELETE', path: `${S}/objects/myorg/model/node/n1` },
  { method: 'DELETE', path: `${S}/objects/myorg/model/user/c` },
  { method: 'GET', path: `${S}/objects/myorg?key=model` },
  { method: 'GET', path: `${S}/objects/myorg?all_keys=true` },
  { method: 'GET', path: `${S}/bogus/myorg` },
  { method: 'POST', path: `${S}/objects/myorg` },
  { method: 'POST', path: `${S}/bogus/myorg` },
  { method: 'GET', path: `${S}/objects` },
  { method: 'GET', path: `${S}/` },
  { method: 'GET', path: `${S}/a/b/c/d/e/f` },
  { method: 'GET', path: `${S}/objects/other` },
  { method: 'GET', path: `${S}/objects/other`, as: 'root@sys' },
  { method: 'GET', path: `${S}/objects/org%20x`, as: 'root@sys' },
  { method: 'GET', path: `${S}/objects/myorg`, as: 'myorg/oadm' },
  { method: 'GET', path: `${S}/objects/myorg`, as: 'user1@myorg' },
  { method: 'GET', path: `${S}/a/b/c/d/e/f`, as: 'user1@myorg' },
  { method: 'GET', path: `${S}/a/b/c/d/e/f`, as: 'admin@other' },
  { method: 'GET', path: `${S}/objects/myorg`, as: 'n1%myorg' },
  { method: 'GET', path: `${S}/objects/myorg`, as: null },
];

async function exchange(base: string, x: Exchange): Promise<Answer> {
  const who = x.as === undefined ? ADMIN : x.as;
  const headers: Record<string, string> = who === null ? {} : { authorization: `Basic ${Buffer.from(`${who}:x`).toString('base64')}` };
  const res = await fetch(base + x.path, { method: x.method, headers, redirect: 'manual', ...(x.body !== undefined ? { body: x.body } : {}) });
  const body = await res.text();
  // A redirect's body is the framework's own wording; its status and Location are the contract.
  return { status: res.status, contentType: res.headers.get('content-type'), location: res.headers.get('location'), body: res.status === 301 ? '' : body };
}

/** The reference sometimes panics at start-up in its MQTT library; a second try starts it. */
async function startReferenceCss(bin: string, root: string): Promise<ReferenceProcess> {
  let last: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startReference(bin, { mode: 'css', root });
    } catch (e) {
      last = e;
    }
  }
  throw last;
}

describeWithReference('ACL routes: the same requests to a reference CSS and to ours', (bin) => {
  const t = new Teardown();
  let ref: ReferenceProcess;
  let ours: RunningProcess;

  beforeAll(async () => {
    const roots = await Promise.all(['ref', 'ours'].map((n) => mkdtemp(join(tmpdir(), `edgesync-acl-diff-${n}-`))));
    const [refRoot = '', ourRoot = ''] = roots;
    for (const root of roots) {
      t.add(() => rm(root, { recursive: true, force: true }));
      await mkdir(join(root, 'sync'), { recursive: true });
      await writeFile(join(root, 'sync', 'dummy-auth.json'), DUMMY_AUTH);
    }
    ref = await startReferenceCss(bin, refRoot);
    t.add(() => ref.stop());
    ours = await startManaged(t, { mode: 'css', root: ourRoot, env: { AUTHENTICATION_HANDLER: 'dummy', LISTENING_ADDRESS: '127.0.0.1' } });
  });
  afterAll(() => t.run());

  test('every answer of the sequence matches', async () => {
    const differences: string[] = [];
    for (const x of SEQUENCE) {
      const [theirs, mine] = [await exchange(ref.url, x), await exchange(ours.url, x)];
      if (JSON.stringify(theirs) !== JSON.stringify(mine)) {
        differences.push(`${x.method} ${x.path} ${x.body ?? ''} as ${String(x.as ?? ADMIN)}\n  reference: ${JSON.stringify(theirs)}\n  ours:      ${JSON.stringify(mine)}`);
      }
    }
    expect(differences.join('\n')).toBe('');
  });

  test('acl_usertype: ours keeps the entries of that user type (as the reference on MongoDB); the Bolt reference ignores it', async () => {
    const add: Exchange = { method: 'PUT', path: `${S}/objects/myorg/typed`, body: users('add', [u('a', 'user', 'aclWriter'), u('b', 'node', 'aclReader')]) };
    const query: Exchange = { method: 'GET', path: `${S}/objects/myorg?key=typed&acl_usertype=node` };
    for (const base of [ref.url, ours.url]) expect((await exchange(base, add)).status).toBe(204);
    const [theirs, mine] = [await exchange(ref.url, query), await exchange(ours.url, query)];
    expect(JSON.parse(theirs.body)).toEqual([u('a', 'user', 'aclWriter'), u('b', 'node', 'aclReader')]);
    expect(JSON.parse(mine.body)).toEqual([u('b', 'node', 'aclReader')]);
  });
});
