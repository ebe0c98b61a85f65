/**
 * Who a login comes from behind a load balancer (`TRUSTED_PROXIES`): the client that the
 * trusted proxies name in `X-Forwarded-For`, never what the client wrote there itself; and the
 * failed-login throttle keyed on that client, not on the balancer.
 */
import { describe, expect, it } from '@jest/globals';
import { TooManyRequestsError } from '../../../lib/model/index.js';
import { TrustedProxies, TrustedProxiesError, UNIX_SOCKET_SOURCE } from '../../../lib/security/client-address.js';
import type { Authenticator, Identity } from '../../../lib/security/identity.js';
import { LoginGate } from '../../../lib/security/login-gate.js';

const basic = (user: string, pass: string): string => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
const ALICE: Identity = { role: 'user', orgID: 'org1', userID: 'alice' };
const handler: Authenticator = { name: 'preset', authenticate: (k, s) => Promise.resolve(k === 'alice' && s === 'right' ? ALICE : null) };

describe('the client address of a request', () => {
  it('is the connection peer when no proxy is trusted: X-Forwarded-For is ignored', () => {
    const none = new TrustedProxies('');
    expect(none.enabled).toBe(false);
    expect(none.clientOf('10.0.0.5', '198.51.100.7')).toBe('10.0.0.5');
  });

  it('is the peer, whatever the header says, when the peer is not a trusted proxy', () => {
    expect(new TrustedProxies('10.0.0.0/8').clientOf('192.0.2.1', '198.51.100.7')).toBe('192.0.2.1');
  });

  it('is the address a trusted proxy appended', () => {
    expect(new TrustedProxies('10.0.0.0/8').clientOf('10.0.0.5', '198.51.100.7')).toBe('198.51.100.7');
  });

  it('is read right to left past every trusted hop, up to the first untrusted one; what the client wrote left of it is ignored', () => {
    const proxies = new TrustedProxies('10.0.0.0/8, 192.0.2.10');
    // The client forged "203.0.113.66"; the outer balancer 192.0.2.10 saw 198.51.100.7; the inner one saw 192.0.2.10.
    expect(proxies.clientOf('10.0.0.5', '203.0.113.66, 198.51.100.7, 192.0.2.10')).toBe('198.51.100.7');
    // Several headers arrive joined with commas, the same thing.
    expect(proxies.clientOf('10.0.0.5', '203.0.113.66,198.51.100.7 ,  192.0.2.10')).toBe('198.51.100.7');
  });

  it('is the leftmost hop when every hop is trusted, and the last good hop when one is not an address', () => {
    const proxies = new TrustedProxies('10.0.0.0/8');
    expect(proxies.clientOf('10.0.0.5', '10.1.1.1, 10.2.2.2')).toBe('10.1.1.1');
    expect(proxies.clientOf('10.0.0.5', 'garbage, 10.2.2.2')).toBe('10.2.2.2');
    expect(proxies.clientOf('10.0.0.5', 'unknown')).toBe('10.0.0.5');
    expect(proxies.clientOf('10.0.0.5', '')).toBe('10.0.0.5');
  });

  it('spells an address one way: IPv4-mapped IPv6 as IPv4, brackets dropped; IPv6 proxies work too', () => {
    expect(new TrustedProxies('127.0.0.1').clientOf('::ffff:127.0.0.1', '[2001:db8::1]')).toBe('2001:db8::1');
    expect(new TrustedProxies('fd00::/8').clientOf('fd00::1', '::ffff:198.51.100.7')).toBe('198.51.100.7');
    expect(new TrustedProxies('').clientOf('::ffff:10.0.0.1', undefined)).toBe('10.0.0.1');
  });

  it('is "unix socket" for a unix-socket connection', () => {
    expect(new TrustedProxies('10.0.0.0/8').clientOf(undefined, '198.51.100.7')).toBe(UNIX_SOCKET_SOURCE);
  });

  it('refuses a setting that is not a list of networks, naming the entry', () => {
    expect(() => new TrustedProxies('10.0.0.0/8, proxy.example')).toThrow(TrustedProxiesError);
    expect(() => new TrustedProxies('10.0.0.0/33')).toThrow(/"10.0.0.0\/33" has an invalid prefix length/);
  });
});

describe('the failed-login throttle behind a trusted load balancer', () => {
  const BALANCER = '10.0.0.2';

  it('counts each client apart: one guessing is throttled, another behind the same balancer still logs in', async () => {
    const gate = new LoginGate(handler, { throttle: { maxFailures: 3, windowMs: 60_000 }, trustedProxies: '10.0.0.0/24' });
    const guesser = gate.clientAddress(BALANCER, '198.51.100.66');
    const honest = gate.clientAddress(BALANCER, '198.51.100.7');
    for (let i = 0; i < 3; i++) await gate.login({ authorization: basic(`key${i}`, 'guess'), source: guesser, transport: 'REST' });
    await expect(gate.login({ authorization: basic('key9', 'guess'), source: guesser, transport: 'REST' })).rejects.toBeInstanceOf(TooManyRequestsError);
    await expect(gate.login({ authorization: basic('alice', 'right'), source: honest, transport: 'SPI' })).resolves.toEqual(ALICE);
  });

  it('without TRUSTED_PROXIES, throttles every client as the balancer (what the setting is for)', async () => {
    const gate = new LoginGate(handler, { throttle: { maxFailures: 3, windowMs: 60_000 } });
    const guesser = gate.clientAddress(BALANCER, '198.51.100.66');
    const honest = gate.clientAddress(BALANCER, '198.51.100.7');
    expect(guesser).toBe(BALANCER);
    for (let i = 0; i < 3; i++) await gate.login({ authorization: basic(`key${i}`, 'guess'), source: guesser, transport: 'REST' });
    await expect(gate.login({ authorization: basic('alice', 'right'), source: honest, transport: 'REST' })).rejects.toBeInstanceOf(TooManyRequestsError);
  });
});
