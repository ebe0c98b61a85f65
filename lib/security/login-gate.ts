/**
 * The one way in, for the REST API, the SPI and the embedded MQTT broker alike: a login is
 * throttled (login-throttle.ts), then judged by a passport `BasicStrategy` whose verify function
 * asks the node's {@link Authenticator} (`preset`, `dummy` or `external`), so the same identity
 * reaches the engine whatever the transport. Passport runs without sessions and with a custom
 * callback: a failure is ours to answer (the reference's `403 Unauthorized`), never passport's
 * 401 challenge. ADR 15.
 */
import { Passport, type StrategyCreatedStatic } from 'passport';
import { BasicStrategy } from 'passport-http';
import type { Request, Response } from 'express';
import { TooManyRequestsError } from '../model/index.js';
import { basicCredentials } from './basic-credentials.js';
import { TrustedProxies } from './client-address.js';
import type { Authenticator, Identity } from './identity.js';
import { LoginThrottle, type LoginThrottleOptions } from './login-throttle.js';

export type LoginTransport = 'REST' | 'SPI' | 'MQTT';

/** One login as any transport sees it. */
export interface LoginAttempt {
  /** The HTTP `Authorization` header; for MQTT, one made of the CONNECT's user name and password. */
  authorization: string | undefined;
  /** The caller's address (see LoginGate.clientAddress): a throttle key, and what the logs name. */
  source: string;
  transport: LoginTransport;
}

export interface LoginGateOptions {
  /** Failed-login throttling; default 10 failures per 60 s. */
  throttle?: LoginThrottleOptions;
  /**
   * Throttle episodes (WARN, once each: app key and address, never the secret). Refused logins
   * are the transports' to log, with what they know of the caller.
   */
  log?: { warn(obj: object, msg: string): void };
  /**
   * `TRUSTED_PROXIES`: comma-separated networks of the load balancers whose `X-Forwarded-For`
   * names the client (client-address.ts); default none.
   * @throws TrustedProxiesError (from the constructor) for an entry that is not a network
   */
  trustedProxies?: string;
}

export const DEFAULT_THROTTLE: LoginThrottleOptions = { maxFailures: 10, windowMs: 60_000 };

type Verify = (appKey: string, secret: string, done: (err: unknown, user?: Identity | false) => void) => void;

/**
 * passport-http's BasicStrategy reading the header as the reference does (Go's
 * `Request.BasicAuth`): passport-http cuts the secret at a second colon and refuses an empty one
 * before its verify function runs, where the reference keeps colons and its `dummy` handler takes
 * an empty secret. The parse is ours (basic-credentials.ts); the rest is the strategy's.
 */
class ReferenceBasicStrategy extends BasicStrategy {
  constructor(
    name: string,
    private readonly verifyCredentials: Verify,
  ) {
    super({ realm: 'edgesync' }, verifyCredentials);
    this.name = name;
  }

  override authenticate(this: ReferenceBasicStrategy & StrategyCreatedStatic, req: Request): void {
    const creds = basicCredentials(req.headers.authorization);
    // An empty app key never matches, whatever the handler. [ref rest-api §4.1]
    if (creds === null || creds.appKey === '') {
      this.fail();
      return;
    }
    this.verifyCredentials(creds.appKey, creds.secret, (err, user) => {
      if (err !== null && err !== undefined) this.error(asError(err));
      else if (user === undefined || user === false) this.fail();
      else this.success(user);
    });
  }
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(typeof err === 'string' ? err : 'authentication failed');
}

/** What passport hands a custom callback a `res` for; no strategy of ours writes to it. */
const NO_RESPONSE = {} as Response;

const gates = new WeakMap<Authenticator, LoginGate>();

export class LoginGate implements Authenticator {
  readonly name: string;
  readonly throttle: LoginThrottle;
  private readonly proxies: TrustedProxies;
  private readonly passport = new Passport();

  constructor(
    /** The handler that judges credentials. */
    readonly authenticator: Authenticator,
    private readonly options: LoginGateOptions = {},
  ) {
    this.name = authenticator.name;
    this.throttle = new LoginThrottle(options.throttle ?? DEFAULT_THROTTLE);
    this.proxies = new TrustedProxies(options.trustedProxies);
    const verify: Verify = (appKey, secret, done) => {
      authenticator.authenticate(appKey, secret).then(
        (identity) => done(null, identity ?? false),
        (err: unknown) => done(err),
      );
    };
    this.passport.use(this.name, new ReferenceBasicStrategy(this.name, verify));
    gates.set(authenticator, this);
  }

  /**
   * The gate of an authenticator: itself if it is one, else the one made for it (by the node,
   * with its settings), else a new one with the defaults, kept for the next caller so that every
   * transport given the same authenticator shares one throttle.
   */
  static of(authenticator: Authenticator): LoginGate {
    if (authenticator instanceof LoginGate) return authenticator;
    return gates.get(authenticator) ?? new LoginGate(authenticator);
  }

  /**
   * The address an HTTP login comes from: the connection's peer, or, when that peer is a trusted
   * proxy, the client its `X-Forwarded-For` names (client-address.ts).
   * @param remote the socket's `remoteAddress` (undefined for a unix socket)
   * @param forwardedFor the request's `X-Forwarded-For`
   */
  clientAddress(remote: string | undefined, forwardedFor: string | undefined): string {
    return this.proxies.clientOf(remote, forwardedFor);
  }

  /** The handler's own check, without passport, throttle or logs (what `Authenticator` promises). */
  authenticate(appKey: string, secret: string): Promise<Identity | null> {
    return this.authenticator.authenticate(appKey, secret);
  }

  /**
   * @returns the caller's identity; null without credentials (not a login: neither counted nor
   *   logged) or when they are refused
   * @throws TooManyRequestsError (with `retryAfterSeconds`) while the app key or the address is
   *   throttled, before any secret is checked
   * @throws DependencyUnavailableError when the handler cannot judge (the identity service is down)
   */
  async login(attempt: LoginAttempt): Promise<Identity | null> {
    const creds = basicCredentials(attempt.authorization);
    if (creds === null) return null;
    const throttled = this.throttle.check(creds.appKey, attempt.source);
    if (throttled !== null) {
      if (throttled.firstOfEpisode) {
        this.options.log?.warn(
          { appKey: creds.appKey, source: attempt.source, transport: attempt.transport, throttledBy: throttled.by, retryAfterSeconds: throttled.retryAfterSeconds },
          'too many failed logins: refusing logins unchecked for a while (logged once per episode)',
        );
      }
      const what = throttled.by === 'source' ? 'from this address' : 'for this app key';
      throw new TooManyRequestsError(`Too many failed logins ${what}; try again in ${throttled.retryAfterSeconds} s`, throttled.retryAfterSeconds);
    }
    const identity = await this.viaPassport(attempt.authorization);
    if (identity === null) this.throttle.failed(creds.appKey, attempt.source);
    else this.throttle.succeeded(creds.appKey, attempt.source);
    return identity;
  }

  private viaPassport(authorization: string | undefined): Promise<Identity | null> {
    // Passport needs only the header; a request of its own keeps passport's additions
    // (req.login, req.user…) off the transports' requests.
    const req = { headers: { authorization } } as Request;
    return new Promise<Identity | null>((resolve, reject) => {
      const middleware = this.passport.authenticate(this.name, { session: false }, (err: unknown, user: Express.User | false | null) => {
        if (err !== null && err !== undefined) reject(asError(err));
        else resolve(user === false || user === null || user === undefined ? null : (user as Identity));
      }) as (req: Request, res: Response, next: (err?: unknown) => void) => void;
      middleware(req, NO_RESPONSE, (err?: unknown) => reject(err instanceof Error ? err : new Error('passport passed without a decision')));
    });
  }
}
