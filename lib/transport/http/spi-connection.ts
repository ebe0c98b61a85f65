/**
 * The ESS's HTTP plumbing toward its CSS: one keep-alive agent, Basic auth and the
 * `X-Sync-Service-Dest` identity on every request, bounded control answers, and the object
 * actions and feedback the ESS's link (http-css-link.ts) sends. [ref sync-protocol §1]
 */
import http from 'node:http';
import https from 'node:https';
import { CredentialsRefusedError, NotRegisteredError, type EssObjectRef } from '../../sync/ess/css-link.js';
import type { Feedback } from '../../sync/sender-acks.js';
import type { CssLinkHealth } from './css-link-health.js';
import { AckBatcher, isBatchable, SEND_ALONE } from './spi-ack-batcher.js';
import { spiObjectPath, type SpiObjectAction } from './spi-paths.js';

export interface SpiConnectionDeps {
  /** e.g. `https://css.example:8443`. */
  baseUrl: string;
  /** PEM of the CA(s) to trust for an https CSS; undefined = the system CAs. */
  ca?: string;
  /** Basic-auth credentials toward the CSS. */
  user: string;
  password: string;
  /** This ESS. */
  orgID: string;
  destinationType: string;
  destinationID: string;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void; debug(obj: object, msg: string): void; error(obj: object, msg: string): void };
  /** Send body-less acks in batches (our extension; falls back by itself toward a CSS without it). */
  batchAcks?: boolean;
  /** Told the outcome of every request, for the health report. */
  health?: CssLinkHealth;
}


export { CredentialsRefusedError, NotRegisteredError };

/** The error for a control step the CSS did not take: typed when it refused the credentials. */
export function refusal(step: string, res: { status: number; body: string }): Error {
  const message = `${step} answered ${res.status}: ${res.body.trim()}`;
  return res.status === 401 || res.status === 403 ? new CredentialsRefusedError(message) : new Error(message);
}

/** Control answers are small; anything bigger is not a CSS talking. */
const CONTROL_BODY_LIMIT = 64 * 1024 * 1024;
/** [ref sync-protocol §1 Client timeouts] 120 s for control requests, 600 s for data. */
export const CONTROL_TIMEOUT_MS = 120_000;
export const DATA_TIMEOUT_MS = 600_000;

export interface SpiRequestOptions {
  timeoutMs?: number;
  /** A JSON text, or a stream of data with its length in `headers`. */
  body?: string | NodeJS.ReadableStream;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

export class SpiConnection {
  private readonly agent: http.Agent;
  private readonly batcher: AckBatcher | null;

  constructor(
    readonly deps: SpiConnectionDeps,
    private readonly stopSignal: AbortSignal,
  ) {
    const tls = deps.baseUrl.startsWith('https:');
    // Keep-alive: polls, acks and data reuse connections (the reference opens one per request).
    this.agent = tls ? new https.Agent({ keepAlive: true, ...(deps.ca !== undefined ? { ca: deps.ca } : {}) }) : new http.Agent({ keepAlive: true });
    this.batcher = deps.batchAcks === true ? new AckBatcher((m, p, b) => this.call(m, p, b), deps.orgID, deps.log) : null;
  }

  destroy(): void {
    this.agent.destroy();
  }

  request(method: string, path: string, opts: SpiRequestOptions = {}): Promise<http.IncomingMessage> {
    const { deps } = this;
    const url = new URL(path, deps.baseUrl);
    const auth = Buffer.from(`${deps.user}:${deps.password}`).toString('base64');
    const json = typeof opts.body === 'string' ? Buffer.from(opts.body, 'utf8') : undefined;
    const headers: Record<string, string> = {
      authorization: `Basic ${auth}`,
      'X-Sync-Service-Dest': `${deps.orgID}/${deps.destinationType}/${deps.destinationID}`,
      ...(opts.body === undefined ? { 'content-length': '0' } : {}),
      ...(json !== undefined ? { 'content-type': 'application/json', 'content-length': String(json.length) } : {}),
      ...opts.headers,
    };
    const timeout = opts.timeoutMs ?? CONTROL_TIMEOUT_MS;
    const lib = url.protocol === 'https:' ? https : http;
    const signal = opts.signal ?? this.stopSignal;
    const what = `${method} ${url.pathname}`;
    return new Promise((resolve, reject) => {
      let answered = false;
      const req = lib.request(url, { method, headers, agent: this.agent, signal, timeout }, (res) => {
        answered = true;
        deps.health?.answered(res.statusCode ?? 0, what);
        resolve(res);
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out after ${timeout} ms`)));
      req.on('error', (err) => {
        if (!answered && !signal.aborted) deps.health?.noAnswer(err, what);
        reject(err);
      });
      const source = opts.body;
      if (source === undefined || typeof source === 'string') {
        req.end(json);
        return;
      }
      source.on('error', (err: Error) => req.destroy(err));
      source.pipe(req);
    });
  }

  /** Reads a control answer, refusing one too large to be a CSS's. */
  async text(res: http.IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > CONTROL_BODY_LIMIT) {
        res.destroy();
        throw new Error('answer from the CSS is too large');
      }
      chunks.push(chunk);
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  /** A control request, with an optional JSON body; resolves to the status, the answer read. */
  async call(method: string, path: string, payload?: string): Promise<{ status: number; body: string }> {
    const res = await this.request(method, path, payload !== undefined ? { body: payload } : {});
    const body = await this.text(res);
    return { status: res.statusCode ?? 0, body };
  }

  /**
   * An object action, with the MetaData JSON for `update`/`delete`/`deleted`. True when the
   * CSS took it (204) or had nothing to take (409, "acked"). [ref sync-protocol §1 Ack semantics]
   * @throws NotRegisteredError on 424
   */
  async sendAction(ref: EssObjectRef, action: SpiObjectAction, payload?: string): Promise<boolean> {
    if (this.batcher?.enabled === true && payload === undefined && isBatchable(action)) {
      const { objectType, objectID, instanceID, dataID } = ref;
      const status = await this.batcher.send({ action, objectType, objectID, instanceID, dataID });
      if (status !== SEND_ALONE) return this.acked(status, ref, action, '');
    }
    const res = await this.call('PUT', spiObjectPath({ orgID: this.deps.orgID, ...ref }, action), payload);
    return this.acked(res.status, ref, action, res.body);
  }

  /** What an ack's answer means; see sendAction. */
  private acked(status: number, ref: EssObjectRef, action: SpiObjectAction, body: string): boolean {
    if (status === 424) throw new NotRegisteredError(`${action} answered 424`);
    if (status !== 204 && status !== 409) this.deps.log.warn({ action, objectID: ref.objectID, status, body: body.trim() }, 'SPI notification refused');
    return status === 204 || status === 409;
  }

  /** `PUT …/feedback`: an error report about the object. [ref sync-protocol §3 Feedback] */
  async sendFeedback(ref: EssObjectRef, feedback: Feedback): Promise<void> {
    const body = JSON.stringify({ Code: feedback.code, RetryInterval: feedback.retryInterval, Reason: feedback.reason });
    const res = await this.call('PUT', spiObjectPath({ orgID: this.deps.orgID, ...ref }, 'feedback'), body);
    if (res.status === 424) throw new NotRegisteredError('feedback answered 424');
    // A 409 means the CSS moved on (a newer instance, a deletion): nothing to report then.
    if (res.status !== 204 && res.status !== 409) this.deps.log.warn({ objectID: ref.objectID, status: res.status, body: res.body.trim() }, 'SPI feedback refused');
  }
}
