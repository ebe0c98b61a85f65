/**
 * `edgesync users add` judges an entry exactly as the server loads it (one schema,
 * lib/security/users-file.ts): every entry it accepts loads on a CSS, and every entry the CSS
 * would refuse is refused by `users add` with the same message, nothing written.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadUsersFile } from '../../lib/security/users-file.js';
import { BIN, startManaged, startNode, Teardown, tempRoot } from '../helpers/node-process.js';

const exec = promisify(execFile);
const t = new Teardown();
afterAll(() => t.run());

interface Entry {
  appKey: string;
  type: string;
  org?: string;
  username?: string;
}

/** Runs `users add`; the exit code and what it printed on stderr. */
async function usersAdd(root: string, e: Entry, secret = 'a-secret'): Promise<{ code: number; stderr: string }> {
  const args = [BIN, 'users', 'add', e.appKey, '--type', e.type, '--secret', secret, '--persistence-root-path', root];
  if (e.org !== undefined) args.push('--org', e.org);
  if (e.username !== undefined) args.push('--username', e.username);
  try {
    await exec(process.execPath, args, { env: { PATH: process.env.PATH ?? '' } });
    return { code: 0, stderr: '' };
  } catch (err) {
    const e2 = err as { code: number; stderr: string };
    return { code: e2.code, stderr: e2.stderr };
  }
}

/** What the server says of the same entry written into its users file by hand (the secret hashed as usual). */
async function serverVerdict(root: string, e: Entry, username: string): Promise<string> {
  const file = join(root, 'sync', 'users.json');
  await mkdir(join(root, 'sync'), { recursive: true });
  const secretHash = 'scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=';
  await writeFile(file, JSON.stringify({ credentials: { [e.appKey]: { secretHash, orgID: e.org ?? '', username, type: e.type } } }));
  return loadUsersFile(file).then(
    () => 'loaded',
    (err: Error) => err.message,
  );
}

const ACCEPTED: Entry[] = [
  { appKey: 'alice', type: 'user', org: 'org1' },
  { appKey: 'boss', type: 'Admin', org: 'org1' },
  { appKey: 'root', type: 'syncadmin' },
  // The reference's edge-node app key `org/type/id`: the user name defaults to `type/id`.
  { appKey: 'org1/edge/n1', type: 'edgenode', org: 'org1' },
  { appKey: 'n2', type: 'EdgeNode', org: 'org1', username: 'edge/n2' },
  { appKey: 'svc', type: 'service', org: 'org1', username: 'org1/1.0.0/svc' },
];

const REFUSED: Entry[] = [
  // The case of issue #12: an edge node without --username used to stop the CSS from starting.
  { appKey: 'n3', type: 'edgenode', org: 'org1' },
  { appKey: 'bob', type: 'user' },
  { appKey: 'eve', type: 'superuser', org: 'org1' },
  { appKey: 'a:b', type: 'user', org: 'org1' },
  { appKey: 'svc2', type: 'service', org: 'org1', username: 'just-a-name' },
  { appKey: 'carol', type: 'user', org: 'org1', username: '' },
];

describe('edgesync users add', () => {
  it('accepts only entries that a CSS then loads, and their users log in', async () => {
    const root = await tempRoot(t, 'users-ok');
    for (const e of ACCEPTED) expect(await usersAdd(root, e, 'root-secret')).toEqual({ code: 0, stderr: '' });
    const file = await loadUsersFile(join(root, 'sync', 'users.json'));
    expect(Object.keys(file.credentials).sort()).toEqual(ACCEPTED.map((e) => e.appKey).sort());
    expect(file.credentials['org1/edge/n1']).toMatchObject({ username: 'edge/n1', type: 'edgenode' });
    const css = await startManaged(t, { mode: 'css', root });
    const status = async (user: string, pass: string): Promise<number> =>
      (await fetch(`${css.url}/api/v1/organizations`, { headers: { Authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` } })).status;
    // No org yet: the list is a 404 [ref rest-api §1.4]; what matters is that the login passed.
    expect(await status('root', 'root-secret')).toBe(404);
    expect(await status('root', 'wrong')).toBe(403);
  });

  it.each(REFUSED.map((e) => [JSON.stringify(e), e] as const))('refuses %s with the server\'s own message, writing nothing', async (_name, e) => {
    const root = await tempRoot(t, 'users-bad');
    const file = join(root, 'sync', 'users.json');
    const cli = await usersAdd(root, e);
    expect(cli.code).not.toBe(0);
    expect(existsSync(file)).toBe(false);
    const username = e.username ?? e.appKey;
    const server = await serverVerdict(root, e, username);
    expect(server).not.toBe('loaded');
    expect(cli.stderr.trim()).toBe(`edgesync: ${server}`);
  });

  it('the CSS refuses to start on such an entry with that same message', async () => {
    const root = await tempRoot(t, 'users-css');
    const e = REFUSED[0]!;
    const message = await serverVerdict(root, e, e.appKey);
    const started = await startNode({ mode: 'css', root }).then(
      async (n) => {
        await n.stop();
        return 'started';
      },
      (err: Error) => err.message,
    );
    expect(started).toContain(message.split('\n')[1]!.trim());
    expect(await readFile(join(root, 'sync', 'users.json'), 'utf8')).toContain('"n3"');
  });
});
