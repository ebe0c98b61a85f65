/**
 * A test double of the CSS engine (CssSyncEngine / EssSession), for testing transports alone: it
 * records every call, answers with what a test scripts, and keeps a queue of pending items per
 * ESS that a test fills and `signal()`s, as the engine wakes its waiters. It knows nothing of
 * the protocol.
 */
import { Readable } from 'node:stream';
import { FailedDependencyError, NotFoundError, destinationKey, type ByteRange, type DestinationRef, type MetaData } from '../../lib/model/index.js';
import type { Destination } from '../../lib/store/types.js';
import type {
  Communication,
  CssSyncEngine,
  DataSlice,
  EssSession,
  ObjectRef,
  RegistrationAction,
  RegistrationOutcome,
  SyncItem,
  UpstreamAck,
} from '../../lib/sync/css/types.js';
import type { AckOutcome, Feedback, SenderAck } from '../../lib/sync/sender-acks.js';
import type { UpstreamData } from '../../lib/sync/upstream-messages.js';

/** One call a session received, with what a test wants to check of it. */
export type SessionCall =
  | { method: 'register'; peer: string; action: RegistrationAction; persistent: boolean; communication: Communication }
  | { method: 'pending'; peer: string }
  | { method: 'openData'; peer: string; ref: ObjectRef; range: ByteRange | undefined }
  | { method: 'ack'; peer: string; ref: ObjectRef; action: SenderAck; feedback: Feedback | undefined }
  | { method: 'resend'; peer: string }
  | { method: 'upstreamUpdate'; peer: string; ref: ObjectRef; meta: MetaData }
  | { method: 'upstreamData'; peer: string; ref: ObjectRef; data: UpstreamData; bytes: Buffer }
  | { method: 'upstreamDelete'; peer: string; ref: ObjectRef }
  | { method: 'upstreamAck'; peer: string; ref: ObjectRef; action: UpstreamAck };

/** What the sessions answer; every member may be replaced by a test. */
export interface SessionScript {
  register(peer: DestinationRef, action: RegistrationAction): RegistrationOutcome;
  /** The object data `openData` serves, by `type/id`; absent = NotFoundError from `openData`. */
  data: Map<string, Buffer>;
  openData?(peer: DestinationRef, ref: ObjectRef, range: ByteRange | undefined): DataSlice;
  ack(ref: ObjectRef, action: SenderAck): AckOutcome;
  upstreamUpdate(ref: ObjectRef, meta: MetaData): AckOutcome;
  upstreamData(ref: ObjectRef, data: UpstreamData, bytes: Buffer): AckOutcome;
  upstreamDelete(ref: ObjectRef): AckOutcome;
  upstreamAck(ref: ObjectRef, action: UpstreamAck): AckOutcome;
}

class SessionDouble implements EssSession {
  constructor(
    readonly peer: DestinationRef,
    private readonly engine: CssEngineDouble,
  ) {}

  private get key(): string {
    return destinationKey(this.peer);
  }

  destination(): Promise<Destination | null> {
    if (!this.engine.registered.has(this.key)) return Promise.resolve(null);
    const { orgID, destType, destID } = this.peer;
    return Promise.resolve({ destinationOrgID: orgID, destinationType: destType, destinationID: destID, communication: this.engine.communication, codeVersion: '1.0', lastPing: 0 });
  }

  register(action: RegistrationAction, opts: { persistent: boolean; communication: Communication }): Promise<RegistrationOutcome> {
    this.engine.calls.push({ method: 'register', peer: this.key, action, ...opts });
    const outcome = this.engine.script.register(this.peer, action);
    if (outcome === 'registered') this.engine.registered.add(this.key);
    return Promise.resolve(outcome);
  }

  pending(limit?: number): Promise<SyncItem[]> {
    this.engine.calls.push({ method: 'pending', peer: this.key });
    if (!this.engine.registered.has(this.key)) return Promise.reject(new FailedDependencyError(`${this.key} is not registered`));
    return Promise.resolve(this.engine.queue(this.peer).slice(0, limit));
  }

  waitForWork(ms: number, signal?: AbortSignal): Promise<void> {
    return this.engine.wait(this.peer, ms, signal);
  }

  openData(ref: ObjectRef, range: ByteRange | undefined): Promise<DataSlice> {
    this.engine.calls.push({ method: 'openData', peer: this.key, ref, range });
    return Promise.resolve(this.engine.slice(this.peer, ref, range));
  }

  ack(ref: ObjectRef, action: SenderAck, feedback?: Feedback): Promise<AckOutcome> {
    this.engine.calls.push({ method: 'ack', peer: this.key, ref, action, feedback });
    return Promise.resolve(this.engine.script.ack(ref, action));
  }

  resend(): Promise<void> {
    this.engine.calls.push({ method: 'resend', peer: this.key });
    return Promise.resolve();
  }

  upstreamUpdate(ref: ObjectRef, meta: MetaData): Promise<AckOutcome> {
    this.engine.calls.push({ method: 'upstreamUpdate', peer: this.key, ref, meta });
    return Promise.resolve(this.engine.script.upstreamUpdate(ref, meta));
  }

  async upstreamData(ref: ObjectRef, source: Readable, data: UpstreamData): Promise<AckOutcome> {
    const parts: Buffer[] = [];
    for await (const part of source) parts.push(part as Buffer);
    const bytes = Buffer.concat(parts);
    this.engine.calls.push({ method: 'upstreamData', peer: this.key, ref, data, bytes });
    return this.engine.script.upstreamData(ref, data, bytes);
  }

  upstreamDelete(ref: ObjectRef): Promise<AckOutcome> {
    this.engine.calls.push({ method: 'upstreamDelete', peer: this.key, ref });
    return Promise.resolve(this.engine.script.upstreamDelete(ref));
  }

  upstreamAck(ref: ObjectRef, action: UpstreamAck): Promise<AckOutcome> {
    this.engine.calls.push({ method: 'upstreamAck', peer: this.key, ref, action });
    return Promise.resolve(this.engine.script.upstreamAck(ref, action));
  }
}

/** The engine double: sessions by ESS, over one call log and one script. */
export class CssEngineDouble implements CssSyncEngine {
  readonly calls: SessionCall[] = [];
  /** ESS nodes `register` answered `registered` to (or that a test declares registered). */
  readonly registered = new Set<string>();
  /** What the registered ESS nodes' records say they sync over. */
  communication: Communication = 'mqtt';
  private readonly queues = new Map<string, SyncItem[]>();
  private readonly waiters = new Map<string, Set<() => void>>();
  readonly script: SessionScript;

  constructor(script: Partial<SessionScript> = {}) {
    this.script = {
      register: () => 'registered',
      data: new Map(),
      ack: () => 'applied',
      upstreamUpdate: () => 'applied',
      upstreamData: () => 'applied',
      upstreamDelete: () => 'applied',
      upstreamAck: () => 'applied',
      ...script,
    };
  }

  session(peer: DestinationRef): EssSession {
    return new SessionDouble(peer, this);
  }

  /** The items `pending()` returns for the ESS (a test edits the array). */
  queue(peer: DestinationRef): SyncItem[] {
    const key = destinationKey(peer);
    let q = this.queues.get(key);
    if (q === undefined) {
      q = [];
      this.queues.set(key, q);
    }
    return q;
  }

  /** Wakes the ESS's waiters, as the engine does when it queues something. */
  signal(peer: DestinationRef): void {
    for (const wake of [...(this.waiters.get(destinationKey(peer)) ?? [])]) wake();
  }

  /** How many push loops wait for work (idle ones included). */
  get waiting(): number {
    let n = 0;
    for (const set of this.waiters.values()) n += set.size;
    return n;
  }

  wait(peer: DestinationRef, ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted === true) return Promise.resolve();
    const key = destinationKey(peer);
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        this.waiters.get(key)?.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener('abort', done, { once: true });
      let set = this.waiters.get(key);
      if (set === undefined) {
        set = new Set();
        this.waiters.set(key, set);
      }
      set.add(done);
    });
  }

  slice(peer: DestinationRef, ref: ObjectRef, range: ByteRange | undefined): DataSlice {
    if (this.script.openData) return this.script.openData(peer, ref, range);
    const data = this.script.data.get(`${ref.objectType}/${ref.objectID}`);
    if (data === undefined) throw new NotFoundError();
    const start = range?.start ?? 0;
    const end = Math.min(range?.end ?? data.length - 1, data.length - 1);
    return { stream: Readable.from([data.subarray(start, end + 1)]), start, end, total: data.length, sha256: null, whole: range === undefined };
  }

  /** The calls of one method, in order. */
  callsOf<M extends SessionCall['method']>(method: M): Extract<SessionCall, { method: M }>[] {
    return this.calls.filter((c): c is Extract<SessionCall, { method: M }> => c.method === method);
  }
}
