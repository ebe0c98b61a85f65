import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertDummyAllowed, DummyAuthenticator, loadDummyAuthLists, type Identity } from '../../../lib/security/index.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'edgesync-dummy-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const lists = { regularUsers: ['joe', 'ann@example.com'], syncAdmins: ['root'], exchangeAdmins: ['boss'] };

describe('DummyAuthenticator parses the appKey as rest-api §4.1, first matching row wins', () => {
  const auth = new DummyAuthenticator(lists);
  const rows: [string, Identity | null][] = [
    ['org1/car/car1', { role: 'edgeNode', orgID: 'org1', userID: 'car/car1' }],
    ['org1/boss', { role: 'admin', orgID: 'org1', userID: 'boss' }],
    ['org1/clerk', { role: 'objectAdmin', orgID: 'org1', userID: 'clerk' }],
    ['org1$svcorg$1.0.0$svc', { role: 'service', orgID: 'org1', userID: 'svcorg/1.0.0/svc' }],
    ['node7%org1', { role: 'node', orgID: 'org1', userID: 'node7' }],
    ['joe@org1', { role: 'user', orgID: 'org1', userID: 'joe' }],
    ['ann@example.com@org1', { role: 'user', orgID: 'org1', userID: 'ann@example.com' }],
    ['root@org1', { role: 'syncAdmin', orgID: '', userID: 'root' }],
    ['mary@org1', { role: 'admin', orgID: 'org1', userID: 'mary' }],
    ['mary@example.com@org1', { role: 'admin', orgID: 'org1', userID: 'mary@example.com' }],
    // Earlier rows win: a slash form is never read as user@org.
    ['org1/joe@x', { role: 'objectAdmin', orgID: 'org1', userID: 'joe@x' }],
    ['a$b$c$joe@org1', { role: 'service', orgID: 'a', userID: 'b/c/joe@org1' }],
    // Anything else.
    ['plain', null],
    ['a/b/c/d', null],
    ['a$b$c', null],
    ['a%b%c', null],
    ['a@b@c@d', null],
    ['', null],
    // Empty parts are "anything else" too (the reference would accept them).
    ['/car/car1', null],
    ['user@', null],
    ['%org1', null],
  ];
  it.each(rows)('%s', async (appKey, expected) => {
    await expect(auth.authenticate(appKey, 'ignored')).resolves.toEqual(expected);
  });

  it('ignores the secret', async () => {
    await expect(auth.authenticate('mary@org1', '')).resolves.toEqual(await auth.authenticate('mary@org1', 'anything'));
  });
});

describe('dummy-auth.json', () => {
  it('a missing file means empty lists: every user@org is an admin, every org/user an object admin', async () => {
    const auth = await DummyAuthenticator.fromFile(join(dir, 'missing.json'));
    await expect(auth.authenticate('joe@org1', '')).resolves.toEqual({ role: 'admin', orgID: 'org1', userID: 'joe' });
    await expect(auth.authenticate('org1/boss', '')).resolves.toEqual({ role: 'objectAdmin', orgID: 'org1', userID: 'boss' });
  });

  it('reads the three lists', async () => {
    const path = join(dir, 'dummy-auth.json');
    await writeFile(path, JSON.stringify(lists));
    await expect(loadDummyAuthLists(path)).resolves.toEqual(lists);
    const auth = await DummyAuthenticator.fromFile(path);
    await expect(auth.authenticate('root@any', '')).resolves.toEqual({ role: 'syncAdmin', orgID: '', userID: 'root' });
  });

  it('refuses a malformed file instead of treating everyone as an admin', async () => {
    const path = join(dir, 'bad-dummy.json');
    await writeFile(path, JSON.stringify({ regularUsers: 'joe' }));
    await expect(loadDummyAuthLists(path)).rejects.toThrow(`Invalid dummy auth file ${path}: regularUsers must be a list of strings`);
  });
});

describe('assertDummyAllowed', () => {
  it.each([['0.0.0.0'], ['0.0.0.0:8443'], ['10.1.2.3'], ['10.1.2.3:80'], [':8080'], ['::'], ['[::]:8443'], ['example.com:443'], ['128.0.0.1']])(
    'refuses %s',
    (address) => {
      expect(() => assertDummyAllowed([address])).toThrow(/dummy authenticator accepts any password/);
    },
  );

  it.each([['127.0.0.1'], ['127.0.0.1:8443'], ['127.9.8.7:1'], ['::1'], ['[::1]:8443'], ['0:0:0:0:0:0:0:1'], ['localhost'], ['LOCALHOST:80'], ['/var/run/ess.sock'], ['unix:/tmp/s']])(
    'allows %s',
    (address) => {
      expect(() => assertDummyAllowed([address])).not.toThrow();
    },
  );

  it('refuses when any one address is exposed, naming it', () => {
    expect(() => assertDummyAllowed(['127.0.0.1:8443', '0.0.0.0:8080'])).toThrow(/0\.0\.0\.0:8080/);
  });

  it('refuses an empty list: nothing to check means nothing proven', () => {
    expect(() => assertDummyAllowed([])).toThrow(/none were given/);
  });
});
