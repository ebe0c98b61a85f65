/**
 * Starting and stopping the real binary: first-start credentials, configuration errors and
 * sources, the dummy authenticator's loopback rule, graceful stops on signals, and --help.
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, jest, test } from '@jest/globals';
import { KEY_NAMES } from '../../lib/config/index.js';
import { BIN, raw, startManaged, tempRoot, Teardown, type RunningProcess } from '../helpers/node-process.js';

jest.setTimeout(40_000);

const t = new Teardown();
afterAll(() => t.run());

/** Runs the binary to its end (it must not start serving) and returns its exit code and output. */
function runToCompletion(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { PATH: process.env.PATH ?? '', UNSECURE_LISTENING_PORT: '0', SECURE_LISTENING_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`still running after 20 s:\n${out}`));
    }, 20_000);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

/** Waits for the exit code of a node after a signal, with a generous deadline. */
function exitAfter(node: RunningProcess, signal: NodeJS.Signals): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no exit 20 s after ${signal}:\n${node.output()}`)), 20_000);
    node.child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
    node.child.kill(signal);
  });
}

/** Log lines are written asynchronously and may follow the banner the harness waits for. */
async function logged(node: RunningProcess, line: RegExp): Promise<void> {
  await poll(`a log line matching ${String(line)}`, () => Promise.resolve(line.test(node.output())));
}

const basic = (user: string, pass: string): string => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

async function poll(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('first start and later starts', () => {
  test('a fresh root prints sync-admin credentials once and stores only a hash of the secret', async () => {
    const first = await startManaged(t, { mode: 'css' });
    expect(first.admin).not.toBeNull();
    const { appKey, secret } = first.admin!;
    expect(first.output()).toContain('shown only this once');

    const usersFile = await readFile(join(first.root, 'sync', 'users.json'), 'utf8');
    expect(usersFile).not.toContain(secret);
    const users = JSON.parse(usersFile) as { credentials: Record<string, { secretHash: string; type: string }> };
    expect(users.credentials[appKey]).toMatchObject({ type: 'syncadmin', secretHash: expect.stringMatching(/^scrypt\$/) });
    expect((await raw(first, 'GET', '/api/v1/health')).status).toBe(200);
    expect(await first.stop()).toBe(0);

    const second = await startManaged(t, { mode: 'css', root: first.root });
    expect(second.admin).toBeNull();
    expect(second.output()).not.toMatch(/password:/);
    const res = await raw(second, 'GET', '/api/v1/health', { auth: { user: appKey, pass: secret } });
    expect(res.status).toBe(200);
  });
});

describe('configuration', () => {
  test('invalid settings stop start-up with exit code 2 and a message naming every bad key', async () => {
    const root = await tempRoot(t, 'startup');
    const { code, out } = await runToCompletion(['--log-level', 'loud'], { PERSISTENCE_ROOT_PATH: root, UNSECURE_LISTENING_PORT: 'abc', NODE_TYPE: 'foo' });
    expect(code).toBe(2);
    expect(out).toMatch(/invalid configuration \(3 problems\)/);
    expect(out).toMatch(/UNSECURE_LISTENING_PORT \(environment\): must be an integer, got "abc"/);
    expect(out).toMatch(/NODE_TYPE \(environment\): must be one of CSS, ESS; got "foo"/);
    expect(out).toMatch(/--log-level \(command line\)/);
    // Nothing was set up on the way.
    expect(await readdir(root)).toEqual([]);
  });

  test('a bad NODE_TYPE is reported even when the subcommand chooses the node type', async () => {
    const root = await tempRoot(t, 'startup');
    const { code, out } = await runToCompletion(['css'], { PERSISTENCE_ROOT_PATH: root, UNSECURE_LISTENING_PORT: 'abc', NODE_TYPE: 'foo' });
    expect(code).toBe(2);
    expect(out).toMatch(/UNSECURE_LISTENING_PORT/);
    expect(out).toMatch(/NODE_TYPE/);
  });

  test('an ESS without DESTINATION_ID refuses to start, naming it', async () => {
    const root = await tempRoot(t, 'startup');
    const { code, out } = await runToCompletion(['ess'], {
      PERSISTENCE_ROOT_PATH: root,
      ORG_ID: 'org1',
      DESTINATION_TYPE: 'edge',
      HTTP_CSS_HOST: '127.0.0.1',
      HTTP_CSS_PORT: '1',
    });
    expect(code).toBe(2);
    expect(out).toMatch(/DESTINATION_ID: is required on an ESS/);
    expect(out).not.toMatch(/DESTINATION_TYPE:/);
  });

  test('a YAML file given with --config is honoured, and a flag beats the environment', async () => {
    const root = await tempRoot(t, 'startup');
    const config = join(root, 'edgesync.yaml');
    await writeFile(config, 'orgID: fileorg\nlogLevel: fatal\n');
    // The file says fatal, the environment (LOG_LEVEL=warning, set by the harness) beats it,
    // and --log-level info beats both: the info-level "listening" line appears.
    const css = await startManaged(t, { mode: 'css', root, args: ['--config', config, '--log-level', 'info'] });
    await logged(css, /"msg":"listening"/);
    // orgID from the file: a single-org CSS for fileorg.
    const other = await raw(css, 'GET', '/api/v1/objects/someorg/t/i');
    expect(other.status).toBe(404);
    expect(other.text).toMatch(/serves fileorg only/);
    const put = await raw(css, 'PUT', '/api/v1/organizations/fileorg', { body: JSON.stringify({ orgID: 'fileorg' }) });
    expect(put.text).toBe("Can't modify organizations for single organization CSS\n");
  });
});

describe('the dummy authenticator', () => {
  test('refuses to start on a non-loopback address', async () => {
    const root = await tempRoot(t, 'startup');
    const { code, out } = await runToCompletion(['css'], { PERSISTENCE_ROOT_PATH: root, AUTHENTICATION_HANDLER: 'dummy', LISTENING_ADDRESS: '0.0.0.0' });
    expect(code).toBe(2);
    expect(out).toMatch(/AUTHENTICATION_HANDLER/);
    expect(out).toMatch(/loopback/);
  });

  test('on 127.0.0.1 it starts with a warning and takes admin@org1 with any password as the admin of org1', async () => {
    const css = await startManaged(t, { mode: 'css', env: { AUTHENTICATION_HANDLER: 'dummy', LISTENING_ADDRESS: '127.0.0.1' } });
    expect(css.admin).toBeNull();
    await logged(css, /"level":40.*AUTHENTICATION_HANDLER=dummy accepts any password/);

    const auth = { user: 'admin@org1', pass: 'anything at all' };
    expect((await raw(css, 'GET', '/api/v1/health', { auth })).status).toBe(200);
    expect((await raw(css, 'PUT', '/api/v1/organizations/org1', { auth, body: JSON.stringify({ orgID: 'org1' }) })).status).toBe(204);
    expect((await raw(css, 'PUT', '/api/v1/organizations/org2', { auth, body: JSON.stringify({ orgID: 'org2' }) })).status).toBe(403);
    expect((await raw(css, 'GET', '/api/v1/health', { auth: null })).status).toBe(403);
  });

  test('takes the empty password that the reference clients send, and an org needs no creation first', async () => {
    const css = await startManaged(t, { mode: 'css', env: { AUTHENTICATION_HANDLER: 'dummy', LISTENING_ADDRESS: '127.0.0.1' } });
    const auth = { user: 'admin@myorg', pass: '' };
    expect((await raw(css, 'GET', '/api/v1/health', { auth })).status).toBe(200);
    const meta = JSON.stringify({ meta: { objectID: 'o1', objectType: 't', destinationType: 'edge' } });
    expect((await raw(css, 'PUT', '/api/v1/objects/myorg/t/o1', { auth, body: meta })).status).toBe(204);
    expect((await raw(css, 'GET', '/api/v1/objects/myorg/t/o1', { auth })).status).toBe(200);
    // Authorization still decides who acts in an org: the admin of another org may not.
    expect((await raw(css, 'GET', '/api/v1/objects/myorg/t/o1', { auth: { user: 'admin@other', pass: '' } })).status).toBe(403);
    // An ESS of an org nobody created registers (its own identity, empty password, as a reference ESS).
    const essAuth = { user: 'myorg/edge/node1', pass: '' };
    const reg = await raw(css, 'PUT', '/spi/v1/register-new/myorg/edge/node1?persistent-storage=true', {
      auth: essAuth,
      headers: { 'X-Sync-Service-Dest': 'myorg/edge/node1' },
    });
    expect(reg.status).toBe(204);
  });
});

describe('stopping on signals', () => {
  test('SIGTERM during an upload: exit 0, the previous data is intact after a restart, no temp files remain', async () => {
    // A short quiesce time: the stalled upload is cut after 1 s instead of the default 60 s.
    const css = await startManaged(t, { mode: 'css', env: { SHUTDOWN_QUIESCE_TIME: '1' } });
    const admin = css.admin!;
    const client = await css.client({ orgID: 'org1' });
    expect((await raw(css, 'PUT', '/api/v1/organizations/org1', { body: JSON.stringify({ orgID: 'org1' }) })).status).toBe(204);
    await client.updateObject({ objectType: 't', objectID: 'big', destinationType: 'edge' }, 'previous data');
    client.close();

    // 32 MiB announced, a few MiB sent slowly, then the sender stalls mid-body.
    const total = 32 * 1024 * 1024;
    const { port } = new URL(css.url);
    const upload = http.request({
      host: '127.0.0.1',
      port: Number(port),
      method: 'PUT',
      path: '/api/v1/objects/org1/t/big/data',
      headers: { authorization: basic(admin.appKey, admin.secret), 'content-type': 'application/octet-stream', 'content-length': total },
    });
    const outcome = new Promise<string>((resolve) => {
      upload.once('error', (e) => resolve(`error ${(e as NodeJS.ErrnoException).code ?? e.message}`));
      upload.once('response', (res) => {
        res.resume();
        resolve(`status ${res.statusCode ?? 0}`);
      });
    });
    const chunk = Buffer.alloc(256 * 1024, 0x61);
    for (let i = 0; i < 16; i++) {
      upload.write(chunk);
      await new Promise((r) => setTimeout(r, 20));
    }
    const tmp = join(css.root, 'sync', 'data', 'tmp');
    await poll('the upload to reach the blob store', async () => (await readdir(tmp)).length > 0);

    expect(await exitAfter(css, 'SIGTERM')).toBe(0);
    expect(await outcome).not.toBe('status 204');
    upload.destroy();

    const again = await startManaged(t, { mode: 'css', root: css.root });
    const after = await again.client({ orgID: 'org1', appKey: admin.appKey, appSecret: admin.secret });
    try {
      const chunks: Buffer[] = [];
      for await (const c of (await after.fetchObjectData('t', 'big')) as AsyncIterable<Buffer>) chunks.push(c);
      expect(Buffer.concat(chunks).toString()).toBe('previous data');
    } finally {
      after.close();
    }
    expect(await readdir(tmp)).toEqual([]);
    // The cut upload left no orphan behind. (The previous data, being small, is kept in the
    // database, so no blob file at all remains.)
    expect(await readdir(join(css.root, 'sync', 'data', 'blobs'))).toEqual([]);
  });

  test('SIGTERM lets an in-flight upload finish, then exits without waiting out the quiesce time', async () => {
    // Default SHUTDOWN_QUIESCE_TIME (60 s): exiting within the 20 s deadline shows that the client's
    // keep-alive connection, idle once its upload is answered, does not hold the stop.
    const css = await startManaged(t, { mode: 'css', env: { LOG_LEVEL: 'info' } });
    const admin = css.admin!;
    expect((await raw(css, 'PUT', '/api/v1/organizations/org1', { body: JSON.stringify({ orgID: 'org1' }) })).status).toBe(204);
    const meta = JSON.stringify({ meta: { objectType: 't', objectID: 'o', destinationType: 'edge' }, data: Buffer.from('old').toString('base64') });
    expect((await raw(css, 'PUT', '/api/v1/objects/org1/t/o', { body: meta })).status).toBe(204);

    const agent = new http.Agent({ keepAlive: true });
    t.add(() => Promise.resolve(agent.destroy()));
    const data = Buffer.alloc(1024 * 1024, 0x62);
    const { port } = new URL(css.url);
    const upload = http.request({
      host: '127.0.0.1',
      port: Number(port),
      method: 'PUT',
      path: '/api/v1/objects/org1/t/o/data',
      agent,
      headers: { authorization: basic(admin.appKey, admin.secret), 'content-type': 'application/octet-stream', 'content-length': data.length },
    });
    const status = new Promise<number>((resolve, reject) => {
      upload.once('error', reject);
      upload.once('response', (res) => {
        res.resume();
        res.once('end', () => resolve(res.statusCode ?? 0));
      });
    });
    upload.write(data.subarray(0, 64 * 1024));
    const tmp = join(css.root, 'sync', 'data', 'tmp');
    await poll('the upload to reach the blob store', async () => (await readdir(tmp)).length > 0);

    const exit = exitAfter(css, 'SIGTERM');
    await logged(css, /"signal":"SIGTERM"/);
    upload.end(data.subarray(64 * 1024));
    expect(await status).toBe(204);
    expect(await exit).toBe(0);

    const again = await startManaged(t, { mode: 'css', root: css.root });
    const client = await again.client({ orgID: 'org1', appKey: admin.appKey, appSecret: admin.secret });
    try {
      const chunks: Buffer[] = [];
      for await (const c of (await client.fetchObjectData('t', 'o')) as AsyncIterable<Buffer>) chunks.push(c);
      expect(Buffer.concat(chunks).equals(data)).toBe(true);
    } finally {
      client.close();
    }
  });

  test('a connection that never sent a request does not hold the stop (plain HTTP CSS, TLS ESS)', async () => {
    // A browser's pre-opened connection, or one an aborted fetch left behind. Default
    // SHUTDOWN_QUIESCE_TIME (60 s): exiting within the 20 s deadline shows it was closed at once.
    const css = await startManaged(t, { mode: 'css' });
    const ess = await startManaged(t, { mode: 'ess', env: { ORG_ID: 'org1', DESTINATION_TYPE: 'edge', DESTINATION_ID: 'n1', HTTP_CSS_HOST: '127.0.0.1', HTTP_CSS_PORT: '1' } });
    const plain = connect(Number(new URL(css.url).port), '127.0.0.1');
    const secure = tlsConnect({ port: Number(new URL(ess.url).port), host: '127.0.0.1', rejectUnauthorized: false });
    t.add(() => Promise.resolve((plain.destroy(), secure.destroy())));
    for (const socket of [plain, secure]) socket.on('error', () => undefined);
    await Promise.all([new Promise((r) => plain.once('connect', r)), new Promise((r) => secure.once('secureConnect', r))]);
    expect(await Promise.all([exitAfter(css, 'SIGTERM'), exitAfter(ess, 'SIGTERM')])).toEqual([0, 0]);
  });

  test('SIGINT stops the node gracefully with exit code 0', async () => {
    const css = await startManaged(t, { mode: 'css' });
    expect((await raw(css, 'GET', '/api/v1/health')).status).toBe(200);
    expect(await exitAfter(css, 'SIGINT')).toBe(0);
  });
});

describe('command line', () => {
  test('--help prints the usage and exits 0', async () => {
    const { code, out } = await runToCompletion(['--help']);
    expect(code).toBe(0);
    expect(out).toMatch(/^Usage:/);
    expect(out).toMatch(/edgesync css/);
    expect(out).toMatch(/edgesync ess/);
    expect(out).toMatch(/edgesync users add/);
  });

  test('--help lists every setting: its flag, its environment variable and its default', async () => {
    const { code, out } = await runToCompletion(['--help']);
    expect(code).toBe(0);
    for (const n of KEY_NAMES) {
      expect(out).toContain(`--${n.flag}`);
      expect(out).toContain(n.env[0] ?? '');
    }
    expect(out).toMatch(/--unsecure-listening-port VALUE\s+UNSECURE_LISTENING_PORT, unsecureListeningPort; default 8080/);
    expect(out).toMatch(/--reference-protocol \| --no-reference-protocol\s+EDGESYNC_REFERENCE_PROTOCOL/);
  });

  test('--version prints the package version and exits 0', async () => {
    const pkg = JSON.parse(await readFile(join(process.cwd(), 'package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-v', 'version']) {
      const { code, out } = await runToCompletion([flag]);
      expect(code).toBe(0);
      expect(out).toBe(`edgesync ${pkg.version}\n`);
    }
  });

  test('--help after a subcommand also prints the usage, exits 0 and starts nothing', async () => {
    const root = await tempRoot(t, 'startup');
    const { code, out } = await runToCompletion(['css', '--help'], { PERSISTENCE_ROOT_PATH: root });
    expect(code).toBe(0);
    expect(out).toMatch(/^Usage:/);
    expect(await readdir(root)).toEqual([]);
  });
});
