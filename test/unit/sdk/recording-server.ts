/**
 * A recording HTTP server FOR SDK UNIT TESTS ONLY: it stores every request it gets and answers
 * whatever the test scripts. It knows nothing of the sync service; integration tests against the
 * real binary live elsewhere.
 */
import { once } from 'node:events';
import { createServer as createHttpServer } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import type { MetaData } from '../../../sdk/index.js';
import { stringifyJson } from '../../../sdk/json.js';

/** One request as the server saw it, body included. */
export interface RecordedRequest {
  method: string;
  /** Raw request target: path and query, still percent-encoded. */
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** What to answer. The default is 204 with no body. */
export interface Reply {
  status?: number;
  headers?: Record<string, string>;
  body?: string | Buffer | Readable;
}

export type Responder = (req: RecordedRequest) => Reply | Promise<Reply>;

/** A JSON reply, as the sync service formats them. */
export function json(value: unknown, status = 200): Reply {
  return { status, headers: { 'content-type': 'application/json' }, body: stringifyJson(value, 2) };
}

/** Where to listen: loopback TCP by default, or a unix socket; TLS when key and cert are given. */
export interface ListenOptions {
  socketPath?: string;
  tls?: { key: string; cert: string };
}

export class RecordingServer {
  readonly requests: RecordedRequest[] = [];
  /** Replace per test to script the answers. */
  respond: Responder = () => ({ status: 204 });
  readonly #server: Server;
  readonly #scheme: 'http' | 'https';

  private constructor(server: Server, scheme: 'http' | 'https') {
    this.#server = server;
    this.#scheme = scheme;
  }

  static async start(options: ListenOptions = {}): Promise<RecordingServer> {
    const handler = (req: IncomingMessage, res: ServerResponse): void => {
      void recording.#handle(req, res);
    };
    const server = options.tls === undefined ? createHttpServer(handler) : createHttpsServer(options.tls, handler);
    const recording = new RecordingServer(server, options.tls === undefined ? 'http' : 'https');
    if (options.socketPath === undefined) server.listen(0, '127.0.0.1');
    else server.listen(options.socketPath);
    await once(server, 'listening');
    return recording;
  }

  /** `http(s)://127.0.0.1:port` (meaningless for a socket server). */
  get url(): string {
    const address = this.#server.address() as AddressInfo;
    return `${this.#scheme}://127.0.0.1:${address.port}`;
  }

  /** `METHOD url` of every request so far, for compact assertions. */
  get lines(): string[] {
    return this.requests.map((r) => `${r.method} ${r.url}`);
  }

  async close(): Promise<void> {
    // Tests may leave a request hanging on purpose (timeouts): cut every connection.
    this.#server.closeAllConnections();
    await new Promise<void>((resolve, reject) => this.#server.close((err) => (err ? reject(err) : resolve())));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const chunks: Buffer[] = [];
      for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
      const recorded = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) };
      this.requests.push(recorded);
      const reply = await this.respond(recorded);
      res.writeHead(reply.status ?? 204, reply.headers);
      if (reply.body instanceof Readable) reply.body.pipe(res);
      else res.end(reply.body);
    } catch (err) {
      // A broken client connection is part of some tests; anything else should show up.
      if (!res.headersSent && !res.destroyed) res.writeHead(500).end(String(err));
    }
  }
}

/** Complete metadata as the server would send it, with the given overrides. */
export function metaData(overrides: Partial<MetaData> = {}): MetaData {
  return {
    objectID: 'obj',
    objectType: 'type',
    destinationOrgID: 'org',
    destinationID: '',
    destinationType: '',
    destinationsList: null,
    destinationPolicy: null,
    expiration: '',
    version: '',
    description: '',
    link: '',
    inactive: false,
    activationTime: '',
    noData: false,
    metaOnly: false,
    destinationDataUri: '',
    sourceDataUri: '',
    consumers: 1,
    autodelete: false,
    originID: 'Cloud',
    originType: 'Cloud',
    deleted: false,
    instanceID: 1n,
    dataID: 1n,
    objectSize: 0,
    chunkSize: 0,
    uploadChunkSize: 0,
    hashAlgorithm: '',
    publicKey: '',
    signature: '',
    public: false,
    ownerID: 'org/admin',
    ...overrides,
  };
}
