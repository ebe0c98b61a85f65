/**
 * A real FerretDB (a MongoDB-wire server over SQLite) for the Mongo store's tests: a temp dir
 * for its SQLite files, a random free loopback port, stopped and removed at the end.
 *
 * `.ci/run` installs it with `go install` into ~/.cache/edgesync-ci/bin; EDGESYNC_TEST_FERRETDB
 * names another binary. Without one (and without EDGESYNC_TEST_MONGO_URL naming a server),
 * the Mongo suites skip visibly.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { freePort } from './mosquitto.js';

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
  for (const p of candidates) {
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // Not there; try the next.
    }
  }
  return null;
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
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Starts FerretDB on a random loopback port; resolves once it accepts connections. */
export async function startFerretDb(): Promise<FerretDb> {
  const bin = ferretdbPath();
  if (bin === null) throw new Error(MONGO_MISSING);
  const dir = await mkdtemp(join(tmpdir(), 'edgesync-ferretdb-'));
  const port = await freePort();
  let output = '';
  const child = spawn(
    bin,
    ['--handler=sqlite', `--sqlite-url=file:${dir}/`, `--listen-addr=127.0.0.1:${port}`, '--telemetry=disable', '--state-dir=-', '--log-level=warn', '--debug-addr=-'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr.on('data', (b: Buffer) => (output += b.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let gone = false;
  void exited.then(() => (gone = true));

  const stop = async (): Promise<void> => {
    if (!gone) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + 20_000;
  while (!(await accepts(port))) {
    if (gone || Date.now() > deadline) {
      await stop();
      throw new Error(`FerretDB did not start on port ${port}:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { url: `mongodb://127.0.0.1:${port}/`, stop, log: () => output };
}
