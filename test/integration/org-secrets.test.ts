/**
 * Per-org broker passwords on the real binary: `PUT /api/v1/organizations/{org}` takes the
 * reference's body `{orgID, user, password, address}`, and the CSS keeps the password sealed
 * (AES-256-GCM, key in `sync/keys/org-secrets.key`) where the reference keeps it in plaintext.
 */
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { chmod, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { OrgSecrets, SEALED_PREFIX, brokerSettingsOf } from '../../lib/security/index.js';
import type { Organization } from '../../lib/store/index.js';
import { raw, startManaged, startNode, Teardown, type RunningProcess } from '../helpers/node-process.js';

jest.setTimeout(60_000);

const dbFile = (node: RunningProcess): string => join(node.root, 'sync', 'db', 'edgesync.db');
const keyFile = (node: RunningProcess): string => join(node.root, 'sync', 'keys', 'org-secrets.key');

/** A password no file could hold by chance. */
const newPassword = (): string => `pw-${randomBytes(16).toString('hex')}`;

/** Every byte of the database as it is on disk, the write-ahead log included. */
async function databaseBytes(node: RunningProcess): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (const suffix of ['', '-wal', '-shm', '-journal']) {
    try {
      parts.push(await readFile(dbFile(node) + suffix));
    } catch (e) {
      if ((e as { code?: string }).code !== 'ENOENT') throw e;
    }
  }
  return Buffer.concat(parts);
}

/** The org's row as the store keeps it, read beside the running node. */
function storedOrg(node: RunningProcess, orgID: string): Organization | undefined {
  const db = new Database(dbFile(node), { readonly: true, fileMustExist: true });
  try {
    return db
      .prepare<[string], Organization>('SELECT org AS orgID, address, user, password, last_update AS lastUpdate FROM organizations WHERE org = ?')
      .get(orgID);
  } finally {
    db.close();
  }
}

const put = (node: RunningProcess, orgID: string, fields: { user?: string; password?: string; address?: string }) =>
  raw(node, 'PUT', `/api/v1/organizations/${orgID}`, { body: JSON.stringify({ orgID, ...fields }) });

describe('per-org broker passwords on a multi-org CSS', () => {
  const t = new Teardown();
  let css: RunningProcess;
  const passwordA = newPassword();

  beforeAll(async () => {
    css = await startManaged(t, { mode: 'css' });
  });
  afterAll(() => t.run());

  test('the first start makes the sealing key: 32 bytes that only the node user may read', async () => {
    const st = await stat(keyFile(css));
    expect(st.size).toBe(32);
    expect(st.mode & 0o777).toBe(0o600);
  });

  test('an org stored with a password leaves no trace of it in the database files', async () => {
    const res = await put(css, 'orgA', { user: 'userA', password: passwordA, address: 'tcp://broker-a:1883' });
    expect(res.status).toBe(204);

    const bytes = await databaseBytes(css);
    expect(bytes.indexOf(passwordA)).toBe(-1);
    expect(bytes.indexOf(Buffer.from(passwordA, 'utf16le'))).toBe(-1);
    const row = storedOrg(css, 'orgA');
    expect(row).toMatchObject({ orgID: 'orgA', user: 'userA', address: 'tcp://broker-a:1883' });
    expect(row?.password.startsWith(SEALED_PREFIX)).toBe(true);
  });

  test('the sealed password opens with the key file of the data directory, as the MQTT transport will open it', async () => {
    const { secrets } = await OrgSecrets.fromKeyFile(keyFile(css));
    const settings = brokerSettingsOf(storedOrg(css, 'orgA')!, secrets);
    expect([settings.address, settings.user, settings.password]).toEqual(['tcp://broker-a:1883', 'userA', passwordA]);
  });

  test('storing the same password again seals it anew (a fresh nonce), and it still opens', async () => {
    const before = storedOrg(css, 'orgA')?.password;
    expect((await put(css, 'orgA', { user: 'userA', password: passwordA, address: 'tcp://broker-a:1883' })).status).toBe(204);
    const after = storedOrg(css, 'orgA')?.password;
    expect(after).not.toBe(before);
    const { secrets } = await OrgSecrets.fromKeyFile(keyFile(css));
    expect(brokerSettingsOf(storedOrg(css, 'orgA')!, secrets).password).toBe(passwordA);
  });

  test('an org without a password stores none', async () => {
    expect((await put(css, 'orgB', { address: 'tcp://broker-b:1883' })).status).toBe(204);
    expect(storedOrg(css, 'orgB')?.password).toBe('');
  });

  test('the list shows org-id and address only: never the password, sealed or not, nor the user', async () => {
    const res = await raw(css, 'GET', '/api/v1/organizations');
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text)).toEqual([
      { 'org-id': 'orgA', address: 'tcp://broker-a:1883' },
      { 'org-id': 'orgB', address: 'tcp://broker-b:1883' },
    ]);
    expect(res.text).not.toContain(passwordA);
    expect(res.text).not.toContain(SEALED_PREFIX);
    expect(res.text).not.toContain('userA');
  });

  test('the node logs no password', () => {
    expect(css.output()).not.toContain(passwordA);
  });
});

describe('a CSS database of an earlier version, with passwords in plaintext', () => {
  const t = new Teardown();
  let css: RunningProcess;
  let admin: { user: string; pass: string };
  const legacy = newPassword();

  beforeAll(async () => {
    css = await startManaged(t, { mode: 'css' });
    // Printed on the first start only.
    admin = { user: css.admin!.appKey, pass: css.admin!.secret };
    expect((await put(css, 'old', { user: 'u', password: newPassword(), address: 'tcp://old:1883' })).status).toBe(204);
    await css.stop();
    // What an earlier version left: the password as it was given.
    const db = new Database(dbFile(css));
    try {
      db.prepare('UPDATE organizations SET password = ? WHERE org = ?').run(legacy, 'old');
    } finally {
      db.close();
    }
    css = await startManaged(t, { mode: 'css', root: css.root });
  });
  afterAll(() => t.run());

  test('is sealed on the next start, and the password still opens to what was stored', async () => {
    const row = storedOrg(css, 'old')!;
    expect(row.password.startsWith(SEALED_PREFIX)).toBe(true);
    const { secrets } = await OrgSecrets.fromKeyFile(keyFile(css));
    expect(brokerSettingsOf(row, secrets).password).toBe(legacy);
  });

  test('the list still answers as before', async () => {
    const res = await raw(css, 'GET', '/api/v1/organizations', { auth: admin });
    expect(JSON.parse(res.text)).toEqual([{ 'org-id': 'old', address: 'tcp://old:1883' }]);
  });
});

describe('a key file that other users may read', () => {
  const t = new Teardown();

  test('makes the CSS refuse to start, naming the file and the fix', async () => {
    const css = await startManaged(t, { mode: 'css' });
    await css.stop();
    await chmod(keyFile(css), 0o640);
    const refused = startNode({ mode: 'css', root: css.root });
    await expect(refused).rejects.toThrow(`the org secrets key file ${keyFile(css)} has mode 0640, which lets other users read or change it; run chmod 600 ${keyFile(css)}`);
  });

  afterAll(() => t.run());
});

describe('an ESS', () => {
  const t = new Teardown();

  test('has no organizations and makes no sealing key', async () => {
    const ess = await startManaged(t, {
      mode: 'ess',
      env: { ORG_ID: 'org1', DESTINATION_TYPE: 'edge', DESTINATION_ID: 'n1', HTTP_CSS_HOST: '127.0.0.1', HTTP_CSS_PORT: '1', LISTENING_TYPE: 'unsecure' },
    });
    await expect(stat(join(ess.root, 'sync', 'keys'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  afterAll(() => t.run());
});
