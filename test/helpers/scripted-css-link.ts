/**
 * A test double of the ESS's CssLink (lib/sync/ess/css-link.ts): a CSS scripted in memory, so
 * the agent's protocol decisions can be checked without a transport. It records every call as
 * a line (`register`, `send updated model/a`, …), answers registration from a script, hands
 * out the items a test queues (a held poll waits for them), serves data from a map, and lets a
 * test refuse sends. It takes pushed data (as HTTP does), or, made with `pushesData: false`,
 * lets the test pull the data of what the ESS published (as a CSS over MQTT does). Made with
 * `itemsPushed: true` it says it pushes items (as MQTT does): the agent then handles them as
 * they come; `sendGate` lets a test hold a send, as an ack slow to come would.
 */
import { Readable } from 'node:stream';
import type { ByteRange, MetaData } from '../../lib/model/index.js';
import type { RegistrationOutcome } from '../../lib/sync/css/types.js';
import {
  DataUnavailableError,
  type CssItem,
  type CssLink,
  type EssAction,
  type EssObjectRef,
  type FetchedData,
  type OwnDataSource,
  type PublishOutcome,
  type PushOutcome,
} from '../../lib/sync/ess/css-link.js';
import type { Feedback } from '../../lib/sync/sender-acks.js';

export class ScriptedCssLink implements CssLink {
  readonly address = 'scripted-css';
  readonly holdsPolls = true;
  readonly pushesData: boolean;
  readonly itemsPushed: boolean;
  /** What the agent did, one line per call, in order. */
  readonly calls: string[] = [];
  /** Answers of the next `register` calls; `registered` once it runs out. */
  readonly registerAnswers: RegistrationOutcome[] = [];
  /** Data served by fetchData, by objectID. */
  readonly data = new Map<string, Buffer>();
  /** Decides each `send`: true = taken (the default), false = not taken. */
  sendAnswer: (ref: EssObjectRef, action: EssAction) => boolean = () => true;
  /** Resolves when a `send` may go on (and be answered); at once by default. */
  sendGate: (ref: EssObjectRef, action: EssAction) => Promise<void> = () => Promise.resolve();
  private items: CssItem[] = [];
  private arrived: (() => void) | null = null;
  private source: OwnDataSource | null = null;

  constructor(opts: { pushesData?: boolean; itemsPushed?: boolean } = {}) {
    this.pushesData = opts.pushesData ?? true;
    this.itemsPushed = opts.itemsPushed ?? false;
  }

  serveData(source: OwnDataSource): void {
    this.source = source;
  }

  /** What the ESS serves the CSS that pulls `range` of `ref`'s data; null when it serves nothing. */
  async pull(ref: EssObjectRef, range: ByteRange): Promise<Buffer | null> {
    if (this.source === null) throw new Error('the agent gave this link no data source');
    const stream = await this.source(ref, range);
    if (stream === null) return null;
    const out: Buffer[] = [];
    for await (const c of stream) out.push(c as Buffer);
    return Buffer.concat(out);
  }

  /** Items the next poll hands out; a held poll in flight returns them at once. */
  queue(...items: CssItem[]): void {
    this.items.push(...items);
    this.arrived?.();
  }

  register(): Promise<RegistrationOutcome> {
    this.calls.push('register');
    return Promise.resolve(this.registerAnswers.shift() ?? 'registered');
  }

  registerNew(): Promise<void> {
    this.calls.push('registerNew');
    return Promise.resolve();
  }

  ping(): Promise<RegistrationOutcome> {
    this.calls.push('ping');
    return Promise.resolve('registered');
  }

  resend(): Promise<void> {
    this.calls.push('resend');
    return Promise.resolve();
  }

  async poll(opts: { holdS: number; signal: AbortSignal }): Promise<CssItem[]> {
    if (this.items.length === 0 && opts.holdS > 0 && !opts.signal.aborted) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          opts.signal.removeEventListener('abort', done);
          this.arrived = null;
          resolve();
        };
        const timer = setTimeout(done, opts.holdS * 1000);
        opts.signal.addEventListener('abort', done);
        this.arrived = done;
      });
    }
    const out = this.items;
    this.items = [];
    return out;
  }

  fetchData(ref: EssObjectRef, _meta: MetaData, range: ByteRange | undefined, _signal: AbortSignal): Promise<FetchedData> {
    this.calls.push(`fetchData ${ref.objectType}/${ref.objectID}`);
    const data = this.data.get(ref.objectID);
    if (data === undefined) return Promise.reject(new DataUnavailableError(`no data for ${ref.objectID}`, 'unavailable'));
    const start = range?.start ?? 0;
    const end = range?.end ?? data.length - 1;
    return Promise.resolve({ stream: Readable.from([data.subarray(start, end + 1)]), start, total: data.length });
  }

  async send(ref: EssObjectRef, action: EssAction, _body?: MetaData): Promise<boolean> {
    await this.sendGate(ref, action);
    const taken = this.sendAnswer(ref, action);
    this.calls.push(`send ${action} ${ref.objectType}/${ref.objectID}${taken ? '' : ' (refused)'}`);
    return taken;
  }

  feedback(ref: EssObjectRef, feedback: Feedback): Promise<void> {
    this.calls.push(`feedback ${ref.objectType}/${ref.objectID} ${feedback.reason}`);
    return Promise.resolve();
  }

  publish(meta: MetaData): Promise<PublishOutcome> {
    this.calls.push(`publish ${meta.objectType}/${meta.objectID}`);
    return Promise.resolve('taken');
  }

  publishDelete(meta: MetaData): Promise<boolean> {
    this.calls.push(`publishDelete ${meta.objectType}/${meta.objectID}`);
    return Promise.resolve(true);
  }

  async pushData(ref: EssObjectRef, source: Readable, range: ByteRange & { total: number }): Promise<PushOutcome> {
    for await (const _chunk of source) void _chunk;
    this.calls.push(`pushData ${ref.objectType}/${ref.objectID} ${range.start}-${range.end}/${range.total}`);
    return 'taken';
  }

  close(): Promise<void> {
    this.calls.push('close');
    return Promise.resolve();
  }
}
