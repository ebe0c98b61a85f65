/**
 * The `external` handler against a test double of the identity service: a real HTTP server on
 * loopback (test/helpers/identity-service-double.ts).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { DependencyUnavailableError } from '../../../lib/model/index.js';
import { ExternalAuthenticator } from '../../../lib/security/external-authenticator.js';
import { startIdentityServiceDouble, type IdentityServiceDouble } from '../../helpers/identity-service-double.js';

let idp: IdentityServiceDouble;

beforeAll(async () => {
  idp = await startIdentityServiceDouble({
    alice: { secret: 'alice-secret', type: 'user', orgID: 'org1', username: 'alice' },
    'org1/edge/n1': { secret: 'n1-secret', type: 'EdgeNode', orgID: 'org1', username: 'edge/n1' },
    root: { secret: 'root-secret', type: 'syncadmin', orgID: '', username: 'root' },
  });
});
afterAll(() => idp.close());
afterEach(() => {
  idp.accounts.set('alice', { secret: 'alice-secret', type: 'user', orgID: 'org1', username: 'alice' });
  idp.mode = 'normal';
  idp.delayMs = 0;
  idp.requests.length = 0;
});

function clock(): { now: () => number; advance(ms: number): void } {
  let t = 0;
  return { now: () => t, advance: (ms) => (t += ms) };
}

function handler(opts: { cacheTtlMs?: number; timeoutMs?: number; now?: () => number } = {}): ExternalAuthenticator {
  return new ExternalAuthenticator({ url: idp.url, cacheTtlMs: opts.cacheTtlMs ?? 60_000, timeoutMs: opts.timeoutMs ?? 2000, ...(opts.now ? { now: opts.now } : {}) });
}

describe('the external identity service handler', () => {
  it('takes the identity the service states, with the users file\'s type names (any case)', async () => {
    const a = handler();
    await expect(a.authenticate('alice', 'alice-secret')).resolves.toEqual({ role: 'user', orgID: 'org1', userID: 'alice' });
    await expect(a.authenticate('org1/edge/n1', 'n1-secret')).resolves.toEqual({ role: 'edgeNode', orgID: 'org1', userID: 'edge/n1' });
    await expect(a.authenticate('root', 'root-secret')).resolves.toEqual({ role: 'syncAdmin', orgID: '', userID: 'root' });
    expect(idp.requests[0]).toEqual({ appKey: 'alice', secret: 'alice-secret' });
  });

  it('is refused (null) when the service answers 401, 403 or 404', async () => {
    const a = handler();
    await expect(a.authenticate('alice', 'wrong')).resolves.toBeNull();
    await expect(a.authenticate('nobody', 'x')).resolves.toBeNull();
  });

  it('never asks about an empty secret', async () => {
    await expect(handler().authenticate('alice', '')).resolves.toBeNull();
    expect(idp.requests).toHaveLength(0);
  });

  it('caches an accepted credential for the TTL, then asks again', async () => {
    const c = clock();
    const a = handler({ cacheTtlMs: 10_000, now: c.now });
    await a.authenticate('alice', 'alice-secret');
    await a.authenticate('alice', 'alice-secret');
    expect(idp.requests).toHaveLength(1);
    c.advance(10_000);
    await a.authenticate('alice', 'alice-secret');
    expect(idp.requests).toHaveLength(2);
  });

  it('notices a changed secret: another secret is asked about, not taken from the cache', async () => {
    const a = handler();
    await expect(a.authenticate('alice', 'alice-secret')).resolves.not.toBeNull();
    idp.accounts.set('alice', { secret: 'new-secret', type: 'user', orgID: 'org1', username: 'alice' });
    await expect(a.authenticate('alice', 'new-secret')).resolves.toEqual({ role: 'user', orgID: 'org1', userID: 'alice' });
    expect(idp.requests.map((r) => r.secret)).toEqual(['alice-secret', 'new-secret']);
  });

  it('makes one request for concurrent logins with the same credentials', async () => {
    idp.delayMs = 50;
    const a = handler();
    const ids = await Promise.all(Array.from({ length: 20 }, () => a.authenticate('alice', 'alice-secret')));
    expect(ids.every((id) => id?.userID === 'alice')).toBe(true);
    expect(idp.requests).toHaveLength(1);
  });

  it.each([
    ['answers 500', 'error500' as const, /HTTP 500/],
    ['answers something that is not JSON', 'garbage' as const, /not JSON/],
    ['states an identity the users file would refuse', 'bad-identity' as const, /must be destType\/destID/],
  ])('is down, not refusing, when it %s: a 503 with the reason, and nothing cached', async (_what, mode, reason) => {
    const a = handler();
    idp.mode = mode;
    const err = await a.authenticate('alice', 'alice-secret').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DependencyUnavailableError);
    expect((err as DependencyUnavailableError).status).toBe(503);
    expect((err as Error).message).toMatch(reason);
    idp.mode = 'normal';
    await expect(a.authenticate('alice', 'alice-secret')).resolves.not.toBeNull();
  });

  it('is down when no answer comes within the timeout', async () => {
    idp.mode = 'stall';
    const started = Date.now();
    await expect(handler({ timeoutMs: 200 }).authenticate('alice', 'alice-secret')).rejects.toThrow(/no answer within 200 ms/);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('is down when nothing listens at the URL', async () => {
    const gone = new ExternalAuthenticator({ url: 'http://127.0.0.1:1/check', cacheTtlMs: 0, timeoutMs: 1000 });
    await expect(gone.authenticate('alice', 'alice-secret')).rejects.toBeInstanceOf(DependencyUnavailableError);
  });

  it('logs an outage once and the recovery once, never a secret', async () => {
    const lines: string[] = [];
    const log = { warn: (o: object, m: string) => lines.push(`${m} ${JSON.stringify(o)}`), info: (o: object, m: string) => lines.push(`${m} ${JSON.stringify(o)}`) };
    const a = new ExternalAuthenticator({ url: idp.url, cacheTtlMs: 0, timeoutMs: 1000, log });
    idp.mode = 'error500';
    for (let i = 0; i < 5; i++) await a.authenticate('alice', `guess-${i}`).catch(() => undefined);
    idp.mode = 'normal';
    await a.authenticate('alice', 'alice-secret');
    expect(lines).toHaveLength(2);
    expect(lines.join('\n')).not.toMatch(/guess-|alice-secret/);
  });

  it('refuses a URL that is not http or https', () => {
    expect(() => new ExternalAuthenticator({ url: 'ftp://idp/check', cacheTtlMs: 0, timeoutMs: 1000 })).toThrow(/http or https/);
  });
});
