/**
 * One process per data directory. Two nodes on one PERSISTENCE_ROOT_PATH would both start,
 * share the SQLite file and the data files, and deliver late or wrongly (each polls, acks and
 * cleans up behind the other's back). The first takes `<root>/edgesync.lock`, holding its pid;
 * a second refuses to start, naming the directory and that pid. A lock whose process is gone
 * (a crash, a SIGKILL, a container restarted with the same volume) is taken over.
 */
import { hostname } from 'node:os';
import { link, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { readFileSync, unlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** What a lock file holds, one JSON object. */
interface LockContent {
  pid: number;
  nodeType: string;
  host: string;
  startedAt: string;
}

/** Another live process holds the data directory. */
export class DataDirectoryLockedError extends Error {}

export interface DataLock {
  /** The lock file, e.g. `/var/edgesync/edgesync.lock`. */
  path: string;
  /** Whether a stale lock (of a process that is gone) was taken over, and its pid. */
  tookOverFrom: number | null;
  /** Removes the lock, if it is still ours. */
  release(): Promise<void>;
}

/** Lock files this process holds: a second node in one process (tests) is refused too. */
const heldHere = new Set<string>();

export function lockPath(root: string): string {
  return join(resolve(root), 'edgesync.lock');
}

function parse(text: string): LockContent | null {
  try {
    const v = JSON.parse(text) as Partial<LockContent>;
    return typeof v.pid === 'number' && Number.isSafeInteger(v.pid) && v.pid > 0 ? (v as LockContent) : null;
  } catch {
    return null;
  }
}

/**
 * Whether `pid` is a live process that may be an edgesync node. Our own pid is not (a
 * container's node is pid 1 on every start, so a lock left by the previous run names us); a
 * live pid whose command line (Linux) does not mention edgesync is a reused pid.
 */
function holderAlive(pid: number): boolean {
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    // EPERM: it exists, under another user.
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('edgesync');
  } catch {
    // No /proc (not Linux), or no access: trust the pid.
    return true;
  }
}

async function readLock(path: string): Promise<LockContent | null | 'absent'> {
  try {
    return parse(await readFile(path, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw e;
  }
}

/**
 * Takes the lock of `root` for this process.
 * @throws DataDirectoryLockedError when a live process holds it
 */
export async function acquireDataLock(root: string, nodeType: string): Promise<DataLock> {
  const path = lockPath(root);
  const dir = resolve(root);
  const mine: LockContent = { pid: process.pid, nodeType, host: hostname(), startedAt: new Date().toISOString() };
  const text = `${JSON.stringify(mine)}\n`;
  if (heldHere.has(path)) throw new DataDirectoryLockedError(`the data directory ${dir} is in use by another node of this process (pid ${process.pid}) (lock file ${path})`);
  // Written aside, then linked into place: link fails if a lock exists, and nobody ever reads a half-written one.
  const staged = `${path}.${process.pid}`;
  await writeFile(staged, text);
  let tookOverFrom: number | null = null;
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await link(staged, path);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 5) throw e;
      }
      const held = await readLock(path);
      if (held === 'absent') continue;
      if (held !== null && holderAlive(held.pid)) {
        throw new DataDirectoryLockedError(
          `the data directory ${dir} is in use by another edgesync process (pid ${held.pid}, ${held.nodeType} on ${held.host}, started ${held.startedAt}); ` +
            `stop that process, or give this one another PERSISTENCE_ROOT_PATH (lock file ${path})`,
        );
      }
      // Stale: moved aside (only one of two starting processes gets it), then checked to be the one read.
      const aside = `${path}.stale.${process.pid}`;
      try {
        await rename(path, aside);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw e;
      }
      const moved = await readLock(aside);
      if (moved !== 'absent' && moved !== null && held !== null && moved.pid !== held.pid) {
        // Another starter took the stale lock meanwhile: put its lock back and let the loop see it.
        await link(aside, path).catch(() => undefined);
      } else {
        tookOverFrom = held?.pid ?? 0;
      }
      await unlink(aside).catch(() => undefined);
    }
  } finally {
    await unlink(staged).catch(() => undefined);
  }

  heldHere.add(path);
  let released = false;
  // A process that exits without stop() (a second signal, an uncaught error) leaves no lock behind.
  const onExit = (): void => {
    if (released) return;
    try {
      if (parse(readFileSync(path, 'utf8'))?.pid === process.pid) unlinkSync(path);
    } catch {
      // Gone already.
    }
  };
  process.once('exit', onExit);
  return {
    path,
    tookOverFrom,
    async release(): Promise<void> {
      if (released) return;
      released = true;
      heldHere.delete(path);
      process.removeListener('exit', onExit);
      const held = await readLock(path).catch(() => null);
      if (held !== 'absent' && held?.pid === process.pid) await unlink(path).catch(() => undefined);
    },
  };
}
