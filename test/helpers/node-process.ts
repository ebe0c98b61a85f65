/**
 * Starts the real `edgesync` binary (dist/, built by `npm test` before jest runs) on a random
 * loopback port with its own temp directory, and stops it. Integration tests only.
 *
 * It runs `node dist/cmd/edgesync.js`, as a container's CMD would: the bin then starts itself
 * again with its runtime settings (ADR 11), so `child` is that launcher and the node is its child.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SyncServiceClient } from '../../sdk/index.js';

export const BIN = join(process.cwd(), 'dist', 'cmd', 'edgesync.js');

export interface StartOptions {
  mode: 'css' | 'ess';
  /** Extra environment (reference names), e.g. { ORG_ID: 'org1' }. */
  env?: Record<string, string>;
  /** Extra command-line flags. */
  args?: string[];
  /** Reuse a persistence root (restart scenarios); a fresh temp dir otherwise. */
  root?: string;
  /** Execute the bin file itself (its shebang runs node), as `npx edgesync` does, instead of `node <bin>`. */
  exec?: boolean;
}

export interface RunningProcess {
  child: ChildProcess;
  root: string;
  /** First URL the node printed, e.g. http://127.0.0.1:41234 or unix:/tmp/x.sock */
  url: string;
  /** Sync-admin credentials printed on first start (null when the root was reused). */
  admin: { appKey: string; secret: string } | null;
  output(): string;
  /** SIGTERM and wait for the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL to the launcher and the node at once (as a container's end does), no cleanup; resolves once both are gone. */
  kill(): Promise<void>;
  /** The pid of the process that serves (the launcher's child, or the launcher itself when it started none). */
  servingPid(): number;
  /** An SDK client for this node as the sync admin (org for a CSS). */
  client(opts?: { orgID?: string; appKey?: string; appSecret?: string }): Promise<SyncServiceClient>;
}

/** `pid` and its descendants, parents first (Linux /proc). */
export function processTree(pid: number): number[] {
  let children: number[] = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter((x) => x !== '').map(Number);
  } catch {
    // Gone already.
  }
  return [pid, ...children.flatMap(processTree)];
}

/** Whether a process is gone (or a zombie: it holds no files or locks any more). */
function gone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

/** Starts a node and waits until it prints its URL (or exits, which rejects with its output). */
export async function startNode(opts: StartOptions): Promise<RunningProcess> {
  const root = opts.root ?? (await mkdtemp(join(tmpdir(), `edgesync-${opts.mode}-`)));
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    PERSISTENCE_ROOT_PATH: root,
    UNSECURE_LISTENING_PORT: '0',
    SECURE_LISTENING_PORT: '0',
    LOG_LEVEL: 'warning',
    ...opts.env,
  };
  const args = [opts.mode, ...(opts.args ?? [])];
  const child = spawn(opts.exec === true ? BIN : process.execPath, opts.exec === true ? args : [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node did not start in 20 s:\n${out}`)), 20_000);
    const check = (): void => {
      const m = /API:\s+(\S+)\/api\/v1/.exec(out);
      if (m?.[1] !== undefined) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout?.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`node exited with ${code}:\n${out}`));
    });
  });
  const user = /user:\s+(\S+)/.exec(out);
  const pass = /password:\s+(\S+)/.exec(out);
  const admin = user?.[1] !== undefined && pass?.[1] !== undefined ? { appKey: user[1], secret: pass[1] } : null;
  const proc: RunningProcess = {
    child,
    root,
    url,
    admin,
    output: () => out,
    stop: async () => {
      child.kill('SIGTERM');
      return exited(child);
    },
    kill: async () => {
      const tree = processTree(child.pid ?? 0);
      for (const pid of tree) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
      await exited(child);
      while (!tree.every(gone)) await new Promise((r) => setTimeout(r, 10));
    },
    servingPid: () => {
      const tree = processTree(child.pid ?? 0);
      return tree[tree.length - 1] ?? 0;
    },
    client: async (c = {}) => {
      const isUnix = url.startsWith('unix:');
      const ca = url.startsWith('https:') ? await readFile(join(root, 'sync', 'certs', 'cert.pem')) : undefined;
      return new SyncServiceClient({
        ...(isUnix ? { socketPath: url.slice('unix:'.length) } : { url }),
        ...(ca ? { ca } : {}),
        appKey: c.appKey ?? admin?.appKey ?? 'admin',
        appSecret: c.appSecret ?? admin?.secret ?? '',
        ...(c.orgID !== undefined ? { orgID: c.orgID } : {}),
      });
    },
  };
  return proc;
}

/** Teardown in reverse order of setup, run by afterAll. */
export class Teardown {
  private readonly steps: (() => Promise<unknown>)[] = [];
  add(step: () => Promise<unknown>): void {
    this.steps.push(step);
  }
  async run(): Promise<void> {
    while (this.steps.length > 0) await this.steps.pop()?.();
  }
}

/** A fresh temp directory (`edgesync-<prefix>-…`), removed at teardown. */
export async function tempRoot(t: Teardown, prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `edgesync-${prefix}-`));
  t.add(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A node stopped and its directory removed at teardown. */
export async function startManaged(t: Teardown, opts: StartOptions): Promise<RunningProcess> {
  const node = await startNode(opts);
  t.add(() => rm(node.root, { recursive: true, force: true }));
  t.add(() => node.stop());
  return node;
}

/** A raw request with Basic auth, for wire details the SDK hides (status codes, headers, bodies). */
export async function raw(
  node: RunningProcess,
  method: string,
  path: string,
  opts: { body?: string | Buffer; headers?: Record<string, string>; auth?: { user: string; pass: string } | null } = {},
): Promise<{ status: number; headers: Headers; text: string }> {
  const auth = opts.auth === undefined ? (node.admin ? { user: node.admin.appKey, pass: node.admin.secret } : null) : opts.auth;
  const headers: Record<string, string> = { ...opts.headers };
  if (auth) headers.authorization = `Basic ${Buffer.from(`${auth.user}:${auth.pass}`).toString('base64')}`;
  const res = await fetch(node.url + path, { method, headers, redirect: 'manual', ...(opts.body !== undefined ? { body: opts.body } : {}) });
  return { status: res.status, headers: res.headers, text: await res.text() };
}
