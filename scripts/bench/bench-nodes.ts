/**
 * What the benchmarks share: starting the real bin in a temp dir on random loopback ports,
 * stopping it, cleaning up on errors and signals, and waiting with a deadline.
 *
 * EDGESYNC_BENCH_START says how a node is started: `node` (the default) runs `node <bin>`, as a
 * container's CMD does, so the bin's launcher starts the node with its runtime settings (ADR 11);
 * `exec` executes the bin file, whose shebang gives node the settings (as `npx edgesync` does).
 * Either way memory and CPU are read from the process that serves (`BenchNode.pid`).
 * EDGESYNC_BENCH_NODE_FLAGS (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`) runs the nodes under
 * node with those flags and the shebang's settings, for profiling.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { createWriteStream, readFileSync, rmSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SyncServiceClient } from '../../sdk/index.js';

export const BIN = join(process.cwd(), 'dist', 'cmd', 'edgesync.js');

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
export const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;
export const round = (x: number, digits = 1): number => +x.toFixed(digits);

/** Polls `probe` until `done`, or throws once `deadline` (a Date.now() value) has passed. */
export async function until<T>(what: string, deadline: number, everyMs: number, probe: () => Promise<T>, done: (v: T) => boolean): Promise<T> {
  for (;;) {
    const v = await probe();
    if (done(v)) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not done before the deadline (last: ${JSON.stringify(v)})`);
    await sleep(everyMs);
  }
}

export interface BenchNode {
  child: ChildProcess;
  /** The process that serves: the launcher's child when `child` is the bin's launcher, else `child`. */
  pid: number;
  root: string;
  url: string;
  user: string;
  secret: string;
  /** The node's self-signed certificate, when its first URL is HTTPS (an ESS's). */
  ca?: Buffer;
}

/** Every node and temp dir still alive, for the cleanup on errors and signals. */
const liveNodes = new Set<BenchNode>();
const liveDirs = new Set<string>();

/**
 * Last resort on SIGINT/SIGTERM: kills what the bench started and removes its dirs,
 * synchronously, then lets the signal end the process the default way.
 */
export function cleanUpOnSignals(bench: string): void {
  const onSignal = (sig: NodeJS.Signals): void => {
    for (const n of liveNodes) n.child.kill('SIGKILL');
    for (const d of [...liveDirs, ...[...liveNodes].map((n) => n.root)]) rmSync(d, { recursive: true, force: true });
    process.stderr.write(`${bench}: ${sig}, cleaned up\n`);
    process.kill(process.pid, sig);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
}

export async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  liveDirs.add(dir);
  return dir;
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  liveDirs.delete(dir);
}

/**
 * The environment and node flags the bin's shebang (`#!/usr/bin/env -S VAR=value … node
 * --flag …`) runs node with, so that a bench running node directly measures the same program.
 */
function binShebang(): { env: Record<string, string>; flags: string[] } {
  const words = (readFileSync(BIN, 'utf8').split('\n', 1)[0] ?? '').split(/\s+/);
  const node = words.indexOf('node');
  const env = Object.fromEntries(words.slice(0, node).flatMap((w) => (/^[A-Z_]+=/.test(w) ? [w.split('=', 2) as [string, string]] : [])));
  return { env, flags: node < 0 ? [] : words.slice(node + 1) };
}

/** Runs the bin in a temp dir and waits for its API URL and its generated admin credentials. */
export async function startNode(mode: 'css' | 'ess', env: Record<string, string>, nodes: BenchNode[]): Promise<BenchNode> {
  const root = await tempDir(`edgesync-bench-${mode}-`);
  const flags = (process.env.EDGESYNC_BENCH_NODE_FLAGS ?? '').split(' ').filter((f) => f !== '');
  // With flags, node is run directly, with the environment and node flags of the bin's shebang.
  const shebang = binShebang();
  const start = process.env.EDGESYNC_BENCH_START ?? 'node';
  if (start !== 'node' && start !== 'exec') throw new Error(`EDGESYNC_BENCH_START must be node or exec, not ${start}`);
  const [command, args] =
    flags.length > 0 ? [process.execPath, [...shebang.flags, ...flags, BIN, mode]] : start === 'exec' ? [BIN, [mode]] : [process.execPath, [BIN, mode]];
  const child = spawn(command, args, {
    env: { PATH: process.env.PATH ?? '', ...(flags.length > 0 ? shebang.env : {}), PERSISTENCE_ROOT_PATH: root, UNSECURE_LISTENING_PORT: '0', SECURE_LISTENING_PORT: '0', LOG_LEVEL: 'warning', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const node: BenchNode = { child, pid: child.pid ?? 0, root, url: '', user: '', secret: '' };
  liveNodes.add(node);
  liveDirs.delete(root);
  nodes.push(node);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
    process.stderr.write(d);
  });
  node.url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${mode} did not start in 30 s:\n${out}`)), 30_000);
    const check = (): void => {
      const m = /API:\s+(\S+)\/api\/v1/.exec(out);
      if (m?.[1] !== undefined && /password:\s+\S+/.test(out)) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout?.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${mode} exited with ${code}:\n${out}`));
    });
  });
  if (!/^https?:\/\/(127\.0\.0\.1|localhost|\[::1\])[:/]/.test(node.url)) throw new Error(`${mode} is not on loopback: ${node.url}`);
  node.pid = servingPid(child.pid ?? 0);
  node.user = /user:\s+(\S+)/.exec(out)?.[1] ?? 'admin';
  node.secret = /password:\s+(\S+)/.exec(out)?.[1] ?? '';
  if (node.url.startsWith('https:')) node.ca = await readFile(join(root, 'sync', 'certs', 'cert.pem'));
  return node;
}

/** The youngest descendant of `pid` (the bin's launcher has one child, the node), or `pid` itself. */
export function servingPid(pid: number): number {
  try {
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter((x) => x !== '');
    return children.length > 0 ? servingPid(Number(children[0])) : pid;
  } catch {
    return pid;
  }
}

/** SIGTERM (SIGKILL after 10 s), then removes its dir. */
export async function stopNode(node: BenchNode): Promise<void> {
  const { child } = node;
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
  await rm(node.root, { recursive: true, force: true });
  liveNodes.delete(node);
}

/** SDK clients as each node's admin, all closed together at the end of a scenario. */
export function adminClients(): { client(node: BenchNode, orgID?: string): SyncServiceClient; closeAll(): void } {
  const clients: SyncServiceClient[] = [];
  return {
    client(node, orgID) {
      const c = new SyncServiceClient({ url: node.url, appKey: node.user, appSecret: node.secret, ...(node.ca ? { ca: node.ca } : {}), ...(orgID !== undefined ? { orgID } : {}) });
      clients.push(c);
      return c;
    },
    closeAll() {
      for (const c of clients) c.close();
    },
  };
}

/**
 * A CSS with org `org`, and one ESS per id of `ids` (type `destType`, each with its own
 * `edgenode` user on the CSS, started one after another: start-up is CPU-bound and the machine
 * has 2 cores), once the CSS lists every one of them as registered.
 */
export async function startCssWithEsses(
  nodes: BenchNode[],
  client: (node: BenchNode, orgID?: string) => SyncServiceClient,
  opts: { org: string; destType: string; ids: readonly string[]; essEnv?: Record<string, string> },
): Promise<{ css: BenchNode; esses: BenchNode[] }> {
  const { org, destType, ids } = opts;
  const css = await startNode('css', {}, nodes);
  const onCss = client(css, org);
  await onCss.putOrganization({ orgID: org });
  for (const id of ids) {
    await promisify(execFile)(process.execPath, [BIN, 'users', 'add', `${org}/${destType}/${id}`, '--type', 'edgenode', '--org', org, '--username', `${destType}/${id}`, '--secret', 's', '--persistence-root-path', css.root], { timeout: 30_000 });
  }
  const port = new URL(css.url).port;
  const esses: BenchNode[] = [];
  for (const id of ids) {
    const env = { ORG_ID: org, DESTINATION_TYPE: destType, DESTINATION_ID: id, HTTP_CSS_HOST: '127.0.0.1', HTTP_CSS_PORT: port, HTTP_CSS_USER: `${org}/${destType}/${id}`, HTTP_CSS_PASSWORD: 's' };
    esses.push(await startNode('ess', { ...env, ...opts.essEnv }, nodes));
  }
  await until(
    'registration of every ESS',
    Date.now() + 120_000,
    100,
    () => onCss.getDestinations(),
    (d) => ids.every((id) => d.some((x) => x.destinationType === destType && x.destinationID === id)),
  );
  return { css, esses };
}

/** USER_HZ of /proc/<pid>/stat (100 on Linux). */
const CLOCK_TICKS = 100;

/** CPU seconds (user + system, all threads) a process has used so far, from /proc/<pid>/stat. */
export async function cpuSeconds(pid: number | undefined): Promise<number> {
  const stat = await readFile(`/proc/${pid ?? 0}/stat`, 'utf8');
  // Fields after the command's closing parenthesis; utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** VmHWM (the peak) or VmRSS (now) of a process, from /proc/<pid>/status, in MB (1e6 bytes). */
export async function rssMB(pid: number | undefined, field: 'VmHWM' | 'VmRSS' = 'VmHWM'): Promise<number> {
  const status = await readFile(`/proc/${pid ?? 0}/status`, 'utf8');
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(status);
  return m?.[1] !== undefined ? round((Number(m[1]) * 1024) / 1e6) : NaN;
}

/** Writes `size` random bytes to `path` 1 MiB at a time; returns their SHA-256 (hex). */
export async function writeRandomFile(path: string, size: number): Promise<string> {
  const hash = createHash('sha256');
  const out = createWriteStream(path);
  const done = new Promise<void>((resolve, reject) => {
    out.once('finish', resolve);
    out.once('error', reject);
  });
  for (let written = 0; written < size; ) {
    const block = randomFillSync(Buffer.allocUnsafe(Math.min(1024 * 1024, size - written)));
    hash.update(block);
    written += block.length;
    if (!out.write(block)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  out.end();
  await done;
  return hash.digest('hex');
}
