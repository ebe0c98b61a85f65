/**
 * A real mosquitto broker for the MQTT tests: its own config file in a temp dir, a random free
 * loopback port (and a TLS one when asked), users hashed into a password file, an ACL file, and
 * a stop / restart (same ports, as a broker restart) / kill -9. Integration tests only.
 *
 * Debian installs the broker as /usr/sbin/mosquitto, which is not on a non-root PATH: we look
 * there first. Tests that need it check `mosquittoAvailable()` and skip visibly without it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { pbkdf2Sync, randomBytes } from 'node:crypto';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { firstExecutable } from './executables.js';

/** Where the broker may be, in order: Debian's path first, then the usual others. */
const CANDIDATES = ['/usr/sbin/mosquitto', '/usr/local/sbin/mosquitto', '/usr/bin/mosquitto', '/usr/local/bin/mosquitto'];

/** The broker's path (EDGESYNC_TEST_MOSQUITTO overrides), or null when there is none. */
export function mosquittoPath(): string | null {
  const override = process.env.EDGESYNC_TEST_MOSQUITTO;
  const list = override !== undefined && override !== '' ? [override] : CANDIDATES;
  return firstExecutable(list);
}

/** Whether a mosquitto broker can be started here. */
export function mosquittoAvailable(): boolean {
  return mosquittoPath() !== null;
}

/** Why MQTT-over-mosquitto tests are skipped on this machine, for their visible skip. */
export const MOSQUITTO_MISSING = 'mosquitto not installed (apt-get install mosquitto, or set EDGESYNC_TEST_MOSQUITTO to its binary)';

export interface MosquittoUser {
  user: string;
  password: string;
}

export interface MosquittoOptions {
  /** The plain listener's port; a random free one unless given. */
  port?: number;
  /** Users and passwords: anonymous clients are refused once any is given. */
  users?: MosquittoUser[];
  /** A password file already in mosquitto's format (hashed); also turns anonymous access off. */
  passwordFile?: string;
  /** The ACL file's text (`user`, `topic`, `pattern` lines: mosquitto.conf(5)). */
  acl?: string;
  /** A second listener with TLS on a random free port. */
  tls?: { caFile: string; certFile: string; keyFile: string; requireCertificate?: boolean };
  /** The broker's max_packet_size in bytes (0 or unset: mosquitto's own limit). */
  maxPacketSize?: number;
}

export interface Mosquitto {
  port: number;
  tlsPort?: number;
  /** mqtt://127.0.0.1:<port> */
  url: string;
  /** SIGTERM (SIGKILL after 5 s), waiting until it is gone; then its temp dir is removed. */
  stop(): Promise<void>;
  /** Stop and start again on the same ports with the same config (a broker restart). */
  restart(): Promise<void>;
  /** SIGKILL, waiting until it is gone; `restart()` starts it again. */
  kill(): Promise<void>;
  /** Everything the broker wrote so far, across restarts. */
  log(): string;
  /** The broker's process id now (null while it is stopped or killed). */
  pid(): number | null;
  /**
   * Adds users (or changes their passwords) and makes the running broker read its password file
   * again (SIGHUP), as an operator does when a node joins. Only for a broker started with `users`.
   */
  addUsers(users: MosquittoUser[]): Promise<void>;
  /** Replaces the ACL file's text and makes the running broker read it (SIGHUP). Only for a broker started with `acl`. */
  setAcl(acl: string): Promise<void>;
}

/** A random port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * A password line as mosquitto 2.0 writes it (`mosquitto_passwd`): `$7$` is PBKDF2-SHA512 with
 * 101 iterations, a 12-byte salt and a 64-byte key, both base64. Done here so the tests need no
 * `mosquitto_passwd` binary (Debian ships it separately from the broker on some releases).
 */
export function passwordLine(u: MosquittoUser): string {
  const iterations = 101;
  const salt = randomBytes(12);
  const key = pbkdf2Sync(u.password, salt, iterations, 64, 'sha512');
  return `${u.user}:$7$${iterations}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** Whether something accepts TCP connections on 127.0.0.1:port now. */
export function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Starts a broker and waits until its listeners accept connections. */
export async function startMosquitto(opts: MosquittoOptions = {}): Promise<Mosquitto> {
  const bin = mosquittoPath();
  if (bin === null) throw new Error(MOSQUITTO_MISSING);
  const dir = await mkdtemp(join(tmpdir(), 'edgesync-mosquitto-'));
  const port = opts.port ?? (await freePort());
  const tlsPort = opts.tls !== undefined ? await freePort() : undefined;

  let passwordFile = opts.passwordFile;
  const users = new Map<string, string>();
  const writeUsers = async (file: string): Promise<void> => {
    await writeFile(file, [...users].map(([user, password]) => passwordLine({ user, password }) + '\n').join(''), { mode: 0o600 });
  };
  if (opts.users !== undefined) {
    passwordFile = join(dir, 'passwords');
    for (const u of opts.users) users.set(u.user, u.password);
    await writeUsers(passwordFile);
  }
  const lines = [
    // As root, mosquitto would drop to user "mosquitto", who cannot read our 0700 temp dir.
    `user ${userInfo().username}`,
    'persistence false',
    // As in production advice (README): small MQTT messages must not wait for Nagle.
    'set_tcp_nodelay true',
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    'log_type notice',
    'log_type information',
    'connection_messages true',
    `allow_anonymous ${passwordFile === undefined ? 'true' : 'false'}`,
    ...(passwordFile !== undefined ? [`password_file ${passwordFile}`] : []),
    ...(opts.maxPacketSize !== undefined && opts.maxPacketSize > 0 ? [`max_packet_size ${opts.maxPacketSize}`] : []),
  ];
  const aclFile = join(dir, 'acl');
  if (opts.acl !== undefined) {
    await writeFile(aclFile, opts.acl, { mode: 0o600 });
    lines.push(`acl_file ${aclFile}`);
  }
  lines.push(`listener ${port} 127.0.0.1`);
  if (opts.tls !== undefined && tlsPort !== undefined) {
    lines.push(`listener ${tlsPort} 127.0.0.1`, `cafile ${opts.tls.caFile}`, `certfile ${opts.tls.certFile}`, `keyfile ${opts.tls.keyFile}`);
    if (opts.tls.requireCertificate === true) lines.push('require_certificate true');
  }
  const conf = join(dir, 'mosquitto.conf');
  await writeFile(conf, lines.join('\n') + '\n');

  let out = '';
  let child: ChildProcess | null = null;

  const launch = async (): Promise<void> => {
    // A port just released may still be held for a moment: a few tries before giving up.
    for (let attempt = 0; ; attempt++) {
      const c = spawn(bin, ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
      c.stdout?.on('data', (d: Buffer) => (out += d.toString()));
      c.stderr?.on('data', (d: Buffer) => (out += d.toString()));
      const deadline = Date.now() + 10_000;
      for (;;) {
        if (c.exitCode !== null || c.signalCode !== null) break;
        const up = (await accepts(port)) && (tlsPort === undefined || (await accepts(tlsPort)));
        // The port may be answered by someone else: only a live broker of ours counts.
        if (up && c.exitCode === null && c.signalCode === null) {
          child = c;
          return;
        }
        if (Date.now() > deadline) {
          c.kill('SIGKILL');
          await exited(c);
          throw new Error(`mosquitto did not listen on ${port} in 10 s:\n${out}`);
        }
        await new Promise((r) => setTimeout(r, 25));
      }
      if (attempt >= 20) throw new Error(`mosquitto exited with ${c.exitCode}:\n${out}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  };

  const halt = async (signal: NodeJS.Signals): Promise<void> => {
    const c = child;
    child = null;
    if (c === null) return;
    c.kill(signal);
    const timer = signal === 'SIGKILL' ? undefined : setTimeout(() => c.kill('SIGKILL'), 5_000);
    await exited(c);
    if (timer !== undefined) clearTimeout(timer);
  };

  /** SIGHUP, and wait until mosquitto says it read its files again. */
  const reload = async (): Promise<void> => {
    const from = out.length;
    child?.kill('SIGHUP');
    const deadline = Date.now() + 5_000;
    while (!/Reloading config/i.test(out.slice(from))) {
      if (Date.now() > deadline) throw new Error(`mosquitto did not reload its config in 5 s:\n${out.slice(from)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };

  await launch();
  return {
    port,
    ...(tlsPort !== undefined ? { tlsPort } : {}),
    url: `mqtt://127.0.0.1:${port}`,
    stop: async () => {
      await halt('SIGTERM');
      await rm(dir, { recursive: true, force: true });
    },
    restart: async () => {
      await halt('SIGTERM');
      await launch();
    },
    kill: () => halt('SIGKILL'),
    log: () => out,
    pid: () => child?.pid ?? null,
    addUsers: async (more) => {
      if (opts.users === undefined || passwordFile === undefined) throw new Error('addUsers needs a broker started with users');
      for (const u of more) users.set(u.user, u.password);
      await writeUsers(passwordFile);
      await reload();
    },
    setAcl: async (acl) => {
      if (opts.acl === undefined) throw new Error('setAcl needs a broker started with an acl');
      await writeFile(aclFile, acl, { mode: 0o600 });
      await reload();
    },
  };
}
