/**
 * `AUTHENTICATION_HANDLER=external`: credentials checked by an identity service over HTTP(S), the
 * way the reference plugs into an identity provider (its exchange authenticator) without tying
 * us to one. The request and the answer are documented in config/external-identity.md:
 *
 *     POST <url>   {"appKey": "...", "secret": "..."}
 *     200 {"type": "user", "orgID": "org1", "username": "alice"}   accepted (users-file type names)
 *     401, 403, 404                                                 refused
 *     anything else, or no answer in time                           the service is down
 *
 * A down service is not a refusal: the caller gets 503 with the reason (DependencyUnavailableError),
 * nothing is cached, and no failed login is counted against the client.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { DependencyUnavailableError } from '../model/index.js';
import type { Authenticator, Identity } from './identity.js';
import { roleForUserType } from './preset-authenticator.js';
import { identityAnswerSchema } from './users-file.js';

export interface ExternalAuthenticatorOptions {
  /** `http://` or `https://` URL the credentials are POSTed to. */
  url: string;
  /** PEM of the CA(s) that sign the service's certificate (https); undefined = the system's. */
  caPem?: string;
  /** How long an accepted credential is trusted without asking again, ms; 0 = always ask. */
  cacheTtlMs: number;
  /** How long one request to the service may take, ms. */
  timeoutMs: number;
  /** Millisecond clock, for the cache; tests inject a fake one. */
  now?: () => number;
  /** Told when the service goes down and when it answers again (once each, not per request). */
  log?: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
}

/** Largest answer read from the service: an identity is a few hundred bytes. */
const MAX_ANSWER_BYTES = 64 * 1024;
/** Accepted credentials remembered at most; the oldest are dropped first. */
const MAX_CACHE_ENTRIES = 10_000;

interface CacheEntry {
  mac: Buffer;
  identity: Identity;
  expiresAt: number;
}

type Verdict = { kind: 'accepted'; identity: Identity } | { kind: 'refused' } | { kind: 'down'; reason: string };

/** The service's answer as a verdict; a 200 whose body is no valid identity counts as the service failing. */
function verdictOf(status: number, body: string): Verdict {
  if (status === 401 || status === 403 || status === 404) return { kind: 'refused' };
  if (status !== 200) return { kind: 'down', reason: `it answered HTTP ${status}` };
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch {
    return { kind: 'down', reason: 'its answer is not JSON' };
  }
  const parsed = identityAnswerSchema.safeParse(raw);
  if (!parsed.success) {
    const why = parsed.error.issues.map((i) => `${i.path.map(String).join('.') || '(top level)'}: ${i.message}`).join('; ');
    return { kind: 'down', reason: `its answer is not a valid identity (${why})` };
  }
  const role = roleForUserType(parsed.data.type);
  if (role === null) return { kind: 'down', reason: `its answer has an unknown type ${parsed.data.type}` };
  return { kind: 'accepted', identity: { role, orgID: parsed.data.orgID, userID: parsed.data.username } };
}

export class ExternalAuthenticator implements Authenticator {
  readonly name = 'external';

  /** Per-process key: the cache holds MACs of secrets, worthless outside this process. */
  private readonly macKey = randomBytes(32);
  private readonly cache = new Map<string, CacheEntry>();
  /** Concurrent logins with the same credentials share one request to the service. */
  private readonly inFlight = new Map<string, Promise<Identity | null>>();
  private readonly target: URL;
  private readonly now: () => number;
  private down = false;

  /** @throws Error when the URL is not http(s) */
  constructor(private readonly options: ExternalAuthenticatorOptions) {
    this.target = new URL(options.url);
    if (this.target.protocol !== 'http:' && this.target.protocol !== 'https:') throw new Error(`The identity service URL must be http or https, got ${options.url}`);
    this.now = options.now ?? Date.now;
  }

  /** Where the service is, for logs (never with credentials of its own). */
  get url(): string {
    const u = new URL(this.target.href);
    u.username = '';
    u.password = '';
    return u.href;
  }

  /** Forgets every cached verification. */
  clearCache(): void {
    this.cache.clear();
  }

  /**
   * @returns the identity, or null when the service refuses the credentials
   * @throws DependencyUnavailableError when the service cannot say (down, slow, a bad answer)
   */
  async authenticate(appKey: string, secret: string): Promise<Identity | null> {
    // As with the users file: an empty secret matches nothing, and the service is not asked.
    if (secret === '') return null;
    const mac = createHmac('sha256', this.macKey).update(secret, 'utf8').digest();
    const hit = this.cache.get(appKey);
    if (hit !== undefined) {
      if (this.now() < hit.expiresAt && timingSafeEqual(hit.mac, mac)) return hit.identity;
      // Expired: dropped. Another secret: kept, the service is asked about that one.
      if (this.now() >= hit.expiresAt) this.cache.delete(appKey);
    }
    const flightKey = `${appKey}\0${mac.toString('hex')}`;
    let pending = this.inFlight.get(flightKey);
    if (pending === undefined) {
      pending = this.ask(appKey, secret, mac).finally(() => this.inFlight.delete(flightKey));
      this.inFlight.set(flightKey, pending);
    }
    return pending;
  }

  private async ask(appKey: string, secret: string, mac: Buffer): Promise<Identity | null> {
    const verdict = await this.post(JSON.stringify({ appKey, secret }));
    if (verdict.kind === 'down') {
      if (!this.down) this.options.log?.warn({ url: this.url, reason: verdict.reason }, 'the identity service is not answering; logins answer 503 until it does');
      this.down = true;
      throw new DependencyUnavailableError(`The identity service did not answer usefully: ${verdict.reason}`);
    }
    if (this.down) this.options.log?.info({ url: this.url }, 'the identity service answers again');
    this.down = false;
    if (verdict.kind === 'refused') return null;
    if (this.options.cacheTtlMs > 0) {
      if (this.cache.size >= MAX_CACHE_ENTRIES) {
        const oldest = this.cache.keys().next().value;
        if (oldest !== undefined) this.cache.delete(oldest);
      }
      this.cache.delete(appKey);
      this.cache.set(appKey, { mac, identity: verdict.identity, expiresAt: this.now() + this.options.cacheTtlMs });
    }
    return verdict.identity;
  }

  /** One request; every way it can fail becomes a `down` verdict with its reason. */
  private post(body: string): Promise<Verdict> {
    const secure = this.target.protocol === 'https:';
    const request = secure ? https.request : http.request;
    return new Promise<Verdict>((resolve) => {
      let settled = false;
      const settle = (v: Verdict): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(v);
      };
      const req = request(this.target, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json', 'Content-Length': String(Buffer.byteLength(body)) },
        ...(secure && this.options.caPem !== undefined ? { ca: this.options.caPem } : {}),
      });
      // One deadline for the whole exchange, the answer's body included.
      const timer = setTimeout(() => {
        settle({ kind: 'down', reason: `no answer within ${this.options.timeoutMs} ms` });
        req.destroy();
      }, this.options.timeoutMs);
      req.on('error', (err: Error & { code?: string }) => settle({ kind: 'down', reason: err.code ?? err.message }));
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_ANSWER_BYTES) {
            settle({ kind: 'down', reason: `its answer is larger than ${MAX_ANSWER_BYTES} bytes` });
            req.destroy();
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => settle(verdictOf(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'))));
        res.on('error', (err: Error) => settle({ kind: 'down', reason: err.message }));
      });
      req.end(body);
    });
  }
}
