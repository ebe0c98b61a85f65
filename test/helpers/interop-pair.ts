/**
 * A CSS and an ESS of different makes (one edgesync, one the reference binary) syncing over
 * HTTP on loopback, each behind one interface so that the interop scenarios do not care which is
 * which. Both use `dummy` auth, as the reference's own tests and the recorded traffic do, and the
 * apps log in as `admin@myorg` with an empty password, as the reference's clients do.
 * Interop tests only.
 */
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { SyncServiceClient } from '../../sdk/index.js';
import { startNode, type RunningProcess, type StartOptions, type Teardown } from './node-process.js';
import { startReference, type ReferenceProcess, type ReferenceStartOptions } from './reference-node.js';
import { eventually } from './sync-pair.js';

/** The organization, the ESS's identity, and the app user of every interop pair. */
export const ORG = 'myorg';
export const DEST_TYPE = 'edge';
export const DEST_ID = 'node1';
/** An org admin of myorg for dummy auth; the reference's clients send an empty password. */
export const APP_USER = { appKey: `admin@${ORG}`, appSecret: '' };

/**
 * The chunk size both CSSs put in the objects they publish (MAX_DATA_CHUNK_SIZE): 1 MiB, so
 * that large objects travel in many ranged requests and a kill lands mid-transfer.
 */
export const CHUNK = 1024 * 1024;

/** One node of a pair, whichever its make. */
export interface SyncNode {
  readonly make: 'edgesync' | 'reference';
  readonly mode: 'css' | 'ess';
  root(): string;
  /** Everything it printed since its last start. */
  output(): string;
  /** The app's REST client (org `myorg` on a CSS), made on first use, closed on kill/stop. */
  api(): Promise<SyncServiceClient>;
  /** SIGKILL and wait for the exit. */
  kill(): Promise<void>;
  /** Starts it again on the same root and port. */
  restart(): Promise<void>;
  stop(): Promise<void>;
  /** Sizes of the data files of downloads in progress (ESS only). */
  partialDownloads(): Promise<number[]>;
}

async function fileSizes(dir: string, name: (n: string) => boolean): Promise<number[]> {
  const sizes: number[] = [];
  for (const n of await readdir(dir).catch(() => [])) {
    if (name(n)) sizes.push(await stat(join(dir, n)).then((s) => s.size, () => 0));
  }
  return sizes;
}

abstract class BaseNode implements SyncNode {
  abstract readonly make: 'edgesync' | 'reference';
  #client: SyncServiceClient | null = null;
  constructor(readonly mode: 'css' | 'ess') {}
  abstract root(): string;
  abstract output(): string;
  abstract partialDownloads(): Promise<number[]>;
  protected abstract makeClient(): Promise<SyncServiceClient>;
  protected abstract doKill(): Promise<void>;
  protected abstract doStop(): Promise<void>;
  protected abstract doStart(): Promise<void>;

  async api(): Promise<SyncServiceClient> {
    this.#client ??= await this.makeClient();
    return this.#client;
  }
  #closeClient(): void {
    this.#client?.close();
    this.#client = null;
  }
  async kill(): Promise<void> {
    this.#closeClient();
    await this.doKill();
  }
  async stop(): Promise<void> {
    this.#closeClient();
    await this.doStop();
  }
  async restart(): Promise<void> {
    this.#closeClient();
    await this.doStart();
  }
}

/** Our binary (dist/), through node-process.ts. */
class EdgesyncNode extends BaseNode {
  readonly make = 'edgesync';
  constructor(
    private proc: RunningProcess,
    private readonly opts: StartOptions,
  ) {
    super(opts.mode);
  }
  static async start(opts: StartOptions): Promise<EdgesyncNode> {
    const proc = await startNode(opts);
    // A restart comes back on the same root and port (the ESS dials the CSS's port).
    const port = new URL(proc.url).port;
    const portVar = opts.mode === 'css' ? 'UNSECURE_LISTENING_PORT' : 'SECURE_LISTENING_PORT';
    return new EdgesyncNode(proc, { ...opts, root: proc.root, env: { ...opts.env, [portVar]: port } });
  }
  get url(): string {
    return this.proc.url;
  }
  root(): string {
    return this.proc.root;
  }
  output(): string {
    return this.proc.output();
  }
  partialDownloads(): Promise<number[]> {
    return fileSizes(join(this.proc.root, 'sync', 'data', 'staging'), () => true);
  }
  protected makeClient(): Promise<SyncServiceClient> {
    return this.proc.client({ ...APP_USER, ...(this.mode === 'css' ? { orgID: ORG } : {}) });
  }
  protected doKill(): Promise<void> {
    return this.proc.kill();
  }
  protected async doStop(): Promise<void> {
    await this.proc.stop();
  }
  protected async doStart(): Promise<void> {
    this.proc = await startNode(this.opts);
  }
}

/** The reference binary, through reference-node.ts. */
class ReferenceNode extends BaseNode {
  readonly make = 'reference';
  constructor(
    private proc: ReferenceProcess,
    private readonly bin: string,
  ) {
    super(proc.options.mode);
  }
  static async start(bin: string, opts: ReferenceStartOptions): Promise<ReferenceNode> {
    return new ReferenceNode(await startReference(bin, opts), bin);
  }
  get port(): number {
    return this.proc.port;
  }
  root(): string {
    return this.proc.root;
  }
  output(): string {
    return this.proc.output();
  }
  /** The reference writes a download to `sync/local/{org}-{type}-{id}.tmp`, renamed at the end. */
  partialDownloads(): Promise<number[]> {
    return fileSizes(join(this.proc.root, 'sync', 'local'), (n) => n.endsWith('.tmp'));
  }
  protected makeClient(): Promise<SyncServiceClient> {
    return Promise.resolve(new SyncServiceClient({ url: this.proc.url, ...APP_USER, ...(this.mode === 'css' ? { orgID: ORG } : {}) }));
  }
  protected doKill(): Promise<void> {
    return this.proc.kill();
  }
  protected doStop(): Promise<void> {
    return this.proc.stop();
  }
  protected async doStart(): Promise<void> {
    const { mode, root, port, env } = this.proc.options;
    this.proc = await startReference(this.bin, { mode, root, port, env });
  }
}

/** Settings every ESS of a pair gets, whichever its make (reference names). */
function essEnv(cssPort: string | number): Record<string, string> {
  return {
    ORG_ID: ORG,
    DESTINATION_TYPE: DEST_TYPE,
    DESTINATION_ID: DEST_ID,
    HTTP_CSS_HOST: '127.0.0.1',
    HTTP_CSS_PORT: String(cssPort),
    AUTHENTICATION_HANDLER: 'dummy',
    STORAGE_PROVIDER: 'bolt',
    COMMUNICATION_PROTOCOL: 'http',
    HTTP_POLLING_INTERVAL: '1',
    RESEND_INTERVAL: '1',
  };
}

export interface InteropPair {
  css: SyncNode;
  ess: SyncNode;
  /** What both printed, for failure messages. */
  logs(): string;
}

/**
 * The nodes of a pair as they start: teardown (registered before either starts) stops those that
 * started, the ESS first (it is the one that dials), then removes their roots.
 */
function manage(t: Teardown): { css?: SyncNode; ess?: SyncNode } {
  const nodes: { css?: SyncNode; ess?: SyncNode } = {};
  t.add(async () => {
    for (const n of [nodes.css, nodes.ess]) if (n) await rm(n.root(), { recursive: true, force: true });
  });
  t.add(async () => {
    for (const n of [nodes.ess, nodes.css]) if (n) await n.stop();
  });
  return nodes;
}

function logsOf(css: SyncNode, ess: SyncNode): () => string {
  return () => `--- CSS (${css.make}) ---\n${css.output().slice(-5000)}\n--- ESS (${ess.make}) ---\n${ess.output().slice(-5000)}`;
}

/** Waits until the CSS lists the ESS among its destinations (the ESS registers on its own). */
async function registered(pair: InteropPair, deadlineMs: number): Promise<void> {
  const onCss = await pair.css.api();
  await eventually(
    `registration of ${DEST_TYPE}/${DEST_ID}`,
    () => onCss.getDestinations().catch((e: unknown) => String(e)),
    (d) => Array.isArray(d) && d.some((x) => x.destinationType === DEST_TYPE && x.destinationID === DEST_ID),
    deadlineMs,
    pair.logs,
  );
}

/**
 * (a) The reference CSS (multi-org: no ORG_ID) and our ESS with its defaults toward it (no
 * EDGESYNC_REFERENCE_PROTOCOL: a drop-in ESS must work with a reference CSS as it is).
 */
export async function startReferenceCssOurEss(t: Teardown, bin: string, deadlineMs: number): Promise<InteropPair> {
  const nodes = manage(t);
  const css = (nodes.css = await ReferenceNode.start(bin, { mode: 'css', env: { MAX_DATA_CHUNK_SIZE: String(CHUNK) } }));
  const ess = (nodes.ess = await EdgesyncNode.start({ mode: 'ess', env: { ...essEnv(css.port), LOG_LEVEL: 'info' } }));
  const pair = { css, ess, logs: logsOf(css, ess) };
  await registered(pair, deadlineMs);
  return pair;
}

/** (b) Our CSS in multi-org mode (no ORG_ID, no organization created) and the reference ESS. */
export async function startOurCssReferenceEss(t: Teardown, bin: string, deadlineMs: number): Promise<InteropPair> {
  const nodes = manage(t);
  const css = (nodes.css = await EdgesyncNode.start({
    mode: 'css',
    env: { AUTHENTICATION_HANDLER: 'dummy', STORAGE_PROVIDER: 'bolt', COMMUNICATION_PROTOCOL: 'http', MAX_DATA_CHUNK_SIZE: String(CHUNK), RESEND_INTERVAL: '1', LOG_LEVEL: 'info' },
  }));
  const ess = (nodes.ess = await ReferenceNode.start(bin, { mode: 'ess', env: essEnv(new URL(css.url).port) }));
  const pair = { css, ess, logs: logsOf(css, ess) };
  await registered(pair, deadlineMs);
  return pair;
}

/** (control) The reference on both sides: shows that the scenarios expect what the reference itself does. */
export async function startReferencePair(t: Teardown, bin: string, deadlineMs: number): Promise<InteropPair> {
  const nodes = manage(t);
  const css = (nodes.css = await ReferenceNode.start(bin, { mode: 'css', env: { MAX_DATA_CHUNK_SIZE: String(CHUNK) } }));
  const ess = (nodes.ess = await ReferenceNode.start(bin, { mode: 'ess', env: essEnv(css.port) }));
  const pair = { css, ess, logs: logsOf(css, ess) };
  await registered(pair, deadlineMs);
  return pair;
}
