/**
 * The runtime settings edgesync's memory figures depend on, and the launcher that makes them
 * apply however the program is started (ADR 11). Imports only node built-ins: the launcher's
 * process stays small while it waits for the real one.
 *
 * - `MALLOC_MMAP_THRESHOLD_=131072` (glibc reads it at process start only): allocations of
 *   128 KiB or more get their own mapping and go back to the system when freed.
 * - `--initial-old-space-size=64` (V8 reads it when the heap is made): no full collection every
 *   50–80 ms while large data streams through.
 * - `--max-semi-space-size=4`: the young generation stops growing at 3 × 4 MiB instead of
 *   3 × 16 MiB. Streaming 1 GiB at 300 MiB/s grew it to the full 48 MiB, garbage sockets buffers
 *   that pushed an ESS's peak to 159–166 MB in some runs; with 4 MiB its peak stays 126–129 MB,
 *   and small-object throughput is the same (docs/benchmarks.md, issue #10).
 *
 * And one V8 setting that may change while the program runs, so the program sets it itself
 * (LIVE_V8_FLAGS), without the launcher.
 */
import { spawn } from 'node:child_process';
import { setFlagsFromString } from 'node:v8';

export const MALLOC_ENV = 'MALLOC_MMAP_THRESHOLD_';
export const MALLOC_VALUE = '131072';
/** Node flags, each `--name=value`; a flag the user gave (any value) counts as in effect. */
export const HEAP_FLAGS: readonly string[] = ['--initial-old-space-size=64', '--max-semi-space-size=4'];
/**
 * V8 flags read at each garbage collection, not only when the heap is made: the program sets
 * them in itself (applyLiveFlags), unless the user gave the flag either way.
 *
 * - `--no-concurrent-array-buffer-sweeping`: the buffers a collection finds dead are freed by
 *   that collection, on the main thread, not by a background task. While 1 GiB streams through
 *   an ESS, each 64 KiB read leaves two dead buffers (the socket's and the HTTP parser's copy),
 *   some 64 MB between two collections; on the 2-core bench machine, busy with other processes,
 *   the background task that frees them waited, and the dead buffers piled up: ESS peak RSS
 *   up to 161.6 MB (and once 176.6), where with this flag it stayed at 125–128 MB, with the
 *   same CPU time (docs/benchmarks.md, issue #11).
 */
export const LIVE_V8_FLAGS: readonly string[] = ['--no-concurrent-array-buffer-sweeping'];

/** A flag's name, as V8 matches it: without the dashes in front, `_` read as `-`, without a value or a `no-` negation. */
function flagName(flag: string): string {
  const name = flag.replace(/^-+/, '').replace(/=.*$/, '').replaceAll('_', '-');
  return name.startsWith('no-') ? name.slice(3) : name;
}

/** The LIVE_V8_FLAGS the user did not give, either way, on node's command line or in NODE_OPTIONS. */
export function liveFlagsToSet(env: NodeJS.ProcessEnv, execArgv: readonly string[]): string[] {
  const given = [...execArgv, ...(env.NODE_OPTIONS ?? '').split(/\s+/)].filter((a) => a.startsWith('--')).map(flagName);
  return LIVE_V8_FLAGS.filter((f) => !given.includes(flagName(f)));
}

/** Sets the LIVE_V8_FLAGS the user did not give in this process; before the program loads. */
export function applyLiveFlags(): void {
  for (const flag of liveFlagsToSet(process.env, process.execArgv)) setFlagsFromString(flag);
}

/** Set in the environment of the process the launcher starts; it is waiting on the other end of the IPC channel. */
export const LAUNCHED_ENV = 'EDGESYNC_LAUNCHED';

export interface MissingSettings {
  malloc: boolean;
  /** The HEAP_FLAGS not given, neither on node's command line nor in NODE_OPTIONS. */
  flags: string[];
}

/** The settings not in effect in this process (a value the user chose counts as in effect). */
export function missingSettings(env: NodeJS.ProcessEnv, execArgv: readonly string[]): MissingSettings {
  const given = (flag: string): boolean => {
    const name = flag.slice(0, flag.indexOf('='));
    return execArgv.some((a) => a.startsWith(name)) || (env.NODE_OPTIONS ?? '').includes(name);
  };
  return { malloc: env[MALLOC_ENV] === undefined, flags: HEAP_FLAGS.filter((f) => !given(f)) };
}

const RELAYED = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
type Relayed = (typeof RELAYED)[number];
interface SignalMessage {
  edgesyncSignal: Relayed;
}
const isSignalMessage = (m: unknown): m is SignalMessage =>
  typeof m === 'object' && m !== null && RELAYED.includes((m as { edgesyncSignal?: Relayed }).edgesyncSignal as Relayed);

/**
 * Runs this same script again under node with the missing settings, and lives only to pass on
 * signals and the exit. The child runs in its own session, so a terminal's Ctrl-C reaches it
 * once, through here; signals travel as IPC messages, so that the child can tell them from
 * the same signal sent to it directly as well (a supervisor signalling a whole cgroup).
 */
export function runLaunched(missing: MissingSettings): void {
  const script = process.argv[1] ?? '';
  const child = spawn(process.execPath, [...process.execArgv, ...missing.flags, script, ...process.argv.slice(2)], {
    env: { ...process.env, ...(missing.malloc ? { [MALLOC_ENV]: MALLOC_VALUE } : {}), [LAUNCHED_ENV]: '1' },
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    detached: true,
  });
  const relay = (signal: Relayed): void => {
    if (child.connected) child.send({ edgesyncSignal: signal } satisfies SignalMessage, (err) => err && child.kill(signal));
    else child.kill(signal);
  };
  const handlers = RELAYED.map((s) => [s, () => relay(s)] as const);
  for (const [s, h] of handlers) process.on(s, h);
  child.once('error', (err) => {
    process.stderr.write(`edgesync: cannot start ${process.execPath}: ${err.message}\n`);
    process.exit(1);
  });
  child.once('exit', (code, signal) => {
    for (const [s, h] of handlers) process.off(s, h);
    // Ended by a signal: end the same way, so that a supervisor sees what happened.
    if (signal !== null) process.kill(process.pid, signal);
    else process.exit(code ?? 1);
  });
}

/** Who handles relayed SIGINT/SIGTERM once the program has installed its handlers. */
let relayedHandler: ((signal: 'SIGINT' | 'SIGTERM') => void) | null = null;

/** Called by the program: relayed SIGINT/SIGTERM go to `handler` from now on. */
export function onRelayedSignal(handler: (signal: 'SIGINT' | 'SIGTERM') => void): void {
  relayedHandler = handler;
}

/** Whether this process was started by the launcher (which is waiting for it). */
export const launched = (): boolean => process.env[LAUNCHED_ENV] === '1' && process.channel !== undefined;

/**
 * In the launched process: end at once if the launcher is killed (SIGKILL leaves it no chance
 * to pass anything on; the channel closing is what tells), and take its relayed signals.
 */
export function attachToLauncher(): void {
  process.on('disconnect', () => process.kill(process.pid, 'SIGKILL'));
  process.on('message', (m: unknown) => {
    if (!isSignalMessage(m)) return;
    const signal = m.edgesyncSignal;
    // Before the program handles signals (or for SIGHUP, which it never does), the signal's
    // own default action, as if it had been sent here.
    if (relayedHandler !== null && signal !== 'SIGHUP') relayedHandler(signal);
    else process.kill(process.pid, signal);
  });
  // The channel must not keep the process alive once the program is done.
  process.channel?.unref();
}
