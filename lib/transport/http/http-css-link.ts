/**
 * The ESS's CssLink over HTTP (the SPI, `/spi/v1`): the ESS always dials; the CSS never
 * connects to it. Polls (plain, held with `?wait=`, with `?inline=` and `?early=1`, our
 * extensions), ranged data GETs, object actions and feedback PUTs, and the pushes of what this
 * ESS published. It only moves bytes and maps HTTP answers to the port's outcomes; the agent
 * (lib/sync/ess/agent.ts) decides and commits. [ref sync-protocol §1]
 */
import { setMaxListeners } from 'node:events';
import type http from 'node:http';
import type { Readable } from 'node:stream';
import { decodeFields, emptyMetaData, goJson, METADATA_INT64_KEYS, METADATA_KEYS, orderedMetaData, parseJson, type ByteRange, type MetaData } from '../../model/index.js';
import type { RegistrationOutcome } from '../../sync/css/types.js';
import {
  CredentialsRefusedError,
  DataUnavailableError,
  EARLY_DATA_ITEM,
  NotRegisteredError,
  type CssItem,
  type CssLink,
  type EssAction,
  type EssObjectRef,
  type FetchedData,
  type PublishOutcome,
  type PushOutcome,
} from '../../sync/ess/css-link.js';
import type { Feedback } from '../../sync/sender-acks.js';
import { isUntrustedCertificate } from './css-link-health.js';
import { DATA_TIMEOUT_MS, refusal, SpiConnection, type SpiConnectionDeps } from './spi-connection.js';
import { INLINE_PARAM, parseInlineData } from './spi-inline-data.js';
import { DATA_SHA256_HEADER, EARLY_ENTRY, EARLY_PARAM, SPI_PREFIX, spiEarlyPath, spiObjectPath } from './spi-paths.js';

export interface HttpCssLinkDeps extends SpiConnectionDeps {
  /**
   * Asks the CSS for the data of objects up to this many bytes inside the poll answer
   * (`?inline=`, our extension); 0 or absent = never, as in compatibility mode.
   */
  inlineDataLimit?: number;
  /**
   * Asks the CSS for early-data offers (`?early=1`, our extension): the data of an upload still
   * arriving is downloaded while it arrives. Off in compatibility mode.
   */
  earlyData?: boolean;
}

/** The poll's MetaData: known keys of the right JSON type are taken, the rest keep their defaults. */
function toMetaData(raw: unknown): MetaData | null {
  if (typeof raw !== 'object' || raw === null) return null;
  const src = raw as Record<string, unknown>;
  const meta = emptyMetaData();
  const out = meta as unknown as Record<string, unknown>;
  for (const k of METADATA_KEYS) {
    const v = src[k];
    const d = out[k];
    if (v === undefined) continue;
    if (typeof v === typeof d || ((k === 'destinationsList' || k === 'destinationPolicy') && (v === null || typeof v === 'object'))) out[k] = v;
  }
  return meta.objectID !== '' && meta.objectType !== '' ? meta : null;
}

/** The entries of a poll answer; one without a usable type or MetaData is skipped. */
export function parsePoll(text: string): CssItem[] {
  const value = parseJson(text, METADATA_INT64_KEYS);
  if (!Array.isArray(value)) throw new Error('poll answer is not a JSON array');
  const out: CssItem[] = [];
  for (const entry of value as unknown[]) {
    const f = decodeFields(entry, { Type: 'string', MetaData: 'any', Data: 'string', DataSHA256: 'string', Size: 'any' }, 'Notification');
    const meta = toMetaData(f.MetaData);
    if (typeof f.Type !== 'string' || meta === null) continue;
    out.push({
      type: f.Type === EARLY_ENTRY ? EARLY_DATA_ITEM : f.Type,
      meta,
      inline: parseInlineData(f),
      ...(typeof f.DataSHA256 === 'string' && /^[0-9a-f]{64}$/.test(f.DataSHA256) ? { statedSha256: f.DataSHA256 } : {}),
      ...(typeof f.Size === 'number' && Number.isSafeInteger(f.Size) ? { size: f.Size } : {}),
    });
  }
  return out;
}

/** `bytes a-b/total` of a 206 answer, or null when it is not one. */
function contentRange(res: http.IncomingMessage): { start: number; end: number; total: number } | null {
  const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(res.headers['content-range'] ?? '');
  return m === null ? null : { start: Number(m[1]), end: Number(m[2]), total: Number(m[3]) };
}

function statedDigest(res: http.IncomingMessage): string | undefined {
  const v = res.headers[DATA_SHA256_HEADER.toLowerCase()];
  return typeof v === 'string' ? v : undefined;
}

export class HttpCssLink implements CssLink {
  readonly holdsPolls = true;
  readonly pushesData = true;
  private readonly stop = new AbortController();
  private readonly conn: SpiConnection;

  constructor(private readonly deps: HttpCssLinkDeps) {
    // Every request in flight listens on the close signal; the agent puts many on it at once.
    setMaxListeners(0, this.stop.signal);
    this.conn = new SpiConnection(deps, this.stop.signal);
  }

  get address(): string {
    return this.deps.baseUrl;
  }

  private get who(): string {
    const { orgID, destinationType, destinationID } = this.deps;
    return [orgID, destinationType, destinationID].map(encodeURIComponent).join('/');
  }

  /** A signal that ends a request on the caller's `signal` or on close(). */
  private until(signal: AbortSignal): AbortSignal {
    return AbortSignal.any([signal, this.stop.signal]);
  }

  /** 404: the CSS does not know this ESS. [ref sync-protocol §1 Registration, §3 Registration] */
  async register(): Promise<RegistrationOutcome> {
    const res = await this.conn.call('PUT', `${SPI_PREFIX}register/${this.who}?persistent-storage=true`);
    if (res.status === 404) return 'unknown';
    if (res.status !== 204) throw refusal('registration', res);
    return 'registered';
  }

  async registerNew(): Promise<void> {
    const res = await this.conn.call('PUT', `${SPI_PREFIX}register-new/${this.who}?persistent-storage=true`);
    if (res.status !== 204) throw refusal('registration', res);
  }

  /** [ref sync-protocol §1 Ping] */
  async ping(): Promise<RegistrationOutcome> {
    const res = await this.conn.call('PUT', `${SPI_PREFIX}ping/${this.who}`);
    if (res.status === 404 || res.status === 424) return 'unknown';
    if (res.status !== 204) throw refusal('ping', res);
    return 'registered';
  }

  /** [ref sync-protocol §3 "resend"] */
  async resend(): Promise<void> {
    const res = await this.conn.call('PUT', `${SPI_PREFIX}objects/${encodeURIComponent(this.deps.orgID)}/resend`);
    if (res.status === 424) throw new NotRegisteredError('resend answered 424');
    if (res.status !== 204) throw refusal('resend', res);
  }

  /** `GET /spi/v1/objects/`, held up to `holdS` with `?wait=`. [ref sync-protocol §1 Poll] */
  async poll(opts: { holdS: number; signal: AbortSignal }): Promise<CssItem[]> {
    const params = [
      ...(opts.holdS > 0 ? [`wait=${opts.holdS}`] : []),
      ...((this.deps.inlineDataLimit ?? 0) > 0 ? [`${INLINE_PARAM}=${this.deps.inlineDataLimit}`] : []),
      ...(this.deps.earlyData === true ? [`${EARLY_PARAM}=1`] : []),
    ];
    let answer: { status: number; body: string };
    try {
      const res = await this.conn.request('GET', `${SPI_PREFIX}objects/${params.length === 0 ? '' : `?${params.join('&')}`}`, { signal: this.until(opts.signal) });
      answer = { status: res.statusCode ?? 0, body: await this.conn.text(res) };
    } catch (err) {
      // Cut short on purpose (a wake, a stop): what arrived is nothing.
      if (opts.signal.aborted || this.stop.signal.aborted) return [];
      throw err;
    }
    if (answer.status === 204) return [];
    if (answer.status === 424) throw new NotRegisteredError('poll answered 424');
    if (answer.status !== 200) throw refusal('poll', answer);
    return parsePoll(answer.body);
  }

  /**
   * `GET …/data`, with a closed `Range` when asked for one; the CSS states the whole data's
   * digest in a header (our extension). [ref sync-protocol §1 "Download of CSS → ESS objects", Chunked]
   */
  async fetchData(ref: EssObjectRef, meta: MetaData, range: ByteRange | undefined, signal: AbortSignal): Promise<FetchedData> {
    const res = await this.conn.request('GET', spiObjectPath({ orgID: this.deps.orgID, ...ref }, 'data'), {
      timeoutMs: DATA_TIMEOUT_MS,
      signal: this.until(signal),
      ...(range !== undefined ? { headers: { range: `bytes=${range.start}-${range.end}` } } : {}),
    });
    const sha256 = statedDigest(res);
    const stated = sha256 !== undefined ? { sha256 } : {};
    if (res.statusCode === 200) {
      const length = Number(res.headers['content-length'] ?? NaN);
      return { stream: res, start: 0, total: Number.isSafeInteger(length) ? length : meta.objectSize, ...stated };
    }
    if (res.statusCode === 206 && range !== undefined) {
      const got = contentRange(res);
      if (got !== null && got.start === range.start && got.end === range.end) return { stream: res, start: got.start, total: got.total, ...stated };
      res.destroy();
      throw new DataUnavailableError(`the CSS answered bytes=${range.start}-${range.end} with Content-Range ${res.headers['content-range'] ?? '(none)'}`, 'rangeMismatch');
    }
    const body = await this.conn.text(res);
    const status = res.statusCode ?? 0;
    if (status === 424) throw new NotRegisteredError('data answered 424');
    if (status === 401 || status === 403) throw refusal('data', { status, body });
    // 416: the CSS holds fewer bytes than the range assumed; 400: it takes no range from us.
    const kind = range !== undefined && (status === 416 || status === 400) ? 'rangeRefused' : 'unavailable';
    throw new DataUnavailableError(`data answered ${status}: ${body.trim()}`, kind);
  }

  /** `GET /spi/v1/early/…`: the data of an upload still arriving at the CSS (our extension). */
  async fetchEarly(meta: MetaData, signal: AbortSignal): Promise<Readable | null> {
    const res = await this.conn.request('GET', spiEarlyPath({ orgID: this.deps.orgID, ...meta }), { timeoutMs: DATA_TIMEOUT_MS, signal: this.until(signal) });
    if (res.statusCode === 200) return res;
    await this.conn.text(res);
    return null;
  }

  /** [ref sync-protocol §1 Ack semantics] 409 counts as taken: the CSS had nothing to take. */
  send(ref: EssObjectRef, action: EssAction, body?: MetaData): Promise<boolean> {
    return this.conn.sendAction(ref, action, body === undefined ? undefined : goJson(orderedMetaData(body)));
  }

  feedback(ref: EssObjectRef, feedback: Feedback): Promise<void> {
    return this.conn.sendFeedback(ref, feedback);
  }

  /** `PUT …/update` with the MetaData; 409: the CSS holds a newer instance. */
  async publish(meta: MetaData): Promise<PublishOutcome> {
    const res = await this.conn.call('PUT', spiObjectPath({ orgID: this.deps.orgID, ...meta }, 'update'), goJson(orderedMetaData(meta)));
    if (res.status === 204) return 'taken';
    if (res.status === 424) throw new NotRegisteredError('update answered 424');
    if (res.status === 409) {
      this.deps.log.debug({ objectID: meta.objectID, body: res.body.trim() }, 'the CSS holds a newer instance');
      return 'stale';
    }
    this.deps.log.warn({ objectID: meta.objectID, status: res.status, body: res.body.trim() }, 'the CSS refused the metadata of an object published here');
    return 'refused';
  }

  /** `PUT …/delete` with the MetaData of the gone object; 409: nothing to delete, done as well. */
  async publishDelete(meta: MetaData): Promise<boolean> {
    const res = await this.conn.call('PUT', spiObjectPath({ orgID: this.deps.orgID, ...meta }, 'delete'), goJson(orderedMetaData(meta)));
    if (res.status === 424) throw new NotRegisteredError('delete answered 424');
    if (res.status === 204 || res.status === 409) return true;
    this.deps.log.warn({ objectID: meta.objectID, status: res.status, body: res.body.trim() }, 'the CSS refused the deletion of an object published here');
    return false;
  }

  /**
   * `PUT …/data`: the whole data in one request, or a `Content-Range` chunk of it.
   * [ref sync-protocol §1 "Upload of ESS → CSS objects"]
   */
  async pushData(ref: EssObjectRef, source: Readable, range: ByteRange & { total: number }, sha256: string | null): Promise<PushOutcome> {
    const length = range.end - range.start + 1;
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream', 'content-length': String(length) };
    const whole = range.start === 0 && range.end === range.total - 1;
    if (!whole) headers['content-range'] = `bytes ${range.start}-${range.end}/${range.total}`;
    if (sha256 !== null) headers[DATA_SHA256_HEADER] = sha256;
    if (length === 0) source.destroy();
    const res = await this.conn.request('PUT', spiObjectPath({ orgID: this.deps.orgID, ...ref }, 'data'), { body: length === 0 ? '' : source, headers, timeoutMs: DATA_TIMEOUT_MS });
    const text = await this.conn.text(res);
    const status = res.statusCode ?? 0;
    if (status === 204) return 'taken';
    if (status === 424) throw new NotRegisteredError('data answered 424');
    this.deps.log.debug({ objectID: ref.objectID, offset: range.start, status, body: text.trim() }, 'data push not taken');
    if (status === 409) return 'notExpected';
    if (status === 400 && range.start > 0) return 'resumeRefused';
    return 'refused';
  }

  operatorAction(err: unknown): string | undefined {
    if (err instanceof CredentialsRefusedError) {
      return `the CSS refuses this ESS's credentials (user ${this.deps.user}: HTTP_CSS_USER and HTTP_CSS_PASSWORD, or cssCredentials in its users file); retrying every RESEND_INTERVAL`;
    }
    if (isUntrustedCertificate(err)) {
      return "the CSS's certificate is not trusted: set HTTP_CSS_CA_CERTIFICATE to the CA that signed it, and make HTTP_CSS_HOST a name the certificate holds; retrying every RESEND_INTERVAL";
    }
    return undefined;
  }

  async close(): Promise<void> {
    this.stop.abort();
    this.conn.destroy();
    return Promise.resolve();
  }
}
