/**
 * A real FerretDB (a MongoDB-wire server over SQLite) for the Mongo store's tests: a temp dir
 * for its SQLite files, a random free loopback port, stopped and removed at the end.
 *
 * `.ci/run` installs it with `go install` into ~/.cache/edgesync-ci/bin; EDGESYNC_TEST_FERRETDB
 * names another binary. Without one (and without EDGESYNC_TEST_MONGO_URL naming a server),
 * the Mongo suites skip visibly.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { accepts, freePort } from './mosquitto.js';
import { firstExecutable } from './executables.js';

/** The binary's path, or null when there is none here. */
export function ferretdbPath(): string | null {
  const override = process.env.EDGESYNC_TEST_FERRETDB;
  const cache = process.env.XDG_CACHE_HOME !== undefined && process.env.XDG_CACHE_HOME !== '' ? process.env.XDG_CACHE_HOME : join(homedir(), '.cache');
  const candidates =
    override !== undefined && override !== ''
      ? [override]
      : [
          join(cache, 'edgesync-ci', 'bin', 'ferretdb'),
          ...(process.env.PATH ?? '').split(delimiter).filter((d) => d !== '').map((d) => join(d, 'ferretdb')),
          join(homedir(), 'go', 'bin', 'ferretdb'),
        ];
  return firstExecutable(candidates);
}

/** Why the Mongo suites are skipped on this machine, for their visible skip. */
export const MONGO_MISSING =
  'no MongoDB here: set EDGESYNC_TEST_MONGO_URL, or build FerretDB v1.24.2 as .ci/run does (or set EDGESYNC_TEST_FERRETDB to its binary)';

export interface FerretDb {
  /** mongodb://127.0.0.1:<port>/ */
  url: string;
  /** SIGTERM (SIGKILL after 5 s), waiting until it is gone; then its files are removed. */
  stop(): Promise<void>;
  /** What it wrote so far. */
  log(): string;
  /** An outage: kills the server (SIGKILL), keeping its files. */
  down(): Promise<void>;
  /** The end of the outage: the server again, on the same port with the same files. */
  up(): Promise<void>;
}

interface Launched {
  child: ReturnType<typeof spawn>;
  exited: Promise<void>;
  gone: () => boolean;
}

/** Starts FerretDB on a random loopback port; resolves once it accepts connections. */
export async function startFerretDb(): Promise<FerretDb> {
  const bin = ferretdbPath();
  if (bin === null) throw new Error(MONGO_MISSING);
  const dir = await mkdtemp(join(tmpdir(), 'edgesync-ferretdb-'));
  const port = await freePort();
  let output = '';

  const launch = (): Launched => {
    const child = spawn(
      bin,
      [
        '--handler=sqlite',
        `--sqlite-url=file:${dir}/`,
        `--listen-addr=127.0.0.1:${port}`,
        '--telemetry=disable',
        '--state-dir=-',
        '--log-level=warn',
        // Its debug listener defaults to 127.0.0.1:8088: two FerretDBs at once (parallel suites) would collide.
        '--debug-addr=-',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout?.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr?.on('data', (b: Buffer) => (output += b.toString()));
    let gone = false;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    void exited.then(() => (gone = true));
    return { child, exited, gone: () => gone };
  };

  const halt = async (p: Launched, signal: NodeJS.Signals): Promise<void> => {
    if (p.gone()) return;
    p.child.kill(signal);
    const timer = setTimeout(() => p.child.kill('SIGKILL'), 5000);
    await p.exited;
    clearTimeout(timer);
  };

  const ready = async (p: Launched): Promise<void> => {
    const deadline = Date.now() + 20_000;
    while (!(await accepts(port))) {
      if (p.gone() || Date.now() > deadline) {
        await halt(p, 'SIGKILL');
        throw new Error(`FerretDB did not start on port ${port}:\n${output}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  let current = launch();
  const stop = async (): Promise<void> => {
    await halt(current, 'SIGTERM');
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await ready(current);
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    url: `mongodb://127.0.0.1:${port}/`,
    stop,
    log: () => output,
    down: () => halt(current, 'SIGKILL'),
    up: async () => {
      if (!current.gone()) return;
      current = launch();
      await ready(current);
    },
  };
}
