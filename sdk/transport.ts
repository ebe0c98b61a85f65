/**
 * A small request layer over node:http/https. Bodies stream both ways: requests take a Buffer or a
 * Readable, responses hand back the IncomingMessage untouched, so object data is never held in memory.
 */
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import type { ClientRequest, IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { RequestOptions } from 'node:https';
import { Readable, pipeline } from 'node:stream';
import { errorForStatus, NetworkError, SyncServiceError, TimeoutError } from './errors.js';
import { INT64_KEYS, parseJson } from './json.js';

/** How to reach the sync service and who to be. */
export interface TransportOptions {
  /**
   * Base URL `http(s)://host:port`, optionally with a path prefix (for a reverse proxy).
   * With `socketPath`, only its scheme matters: `https:` selects TLS over the socket (the
   * reference's `secure-unix`). Default `http://localhost:8080`.
   */
  url?: string;
  /** Unix socket of an ESS. Requests then carry the dummy host `localhost:8080`, as the reference SDKs do. */
  socketPath?: string;
  /** PEM certificate(s) to trust, e.g. the ESS's self-signed certificate. */
  ca?: string | Buffer;
  /** Basic-auth user name, sent on every request. */
  appKey: string;
  /** Basic-auth password, sent on every request. */
  appSecret: string;
  /** Socket inactivity limit in ms (not a total duration, so long transfers are fine). Default: none. */
  timeoutMs?: number;
  /** Reuse connections between requests. Default true. Ignored when `agent` is given. */
  keepAlive?: boolean;
  /** A caller-owned agent; the transport then neither creates nor closes one. */
  agent?: HttpAgent;
}

/** HTTP methods the REST API uses. */
export type HttpMethod = 'GET' | 'PUT' | 'POST' | 'DELETE';

/** One request. */
export interface TransportRequest {
  method: HttpMethod;
  /** Absolute path (already encoded) with its query, e.g. `/api/v1/objects/t/i?x=1`. */
  path: string;
  headers?: OutgoingHttpHeaders | undefined;
  /** A Buffer is sent with its Content-Length; a Readable is piped (chunked unless a Content-Length header is set). */
  body?: Buffer | Readable | undefined;
  signal?: AbortSignal | undefined;
}

/** A response whose body has not been read yet. */
export interface TransportResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body stream; it must be consumed or destroyed so the socket can be reused. */
  body: IncomingMessage;
}

/** Cap on error bodies read into memory: they are short texts, a misbehaving server must not make us buffer data. */
const MAX_ERROR_BODY = 64 * 1024;

/** Sends requests to one sync service with Basic auth. */
export class Transport {
  readonly #secure: boolean;
  readonly #base: { hostname: string; port: number; prefix: string };
  readonly #socketPath: string | undefined;
  readonly #authorization: string;
  readonly #timeoutMs: number | undefined;
  readonly #agent: HttpAgent;
  readonly #ownsAgent: boolean;

  constructor(options: TransportOptions) {
    const url = new URL(options.url ?? 'http://localhost:8080');
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`unsupported URL scheme ${url.protocol}`);
    this.#secure = url.protocol === 'https:';
    // URL keeps IPv6 hosts bracketed; http.request wants them bare.
    const hostname = url.hostname.replace(/^\[(.*)\]$/, '$1');
    this.#base = { hostname, port: Number(url.port || (this.#secure ? 443 : 80)), prefix: url.pathname.replace(/\/+$/, '') };
    this.#socketPath = options.socketPath;
    this.#authorization = `Basic ${Buffer.from(`${options.appKey}:${options.appSecret}`).toString('base64')}`;
    this.#timeoutMs = options.timeoutMs;
    this.#ownsAgent = options.agent === undefined;
    this.#agent = options.agent ?? this.#createAgent(options);
  }

  #createAgent(options: TransportOptions): HttpAgent {
    const keepAlive = options.keepAlive ?? true;
    if (!this.#secure) return new HttpAgent({ keepAlive });
    return new HttpsAgent(options.ca === undefined ? { keepAlive } : { keepAlive, ca: options.ca });
  }

  /**
   * Sends a request and resolves once the response headers arrive, whatever the status.
   * Rejects with {@link NetworkError} (original error as `cause`) when there is no response, or with
   * the signal's reason when aborted.
   */
  request(req: TransportRequest): Promise<TransportResponse> {
    const headers: OutgoingHttpHeaders = { ...req.headers, authorization: this.#authorization };
    if (Buffer.isBuffer(req.body)) headers['content-length'] = req.body.length;
    const options: RequestOptions = { method: req.method, path: this.#base.prefix + req.path, headers, agent: this.#agent };
    if (this.#socketPath !== undefined) {
      options.socketPath = this.#socketPath;
      // [ref rest-api §1.1] clients on a socket use the dummy host localhost:8080
      headers.host = 'localhost:8080';
      if (this.#secure) options.servername = 'localhost';
    } else {
      options.hostname = this.#base.hostname;
      options.port = this.#base.port;
    }
    if (req.signal !== undefined) options.signal = req.signal;
    return new Promise<TransportResponse>((resolve, reject) => {
      const send = this.#secure ? httpsRequest : httpRequest;
      let client: ClientRequest;
      try {
        client = send(options, (res) => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res }));
      } catch (err) {
        reject(new NetworkError(req.method, req.path, err));
        return;
      }
      client.on('error', (err) => {
        // An abort is the caller's decision, not a network failure: surface it as is.
        if (req.signal?.aborted === true) reject(err);
        else reject(new NetworkError(req.method, req.path, err));
      });
      const timeoutMs = this.#timeoutMs;
      if (timeoutMs !== undefined) client.setTimeout(timeoutMs, () => client.destroy(new TimeoutError(timeoutMs)));
      const body = req.body;
      if (body instanceof Readable) {
        // pipeline destroys the source if the request fails, so file handles are not leaked; the
        // request's own error already rejected above, the source's error must kill the request.
        pipeline(body, client, (err) => {
          if (err) client.destroy(err);
        });
      } else {
        client.end(body);
      }
    });
  }

  /** Closes pooled connections (if the transport created the agent). */
  close(): void {
    if (this.#ownsAgent) this.#agent.destroy();
  }
}

/** Reads a whole (small) response body as UTF-8 text, keeping at most `limit` bytes. */
export async function readText(body: Readable, limit = Number.POSITIVE_INFINITY): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    if (size < limit) {
      const kept = chunk.subarray(0, limit - size);
      chunks.push(kept);
      size += kept.length;
    }
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** True for 2xx statuses. */
export function isSuccess(status: number): boolean {
  return status >= 200 && status < 300;
}

/**
 * Turns a non-2xx response into the matching typed error (reading its plain-text body), or
 * returns the response untouched.
 */
export async function ensureSuccess(res: TransportResponse, method: string, path: string): Promise<TransportResponse> {
  if (isSuccess(res.status)) return res;
  let body = '';
  try {
    body = await readText(res.body, MAX_ERROR_BODY);
  } catch {
    // The status alone is still worth reporting if the body got cut off.
  }
  throw errorForStatus(res.status, body, method, path);
}

/** Drains a body we have no use for, so a keep-alive socket goes back to the pool. */
export function discard(res: TransportResponse): void {
  res.body.resume();
}

/**
 * Parses a JSON body; an empty one is null (a 204, or a listing some server sends bare). Bad JSON
 * becomes a SyncServiceError carrying the response status and the parse error as cause.
 */
export async function readJson<T>(res: TransportResponse, method: string, path: string): Promise<T | null> {
  const text = await readText(res.body);
  if (text.trim() === '') return null;
  try {
    return parseJson(text, INT64_KEYS) as T;
  } catch (err) {
    throw new SyncServiceError(res.status, text.slice(0, 1024), method, path, { cause: err });
  }
}
