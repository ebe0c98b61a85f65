/**
 * Deleting an organization leaves no trace of it, and touches nothing of another org.
 * [ref rest-api §1.4]
 *
 * Two orgs are filled alike through the API and the SPI, on a real CSS: org settings, a
 * registered ESS, objects with data kept in the database (small) and in files (large), the
 * delivery records (notifications) toward the ESS, a deletion still awaiting the ESS's
 * acknowledgement, a chunked upload in progress, a webhook and ACLs. One org is deleted; the
 * CSS is stopped; then the SQLite file is read directly: no row of any table may mention the
 * deleted org, and none of its data files may remain, while the other org keeps everything.
 */
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import Database from 'better-sqlite3';
import { raw, startManaged, Teardown, tempRoot, type RunningProcess } from '../helpers/node-process.js';
import { DEFAULT_INLINE_LIMIT } from '../../lib/store/index.js';

jest.setTimeout(60_000);

/** Distinctive names, so that a leftover shows up in any column or file, whatever its shape. */
const GONE = 'gone-org-5c1e';
const KEPT = 'kept-org-9a7d';
const SA = { user: 'root@sys', pass: 'x' };
const adminOf = (org: string): { user: string; pass: string } => ({ user: `admin@${org}`, pass: 'x' });

/** Every table that has an org column: each must hold rows of both orgs before the delete. */
const ORG_TABLES = ['organizations', 'objects', 'deleted_objects', 'webhooks', 'destinations', 'uploads', 'notifications', 'acl_entries'];

const t = new Teardown();
let css: RunningProcess;
let dbPath: string;
let dataDir: string;

async function ok(res: Promise<{ status: number; text: string }>, status = 204): Promise<void> {
  const r = await res;
  expect({ status: r.status, text: r.text }).toEqual({ status, text: '' });
}

/** Fills one org; every piece of data carries the org's name. */
async function fill(org: string): Promise<void> {
  const auth = adminOf(org);
  const api = (method: string, path: string, body?: string | Buffer, headers?: Record<string, string>): ReturnType<typeof raw> =>
    raw(css, method, `/api/v1${path}`, { auth, ...(body !== undefined ? { body } : {}), ...(headers !== undefined ? { headers } : {}) });
  const publish = (id: string, data?: Buffer): ReturnType<typeof raw> =>
    api('PUT', `/objects/${org}/model/${id}`, JSON.stringify({ meta: { objectType: 'model', objectID: id, destinationType: 'edge' }, ...(data ? { data: data.toString('base64') } : {}) }));

  await ok(raw(css, 'PUT', `/api/v1/organizations/${org}`, { auth: SA, body: JSON.stringify({ orgID: org, user: `${org}-broker-user`, address: '' }) }));
  // The ESS edge/n1 of the org registers over the SPI (the dummy authenticator reads
  // `org/destType/destID` as that edge node).
  const ess = { user: `${org}/edge/n1`, pass: 'x' };
  await ok(raw(css, 'PUT', `/spi/v1/register-new/${org}/edge/n1?persistent-storage=true`, { auth: ess, headers: { 'X-Sync-Service-Dest': `${org}/edge/n1` } }));

  await ok(publish('small', Buffer.from(`small payload of ${org}`)));
  await ok(publish('large'));
  await ok(api('PUT', `/objects/${org}/model/large/data`, Buffer.from(`large payload of ${org} `.repeat(Math.ceil((2 * DEFAULT_INLINE_LIMIT) / 20)))));
  // Sent to the ESS (its poll takes it), then deleted: the deletion waits for the ESS's acknowledgement.
  await ok(publish('doomed', Buffer.from(`doomed payload of ${org}`)));
  expect((await raw(css, 'GET', '/spi/v1/objects/', { auth: ess, headers: { 'X-Sync-Service-Dest': `${org}/edge/n1` } })).status).toBe(200);
  await ok(api('DELETE', `/objects/${org}/model/doomed`));
  // A chunked upload that got its first chunk only.
  await ok(publish('partial'));
  const chunk = Buffer.from(`partial payload of ${org} `.repeat(8));
  await ok(api('PUT', `/objects/${org}/model/partial/data`, chunk, { 'content-range': `bytes 0-${chunk.length - 1}/${chunk.length * 4}` }));

  await ok(api('PUT', `/objects/${org}/model`, JSON.stringify({ action: 'register', url: `http://127.0.0.1:9/${org}/hook` })));
  await ok(api('PUT', `/security/objects/${org}/model`, JSON.stringify({ action: 'add', users: [{ Username: `${org}-writer`, ACLUserType: 'user', ACLRole: 'aclWriter' }] })));
  await ok(api('PUT', `/security/destinations/${org}`, JSON.stringify({ action: 'add', users: [{ Username: `${org}-node`, ACLUserType: 'node' }] })));
}

function readDb<T>(look: (db: Database.Database) => T): T {
  const db = new Database(dbPath, { readonly: true });
  try {
    return look(db);
  } finally {
    db.close();
  }
}

function rowsPerOrg(db: Database.Database, org: string): Record<string, number> {
  return Object.fromEntries(ORG_TABLES.map((table) => [table, db.prepare<[string], number>(`SELECT count(*) FROM ${table} WHERE org = ?`).pluck().get(org) ?? 0]));
}

/** Every value of every row of every table that mentions `needle`, as `table: row`. */
function mentions(db: Database.Database, needle: string): string[] {
  const tables = db.prepare<[], string>("SELECT name FROM sqlite_schema WHERE type = 'table'").pluck().all();
  const bytes = Buffer.from(needle);
  return tables.flatMap((table) =>
    db
      .prepare<[], Record<string, unknown>>(`SELECT * FROM "${table}"`)
      .all()
      .filter((row) => Object.values(row).some((v) => (typeof v === 'string' ? v.includes(needle) : Buffer.isBuffer(v) && v.includes(bytes))))
      .map((row) => `${table}: ${JSON.stringify(row, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}`),
  );
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

async function filesMentioning(needle: string): Promise<string[]> {
  const found: string[] = [];
  for (const file of await filesUnder(dataDir)) if ((await readFile(file)).includes(needle)) found.push(file);
  return found;
}

beforeAll(async () => {
  const root = await tempRoot(t, 'org-delete');
  await mkdir(join(root, 'sync'), { recursive: true });
  await writeFile(join(root, 'sync', 'dummy-auth.json'), JSON.stringify({ regularUsers: [], syncAdmins: ['root'], exchangeAdmins: [] }));
  css = await startManaged(t, { mode: 'css', root, env: { AUTHENTICATION_HANDLER: 'dummy', LISTENING_ADDRESS: '127.0.0.1' } });
  dbPath = join(root, 'sync', 'db', 'edgesync.db');
  dataDir = join(root, 'sync', 'data');
  await fill(GONE);
  await fill(KEPT);
});
afterAll(() => t.run());

describe('DELETE /api/v1/organizations/{org}', () => {
  let before: { gone: Record<string, number>; kept: Record<string, number>; goneFiles: string[]; keptFiles: string[] };

  test('the fixture puts rows of both orgs in every table keyed by org, and data files of both on disk', async () => {
    const counts = readDb((db) => ({ gone: rowsPerOrg(db, GONE), kept: rowsPerOrg(db, KEPT) }));
    for (const [table, n] of [...Object.entries(counts.gone), ...Object.entries(counts.kept)]) expect([table, n > 0]).toEqual([table, true]);
    before = { ...counts, goneFiles: await filesMentioning(GONE), keptFiles: await filesMentioning(KEPT) };
    // The large data (a blob file) and the chunk (a staging file) of each org.
    expect(before.goneFiles).toHaveLength(2);
    expect(before.keptFiles).toHaveLength(2);
  });

  test('an admin of another org may not delete it', async () => {
    const res = await raw(css, 'DELETE', `/api/v1/organizations/${GONE}`, { auth: adminOf(KEPT) });
    expect({ status: res.status, text: res.text }).toEqual({ status: 403, text: 'Unauthorized' });
  });

  test("the org's admin deletes it: 204, and its routes show nothing of it any more", async () => {
    await ok(raw(css, 'DELETE', `/api/v1/organizations/${GONE}`, { auth: adminOf(GONE) }));
    const get = (path: string): ReturnType<typeof raw> => raw(css, 'GET', path, { auth: adminOf(GONE) });
    expect((await get(`/api/v1/objects/${GONE}/model`)).status).toBe(404);
    expect((await get(`/api/v1/objects/${GONE}/model/doomed/status`)).status).toBe(404);
    expect((await get(`/api/v1/destinations/${GONE}`)).status).toBe(404);
    expect((await get(`/api/v1/security/objects/${GONE}?all_keys=true`)).status).toBe(404);
    expect((await get(`/api/v1/security/destinations/${GONE}`)).status).toBe(404);
    const orgs = await raw(css, 'GET', '/api/v1/organizations', { auth: SA });
    expect(JSON.parse(orgs.text)).toEqual([{ 'org-id': KEPT, address: '' }]);
  });

  test('the other org still answers as before', async () => {
    const get = (path: string): ReturnType<typeof raw> => raw(css, 'GET', path, { auth: adminOf(KEPT) });
    expect((await get(`/api/v1/objects/${KEPT}/model/small/data`)).text).toBe(`small payload of ${KEPT}`);
    expect((await get(`/api/v1/objects/${KEPT}/model/large/data`)).text).toContain(`large payload of ${KEPT}`);
    expect((await get(`/api/v1/objects/${KEPT}/model/doomed/status`)).text).toBe('objdeleted');
    expect(JSON.parse((await get(`/api/v1/security/objects/${KEPT}?key=model`)).text)).toEqual([{ Username: `${KEPT}-writer`, ACLUserType: 'user', ACLRole: 'aclWriter' }]);
  });

  test('once the CSS has stopped, no row of any table mentions the deleted org, and the other org has all its rows', async () => {
    expect(await css.stop()).toBe(0);
    const after = readDb((db) => ({ mentions: mentions(db, GONE), kept: rowsPerOrg(db, KEPT), keptSmall: mentions(db, `small payload of ${KEPT}`) }));
    expect(after.mentions).toEqual([]);
    expect(after.kept).toEqual(before.kept);
    expect(after.keptSmall).toHaveLength(1);
  });

  test('no data file of the deleted org remains on disk; those of the other org do', async () => {
    expect(await filesMentioning(GONE)).toEqual([]);
    for (const file of before.goneFiles) await expect(readFile(file)).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await filesMentioning(KEPT)).sort()).toEqual([...before.keptFiles].sort());
  });
});
