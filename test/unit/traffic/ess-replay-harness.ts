/**
 * The two sides of the ESS replay tests (ess-replay*.test.ts): our real ESS (SqliteStore,
 * FileBlobStore, ObjectService, Receiver, OriginSender, the EssAgent over HTTP) with the
 * reference capture's identity `myorg/edge/node1`, and a script that makes a replaying CSS (startReplayCss) answer
 * it as the reference CSS did, capture file by capture file.
 */
import { createHash } from 'node:crypto';
import { setTimeout as pause } from 'node:timers/promises';
import { METADATA_INT64_KEYS, parseJson } from '../../../lib/model/index.js';
import { DeletionsInProgress } from '../../../lib/sync/deletions.js';
import { ObjectService, type NodeIdentity } from '../../../lib/sync/object-service.js';
import { OriginSender } from '../../../lib/sync/origin-sender.js';
import { Receiver } from '../../../lib/sync/receiver.js';
import type { EssAgent } from '../../../lib/sync/ess/agent.js';
import { httpEssAgent, type HttpAgentDeps } from '../../helpers/http-ess-agent.js';
import { MAX_INLINE_BYTES } from '../../../lib/transport/http/spi-inline-data.js';
import { capturedAnswer, capturedBytes, capturedExchange, capturedExchanges, capturedText, type CapturedExchange, type ReplayAnswer, type ReplayRequest } from '../../helpers/reference-traffic.js';
import { openStores, type Stores } from '../../helpers/sync-fixtures.js';

export const ORG = 'myorg';
/** The ESS of the capture, as `X-Sync-Service-Dest` and as the Basic user (password empty). */
export const ESS_DEST = 'myorg/edge/node1';
export const ESS_AUTH = `Basic ${Buffer.from(`${ESS_DEST}:`).toString('base64')}`;
const IDENTITY: NodeIdentity = { nodeType: 'ESS', orgID: ORG, destinationType: 'edge', destinationID: 'node1' };
/** MAX_DATA_CHUNK_SIZE of both reference nodes in the capture. */
export const CHUNK = 65536;

/** How our ESS is set: as lib/node/ess-sync.ts sets it by default, and in compatibility mode. */
export const MODES: { name: string; deps: Partial<HttpAgentDeps>; extensions: boolean }[] = [
  { name: 'with its extensions on (the default settings)', deps: { batchAcks: true, inlineDataLimit: MAX_INLINE_BYTES, earlyData: true, longPollSeconds: 30 }, extensions: true },
  { name: 'in compatibility mode', deps: { batchAcks: false, inlineDataLimit: 0, earlyData: false, longPollSeconds: 0 }, extensions: false },
];

export const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Polls `probe` every 10 ms until it holds; fails after 15 s saying what was awaited. */
export async function until(what: string, probe: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`still waiting for ${what}`);
    await pause(10);
  }
}

export interface LogLine {
  level: 'info' | 'warn' | 'debug' | 'error';
  msg: string;
  obj: object;
}

export interface ReplayEss {
  stores: Stores;
  objects: ObjectService;
  log: LogLine[];
  /** Stops the SPI client and closes the stores (a restart reopens the same directory). */
  stop(): Promise<void>;
}

/** Our ESS `myorg/edge/node1`, as lib/node composes it, syncing with the CSS at `cssUrl`. */
export async function startReplayEss(dir: string, cssUrl: string, deps: Partial<HttpAgentDeps>): Promise<ReplayEss> {
  const stores = await openStores(dir);
  const { store, notifications, blobs } = stores;
  const log: LogLine[] = [];
  const logger = Object.fromEntries((['info', 'warn', 'debug', 'error'] as const).map((level) => [level, (obj: object, msg: string) => log.push({ level, msg, obj })])) as unknown as HttpAgentDeps['log'];
  let receiver: Receiver | null = null;
  let origin: OriginSender | null = null;
  let client: EssAgent | null = null;
  const deletions = new DeletionsInProgress({ store, notifications });
  const objects = new ObjectService({
    store,
    blobs,
    node: IDENTITY,
    deletions,
    maxDataChunkSize: CHUNK,
    maxDataSize: 0,
    listener: {
      onObjectPublished: async (o) => {
        await origin?.onObjectPublished(o);
        client?.wake();
      },
      onObjectDeleted: async (o) => {
        await origin?.onObjectDeleted(o);
        client?.wake();
      },
    },
    receiverListener: {
      onReceivedObjectMarked: async (o) => {
        await receiver?.onReceivedObjectMarked(o);
        client?.wake();
      },
      onDeletionConfirmed: async (o) => {
        await receiver?.onDeletionConfirmed(o);
        client?.wake();
      },
    },
  });
  origin = new OriginSender({ store, notifications, objects, orgID: ORG, deletions });
  await origin.reconcile();
  receiver = new Receiver({ notifications, objects, orgID: ORG, downloads: { sessions: store, blobs } });
  client = httpEssAgent({
    baseUrl: cssUrl,
    user: ESS_DEST,
    password: '',
    orgID: ORG,
    destinationType: 'edge',
    destinationID: 'node1',
    receiver,
    origin,
    blobs,
    uploadChunkSize: CHUNK,
    // Short waits, so that the test runs in seconds; the reference's are 10 s each.
    pollingIntervalMs: 200,
    resendIntervalMs: 200,
    longPollSeconds: 0,
    log: logger,
    ...deps,
  });
  client.start();
  const running = client;
  return {
    stores,
    objects,
    log,
    async stop() {
      await running.stop();
      await store.close();
    },
  };
}

/** Whether a request is a poll (`GET /spi/v1/objects/`, whatever its query). */
export const isPoll = (r: { method: string; path: string }): boolean => r.method === 'GET' && r.path.split('?')[0] === '/spi/v1/objects/';

/** `METHOD url` of a request, the way the capture's lines are compared. */
export const lineOf = (r: { method: string; url?: string; path: string }): string => `${r.method} ${r.url ?? r.path}`;

/** The reference ESS's requests in a capture file (polls left out), as `METHOD path` lines. */
export function referenceLines(file: string, fromSeq = 0, toSeq = Infinity): string[] {
  return capturedExchanges(file, 'ess->css')
    .filter((x) => !isPoll(x) && x.seq >= fromSeq && x.seq <= toSeq)
    .map((x) => lineOf(x));
}

interface Pending {
  seq: number;
  text: string;
  headers: Record<string, string>;
  /** Path prefix of the acks that take the entry off the pending list: `…/{type}/{id}/{instanceID}/`. */
  ackPrefix: string;
}

/**
 * The CSS side of one capture file. Polls get the captured non-empty answers the test offers,
 * each served (byte for byte) on every poll until our ESS acks its object instance, as the
 * reference CSS serves a `*Pending` record; else 204. Other requests that match a captured
 * request line of the reference ESS get the captured answer; `extra` answers the rest (data
 * the capture does not hold whole).
 */
export class CssScript {
  private readonly pending: Pending[] = [];
  private readonly byLine = new Map<string, CapturedExchange[]>();

  constructor(
    private readonly file: string,
    registration: CapturedExchange[],
    private readonly extra: (req: ReplayRequest) => ReplayAnswer | null = () => null,
  ) {
    for (const x of [...registration, ...capturedExchanges(file, 'ess->css')]) {
      if (isPoll(x)) continue;
      const list = this.byLine.get(lineOf(x)) ?? [];
      list.push(x);
      this.byLine.set(lineOf(x), list);
    }
  }

  /**
   * Queues the captured poll answer `seq` of the file, optionally rewritten (ids of objects our
   * ESS made itself); its Content-Length is kept right.
   */
  offer(seq: number, rewrite: (text: string) => string = (t) => t): void {
    const x = capturedExchange(this.file, seq);
    const text = rewrite(capturedText(x.res_body));
    const entries = parseJson(text, METADATA_INT64_KEYS) as { MetaData: { objectType: string; objectID: string; instanceID: bigint } }[];
    const m = entries[0]!.MetaData;
    const headers = { ...x.res_headers, 'Content-Length': String(Buffer.byteLength(text)) };
    this.pending.push({ seq, text, headers, ackPrefix: `/spi/v1/objects/${ORG}/${m.objectType}/${m.objectID}/${m.instanceID}/` });
  }

  /** The answer function for startReplayCss. */
  readonly answer = (req: ReplayRequest): ReplayAnswer | null => {
    if (isPoll(req)) {
      const p = this.pending[0];
      return p === undefined ? null : { status: 200, headers: p.headers, body: p.text };
    }
    if (req.method === 'PUT') {
      const i = this.pending.findIndex((p) => req.path.startsWith(p.ackPrefix));
      if (i >= 0) this.pending.splice(i, 1);
    }
    const list = this.byLine.get(lineOf(req));
    const x = list === undefined ? undefined : list.length > 1 ? list.shift() : list[0];
    // An answer the capture holds only in part (large data) is left to `extra`.
    if (x !== undefined && capturedBytes(x.res_body)?.complete !== false) return capturedAnswer(x);
    return this.extra(req);
  };
}

/**
 * What handleGetData of the reference CSS answers for data it holds whole: without a Range
 * (or one spanning the whole object), 200 with the whole data and no Content-Length; else
 * 206 with `Content-Range: bytes S-E/total` (E cut at the end of the data) and Content-Length.
 * [httpCommunication.go handleGetData]
 */
export function referenceDataAnswer(data: Buffer, range: string | undefined): ReplayAnswer {
  const m = range === undefined ? null : /^bytes=(\d+)-(\d+)$/.exec(range);
  const start = m === null ? 0 : Number(m[1]);
  const end = m === null ? data.length - 1 : Number(m[2]);
  if (m === null || end - start + 1 === data.length) return { status: 200, headers: { 'Content-Type': 'application/octet-stream' }, body: data };
  const body = data.subarray(start, end + 1);
  const last = start + body.length >= data.length ? data.length - 1 : end;
  return { status: 206, headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(body.length), 'Content-Range': `bytes ${start}-${last}/${data.length}` }, body };
}

/** Deterministic bytes (a SHA-256 counter stream) standing in for data the capture holds only in part. */
export function generatedData(size: number, seed: string): Buffer {
  const out = Buffer.alloc(size);
  for (let off = 0, i = 0; off < size; off += 32, i++) createHash('sha256').update(`${seed}:${i}`).digest().copy(out, off);
  return out;
}
