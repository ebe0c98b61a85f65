/**
 * The login gate: the one path of every login (REST, SPI, MQTT) through the throttle and
 * passport's BasicStrategy to the node's handler.
 */
import { describe, expect, it } from '@jest/globals';
import { DependencyUnavailableError, TooManyRequestsError } from '../../../lib/model/index.js';
import { DummyAuthenticator } from '../../../lib/security/dummy-authenticator.js';
import type { Authenticator, Identity } from '../../../lib/security/identity.js';
import { LoginGate, type LoginAttempt } from '../../../lib/security/login-gate.js';

const basic = (user: string, pass: string): string => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
const attempt = (authorization: string | undefined, source = '10.0.0.1'): LoginAttempt => ({ authorization, source, transport: 'REST' });

const ALICE: Identity = { role: 'user', orgID: 'org1', userID: 'alice' };

/** A handler that knows alice (secret `s3cret:with:colons`) and counts what it is asked. */
function counting(): Authenticator & { asked: [string, string][] } {
  const asked: [string, string][] = [];
  return {
    name: 'preset',
    asked,
    authenticate(appKey, secret) {
      asked.push([appKey, secret]);
      return Promise.resolve(appKey === 'alice' && secret === 's3cret:with:colons' ? ALICE : null);
    },
  };
}

describe('the login gate', () => {
  it('hands the handler the secret as the reference reads it: everything after the first colon', async () => {
    const h = counting();
    await expect(new LoginGate(h).login(attempt(basic('alice', 's3cret:with:colons')))).resolves.toEqual(ALICE);
    expect(h.asked).toEqual([['alice', 's3cret:with:colons']]);
  });

  it('treats no credentials as no login: null, the handler not asked, nothing counted', async () => {
    const h = counting();
    const gate = new LoginGate(h, { throttle: { maxFailures: 1, windowMs: 60_000 } });
    for (const header of [undefined, 'Bearer x', 'Basic bm9jb2xvbg==']) await expect(gate.login(attempt(header))).resolves.toBeNull();
    expect(h.asked).toEqual([]);
    expect(gate.throttle.size).toBe(0);
  });

  it('never matches an empty app key, even with dummy', async () => {
    await expect(new LoginGate(new DummyAuthenticator()).login(attempt(basic('', 'x')))).resolves.toBeNull();
  });

  it('lets dummy take any secret, the empty one included', async () => {
    const gate = new LoginGate(new DummyAuthenticator());
    await expect(gate.login(attempt(basic('org1/edge/n1', '')))).resolves.toEqual({ role: 'edgeNode', orgID: 'org1', userID: 'edge/n1' });
    await expect(gate.login(attempt(basic('admin@org1', 'anything:at:all')))).resolves.toEqual({ role: 'admin', orgID: 'org1', userID: 'admin' });
  });

  it('throttles after the failures: 429 with Retry-After, before the handler is asked (no secret check)', async () => {
    const h = counting();
    const warned: object[] = [];
    const gate = new LoginGate(h, { throttle: { maxFailures: 3, windowMs: 60_000 }, log: { warn: (o) => warned.push(o) } });
    for (let i = 0; i < 3; i++) await expect(gate.login(attempt(basic('alice', `guess${i}`)))).resolves.toBeNull();
    const asked = h.asked.length;
    for (let i = 0; i < 20; i++) {
      const err = await gate.login(attempt(basic('alice', 's3cret:with:colons'))).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TooManyRequestsError);
      expect(err).toMatchObject({ status: 429, retryAfterSeconds: 60 });
    }
    expect(h.asked).toHaveLength(asked);
    // One line for the episode, naming the app key and the address, never a secret.
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatchObject({ appKey: 'alice', source: '10.0.0.1', transport: 'REST' });
    expect(JSON.stringify(warned)).not.toMatch(/guess|s3cret/);
  });

  it('a success from one address does not free another address that was guessing', async () => {
    const gate = new LoginGate(counting(), { throttle: { maxFailures: 2, windowMs: 60_000 } });
    for (let i = 0; i < 2; i++) await gate.login(attempt(basic('mallory', 'x'), '10.6.6.6'));
    await expect(gate.login(attempt(basic('alice', 's3cret:with:colons'), '10.0.0.1'))).resolves.toEqual(ALICE);
    await expect(gate.login(attempt(basic('bob', 'y'), '10.6.6.6'))).rejects.toBeInstanceOf(TooManyRequestsError);
  });

  it('passes a handler that cannot judge on as its error (503), counting no failure', async () => {
    const down: Authenticator = { name: 'external', authenticate: () => Promise.reject(new DependencyUnavailableError('The identity service did not answer usefully: HTTP 500')) };
    const gate = new LoginGate(down, { throttle: { maxFailures: 1, windowMs: 60_000 } });
    for (let i = 0; i < 3; i++) await expect(gate.login(attempt(basic('alice', 'x')))).rejects.toBeInstanceOf(DependencyUnavailableError);
    expect(gate.throttle.size).toBe(0);
  });

  it('is one gate per handler: every transport given the same handler shares its throttle', () => {
    const h = counting();
    const gate = new LoginGate(h);
    expect(LoginGate.of(h)).toBe(gate);
    expect(LoginGate.of(gate)).toBe(gate);
    const other = counting();
    expect(LoginGate.of(other)).toBe(LoginGate.of(other));
  });
});
