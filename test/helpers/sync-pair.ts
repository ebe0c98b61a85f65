/**
 * A CSS and an ESS syncing with it over HTTP, on the real binaries (see node-process.ts), and
 * what the sync integration tests do with them: poll until something holds, credentials of an
 * ESS on the CSS, the ESS's environment. Integration tests only.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { SyncServiceClient } from '../../sdk/index.js';
import { BIN, startManaged, type RunningProcess, type Teardown } from './node-process.js';

const run = promisify(execFile);

/** The organization the CSS of a pair serves and its ESS belongs to. */
export const ORG = 'org1';

/** Polls `probe` every 200 ms until `done`; after `deadlineMs` it throws with what the last probe saw (and the tail of `log`, if given). */
export async function eventually<T>(what: string, probe: () => Promise<T>, done: (v: T) => boolean, deadlineMs: number, log?: () => string): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const v = await probe();
    if (done(v)) return v;
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(v)} after ${deadlineMs} ms${log ? `\nlog:\n${log().slice(-6000)}` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** `eventually` with the deadline left out. */
export type Eventually = <T>(what: string, probe: () => Promise<T>, done: (v: T) => boolean, log?: () => string) => Promise<T>;

/** `eventually` bound to one deadline, e.g. `const eventually = eventuallyWithin(DEADLINE_MS)`. */
export function eventuallyWithin(deadlineMs: number): Eventually {
  return (what, probe, done, log) => eventually(what, probe, done, deadlineMs, log);
}

/** What makes one ESS differ from another: its identity on the CSS and its sync settings. */
export interface EssOptions {
  /** Its destination ID (its type is `edge`); 'n1' unless given. */
  destinationID?: string;
  /** Its password on the CSS; 's' unless given. */
  secret?: string;
  /** EDGESYNC_REFERENCE_PROTOCOL; left unset (the default) unless given. */
  reference?: boolean;
  /** MAX_DATA_CHUNK_SIZE in bytes; left unset (the default) unless given. */
  chunkSize?: number;
  /** RESEND_INTERVAL in seconds: 1 (quick retries) unless given. */
  resendInterval?: number;
  /** More environment, e.g. { LOG_LEVEL: 'info' }. */
  env?: Record<string, string>;
}

/** The port a node listens on, from its URL. */
export function portOf(node: RunningProcess): string {
  return new URL(node.url).port;
}

/** The environment of an ESS edge/{destinationID} of org1 syncing with the CSS on `cssPort` over HTTP, polling every second. */
export function essEnv(cssPort: string, o: EssOptions = {}): Record<string, string> {
  const id = o.destinationID ?? 'n1';
  return {
    ORG_ID: ORG,
    DESTINATION_TYPE: 'edge',
    DESTINATION_ID: id,
    HTTP_CSS_HOST: '127.0.0.1',
    HTTP_CSS_PORT: cssPort,
    HTTP_CSS_USER: `${ORG}/edge/${id}`,
    HTTP_CSS_PASSWORD: o.secret ?? 's',
    HTTP_POLLING_INTERVAL: '1',
    RESEND_INTERVAL: String(o.resendInterval ?? 1),
    ...(o.chunkSize !== undefined ? { MAX_DATA_CHUNK_SIZE: String(o.chunkSize) } : {}),
    ...(o.reference !== undefined ? { EDGESYNC_REFERENCE_PROTOCOL: String(o.reference) } : {}),
    ...o.env,
  };
}

/** Adds the credentials of ESS edge/{destinationID} (an edgenode user of org1) to the CSS's database with the CLI. */
export async function addEssUser(css: RunningProcess, o: Pick<EssOptions, 'destinationID' | 'secret'> = {}): Promise<void> {
  const id = o.destinationID ?? 'n1';
  await run(process.execPath, [BIN, 'users', 'add', `${ORG}/edge/${id}`, '--type', 'edgenode', '--org', ORG, '--username', `edge/${id}`, '--secret', o.secret ?? 's', '--persistence-root-path', css.root]);
}

/** How to start a pair: the ESS's options, the CSS's environment, and the deadline of the wait for the registration. */
export interface PairOptions extends EssOptions {
  /** How long the ESS may take to register. */
  deadlineMs: number;
  /** More environment for the CSS, e.g. { LOG_LEVEL: 'info' }. */
  cssEnv?: Record<string, string>;
}

/** The two nodes of a pair and a client of each (the CSS's for org1). */
export interface Pair {
  css: RunningProcess;
  ess: RunningProcess;
  onCss: SyncServiceClient;
  onEss: SyncServiceClient;
}

/** A CSS with org1 and the ESS's credentials, and an ESS registered with it; all stopped and closed by `t`. */
export async function startPair(t: Teardown, o: PairOptions): Promise<Pair> {
  const css = await startManaged(t, { mode: 'css', env: o.cssEnv ?? {} });
  const onCss = await css.client({ orgID: ORG });
  t.add(() => Promise.resolve(onCss.close()));
  await onCss.putOrganization({ orgID: ORG });
  await addEssUser(css, o);
  const ess = await startManaged(t, { mode: 'ess', env: essEnv(portOf(css), o) });
  const onEss = await ess.client();
  t.add(() => Promise.resolve(onEss.close()));
  // The ESS registers on its own (retrying until the CSS picked the new user up).
  const id = o.destinationID ?? 'n1';
  await eventually(`registration of edge/${id}`, () => onCss.getDestinations(), (d) => d.some((x) => x.destinationType === 'edge' && x.destinationID === id), o.deadlineMs);
  return { css, ess, onCss, onEss };
}
