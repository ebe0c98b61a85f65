/**
 * One process per data directory (issue #10): a second node on the root of a running one
 * refuses to start, naming the directory and the first one's pid; a clean stop removes the
 * lock; the lock of a process that is gone is taken over.
 */
import { spawn } from 'node:child_process';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, jest, test } from '@jest/globals';
import { BIN, raw, startManaged, startNode, tempRoot, Teardown } from '../helpers/node-process.js';

jest.setTimeout(60_000);

const t = new Teardown();
afterAll(() => t.run());

// The CSS it names does not run: these tests are about the directory only.
const ESS_ENV = { ORG_ID: 'org1', DESTINATION_TYPE: 'edge', DESTINATION_ID: 'n1', HTTP_CSS_HOST: '127.0.0.1', HTTP_CSS_PORT: '1', LISTENING_TYPE: 'unsecure' };

/** Runs the binary to its end with stdout and stderr apart. */
function runToCompletion(mode: 'css' | 'ess', env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, mode], {
    env: { PATH: process.env.PATH ?? '', UNSECURE_LISTENING_PORT: '0', SECURE_LISTENING_PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`still running after 20 s:\n${stdout}${stderr}`));
    }, 20_000);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Log lines are written asynchronously and may follow the banner the harness waits for. */
async function eventually(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The pid of a process that has ended. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await new Promise((r) => child.once('exit', r));
  return child.pid!;
}

describe('one process per data directory', () => {
  test('a second CSS or ESS on a running CSS’s root exits non-zero, naming the directory and the pid', async () => {
    const root = await tempRoot(t, 'lock');
    const first = await startManaged(t, { mode: 'css', root });
    const lock = JSON.parse(await readFile(join(root, 'edgesync.lock'), 'utf8')) as { pid: number };
    // The pid of the process that serves: the bin's launcher starts it (ADR 11).
    expect(lock.pid).toBe(first.servingPid());

    for (const [mode, env] of [
      ['css', {}],
      ['ess', ESS_ENV],
    ] as const) {
      const second = await runToCompletion(mode, { PERSISTENCE_ROOT_PATH: root, ...env });
      expect(second.code).not.toBe(0);
      expect(second.stderr).toContain(`the data directory ${root} is in use by another edgesync process (pid ${first.servingPid()}`);
      expect(second.stdout).not.toMatch(/is running/);
    }
    // The first one is untouched and still holds the lock.
    expect((await raw(first, 'GET', '/api/v1/health')).status).toBe(200);
    expect(JSON.parse(await readFile(join(root, 'edgesync.lock'), 'utf8'))).toEqual(lock);
  });

  test('a clean stop removes the lock, and the next start takes the directory', async () => {
    const root = await tempRoot(t, 'lock');
    const ess = await startNode({ mode: 'ess', root, env: ESS_ENV });
    expect(await exists(join(root, 'edgesync.lock'))).toBe(true);
    expect(await ess.stop()).toBe(0);
    expect(await exists(join(root, 'edgesync.lock'))).toBe(false);

    const again = await startManaged(t, { mode: 'ess', root, env: ESS_ENV });
    expect((await raw(again, 'GET', '/api/v1/health', { auth: { user: ess.admin!.appKey, pass: ess.admin!.secret } })).status).toBe(200);
  });

  test('the lock of a killed process is taken over', async () => {
    const root = await tempRoot(t, 'lock');
    const killed = await startNode({ mode: 'css', root });
    const killedPid = killed.servingPid();
    await killed.kill();
    expect(JSON.parse(await readFile(join(root, 'edgesync.lock'), 'utf8'))).toMatchObject({ pid: killedPid });

    const next = await startManaged(t, { mode: 'css', root, env: { LOG_LEVEL: 'info' } });
    expect(JSON.parse(await readFile(join(root, 'edgesync.lock'), 'utf8'))).toMatchObject({ pid: next.servingPid() });
    await eventually(() => next.output().includes(`"previousPid":${killedPid}`));
  });

  test('a lock naming a pid that no longer runs, or garbage, does not block a start', async () => {
    const root = await tempRoot(t, 'lock');
    const pid = await deadPid();
    await writeFile(join(root, 'edgesync.lock'), JSON.stringify({ pid, nodeType: 'CSS', host: 'elsewhere', startedAt: '2020-01-01T00:00:00.000Z' }));
    const a = await startNode({ mode: 'css', root });
    expect(await a.stop()).toBe(0);

    await writeFile(join(root, 'edgesync.lock'), 'not json');
    const b = await startManaged(t, { mode: 'css', root });
    expect(JSON.parse(await readFile(join(root, 'edgesync.lock'), 'utf8'))).toMatchObject({ pid: b.servingPid() });
  });
});
