/**
 * The `edgesync` client commands on the built binary, against one real CSS and one real ESS
 * (HTTP transport, the ESS on HTTPS with its self-signed certificate): what a script or a
 * person at a terminal sees, exit codes included.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { once } from 'node:events';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { BIN, Teardown } from '../helpers/node-process.js';
import { startSyncNet, type EssNode, type SyncNet } from '../helpers/transports.js';
import { eventually, ORG } from '../helpers/sync-pair.js';

jest.setTimeout(60_000);

const DEADLINE_MS = 20_000;

/**
 * `node` with the settings the bin's shebang gives it (as `npx edgesync` runs it), so that the
 * bin need not start itself again: half the processes per command.
 */
const NODE_ARGS = ['--initial-old-space-size=64', '--max-semi-space-size=4', BIN];

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The node type in `health --json` output. */
const nodeType = (json: string): string => (JSON.parse(json) as { general: { nodeType: string } }).general.nodeType;

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

describe('the edgesync CLI', () => {
  const t = new Teardown();
  let net: SyncNet;
  let n1: EssNode;
  let home: string;
  /** Environment of every run: its own config and state dirs, no EDGESYNC_* of the caller. */
  let env: NodeJS.ProcessEnv;
  let css: string[];
  let ess: string[];

  /** Runs `edgesync …` to its end; `input` goes to its stdin. */
  function cli(args: string[], o: { input?: Buffer | string; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
    return new Promise((resolve, reject) => {
      const child = execFile(process.execPath, [...NODE_ARGS, ...args], { env: { ...env, ...o.env }, maxBuffer: 64 * 1024 * 1024, encoding: 'buffer' }, (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
        if (code === null && err !== null) reject(new Error(`edgesync ${args.join(' ')}: ${err.message}`));
        else resolve({ code, stdout: stdout.toString('utf8'), stderr: stderr.toString('utf8') });
      });
      child.stdin?.end(o.input ?? '');
    });
  }

  /** `cli` that must succeed; resolves with its stdout. */
  async function ok(args: string[], o: { input?: Buffer | string; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
    const r = await cli(args, o);
    if (r.code !== 0) throw new Error(`edgesync ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
  }

  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), 'edgesync-cli-'));
    t.add(() => rm(home, { recursive: true, force: true }));
    net = await startSyncNet(t, 'http', { deadlineMs: DEADLINE_MS });
    n1 = await net.addEss({ id: 'n1' });
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('EDGESYNC_')));
    env = { ...clean, MALLOC_MMAP_THRESHOLD_: '131072', XDG_CONFIG_HOME: join(home, 'config'), XDG_STATE_HOME: join(home, 'state') };
    const cssAdmin = net.css.admin!;
    const essAdmin = n1.node.admin!;
    await writeFile(join(home, 'ess-password'), `${essAdmin.secret}\n`);
    css = ['--url', net.css.url, '--user', cssAdmin.appKey, '--password', cssAdmin.secret, '--org', ORG];
    ess = ['--url', n1.node.url, '--user', essAdmin.appKey, '--password-file', join(home, 'ess-password'), '--ca', join(n1.node.root, 'sync', 'certs', 'cert.pem')];
  });
  afterAll(() => t.run());

  test('login checks the credentials, then saves a 0600 profile that later commands use', async () => {
    const refused = await cli(['login', ...css.slice(0, 4), '--password', 'wrong', '--org', ORG]);
    expect(refused.code).toBe(4);
    await expect(stat(join(home, 'config', 'edgesync', 'profiles.json'))).rejects.toThrow();

    const saved = JSON.parse(await ok(['login', ...css, '--json'])) as { profile: string; path: string; nodeType: string };
    expect(saved).toMatchObject({ profile: 'default', nodeType: 'CSS' });
    expect(saved.path).toBe(join(home, 'config', 'edgesync', 'profiles.json'));
    expect((await stat(saved.path)).mode & 0o777).toBe(0o600);
    await ok(['login', ...ess, '--profile', 'edge']);
    expect((await stat(saved.path)).mode & 0o777).toBe(0o600);

    // `login --profile edge` made it current; --profile picks either.
    expect(nodeType(await ok(['health', '--json']))).toBe('ESS');
    expect(nodeType(await ok(['health', '--json', '--profile', 'default']))).toBe('CSS');
    await ok(['login', ...css]);
    expect(nodeType(await ok(['health', '--json']))).toBe('CSS');

    // Flags beat the environment, which beats the profile; a URL given leaves out the current
    // profile unless it is named.
    const unreachable = { EDGESYNC_URL: 'http://127.0.0.1:1', EDGESYNC_PROFILE: 'default' };
    expect((await cli(['health'], { env: unreachable })).code).toBe(6);
    expect(nodeType(await ok(['health', '--json', '--url', net.css.url], { env: unreachable }))).toBe('CSS');
    expect((await cli(['health', '--url', net.css.url])).code).toBe(2);
    expect((await cli(['health', '--profile', 'nope'])).code).toBe(2);
  });

  test('health shows a table, and the usage counters with --details', async () => {
    expect(await ok(['health', ...css])).toMatch(/nodeType\s*│\s*CSS/);
    const details = JSON.parse(await ok(['health', ...css, '--details', '--json'])) as { usage?: { registeredESS: number } };
    expect(details.usage?.registeredESS).toBe(1);
  });

  test('publish from a metadata file with overrides: the object reaches the ESS, ids exact in --json', async () => {
    const metaFile = join(home, 'meta.json');
    await writeFile(metaFile, JSON.stringify({ objectType: 'cfg', objectID: 'from-file', version: '1.0', destinationType: 'other', description: 'd' }));
    const data = Buffer.from('configuration data\n'.repeat(100));
    await writeFile(join(home, 'cfg.bin'), data);
    const out = await ok(['object', 'publish', ...css, '-m', metaFile, '--id', 'f1', '--version', '2.0', '--dest-type', 'edge', '--dest-id', 'n1', '-f', join(home, 'cfg.bin'), '--json']);
    const published = JSON.parse(out) as { objectID: string; version: string; destinationType: string; description: string; objectSize: number };
    expect(published).toMatchObject({ objectID: 'f1', version: '2.0', destinationType: 'edge', description: 'd', objectSize: data.length });
    // 19-digit nanosecond ids, printed digit for digit: the same text `object get` prints.
    const instance = /"instanceID": (\d+)/.exec(out)?.[1];
    expect(instance).toMatch(/^\d{19}$/);
    expect(await ok(['object', 'get', ...css, 'cfg', 'f1', '--json'])).toContain(`"instanceID": ${instance!}`);

    await eventually('cfg/f1 on the ESS', () => cli(['object', 'status', ...ess, 'cfg', 'f1']), (r) => r.code === 0 && r.stdout.trim() === 'completelyReceived', DEADLINE_MS);
    const onEss = await cli(['object', 'download', ...ess, 'cfg', 'f1', '-o', '-'], {});
    expect(onEss.code).toBe(0);
    expect(onEss.stdout).toBe(data.toString());
    const received = JSON.parse(await ok(['object', 'list', ...ess, '--type', 'cfg', '--received', '--json'])) as { objectID: string }[];
    expect(received.map((m) => m.objectID)).toContain('f1');
  });

  test('publish from stdin with flags only; download to a file', async () => {
    const data = Buffer.from(Array.from({ length: 100_000 }, (_, i) => i % 253));
    await ok(['object', 'publish', ...css, '-t', 'cfg', '-i', 'stdin1', '--dest-type', 'edge', '--dest-id', 'n1', '-f', '-'], { input: data });
    const file = join(home, 'stdin1.out');
    const r = JSON.parse(await ok(['object', 'download', ...css, 'cfg', 'stdin1', '-o', file, '--json'])) as { size: number };
    expect(r.size).toBe(data.length);
    expect(sha256(await readFile(file))).toBe(sha256(data));
    await eventually('cfg/stdin1 on the ESS', () => cli(['object', 'status', ...ess, 'cfg', 'stdin1']), (s) => s.stdout.trim() === 'completelyReceived', DEADLINE_MS);
  });

  test('object mark on the ESS: the CSS sees the delivery consumed', async () => {
    await ok(['object', 'publish', ...css, '-t', 'cfg', '-i', 'marked', '--dest-type', 'edge', '--dest-id', 'n1', '-f', '-'], { input: 'mark me' });
    await eventually('cfg/marked on the ESS', () => cli(['object', 'status', ...ess, 'cfg', 'marked']), (r) => r.stdout.trim() === 'completelyReceived', DEADLINE_MS);
    await ok(['object', 'mark', ...ess, 'consumed', 'cfg', 'marked']);
    await eventually(
      'consumed on the CSS',
      async () => JSON.parse(await ok(['object', 'destinations', ...css, 'cfg', 'marked', '--json'])) as { status: string }[],
      (d) => d.length === 1 && d[0]!.status === 'consumed',
      DEADLINE_MS,
    );
    expect((await cli(['object', 'mark', ...ess, 'eaten', 'cfg', 'marked'])).code).toBe(2);
  });

  test('exit codes: usage 2, not found 3, refused credentials 4, refused request 5, unreachable 6', async () => {
    expect((await cli(['object', 'get', ...css, 'cfg'])).code).toBe(2);
    expect((await cli(['object', 'frobnicate'])).code).toBe(2);
    const noType = await cli(['object', 'publish', ...css, '-i', 'x']);
    expect(noType.code).toBe(2);
    expect(noType.stderr).toMatch(/objectType/);
    // Without an org, a CSS is not taken for an ESS.
    expect((await cli(['object', 'get', ...css.slice(0, 6), 'cfg', 'f1'])).code).toBe(2);
    const missing = await cli(['object', 'get', ...css, 'cfg', 'nope']);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toMatch(/no object cfg\/nope/);
    expect((await cli(['object', 'status', ...css, 'cfg', 'nope'])).code).toBe(3);
    expect((await cli(['object', 'delete', ...css, 'cfg', 'nope'])).code).toBe(3);
    expect((await cli(['object', 'list', ...css.slice(0, 4), '--password', 'bad', '--org', ORG])).code).toBe(4);
    expect((await cli(['object', 'publish', ...css, '-t', 'cfg', '-i', 'bad', '--expiration', 'not-a-time'])).code).toBe(5);
    const down = await cli(['health', '--url', 'http://127.0.0.1:1', '--user', 'u', '--password', 'p']);
    expect(down.code).toBe(6);
    expect(down.stderr).toMatch(/cannot reach/);
  });

  test('list filters by type, id, destination and data; status, destinations, activate, delete', async () => {
    await ok(['object', 'publish', ...css, '-t', 'lst', '-i', 'a', '--dest-type', 'edge', '--dest-id', 'n1', '--inactive', '--no-data']);
    await ok(['object', 'publish', ...css, '-t', 'lst', '-i', 'b', '--dest-type', 'gateway', '-f', '-'], { input: 'b' });
    const ids = async (...filters: string[]): Promise<string[]> =>
      (JSON.parse(await ok(['object', 'list', ...css, '--json', ...filters])) as { objectID: string }[]).map((m) => m.objectID).sort();
    expect(await ids('--type', 'lst')).toEqual(['a', 'b']);
    expect(await ids('--type', 'lst', '--id', 'b')).toEqual(['b']);
    expect(await ids('--type', 'lst', '--dest-type', 'edge')).toEqual(['a']);
    expect(await ids('--type', 'lst', '--data', 'without')).toEqual(['a']);
    expect(await ok(['object', 'list', ...css, '--type', 'lst'])).toMatch(/│ lst\s*│ a\s*│/);
    expect(await ok(['object', 'list', ...css, '--type', 'none-such', '--json'])).toBe('[]\n');

    expect((await ok(['object', 'status', ...css, 'lst', 'a'])).trim()).toBe('ready');
    await ok(['object', 'activate', ...css, 'lst', 'a']);
    const dests = await eventually(
      'lst/a delivered to n1',
      async () => JSON.parse(await ok(['object', 'destinations', ...css, 'lst', 'a', '--json'])) as { destinationID: string; status: string }[],
      (d) => d.some((x) => x.destinationID === 'n1' && x.status === 'delivered'),
      DEADLINE_MS,
    );
    expect(dests).toHaveLength(1);
    expect(await ok(['destination', 'objects', ...css, 'edge', 'n1'])).toMatch(/lst\s*│ a/);
    await ok(['object', 'delete', ...css, 'lst', 'b']);
    expect((await cli(['object', 'get', ...css, 'lst', 'b'])).code).toBe(3);
  });

  test('destination list shows the ESS and how it talks', async () => {
    const nodes = JSON.parse(await ok(['destination', 'list', ...css, '--json'])) as { destinationID: string; communication: string }[];
    expect(nodes).toEqual([expect.objectContaining({ destinationType: 'edge', destinationID: 'n1', communication: 'http' })]);
    expect(await ok(['destination', 'list', ...css])).toMatch(/edge\s*│ n1\s*│ http/);
    expect((await cli(['destination', 'list', ...css.slice(0, 6)])).code).toBe(2);
  });

  test('acl add, list, get and remove', async () => {
    await ok(['acl', 'add', ...css, 'objects', 'cfg', 'alice', 'bob', '--role', 'aclReader']);
    expect(JSON.parse(await ok(['acl', 'list', ...css, 'objects', '--json']))).toEqual(['cfg']);
    const entries = JSON.parse(await ok(['acl', 'get', ...css, 'objects', 'cfg', '--json'])) as { Username: string; ACLRole: string }[];
    expect(entries.map((e) => [e.Username, e.ACLRole]).sort()).toEqual([['alice', 'aclReader'], ['bob', 'aclReader']]);
    await ok(['acl', 'remove', ...css, 'objects', 'cfg', 'alice']);
    expect(await ok(['acl', 'get', ...css, 'objects', 'cfg'])).toMatch(/bob/);
    await ok(['acl', 'remove', ...css, 'objects', 'cfg', 'bob']);
    expect(JSON.parse(await ok(['acl', 'list', ...css, 'objects', '--json']))).toEqual([]);
    expect((await cli(['acl', 'list', ...css, 'things'])).code).toBe(2);
  });

  test('org put, list and delete', async () => {
    await ok(['org', 'put', ...css, 'org2', '--address', 'tcp://127.0.0.1:1883']);
    const orgs = JSON.parse(await ok(['org', 'list', ...css, '--json'])) as { 'org-id': string; address: string }[];
    expect(orgs).toEqual(expect.arrayContaining([{ 'org-id': 'org2', address: 'tcp://127.0.0.1:1883' }]));
    await ok(['org', 'delete', ...css, 'org2']);
    expect(await ok(['org', 'list', ...css])).not.toMatch(/org2/);
  });

  test('an interrupted upload of a file resumes when the command runs again, and the data is intact', async () => {
    const chunk = 32 * 1024;
    const data = Buffer.alloc(40 * chunk);
    for (let i = 0; i < data.length; i += 4) data.writeUInt32LE((i * 2654435761) >>> 0, i);
    const file = join(home, 'big.bin');
    await writeFile(file, data);
    // Between the CLI and the CSS, a proxy that lets 5 chunks through and then holds the 6th
    // unanswered, as a stalled link would: the CLI is interrupted (Ctrl-C) while it waits.
    const upstream = new URL(net.css.url);
    let holding = true;
    let chunks = 0;
    const proxy = createServer((req, res) => {
      if (holding && req.method === 'PUT' && req.headers['content-range'] !== undefined && ++chunks > 5) {
        req.resume();
        return;
      }
      const forward = httpRequest({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      forward.on('error', () => res.destroy());
      req.pipe(forward);
    });
    proxy.listen(0, '127.0.0.1');
    await once(proxy, 'listening');
    const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    try {
      const args = ['object', 'publish', ...css, '--url', proxyUrl, '-t', 'big', '-i', 'b1', '-f', file, '--chunk-size', '32k'];
      const child = spawn(process.execPath, [...NODE_ARGS, ...args], { env, stdio: ['ignore', 'ignore', 'ignore'] });
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      await eventually('the 6th chunk held', () => Promise.resolve(chunks), (n) => n > 5, DEADLINE_MS);
      child.kill('SIGINT');
      expect(await exited).toBe(130);
      expect((await ok(['object', 'status', ...css, 'big', 'b1'])).trim()).toBe('notReady');

      holding = false;
      const resumed = await cli(args);
      expect(resumed.code).toBe(0);
      expect(resumed.stderr).toContain(`resuming the upload of big/b1 at byte ${5 * chunk} of ${data.length}`);
      const out = join(home, 'big.out');
      await ok(['object', 'download', ...css, 'big', 'b1', '-o', out]);
      expect(sha256(await readFile(out))).toBe(sha256(data));
      expect(await readdir(join(home, 'state', 'edgesync', 'uploads'))).toEqual([]);
    } finally {
      proxy.closeAllConnections();
      proxy.close();
    }
  });

  // script(1) is util-linux's; without it the test says so by name rather than vanishing.
  (existsSync('/usr/bin/script') ? test : test.skip)('a progress bar on stderr when it is a terminal (script(1) gives it one), none in a pipe', async () => {
    const file = join(home, 'bar.bin');
    await writeFile(file, Buffer.alloc(2 * 1024 * 1024, 7));
    const publish = (id: string): string[] => ['object', 'publish', ...css, '-t', 'bar', '-i', id, '-f', file, '--chunk-size', '256k'];
    const line = [process.execPath, ...NODE_ARGS, ...publish('p1')].map((a) => `'${a}'`).join(' ');
    const onTerminal = await new Promise<string>((resolve, reject) => {
      execFile('script', ['-qec', line, '/dev/null'], { env }, (err, stdout) => (err === null ? resolve(stdout) : reject(new Error(`script: ${err.message}`))));
    });
    expect(onTerminal).toMatch(/bar\/p1 \[█+\] 100% \| 2\.0 MiB\/2\.0 MiB \| [\d.]+ [KMG]iB\/s \| ETA/);
    const piped = await cli(publish('p2'));
    expect(piped.code).toBe(0);
    expect(piped.stderr).toBe('');
  });

  test('a download resumes from its .part file with a Range request', async () => {
    const data = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 7) % 256));
    await ok(['object', 'publish', ...css, '-t', 'dl', '-i', 'd1', '-f', '-'], { input: data });
    const meta = await ok(['object', 'get', ...css, 'dl', 'd1', '--json']);
    const dataID = /"dataID": (\d+)/.exec(meta)![1]!;
    const out = join(home, 'd1.bin');
    // What an interrupted download leaves: the first bytes, and which data they are of.
    await writeFile(`${out}.part`, data.subarray(0, 70_000));
    await writeFile(`${out}.part.json`, JSON.stringify({ dataID, size: data.length }));
    const r = await cli(['object', 'download', ...css, 'dl', 'd1', '-o', out]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/resuming the download of dl\/d1 at byte 70000 of 200000/);
    expect(sha256(await readFile(out))).toBe(sha256(data));
    await expect(stat(`${out}.part`)).rejects.toThrow();

    // A .part of other data (another dataID) is started over, not completed with the wrong bytes.
    await writeFile(`${out}.part`, Buffer.alloc(70_000, 1));
    await writeFile(`${out}.part.json`, JSON.stringify({ dataID: '1', size: data.length }));
    await ok(['object', 'download', ...css, 'dl', 'd1', '-o', out]);
    expect(sha256(await readFile(out))).toBe(sha256(data));
  });
});
