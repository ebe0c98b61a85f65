/**
 * The CSS's embedded MQTT broker (aedes), for a CSS whose BROKER_ADDRESS is empty: a TCP
 * listener and, when a certificate is given, a TLS one. Unlike an open reference deployment
 * [ref sync-protocol §2 "MQTT authenticity": any client can act as any ESS], every client logs
 * in and is held to its own topics:
 *
 * - an edge node (`edgeNode` identity `type/id`) publishes only on `iot-2/type/{type}/id/{id}/evt/…`
 *   and subscribes only under `iot-2/type/{type}/id/{id}/cmd/…`;
 * - a sync admin, an admin of the CSS's org, and the CSS's own client (an internal credential,
 *   a random secret made per process) may do anything;
 * - everyone else is refused.
 *
 * Topics carry no org [ref sync-protocol §2]: two orgs' nodes with the same type and id would
 * share topics, so a multi-org CSS should keep types and ids distinct across orgs.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import { createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Duplex, Writable } from 'node:stream';
import { createServer as createTlsServer } from 'node:tls';
import { Aedes, type AuthenticateError, type Client, type PublishPacket, type Subscription } from 'aedes';
import { DependencyUnavailableError, TooManyRequestsError } from '../../model/index.js';
import { LoginGate, type Authenticator, type Identity } from '../../security/index.js';
import { PacketSizeGuard } from './packet-size-guard.js';
import { isTopicLevel } from './topics.js';
import { duplexPair } from './duplex-pair.js';
import { coalesceWrites, flushCorked } from './write-coalescing.js';

export interface EmbeddedBrokerOptions {
  /** Address to listen on: 127.0.0.1 for this host only, 0.0.0.0 for every interface. */
  host: string;
  /** 0: a random free port. */
  port: number;
  /** A second listener with TLS (the node's server certificate). */
  tls?: { port: number; certPem: string; keyPem: string };
  authenticator: Authenticator;
  /** The CSS's org: its admins may do anything. Unset: only sync admins (and the CSS itself). */
  orgID?: string;
  /** Largest packet a client may send. Default 256 MiB. */
  maxPacketSize?: number;
  log?: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void; debug(obj: object, msg: string): void };
}

export interface EmbeddedBroker {
  /** The bound TCP port (the chosen one when 0 was asked). */
  readonly port: number;
  /** The bound TLS port, or null without TLS. */
  readonly tlsPort: number | null;
  /** What the CSS's own client logs in with; never logged, never persisted. */
  readonly internalCredentials: { username: string; password: string };
  /**
   * A connection to the broker inside this process, for the CSS's own client (which logs in
   * with `internalCredentials` over it as over a socket): no loopback socket, no copy of what
   * it publishes (duplex-pair.ts).
   */
  connectInternal(): Duplex;
  /** Clients connected now. */
  connectedClients(): number;
  /** Stops listening and disconnects every client. */
  close(): Promise<void>;
}

/** The internal user's name: `$` cannot start an appKey the authenticators give out. */
export const INTERNAL_USERNAME = '$edgesync-css';

const DEFAULT_MAX_PACKET = 256 * 1024 * 1024;
/** CONNACK 3: server unavailable (the identity service is down) [MQTT-3.2.2.3]. */
const SERVER_UNAVAILABLE = 3;
/** CONNACK 4: bad user name or password [MQTT-3.2.2.3]. */
const BAD_CREDENTIALS = 4;
/** CONNACK 5: not authorized (too many failed logins: refused unchecked) [MQTT-3.2.2.3]. */
const NOT_AUTHORIZED = 5;

type Grant = { kind: 'internal' } | { kind: 'all'; identity: Identity } | { kind: 'node'; identity: Identity; prefix: string };

function refusal(returnCode: AuthenticateError['returnCode'] = BAD_CREDENTIALS): AuthenticateError {
  return Object.assign<Error, { returnCode: AuthenticateError['returnCode'] }>(new Error('Login refused'), { returnCode });
}

/** Compares a presented secret with the expected one without leaking, by timing, where they differ. */
function constantTimeEqual(presented: string, expected: string): boolean {
  // Equal-length digests: timingSafeEqual needs equal lengths, and a length check would leak one.
  const a = createHash('sha256').update(presented, 'utf8').digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(a, b);
}

/**
 * Starts aedes and its listeners.
 * @throws Error when a port cannot be bound (in use, no permission)
 */
export async function startEmbeddedBroker(opts: EmbeddedBrokerOptions): Promise<EmbeddedBroker> {
  const secret = randomBytes(32).toString('base64url');
  const grants = new WeakMap<Client, Grant>();
  const addresses = new WeakMap<object, string>();
  const maxPacket = opts.maxPacketSize ?? DEFAULT_MAX_PACKET;
  const where = (client: Client | null): string => (client === null ? 'unknown' : (addresses.get(client.conn) ?? 'unknown'));

  const gate = LoginGate.of(opts.authenticator);

  const grantFor = (id: Identity): Grant | null => {
    if (id.role === 'syncAdmin' || (id.role === 'admin' && opts.orgID !== undefined && id.orgID === opts.orgID)) return { kind: 'all', identity: id };
    if (id.role !== 'edgeNode') return null;
    const parts = id.userID.split('/');
    // A type or id that is no topic level ('+', '#') would widen the node's filters to others'.
    if (parts.length !== 2 || !parts.every(isTopicLevel)) return null;
    return { kind: 'node', identity: id, prefix: `iot-2/type/${parts[0]!}/id/${parts[1]!}/` };
  };

  const broker = await Aedes.createBroker({
    authenticate(client, username, password, done) {
      const user = username ?? '';
      const pass = password?.toString('utf8') ?? '';
      const refuse = (why: string): void => {
        opts.log?.info({ clientID: client.id, username: user, address: where(client), refused: why }, 'MQTT login refused');
        done(refusal(), false);
      };
      if (user === INTERNAL_USERNAME) {
        if (constantTimeEqual(pass, secret)) {
          grants.set(client, { kind: 'internal' });
          done(null, true);
        } else refuse('wrong internal secret');
        return;
      }
      if (user === '') return refuse('no user name');
      // An app key has no colon (users-file.ts); one here would move the split of the header.
      if (user.includes(':')) return refuse('a user name with a colon');
      const authorization = `Basic ${Buffer.from(`${user}:${pass}`, 'utf8').toString('base64')}`;
      // The same gate as the REST API and the SPI: throttle, passport, the node's handler.
      // The address without its port: a new connection must not be a new throttle key.
      gate.login({ authorization, source: where(client).replace(/:\d+$/, ''), transport: 'MQTT' }).then(
        (id) => {
          const grant = id === null ? null : grantFor(id);
          if (grant === null) return refuse(id === null ? 'unknown user or wrong password' : `role ${id.role} may not use the broker`);
          grants.set(client, grant);
          opts.log?.debug({ clientID: client.id, username: user, address: where(client) }, 'MQTT client logged in');
          done(null, true);
        },
        (err: unknown) => {
          if (err instanceof TooManyRequestsError) {
            // Logged by the gate, once per throttle episode.
            done(refusal(NOT_AUTHORIZED), false);
            return;
          }
          if (err instanceof DependencyUnavailableError) {
            opts.log?.info({ clientID: client.id, username: user, address: where(client), reason: err.message }, 'MQTT login not judged: the identity service is down');
            done(refusal(SERVER_UNAVAILABLE), false);
            return;
          }
          opts.log?.warn({ err, clientID: client.id, username: user }, 'MQTT login failed in the authenticator');
          done(refusal(), false);
        },
      );
    },
    authorizePublish(client, packet: PublishPacket, done) {
      const grant = client === null ? undefined : grants.get(client);
      const allowed =
        grant !== undefined && (grant.kind !== 'node' ? !packet.topic.startsWith('$SYS') : packet.topic.startsWith(`${grant.prefix}evt/`));
      if (allowed) return done(null);
      opts.log?.info({ clientID: client?.id ?? '', username: grant?.kind === 'internal' ? INTERNAL_USERNAME : (grant?.identity.userID ?? ''), address: where(client), topic: packet.topic }, 'MQTT publish refused');
      // aedes closes the connection: MQTT 3.1.1 has no way to refuse one publish [MQTT-3.3.5-2].
      done(new Error(`publish on ${packet.topic} not allowed`));
    },
    authorizeSubscribe(client, sub: Subscription, done) {
      const grant = grants.get(client);
      const allowed = grant !== undefined && (grant.kind !== 'node' || sub.topic.startsWith(`${grant.prefix}cmd/`));
      if (allowed) return done(null, sub);
      opts.log?.info({ clientID: client.id, username: grant?.kind === 'internal' ? INTERNAL_USERNAME : (grant?.identity.userID ?? ''), address: where(client), topic: sub.topic }, 'MQTT subscription refused');
      // A null subscription is a SUBACK failure (0x80) for this filter, the connection stays.
      done(null, null);
    },
  });

  const sockets = new Set<Socket>();
  const serve = (socket: Socket): void => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    // Small packets (PUBACKs, control messages) go out at once, not held by Nagle for the ack
    // of the previous one; those of one turn of the event loop in one write (write-coalescing.ts).
    socket.setNoDelay(true);
    const guard = new PacketSizeGuard(maxPacket);
    socket.pipe(guard);
    const conn = Duplex.from({ readable: guard, writable: coalescingWriter(socket) });
    addresses.set(conn, `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`);
    guard.once('error', (err) => {
      opts.log?.info({ address: addresses.get(conn), err: err.message }, 'MQTT client disconnected: bad packet');
      socket.destroy();
    });
    socket.once('error', () => guard.destroy());
    broker.handle(conn);
  };

  const listen = async (server: Server, port: number): Promise<number> => {
    server.listen(port, opts.host);
    await once(server, 'listening');
    return (server.address() as AddressInfo).port;
  };
  const servers: Server[] = [];
  try {
    const tcp = createTcpServer(serve);
    servers.push(tcp);
    const port = await listen(tcp, opts.port);
    let tlsPort: number | null = null;
    if (opts.tls !== undefined) {
      const tls = createTlsServer({ cert: opts.tls.certPem, key: opts.tls.keyPem }, serve);
      servers.push(tls);
      tlsPort = await listen(tls, opts.tls.port);
    }
    opts.log?.info({ host: opts.host, port, tlsPort }, 'embedded MQTT broker listening');
    return {
      port,
      tlsPort,
      internalCredentials: { username: INTERNAL_USERNAME, password: secret },
      connectInternal: () => {
        const [client, side] = duplexPair();
        addresses.set(side, 'in-process');
        broker.handle(side);
        return client;
      },
      connectedClients: () => broker.connectedClients,
      close: async () => {
        await closeAll(servers, sockets, broker);
      },
    };
  } catch (e) {
    await closeAll(servers, sockets, broker);
    throw e;
  }
}

/**
 * What aedes writes to a client, passed on to its socket, the writes of one turn together
 * (coalesceWrites). Backpressure is the socket's: a write waits for its drain when it is full.
 */
function coalescingWriter(socket: Socket): Writable {
  const flush = coalesceWrites(socket);
  const out = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      flush();
      if (socket.write(chunk)) callback();
      else socket.once('drain', () => callback());
    },
    final(callback) {
      socket.end(() => callback());
    },
    destroy(err, callback) {
      // aedes writes its last packet (a CONNACK refusing a login) just before it cuts the connection.
      flushCorked(socket);
      socket.destroy(err ?? undefined);
      callback(err);
    },
  });
  // A write after the socket closed fails instead of waiting for a drain that never comes.
  socket.once('close', () => out.destroy());
  return out;
}

async function closeAll(servers: Server[], sockets: Set<Socket>, broker: Aedes): Promise<void> {
  const closed = servers.filter((s) => s.listening).map((s) => new Promise<void>((r) => s.close(() => r())));
  await new Promise<void>((r) => broker.close(() => r()));
  for (const s of sockets) s.destroy();
  await Promise.all(closed);
}
