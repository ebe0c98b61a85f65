/**
 * The bin's runtime settings (ADR 11): however the program is started, the process that serves
 * runs with MALLOC_MMAP_THRESHOLD_=131072 and --initial-old-space-size=64, and the launcher
 * that adds them passes on signals and the exit code, and never outlives or is outlived by it.
 */
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, jest, test } from '@jest/globals';
import { processTree, raw, startManaged, Teardown, type RunningProcess } from '../helpers/node-process.js';

jest.setTimeout(40_000);

const t = new Teardown();
afterAll(() => t.run());

/** What /proc says a process runs with: its command line and environment. */
function runtimeOf(pid: number): { argv: string[]; env: string[] } {
  const split = (file: string): string[] => readFileSync(`/proc/${pid}/${file}`, 'utf8').split('\0').filter((x) => x !== '');
  return { argv: split('cmdline'), env: split('environ') };
}

const alive = (pid: number): boolean => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
};

async function until(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function exitOf(node: RunningProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (node.child.exitCode !== null || node.child.signalCode !== null) return Promise.resolve({ code: node.child.exitCode, signal: node.child.signalCode });
  return new Promise((resolve) => node.child.once('exit', (code, signal) => resolve({ code, signal })));
}

describe('started as `node dist/cmd/edgesync.js` (a container CMD)', () => {
  test('the serving process runs with the runtime settings, under a launcher', async () => {
    const css = await startManaged(t, { mode: 'css' });
    const launcher = css.child.pid ?? 0;
    const serving = css.servingPid();
    expect(serving).not.toBe(launcher);
    expect(runtimeOf(launcher).env).not.toContain('MALLOC_MMAP_THRESHOLD_=131072');
    const { argv, env } = runtimeOf(serving);
    expect(env).toContain('MALLOC_MMAP_THRESHOLD_=131072');
    expect(argv).toContain('--initial-old-space-size=64');
    expect(argv).toContain('--max-semi-space-size=4');
    expect(argv.slice(-2)).toEqual([expect.stringMatching(/dist\/cmd\/edgesync\.js$/), 'css']);
    // It serves: the launcher only waits.
    expect((await raw(css, 'GET', '/api/v1/health')).status).toBe(200);
    expect(await css.stop()).toBe(0);
    expect(alive(serving)).toBe(false);
  });

  test('a value the user set is kept, and nothing is started twice', async () => {
    const css = await startManaged(t, { mode: 'css', env: { MALLOC_MMAP_THRESHOLD_: '262144' } });
    const { argv, env } = runtimeOf(css.servingPid());
    expect(env).toContain('MALLOC_MMAP_THRESHOLD_=262144');
    expect(argv).toContain('--initial-old-space-size=64');
    expect(argv).toContain('--max-semi-space-size=4');
    expect(processTree(css.child.pid ?? 0)).toHaveLength(2);
  });

  test('SIGTERM to the launcher stops the node gracefully; the exit code comes back', async () => {
    const css = await startManaged(t, { mode: 'css', env: { LOG_LEVEL: 'info' } });
    const exit = exitOf(css);
    css.child.kill('SIGTERM');
    expect(await exit).toEqual({ code: 0, signal: null });
    expect(css.output()).toMatch(/"signal":"SIGTERM".*stopping gracefully/);
  });

  test('the same SIGTERM sent to both processes (a supervisor signalling the whole group) is one graceful stop, not two signals', async () => {
    const css = await startManaged(t, { mode: 'css', env: { LOG_LEVEL: 'info' } });
    const exit = exitOf(css);
    for (const pid of processTree(css.child.pid ?? 0)) process.kill(pid, 'SIGTERM');
    expect(await exit).toEqual({ code: 0, signal: null });
    expect(css.output()).not.toMatch(/second signal/);
  });

  test('a restart request (exit code 75) reaches whoever started the launcher', async () => {
    const css = await startManaged(t, { mode: 'css' });
    const exit = exitOf(css);
    expect((await raw(css, 'POST', '/api/v1/shutdown?restart=true')).status).toBe(204);
    expect(await exit).toEqual({ code: 75, signal: null });
  });

  test('SIGKILL of the launcher alone ends the node too, and the root can be started again', async () => {
    const css = await startManaged(t, { mode: 'css' });
    const serving = css.servingPid();
    const exit = exitOf(css);
    css.child.kill('SIGKILL');
    expect(await exit).toEqual({ code: null, signal: 'SIGKILL' });
    await until('the node to end', () => !alive(serving));
    const again = await startManaged(t, { mode: 'css', root: css.root });
    expect((await raw(again, 'GET', '/api/v1/health', { auth: { user: css.admin!.appKey, pass: css.admin!.secret } })).status).toBe(200);
  });

  test('the node ended by a signal: the launcher ends by the same signal', async () => {
    const css = await startManaged(t, { mode: 'css' });
    const exit = exitOf(css);
    process.kill(css.servingPid(), 'SIGKILL');
    expect(await exit).toEqual({ code: null, signal: 'SIGKILL' });
  });
});

describe('executed as a file (`npx edgesync`, `./dist/cmd/edgesync.js`)', () => {
  test('the shebang gives node the settings: one process, no launcher', async () => {
    const css = await startManaged(t, { mode: 'css', exec: true });
    const pid = css.child.pid ?? 0;
    expect(processTree(pid)).toEqual([pid]);
    const { argv, env } = runtimeOf(pid);
    expect(env).toContain('MALLOC_MMAP_THRESHOLD_=131072');
    expect(argv).toContain('--initial-old-space-size=64');
    expect(argv).toContain('--max-semi-space-size=4');
    expect(env.some((e) => e.startsWith('EDGESYNC_LAUNCHED='))).toBe(false);
  });
});
