import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  addUser,
  ensureSyncAdmin,
  loadReferencePresetFile,
  loadUsersFile,
  removeUser,
  saveUsersFile,
  verifySecret,
} from '../../../lib/security/index.js';

let dir: string;
let n = 0;
/** A fresh users file path under this test file's temp dir. */
const fresh = (): string => join(dir, `case-${++n}`, 'sync', 'users.json');

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'edgesync-users-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('ensureSyncAdmin', () => {
  it('creates the file with a sync admin `admin` and returns its secret once', async () => {
    const path = fresh();
    const created = await ensureSyncAdmin(path);
    expect(created).not.toBeNull();
    expect(created!.appKey).toBe('admin');

    const file = await loadUsersFile(path);
    const admin = file.credentials.admin!;
    expect(admin).toMatchObject({ type: 'syncadmin', username: 'admin', orgID: '' });
    await expect(verifySecret(created!.secret, admin.secretHash)).resolves.toBe(true);
  });

  it('stores no plaintext secret and keeps the file private (0600)', async () => {
    const path = fresh();
    const created = await ensureSyncAdmin(path);
    const text = await readFile(path, 'utf8');
    expect(text).not.toContain(created!.secret);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await readdir(join(path, '..'))).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('is idempotent: returns null and changes nothing when a sync admin exists', async () => {
    const path = fresh();
    await ensureSyncAdmin(path);
    const before = await readFile(path, 'utf8');
    await expect(ensureSyncAdmin(path)).resolves.toBeNull();
    expect(await readFile(path, 'utf8')).toBe(before);
  });

  it('does not overwrite another user that happens to be called `admin`', async () => {
    const path = fresh();
    await addUser(path, { appKey: 'admin', secret: 'pw', orgID: 'org1', username: 'admin', type: 'admin' });
    const created = await ensureSyncAdmin(path);
    expect(created!.appKey).toMatch(/^admin-[0-9a-f]{6}$/);
    const file = await loadUsersFile(path);
    expect(file.credentials.admin!.type).toBe('admin');
    expect(file.credentials[created!.appKey]!.type).toBe('syncadmin');
  });
});

describe('addUser / removeUser', () => {
  it('adds a user with a hashed secret, refuses a duplicate, and removes it', async () => {
    const path = fresh();
    await addUser(path, { appKey: 'k1', secret: 'pw1', orgID: 'org1', username: 'alice', type: 'user' });
    const file = await loadUsersFile(path);
    expect(file.credentials.k1).toMatchObject({ orgID: 'org1', username: 'alice', type: 'user' });
    expect(await readFile(path, 'utf8')).not.toContain('pw1');

    await expect(addUser(path, { appKey: 'k1', secret: 'x', orgID: 'org1', username: 'bob', type: 'user' })).rejects.toThrow(/already exists/);
    await addUser(path, { appKey: 'k1', secret: 'pw2', orgID: 'org1', username: 'bob', type: 'user' }, { replace: true });
    await expect(verifySecret('pw2', (await loadUsersFile(path)).credentials.k1!.secretHash)).resolves.toBe(true);

    await expect(removeUser(path, 'k1')).resolves.toBe(true);
    await expect(removeUser(path, 'k1')).resolves.toBe(false);
    expect((await loadUsersFile(path)).credentials).toEqual({});
  });

  it('refuses appKeys that Basic auth cannot carry (with the message the server gives), and empty secrets', async () => {
    const path = fresh();
    await expect(addUser(path, { appKey: 'a:b', secret: 'x', orgID: 'o', username: 'u', type: 'user' })).rejects.toThrow(/appKey must be non-empty, without ":" or whitespace/);
    await expect(addUser(path, { appKey: '', secret: 'x', orgID: 'o', username: 'u', type: 'user' })).rejects.toThrow(/appKey must be non-empty, without ":" or whitespace/);
    await expect(addUser(path, { appKey: 'k', secret: '', orgID: 'o', username: 'u', type: 'user' })).rejects.toThrow(/secret/);
  });

  it('refuses entries whose username does not fit the type', async () => {
    const path = fresh();
    await expect(addUser(path, { appKey: 'en', secret: 'x', orgID: 'o', username: 'justone', type: 'edgenode' })).rejects.toThrow(
      /en\.username: must be destType\/destID/,
    );
    await expect(addUser(path, { appKey: 'u', secret: 'x', orgID: '', username: 'u', type: 'user' })).rejects.toThrow(/u\.orgID/);
  });
});

describe('loadUsersFile', () => {
  it('reads a missing file as having no users', async () => {
    await expect(loadUsersFile(fresh())).resolves.toEqual({ credentials: {} });
  });

  it('names the file and every bad key', async () => {
    const path = join(dir, 'bad.json');
    await writeFile(path, JSON.stringify({ credentials: { good: { secretHash: 'scrypt$1', orgID: 'o', username: 'u', type: 'USER' }, bad: { secret: 'plain', orgID: 'o', username: 'u', type: 'wizard' } } }));
    const err = await loadUsersFile(path).then(
      () => null,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toContain(`Invalid users file ${path}`);
    expect(err?.message).toMatch(/credentials\.bad\.type: must be one of/);
    expect(err?.message).toMatch(/credentials\.bad: Unrecognized key: "secret"/);
    expect(err?.message).not.toMatch(/credentials\.good/);
  });

  it('names the file when it is not JSON', async () => {
    const path = join(dir, 'garbage.json');
    await writeFile(path, '{ not json');
    await expect(loadUsersFile(path)).rejects.toThrow(`Invalid users file ${path}: not JSON`);
  });

  it('round-trips cssCredentials through saveUsersFile', async () => {
    const path = fresh();
    await saveUsersFile(path, { credentials: {}, cssCredentials: { key: 'ess1', secret: 'pw' } });
    await expect(loadUsersFile(path)).resolves.toEqual({ credentials: {}, cssCredentials: { key: 'ess1', secret: 'pw' } });
  });
});

describe('the reference preset-auth.json', () => {
  it('reads plaintext entries like Go does: keys case-insensitive, unknown keys ignored', async () => {
    const path = join(dir, 'preset-auth.json');
    await writeFile(
      path,
      JSON.stringify({
        credentials: {
          k1: { Secret: 'pw1', orgID: 'org1', username: 'alice', type: 'Admin', extra: true },
          nosecret: { orgID: 'org1', username: 'bob', type: 'user' },
        },
        cssCredentials: { key: 'k1', secret: 'pw1' },
      }),
    );
    const ref = await loadReferencePresetFile(path);
    expect(ref?.credentials).toEqual({ k1: { secret: 'pw1', orgID: 'org1', username: 'alice', type: 'Admin', plaintext: true } });
    expect(ref?.cssCredentials).toEqual({ key: 'k1', secret: 'pw1' });
  });

  it('returns null when there is no such file, and names the key of a bad entry', async () => {
    await expect(loadReferencePresetFile(join(dir, 'nope.json'))).resolves.toBeNull();
    const path = join(dir, 'preset-bad.json');
    await writeFile(path, JSON.stringify({ credentials: { k9: { secret: 42 } } }));
    await expect(loadReferencePresetFile(path)).rejects.toThrow(`Invalid preset file ${path}: credentials.k9:`);
  });
});
