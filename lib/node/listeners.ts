/**
 * The HTTP(S) servers of a node, per LISTENING_TYPE: plain, TLS, both, or a unix socket.
 * [ref sync-protocol §7 ListeningType]
 */
import { chmod, rm } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { RequestListener } from 'node:http';
import type { Config } from '../config/index.js';

export interface Listener {
  server: http.Server;
  /** e.g. `https://127.0.0.1:8443` or `unix:/path/sock` */
  url: string;
  protocol: 'http' | 'https';
}

export interface Tls {
  certPem: string;
  keyPem: string;
}

function listen(server: http.Server, target: { port: number; host: string } | { path: string }): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const done = (): void => {
      server.off('error', reject);
      resolve();
    };
    if ('path' in target) server.listen(target.path, done);
    else server.listen(target.port, target.host, done);
  });
}

function hostForUrl(host: string): string {
  if (host === '' || host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

/** Per server: closes its connections that carry no request (see trackQuietSockets). */
const quietClosers = new WeakMap<http.Server, () => void>();

/**
 * Keeps the server's open connections and how many requests each carries, so a stop can close
 * those that carry none. Node's closeIdleConnections leaves out a connection that has not sent a
 * request yet (a browser's pre-opened one, one left by an aborted fetch): such a connection held
 * a stop for the whole grace period. For TLS, a connection counts once its handshake is done.
 */
function trackQuietSockets(server: http.Server, secure: boolean): void {
  const open = new Set<Socket>();
  const carrying = new WeakMap<Socket, number>();
  server.on(secure ? 'secureConnection' : 'connection', (socket: Socket) => {
    open.add(socket);
    socket.once('close', () => open.delete(socket));
  });
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const socket = req.socket;
    carrying.set(socket, (carrying.get(socket) ?? 0) + 1);
    res.once('close', () => carrying.set(socket, (carrying.get(socket) ?? 1) - 1));
  });
  quietClosers.set(server, () => {
    for (const socket of open) if ((carrying.get(socket) ?? 0) === 0) socket.destroy();
  });
}

function configure(server: http.Server, secure: boolean): http.Server {
  // Data uploads may legitimately take long; a stalled header is not.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  server.keepAliveTimeout = 65_000;
  trackQuietSockets(server, secure);
  return server;
}

export async function startListeners(config: Config, handler: RequestListener, tls: Tls | null): Promise<Listener[]> {
  const needTls = config.listeningType === 'secure' || config.listeningType === 'both' || config.listeningType === 'secure-unix';
  if (needTls && tls === null) throw new Error(`LISTENING_TYPE ${config.listeningType} needs a certificate`);
  const makeHttps = (): http.Server => configure(https.createServer({ cert: tls?.certPem, key: tls?.keyPem }, handler), true);
  const makeHttp = (): http.Server => configure(http.createServer(handler), false);
  const out: Listener[] = [];
  const host = config.listeningAddress;
  const tcp = async (server: http.Server, port: number, protocol: 'http' | 'https'): Promise<void> => {
    await listen(server, { port, host: host === '' ? '0.0.0.0' : host });
    const addr = server.address() as AddressInfo;
    out.push({ server, protocol, url: `${protocol}://${hostForUrl(host)}:${addr.port}` });
  };
  const unix = async (server: http.Server, protocol: 'http' | 'https'): Promise<void> => {
    // A socket file left by a crash would make listen fail with EADDRINUSE.
    await rm(host, { force: true });
    await listen(server, { path: host });
    await chmod(host, config.unixSocketFilePermissions);
    out.push({ server, protocol, url: `unix:${host}` });
  };
  switch (config.listeningType) {
    case 'unsecure':
      await tcp(makeHttp(), config.unsecureListeningPort, 'http');
      break;
    case 'secure':
      await tcp(makeHttps(), config.secureListeningPort, 'https');
      break;
    case 'both':
      await tcp(makeHttps(), config.secureListeningPort, 'https');
      await tcp(makeHttp(), config.unsecureListeningPort, 'http');
      break;
    case 'unix':
      await unix(makeHttp(), 'http');
      break;
    case 'secure-unix':
      await unix(makeHttps(), 'https');
      break;
  }
  return out;
}

/**
 * Stops accepting, lets in-flight requests finish for up to `graceMs`, then cuts what is left.
 * Idle keep-alive connections are closed at once so they do not hold the stop, and so is every
 * connection that goes idle later, when its in-flight request finishes: Node still answers those
 * with `Connection: keep-alive`, and the client's idle socket would otherwise hold the stop for
 * the whole grace period. The same goes for a connection that never sent a request.
 */
export async function stopListeners(listeners: readonly Listener[], graceMs: number): Promise<void> {
  await Promise.all(
    listeners.map(
      (l) =>
        new Promise<void>((resolve) => {
          const closeQuiet = (): void => {
            l.server.closeIdleConnections();
            quietClosers.get(l.server)?.();
          };
          const timer = setTimeout(() => l.server.closeAllConnections(), graceMs);
          const idle = setInterval(closeQuiet, 100);
          l.server.close(() => {
            clearTimeout(timer);
            clearInterval(idle);
            resolve();
          });
          closeQuiet();
        }),
    ),
  );
}

/** Whether a bound address (as `server.address()` or a URL host gives it) is loopback. */
function isLoopbackAddress(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\./.test(h) || /^::ffff:127\./.test(h);
}

/**
 * The addresses where a node serves plain HTTP, or its embedded broker plain MQTT, beyond
 * loopback (all interfaces included): where Basic credentials would cross a network in clear.
 * Unix sockets and TLS listeners never count.
 */
export function cleartextExposure(config: Pick<Config, 'listeningAddress'>, listeners: readonly Listener[], brokerUrls: readonly string[] = []): string[] {
  const host = config.listeningAddress === '' ? '0.0.0.0' : config.listeningAddress;
  if (isLoopbackAddress(host)) return [];
  const out: string[] = [];
  for (const l of listeners) {
    if (l.protocol !== 'http' || l.url.startsWith('unix:')) continue;
    const addr = l.server.address();
    if (addr !== null && typeof addr === 'object') out.push(`http://${addr.address.includes(':') ? `[${addr.address}]` : addr.address}:${addr.port}`);
  }
  for (const url of brokerUrls) if (url.startsWith('mqtt://')) out.push(url);
  return out;
}
