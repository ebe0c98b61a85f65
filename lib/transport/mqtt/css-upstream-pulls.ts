/**
 * The data of objects an MQTT ESS publishes, pulled by the CSS: after `updated`, the CSS asks
 * for the data with `getdata{offset}` messages, at most `window` chunks ahead of what it has
 * stored; each chunk that arrives asks for the next one (a sliding window). Chunks are handed to
 * the engine in order (a chunk that overtakes another waits, bounded by the window), each as one
 * ranged `upstreamData`, which persists it before it resolves. A chunk not arrived within a few
 * seconds is asked for again (the reference waits 60 s). [ref sync-protocol §2 "Flow"]
 *
 * Nothing here must survive a restart: the engine persists how far an upload got, and a
 * restarted CSS resumes from there (CssMqttAdapter asks UpstreamProgress at start).
 *
 * As the ESS's downloads do (mqtt-css-link.ts): the chunks of a larger object are asked for
 * `chunkSize` (1 MiB) at a time, the size a `getdata` states, which our ESS serves; a reference
 * ESS serves its own size whatever is asked, so the first request goes alone and its answer sets
 * the size of the next ones. At most `windowBytes` (2 MiB) are asked for ahead of what is stored,
 * whatever MAX_INFLIGHT_CHUNKS allows: 8 chunks of an ESS's 5 MiB would be 40 MiB in the CSS.
 */
import { Readable } from 'node:stream';
import { BadRequestError, ConflictError, destinationKey, destinationLabel, type DestinationRef, type MetaData } from '../../model/index.js';
import type { Logger } from '../../log/logger.js';
import type { CssSyncEngine, ObjectRef } from '../../sync/css/types.js';
import type { SyncEvents } from '../../sync/sync-events.js';

export interface UpstreamPullsDeps {
  engine: CssSyncEngine;
  /** Publishes `getdata{offset}` for `meta` to its ESS (QoS 1). */
  requestChunk(peer: DestinationRef, meta: MetaData, offset: number): Promise<void>;
  /** Tells the ESS the CSS gives up on its object's data (a feedback message). */
  refuse(peer: DestinationRef, meta: MetaData, reason: string): Promise<void>;
  /** Where the engine's persisted upload of an instance stands: the next byte it expects. */
  resumeOffset(peer: DestinationRef, ref: ObjectRef): Promise<number | null>;
  /** MAX_INFLIGHT_CHUNKS: chunks asked for ahead of what is stored. */
  window: number;
  /** The chunk asked for, at most; PULL_CHUNK_SIZE by default. */
  chunkSize?: number;
  /** Bytes asked for ahead of what is stored, at most (at least one chunk); PULL_WINDOW_BYTES by default. */
  windowBytes?: number;
  /** A chunk asked for and not arrived after this long is asked for again (ms). */
  retryMs: number;
  log: Logger;
  /** Epoch ms; tests inject a fake clock. */
  now?: () => number;
  /** Told of each chunk stored. */
  events?: SyncEvents;
}

/** The chunk asked for, at most (see the module's comment). */
export const PULL_CHUNK_SIZE = 1024 * 1024;
/** Bytes asked for ahead of what is stored, at most. */
export const PULL_WINDOW_BYTES = 2 * 1024 * 1024;

/** After this many unanswered requests for one chunk, the retries slow down to `SLOW_RETRY_MS`. */
const FAST_RETRIES = 5;
/** The reference's own chunk resend time (6 × RESEND_INTERVAL). */
const SLOW_RETRY_MS = 60_000;
/** How often the overdue requests are looked for. */
const SCAN_MS = 1000;

interface Requested {
  at: number;
  attempts: number;
}

/** One object's data on its way from an ESS. */
class Transfer {
  /** Bytes handed to the engine (and persisted by it). */
  stored: number;
  /** Next offset not asked for yet. */
  frontier: number;
  readonly requested = new Map<number, Requested>();
  /** Chunks arrived ahead of `stored`, by offset (at most `window` of them). */
  readonly arrived = new Map<number, Buffer>();
  feeding = false;
  ended = false;
  /** The engine refused a chunk once already: a second refusal after re-reading the offset gives up. */
  resynced = false;
  /** No chunk came yet, and the ESS may serve another size than asked for: one request at a time. */
  probing: boolean;
  /** The persisted offset is being read again before overdue chunks are asked for again. */
  checking = false;

  constructor(
    readonly peer: DestinationRef,
    readonly meta: MetaData,
    /** The metadata the `getdata` messages carry: `meta`, with the chunk size asked for. */
    readonly asked: MetaData,
    public chunkSize: number,
    from: number,
    probing: boolean,
  ) {
    this.stored = from;
    this.frontier = from;
    this.probing = probing;
  }

  get total(): number {
    return this.meta.objectSize;
  }

  get ref(): ObjectRef {
    return { objectType: this.meta.objectType, objectID: this.meta.objectID, instanceID: this.meta.instanceID };
  }
}

/** One chunk as a byte stream (not an object stream: the blob writers count bytes). */
export function chunkStream(bytes: Buffer): Readable {
  return Readable.from(bytes.length > 0 ? [bytes] : [], { objectMode: false });
}

function transferKey(peer: DestinationRef, objectType: string, objectID: string): string {
  return JSON.stringify([destinationKey(peer), objectType, objectID]);
}

export class UpstreamPulls {
  private readonly transfers = new Map<string, Transfer>();
  private readonly now: () => number;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(private readonly deps: UpstreamPullsDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** How many transfers are under way (health, tests). */
  get size(): number {
    return this.transfers.size;
  }

  /** Whether the data of this instance is being pulled. */
  active(peer: DestinationRef, objectType: string, objectID: string, instanceID: bigint): boolean {
    return this.transfers.get(transferKey(peer, objectType, objectID))?.meta.instanceID === instanceID;
  }

  /**
   * Starts pulling `meta`'s data from byte `from` (what the engine already holds), replacing a
   * transfer of another instance of the object. One of the same instance goes on as it is.
   */
  start(peer: DestinationRef, meta: MetaData, from: number, opts: { whole?: boolean } = {}): void {
    if (this.closed) return;
    const key = transferKey(peer, meta.objectType, meta.objectID);
    const running = this.transfers.get(key);
    if (running !== undefined && running.meta.instanceID === meta.instanceID) return;
    if (running !== undefined) running.ended = true;
    // The ESS answers per its chunk size; an object of no chunk size comes in one message. A
    // smaller object's requests are the reference's, byte for byte.
    const stated = meta.chunkSize > 0 ? meta.chunkSize : Math.max(meta.objectSize, 1);
    // `whole`: the object in the one message the ESS meant it to be (see CssMqttAdapter.upstreamUpdate).
    const most = opts.whole === true ? stated : (this.deps.chunkSize ?? PULL_CHUNK_SIZE);
    const chunk = meta.objectSize > most ? Math.min(stated, most) : stated;
    const t = new Transfer(peer, meta, chunk === stated ? meta : { ...meta, chunkSize: chunk }, chunk, from, chunk < stated);
    this.transfers.set(key, t);
    this.deps.log.debug({ destination: destinationLabel(peer), org: peer.orgID, objectType: meta.objectType, objectID: meta.objectID, from }, 'pulling the data of an object from its ESS');
    this.fill(t);
    this.timer ??= setInterval(() => this.retryOverdue(), SCAN_MS);
    this.timer.unref();
  }

  /** Forgets the object's transfer (deleted, replaced, refused). */
  cancel(peer: DestinationRef, objectType: string, objectID: string): void {
    const key = transferKey(peer, objectType, objectID);
    const t = this.transfers.get(key);
    if (t !== undefined) this.end(key, t);
  }

  /**
   * A data message from `peer`. Returns false when no transfer expects it (nothing was asked
   * of this ESS for this instance): the caller drops it.
   */
  onData(peer: DestinationRef, objectType: string, objectID: string, instanceID: bigint, offset: bigint, data: Buffer): boolean {
    const t = this.transfers.get(transferKey(peer, objectType, objectID));
    if (t === undefined || t.meta.instanceID !== instanceID) return false;
    const start = Number(offset);
    if (offset < 0n || start >= Math.max(t.total, 1)) return false;
    // A chunk may reach past the end (the reference pads); the object's size says where it ends.
    const end = Math.min(start + data.length, t.total);
    if (t.probing && t.requested.has(start)) {
      t.probing = false;
      // Longer than asked for, and nothing asked for past it: the ESS serves bigger chunks (a
      // reference ESS, its MAX_DATA_CHUNK_SIZE); the next ones are asked for at its size.
      if (data.length > t.chunkSize && start + t.chunkSize === t.frontier) {
        t.chunkSize = data.length;
        t.frontier = end;
      }
    }
    t.requested.delete(start);
    // The payload is the message's own (the MQTT client reuses no buffer): kept as it is.
    if ((end > t.stored || t.total === 0) && !t.arrived.has(start)) t.arrived.set(start, data.subarray(0, end - start));
    this.fill(t);
    void this.feed(t);
    return true;
  }

  /**
   * Ends every transfer and stays usable: another CSS takes the chunked traffic now, and resumes
   * them from the engine's offset.
   */
  cancelAll(): void {
    for (const [key, t] of [...this.transfers]) this.end(key, t);
  }

  /** Ends every transfer (the CSS stops); a later restart resumes them from the engine's offset. */
  stop(): void {
    this.closed = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    for (const t of this.transfers.values()) t.ended = true;
    this.transfers.clear();
  }

  private end(key: string, t: Transfer): void {
    t.ended = true;
    if (this.transfers.get(key) === t) this.transfers.delete(key);
    if (this.transfers.size === 0 && this.timer !== null) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  /** Asks for chunks up to the window. */
  private fill(t: Transfer): void {
    const byBytes = Math.floor((this.deps.windowBytes ?? PULL_WINDOW_BYTES) / t.chunkSize);
    const window = t.probing ? 1 : Math.max(1, Math.min(this.deps.window, byBytes));
    const limit = t.stored + window * t.chunkSize;
    while (!t.ended && t.frontier < t.total && t.frontier < limit && t.requested.size < window) {
      this.request(t, t.frontier);
      t.frontier += t.chunkSize;
    }
    // An object of no bytes still comes in one (empty) data message.
    if (!t.ended && t.total === 0 && t.frontier === 0 && t.requested.size === 0) {
      this.request(t, 0);
      t.frontier = 1;
    }
  }

  private request(t: Transfer, offset: number): void {
    const prev = t.requested.get(offset);
    t.requested.set(offset, { at: this.now(), attempts: (prev?.attempts ?? 0) + 1 });
    this.deps.requestChunk(t.peer, t.asked, offset).catch((err: unknown) => {
      // Asked again by the retry scan.
      this.deps.log.debug({ err, objectType: t.meta.objectType, objectID: t.meta.objectID, offset }, 'could not ask an ESS for a chunk');
    });
  }

  /** Hands the chunks that follow what is stored to the engine, one at a time, in order. */
  private async feed(t: Transfer): Promise<void> {
    if (t.feeding) return;
    t.feeding = true;
    try {
      for (;;) {
        if (t.ended) return;
        const next = this.nextChunk(t);
        if (next === null) break;
        const { start, bytes } = next;
        const end = start + bytes.length - 1;
        const session = this.deps.engine.session(t.peer);
        let outcome;
        try {
          // An object of no bytes has no range to name: it comes whole.
          const data = t.total === 0 ? { size: 0 } : { range: { start, end, total: t.total } };
          outcome = await session.upstreamData(t.ref, chunkStream(bytes), data);
        } catch (err) {
          await this.refused(t, err);
          continue;
        }
        if (outcome === 'applied' || outcome === 'duplicate') {
          if (outcome === 'applied') this.deps.events?.dataReceived?.({ ...t.ref, orgID: t.peer.orgID }, { peerType: t.peer.destType, peerID: t.peer.destID }, 'mqtt', bytes.length, start, t.total);
          t.stored = Math.max(t.stored, end + 1);
          if (t.stored >= t.total) {
            // Complete: the engine queued `received`, which the ESS's push loop sends.
            this.deps.log.debug({ objectType: t.meta.objectType, objectID: t.meta.objectID, bytes: t.total }, 'pulled the whole data of an object from its ESS');
            this.end(transferKey(t.peer, t.meta.objectType, t.meta.objectID), t);
            return;
          }
          this.fill(t);
          continue;
        }
        // stale, unknown, ignored: the instance was replaced or deleted meanwhile.
        this.deps.log.debug({ objectType: t.meta.objectType, objectID: t.meta.objectID, outcome }, 'the data being pulled belongs to no current instance any more');
        this.end(transferKey(t.peer, t.meta.objectType, t.meta.objectID), t);
        return;
      }
    } finally {
      t.feeding = false;
    }
  }

  /** The arrived chunk covering the first byte not stored, cut to start there; drops those wholly stored. */
  private nextChunk(t: Transfer): { start: number; bytes: Buffer } | null {
    for (const [offset, bytes] of t.arrived) {
      if (offset + bytes.length <= t.stored && !(t.total === 0 && offset === 0)) {
        t.arrived.delete(offset);
        continue;
      }
      if (offset <= t.stored) {
        t.arrived.delete(offset);
        return { start: t.stored, bytes: bytes.subarray(t.stored - offset) };
      }
    }
    this.cover(t);
    return null;
  }

  /**
   * Asks for the first byte not stored when nothing asked for or arrived covers it: a chunk that
   * came short (an ESS whose broker takes smaller messages) leaves a gap before the next one, or
   * after the last one asked for.
   */
  private cover(t: Transfer): void {
    if (t.ended || t.stored >= t.total) return;
    for (const [offset, bytes] of t.arrived) if (offset <= t.stored && offset + bytes.length > t.stored) return;
    for (const offset of t.requested.keys()) if (offset <= t.stored && t.stored < offset + t.chunkSize) return;
    this.request(t, t.stored);
  }

  /**
   * The engine refused a chunk (a gap or an overlap: its persisted offset differs from ours, e.g.
   * another process took a chunk). The transfer starts again from the engine's offset: as often
   * as that offset moved on (another CSS stores chunks of it), once otherwise; a second refusal
   * with no progress gives up and tells the ESS. An object completed meanwhile ends it quietly.
   */
  private async refused(t: Transfer, err: unknown): Promise<void> {
    const key = transferKey(t.peer, t.meta.objectType, t.meta.objectID);
    const mismatch = err instanceof BadRequestError || err instanceof ConflictError;
    if (mismatch) {
      let from: number | null | undefined;
      try {
        from = await this.deps.resumeOffset(t.peer, t.ref);
      } catch {
        from = undefined;
      }
      if (t.ended) return;
      if (from === null) {
        // Completed (or replaced) meanwhile, through another CSS sharing the ESS's messages: nothing to refuse.
        this.deps.log.debug({ objectType: t.meta.objectType, objectID: t.meta.objectID }, 'the data being pulled is complete or gone: the transfer ends');
        this.end(key, t);
        return;
      }
      // Moved on by another writer: not this transfer's failure, however often it happens.
      const elsewhere = from !== undefined && from > t.stored;
      if (from !== undefined && (elsewhere || !t.resynced)) {
        if (!elsewhere) t.resynced = true;
        t.stored = from;
        t.frontier = from;
        t.arrived.clear();
        t.requested.clear();
        this.fill(t);
        return;
      }
    }
    if (!mismatch && !t.ended) {
      this.deps.log.warn({ err, objectType: t.meta.objectType, objectID: t.meta.objectID }, 'could not store a chunk of an object from an ESS; asking for it again');
      // Storage trouble: forget what arrived and ask for the rest again once the retry is due.
      t.arrived.clear();
      t.requested.clear();
      t.requested.set(t.stored, { at: this.now(), attempts: 0 });
      t.frontier = t.stored + t.chunkSize;
      return;
    }
    this.end(key, t);
    const reason = err instanceof Error ? err.message : String(err);
    this.deps.log.info(
      { destination: destinationLabel(t.peer), org: t.peer.orgID, objectType: t.meta.objectType, objectID: t.meta.objectID, reason },
      'refused the data of an object from its ESS',
    );
    await this.deps.refuse(t.peer, t.meta, reason).catch(() => undefined);
  }

  /** Asks again for the chunks asked for too long ago; slower after a few tries (the ESS may be away). */
  private retryOverdue(): void {
    for (const t of this.transfers.values()) {
      if (t.feeding || t.checking || this.overdue(t).length === 0) continue;
      t.checking = true;
      void this.recheck(t).finally(() => (t.checking = false));
    }
  }

  private overdue(t: Transfer): number[] {
    const now = this.now();
    const out: number[] = [];
    for (const [offset, r] of t.requested) if (now - r.at >= (r.attempts > FAST_RETRIES ? SLOW_RETRY_MS : this.deps.retryMs)) out.push(offset);
    return out;
  }

  /**
   * Before asking again, reads where the engine's upload stands: a chunk that went to another CSS
   * (several share the ESS's messages) may have been stored there, or the whole object
   * completed; then this transfer goes on from there, or ends, instead of asking again.
   */
  private async recheck(t: Transfer): Promise<void> {
    const key = transferKey(t.peer, t.meta.objectType, t.meta.objectID);
    let from: number | null;
    try {
      from = await this.deps.resumeOffset(t.peer, t.ref);
    } catch {
      from = t.stored;
    }
    if (t.ended || t.feeding) return;
    if (from === null) {
      this.deps.log.debug({ objectType: t.meta.objectType, objectID: t.meta.objectID }, 'the data being pulled is complete or gone: the transfer ends');
      this.end(key, t);
      return;
    }
    if (from > t.stored) {
      t.stored = from;
      for (const offset of [...t.arrived.keys()]) if (offset + t.arrived.get(offset)!.length <= from) t.arrived.delete(offset);
      for (const offset of [...t.requested.keys()]) if (offset + t.chunkSize <= from) t.requested.delete(offset);
      if (t.frontier < from) t.frontier = from;
      this.cover(t);
      this.fill(t);
    }
    for (const offset of this.overdue(t)) this.request(t, offset);
    void this.feed(t);
  }
}
