/**
 * Starts the reference binary (open-horizon/edge-sync-service, built outside this repo; see
 * docs/interop.md) as a CSS or an ESS on a loopback port, with its own persistence root, and
 * stops or kills it. Interop tests only: they run when EDGESYNC_REFERENCE_BIN names it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The reference binary named by EDGESYNC_REFERENCE_BIN, or null when unset or not executable (the suites then skip, saying so). */
export function referenceBin(): string | null {
  const bin = process.env.EDGESYNC_REFERENCE_BIN;
  if (bin === undefined || bin === '') return null;
  try {
    accessSync(bin, constants.X_OK);
    return bin;
  } catch {
    return null;
  }
}

/** A free loopback port: the reference refuses port 0, so the test picks one (and reuses it on a restart). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

export interface ReferenceStartOptions {
  mode: 'css' | 'ess';
  /** The reference's environment names, e.g. { ORG_ID: 'myorg', HTTP_CSS_PORT: '1234' }. */
  env?: Record<string, string>;
  /** Reuse a persistence root and port (restart scenarios); a fresh temp dir and a free port otherwise. */
  root?: string;
  port?: number;
}

export interface ReferenceProcess {
  child: ChildProcess;
  root: string;
  port: number;
  /** http://127.0.0.1:<port> (the reference listens `unsecure` here). */
  url: string;
  options: Required<Pick<ReferenceStartOptions, 'mode' | 'root' | 'port'>> & { env: Record<string, string> };
  output(): string;
  /** SIGTERM and wait for the exit. */
  stop(): Promise<void>;
  /** SIGKILL, no cleanup. */
  kill(): Promise<void>;
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/**
 * Starts the reference with the settings of the recorded traffic (`reference/traffic/README.md`):
 * an empty config file, dummy auth, bolt storage, `unsecure` on 127.0.0.1, sync over HTTP; plus
 * quick timers (polls every 0.1–1 s, resends and registration every second). Waits for its
 * "Listening on <port>" line; rejects with its output if it exits first.
 */
export async function startReference(bin: string, opts: ReferenceStartOptions): Promise<ReferenceProcess> {
  const root = opts.root ?? (await mkdtemp(join(tmpdir(), `edgesync-ref-${opts.mode}-`)));
  const port = opts.port ?? (await freePort());
  const conf = join(root, 'empty-sync.conf');
  await writeFile(conf, '');
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    NODE_TYPE: opts.mode === 'css' ? 'CSS' : 'ESS',
    AUTHENTICATION_HANDLER: 'dummy',
    STORAGE_PROVIDER: 'bolt',
    COMMUNICATION_PROTOCOL: 'http',
    LISTENING_TYPE: 'unsecure',
    LISTENING_ADDRESS: '127.0.0.1',
    UNSECURE_LISTENING_PORT: String(port),
    PERSISTENCE_ROOT_PATH: root,
    LOG_TRACE_DESTINATION: 'stdout',
    LOG_ROOT_PATH: join(root, 'log'),
    TRACE_ROOT_PATH: join(root, 'trace'),
    LOG_LEVEL: 'INFO',
    TRACE_LEVEL: 'ERROR',
    // Registration happens in the resend loop: every RESEND_INTERVAL seconds (default 10).
    RESEND_INTERVAL: '1',
    // The ESS's idle polls grow from HTTP_POLLING_INTERVAL/10 to HTTP_POLLING_INTERVAL seconds.
    HTTP_POLLING_INTERVAL: '1',
    ...opts.env,
  };
  const child = spawn(bin, ['-c', conf], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`reference ${opts.mode} did not start in 20 s:\n${out}`)), 20_000);
    const check = (): void => {
      if (out.includes(`Listening on ${port} for HTTP`)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', check);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`reference ${opts.mode} exited with ${code ?? signal}:\n${out}`));
    });
  });
  return {
    child,
    root,
    port,
    url: `http://127.0.0.1:${port}`,
    options: { mode: opts.mode, root, port, env: opts.env ?? {} },
    output: () => out,
    stop: async () => {
      child.kill('SIGTERM');
      await exited(child);
    },
    kill: async () => {
      child.kill('SIGKILL');
      await exited(child);
    },
  };
}

/**
 * Starts the reference on MQTT, again if it crashed at start: the binary built against paho.mqtt
 * 1.5 races its own connect handler (`onReconnect` subscribes through a client field set only
 * once Connect returns: a nil pointer in mqttCommunication.go, about one start in five). Not a
 * fault of the peer under test.
 */
export async function startReferenceOnMqtt(bin: string, opts: ReferenceStartOptions): Promise<ReferenceProcess> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startReference(bin, opts);
    } catch (e) {
      if (attempt >= 5 || !String(e).includes('mqttCommunication.go')) throw e;
    }
  }
}
