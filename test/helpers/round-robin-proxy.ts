/**
 * A small HTTP load balancer for tests that run several CSS processes: real TCP on 127.0.0.1,
 * round-robin **per request** over its upstreams, so that consecutive requests of one client —
 * even on one keep-alive connection — land on different instances. Bodies stream both ways and
 * are never buffered. Like nginx's `proxy_next_upstream error`, a request whose upstream refuses
 * the connection goes to the next one, as long as none of its body was sent yet; an upstream
 * may also be marked down by the test. It adds the client's address to `X-Forwarded-For`.
 *
 * A test double, named as such: a production deployment puts nginx or haproxy here
 * (docker-compose.yml).
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface Upstream {
  host: string;
  port: number;
}

/** One request as the proxy routed it (what the tests check "alternation" with). */
export interface RoutedRequest {
  method: string;
  /** Path and query, as the client sent them. */
  url: string;
  /** The request's `Range` or `Content-Range`, when it had one (resumes and chunks). */
  range?: string;
  /** Index of the upstream that served it; -1 when none could (the client got 502). */
  upstream: number;
  /** Upstreams that refused the connection before it, in order. */
  refusedBy: number[];
}

export interface RoundRobinProxy {
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  readonly port: number;
  /** The upstreams, in the order given; replaceable one by one (a restarted instance on a new port). */
  readonly upstreams: Upstream[];
  /** Requests routed so far, oldest first (the last MAX_LOG). */
  readonly routed: readonly RoutedRequest[];
  /** Requests each upstream served. */
  readonly served: readonly number[];
  /** Requests forwarded and not finished yet, with the upstream serving each. */
  inFlight(): RoutedRequest[];
  /**
   * When set, asked first for each request: an upstream index sends the request there (if it is
   * not down; the rotation does not move), undefined leaves it to the rotation. For scenarios
   * that need a request on a given instance ("the early GET lands on the other one").
   */
  steer: ((req: { method: string; url: string }) => number | undefined) | undefined;
  /** Takes an upstream out of the rotation (true) or puts it back (false). */
  setDown(index: number, down: boolean): void;
  /** Closes the listener and every connection, both sides. */
  stop(): Promise<void>;
}

/** Hop-by-hop headers: about one connection, never forwarded. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'proxy-authorization', 'proxy-authenticate']);

const MAX_LOG = 100_000;

/** Errors that mean the upstream took no part of the request: another may take it whole. */
const NOT_CONNECTED = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'EPIPE']);

function forwardedHeaders(req: http.IncomingMessage): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
  }
  const client = req.socket.remoteAddress ?? '';
  const prior = req.headers['x-forwarded-for'];
  out['x-forwarded-for'] = prior === undefined || prior === '' ? client : `${String(prior)}, ${client}`;
  return out;
}

function responseHeaders(res: http.IncomingMessage): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(res.headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
  }
  return out;
}

/** Starts the proxy on a random 127.0.0.1 port. */
export async function startRoundRobinProxy(upstreams: Upstream[]): Promise<RoundRobinProxy> {
  if (upstreams.length === 0) throw new Error('a proxy needs at least one upstream');
  const list = upstreams.map((u) => ({ ...u }));
  const down = list.map(() => false);
  const served = list.map(() => 0);
  const routed: RoutedRequest[] = [];
  const active = new Set<RoutedRequest>();
  const sockets = new Set<Socket>();
  // Keep-alive toward each upstream, as nginx's `keepalive` would; a connection that died with
  // its process is dropped by the agent when the kernel closes it.
  const agents = list.map(() => new http.Agent({ keepAlive: true }));
  let next = 0;

  /** The next upstream in turn that is not down and not in `skip`; -1 when none is left. */
  const pick = (skip: ReadonlySet<number>): number => {
    for (let i = 0; i < list.length; i++) {
      const candidate = (next + i) % list.length;
      if (!down[candidate] && !skip.has(candidate)) {
        next = (candidate + 1) % list.length;
        return candidate;
      }
    }
    return -1;
  };

  const forward = (req: http.IncomingMessage, res: http.ServerResponse, entry: RoutedRequest, tried: Set<number>): void => {
    const steered = tried.size === 0 ? proxy.steer?.({ method: entry.method, url: entry.url }) : undefined;
    const index = steered !== undefined && steered >= 0 && steered < list.length && !down[steered] ? steered : pick(tried);
    if (index < 0) {
      entry.upstream = -1;
      active.delete(entry);
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' }).end('no upstream available\n');
      else res.destroy();
      req.resume();
      return;
    }
    tried.add(index);
    entry.upstream = index;
    const target = list[index]!;
    let bodyStarted = false;
    let answered = false;
    const bodyless = req.headers['content-length'] === '0' || (req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined);
    const up = http.request({ host: target.host, port: target.port, method: req.method, path: req.url, headers: forwardedHeaders(req), agent: agents[index] }, (upRes) => {
      answered = true;
      served[index]!++;
      res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, responseHeaders(upRes));
      upRes.pipe(res);
      // An upstream that dies mid-answer: the client must see the answer cut, not a short success.
      upRes.on('aborted', () => res.destroy());
      upRes.on('error', () => res.destroy());
      upRes.on('end', () => active.delete(entry));
    });
    up.on('error', (err: NodeJS.ErrnoException) => {
      if (!answered && (!bodyStarted || bodyless) && NOT_CONNECTED.has(err.code ?? '') && !res.destroyed) {
        entry.refusedBy.push(index);
        forward(req, res, entry, tried);
        return;
      }
      active.delete(entry);
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' }).end(`upstream ${index} failed: ${err.message}\n`);
      else res.destroy();
    });
    // The client gone (a long-poll given up, a download aborted): so is the upstream request.
    res.on('close', () => {
      if (!res.writableFinished) up.destroy();
      active.delete(entry);
    });
    // The body waits for a connected socket, so that a refused connection has consumed none of
    // it and the next upstream can take the request whole.
    up.on('socket', (socket: Socket) => {
      const send = (): void => {
        bodyStarted = true;
        // A body-less request tried before has ended already: piping it again would never end.
        if (req.readableEnded) up.end();
        else req.pipe(up);
      };
      if (socket.connecting) socket.once('connect', send);
      else send();
    });
  };

  const server = http.createServer((req, res) => {
    const range = req.headers.range ?? req.headers['content-range'];
    const entry: RoutedRequest = { method: req.method ?? 'GET', url: req.url ?? '/', upstream: -1, refusedBy: [], ...(range !== undefined ? { range } : {}) };
    routed.push(entry);
    if (routed.length > MAX_LOG) routed.splice(0, routed.length - MAX_LOG);
    active.add(entry);
    forward(req, res, entry, new Set());
  });
  // No request timeout of its own: long-polls and large transfers take as long as they take.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  server.keepAliveTimeout = 60_000;
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  const proxy: RoundRobinProxy = {
    url: `http://127.0.0.1:${port}`,
    port,
    upstreams: list,
    routed,
    served,
    steer: undefined,
    inFlight: () => [...active],
    setDown: (index, isDown) => {
      if (index < 0 || index >= list.length) throw new Error(`no upstream ${index}`);
      down[index] = isDown;
    },
    stop: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      for (const a of agents) a.destroy();
      await closed;
    },
  };
  return proxy;
}
