import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  addUser,
  PresetAuthenticator,
  removeUser,
  roleForUserType,
  RELOAD_CHECK_MS,
  AUTH_CACHE_MS,
  type UserType,
} from '../../../lib/security/index.js';

let dir: string;
let n = 0;
const freshDir = (): string => join(dir, `case-${++n}`);

/** A hand-driven clock, so reload throttling and cache expiry need no sleeping. */
function fakeClock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'edgesync-preset-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('PresetAuthenticator with the users file', () => {
  it('accepts the right secret and refuses a wrong one or an unknown appKey', async () => {
    const usersFile = join(freshDir(), 'users.json');
    await addUser(usersFile, { appKey: 'k1', secret: 'pw1', orgID: 'org1', username: 'alice', type: 'admin' });
    const auth = await PresetAuthenticator.create({ usersFile });
    expect(auth.name).toBe('preset');

    await expect(auth.authenticate('k1', 'pw1')).resolves.toEqual({ role: 'admin', orgID: 'org1', userID: 'alice' });
    await expect(auth.authenticate('k1', 'wrong')).resolves.toBeNull();
    await expect(auth.authenticate('k2', 'pw1')).resolves.toBeNull();
    // Unlike dummy, preset never takes an empty secret.
    await expect(auth.authenticate('k1', '')).resolves.toBeNull();
    // After a cached success, a wrong secret is still refused and the right one still accepted.
    await expect(auth.authenticate('k1', 'pw1')).resolves.toEqual({ role: 'admin', orgID: 'org1', userID: 'alice' });
  });

  it('maps every credential type to its role', async () => {
    const usersFile = join(freshDir(), 'users.json');
    const rows: [UserType, string, string, object][] = [
      ['admin', 'org1', 'a', { role: 'admin', orgID: 'org1', userID: 'a' }],
      ['objectadmin', 'org1', 'oa', { role: 'objectAdmin', orgID: 'org1', userID: 'oa' }],
      ['user', 'org1', 'u', { role: 'user', orgID: 'org1', userID: 'u' }],
      ['node', 'org1', 'n1', { role: 'node', orgID: 'org1', userID: 'n1' }],
      ['syncadmin', '', 'root', { role: 'syncAdmin', orgID: '', userID: 'root' }],
      ['service', 'org1', 'svcorg/1.2.0/svc', { role: 'service', orgID: 'org1', userID: 'svcorg/1.2.0/svc' }],
      ['edgenode', 'org1', 'car/car1', { role: 'edgeNode', orgID: 'org1', userID: 'car/car1' }],
    ];
    for (const [type, orgID, username] of rows) await addUser(usersFile, { appKey: `key-${type}`, secret: `pw-${type}`, orgID, username, type });
    const auth = await PresetAuthenticator.create({ usersFile });
    for (const [type, , , identity] of rows) await expect(auth.authenticate(`key-${type}`, `pw-${type}`)).resolves.toEqual(identity);
  });

  it('matches type names case-insensitively and knows no others', () => {
    expect(roleForUserType('EdgeNode')).toBe('edgeNode');
    expect(roleForUserType('SYNCADMIN')).toBe('syncAdmin');
    expect(roleForUserType('ObjectAdmin')).toBe('objectAdmin');
    expect(roleForUserType('superuser')).toBeNull();
    expect(roleForUserType('')).toBeNull();
  });

  it('picks up an added user at once and a removed one within a second, without restart', async () => {
    const clock = fakeClock();
    const usersFile = join(freshDir(), 'users.json');
    await addUser(usersFile, { appKey: 'k1', secret: 'pw1', orgID: 'org1', username: 'alice', type: 'user' });
    const auth = await PresetAuthenticator.create({ usersFile, now: clock.now });
    await expect(auth.authenticate('k1', 'pw1')).resolves.not.toBeNull();

    // Within the second of the last look: a refusal looks at the files once more, past the throttle.
    await addUser(usersFile, { appKey: 'k2', secret: 'pw2', orgID: 'org1', username: 'bob', type: 'user' });
    await expect(auth.authenticate('k2', 'pw2')).resolves.toEqual({ role: 'user', orgID: 'org1', userID: 'bob' });
    await expect(auth.authenticate('k3', 'pw3')).resolves.toBeNull();

    // Accepted logins look at most once per second: a removed user loses access by then, even
    // though its success was cached.
    await removeUser(usersFile, 'k1');
    await expect(auth.authenticate('k1', 'pw1')).resolves.not.toBeNull();
    clock.advance(RELOAD_CHECK_MS);
    await expect(auth.authenticate('k1', 'pw1')).resolves.toBeNull();
  });

  it('re-verifies a changed secret', async () => {
    const clock = fakeClock();
    const usersFile = join(freshDir(), 'users.json');
    await addUser(usersFile, { appKey: 'k1', secret: 'old', orgID: 'org1', username: 'alice', type: 'user' });
    const auth = await PresetAuthenticator.create({ usersFile, now: clock.now });
    await expect(auth.authenticate('k1', 'old')).resolves.not.toBeNull();
    await addUser(usersFile, { appKey: 'k1', secret: 'new', orgID: 'org1', username: 'alice', type: 'user' }, { replace: true });
    clock.advance(RELOAD_CHECK_MS);
    await expect(auth.authenticate('k1', 'old')).resolves.toBeNull();
    await expect(auth.authenticate('k1', 'new')).resolves.not.toBeNull();
    clock.advance(AUTH_CACHE_MS + 1); // expired cache entries simply re-verify
    await expect(auth.authenticate('k1', 'new')).resolves.not.toBeNull();
  });

  it('keeps the previous credentials when a changed file is broken, and reports it once', async () => {
    const clock = fakeClock();
    const usersFile = join(freshDir(), 'users.json');
    await addUser(usersFile, { appKey: 'k1', secret: 'pw1', orgID: 'org1', username: 'alice', type: 'user' });
    const errors: Error[] = [];
    const auth = await PresetAuthenticator.create({ usersFile, now: clock.now, onReloadError: (e) => errors.push(e) });
    await writeFile(usersFile, '{ broken');
    clock.advance(RELOAD_CHECK_MS);
    await expect(auth.authenticate('k1', 'pw1')).resolves.not.toBeNull();
    clock.advance(RELOAD_CHECK_MS);
    await auth.authenticate('k1', 'pw1');
    expect(errors).toHaveLength(1);
    expect(errors[0]?.message).toContain(usersFile);
  });

  it('refuses to start on a broken file', async () => {
    const usersFile = join(freshDir(), 'users.json');
    await addUser(usersFile, { appKey: 'k1', secret: 'pw1', orgID: 'org1', username: 'alice', type: 'user' });
    await writeFile(usersFile, '{"credentials": {"k1": {"type": "user"}}}');
    await expect(PresetAuthenticator.create({ usersFile })).rejects.toThrow(/credentials\.k1\.secretHash/);
  });

  it('answers concurrent requests with the same credentials alike', async () => {
    const usersFile = join(freshDir(), 'users.json');
    await addUser(usersFile, { appKey: 'k1', secret: 'pw1', orgID: 'org1', username: 'alice', type: 'user' });
    const auth = await PresetAuthenticator.create({ usersFile });
    const results = await Promise.all(Array.from({ length: 8 }, () => auth.authenticate('k1', 'pw1')));
    for (const r of results) expect(r).toEqual({ role: 'user', orgID: 'org1', userID: 'alice' });
  });
});

describe('PresetAuthenticator with the reference preset-auth.json', () => {
  it('accepts its plaintext secrets, maps its types, and lets users.json win on a shared appKey', async () => {
    const d = freshDir();
    const usersFile = join(d, 'users.json');
    const referencePresetFile = join(d, 'preset-auth.json');
    await mkdir(d, { recursive: true });
    await writeFile(
      referencePresetFile,
      JSON.stringify({
        credentials: {
          ess1: { secret: 'ess-pw', orgID: 'org1', username: 'car/car1', type: 'EdgeNode' },
          app: { secret: 'app-pw', orgID: 'org1', username: 'alice', type: 'admin' },
          odd: { secret: 'odd-pw', orgID: 'org1', username: 'x', type: 'wizard' },
          shared: { secret: 'ref-pw', orgID: 'org1', username: 'old', type: 'user' },
        },
        cssCredentials: { key: 'ess1', secret: 'ess-pw' },
      }),
    );
    await addUser(usersFile, { appKey: 'shared', secret: 'new-pw', orgID: 'org1', username: 'new', type: 'user' });
    const auth = await PresetAuthenticator.create({ usersFile, referencePresetFile });

    await expect(auth.authenticate('ess1', 'ess-pw')).resolves.toEqual({ role: 'edgeNode', orgID: 'org1', userID: 'car/car1' });
    await expect(auth.authenticate('app', 'app-pw')).resolves.toEqual({ role: 'admin', orgID: 'org1', userID: 'alice' });
    await expect(auth.authenticate('app', 'app-pw ')).resolves.toBeNull();
    await expect(auth.authenticate('odd', 'odd-pw')).resolves.toBeNull(); // unknown type: nobody
    await expect(auth.authenticate('shared', 'ref-pw')).resolves.toBeNull();
    await expect(auth.authenticate('shared', 'new-pw')).resolves.toEqual({ role: 'user', orgID: 'org1', userID: 'new' });
    expect(auth.cssCredentials).toEqual({ key: 'ess1', secret: 'ess-pw' });
    expect(auth.referenceCredentialCount).toBe(3);
  });

  it('works without either file', async () => {
    const d = freshDir();
    const auth = await PresetAuthenticator.create({ usersFile: join(d, 'users.json'), referencePresetFile: join(d, 'preset-auth.json') });
    await expect(auth.authenticate('admin', 'x')).resolves.toBeNull();
    expect(auth.referenceCredentialCount).toBe(0);
  });
});
