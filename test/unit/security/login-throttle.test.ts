import { describe, expect, it } from '@jest/globals';
import { LoginThrottle } from '../../../lib/security/login-throttle.js';

function clock(start = 1_000_000): { now: () => number; advance(ms: number): void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

function failTimes(t: LoginThrottle, n: number, appKey: string, source: string): void {
  for (let i = 0; i < n; i++) t.failed(appKey, source);
}

describe('failed-login throttle', () => {
  it('lets logins be checked until the limit of failures within the window is reached', () => {
    const c = clock();
    const t = new LoginThrottle({ maxFailures: 3, windowMs: 60_000, now: c.now });
    failTimes(t, 2, 'alice', '10.0.0.1');
    expect(t.check('alice', '10.0.0.1')).toBeNull();
    t.failed('alice', '10.0.0.1');
    expect(t.check('alice', '10.0.0.1')).toMatchObject({ retryAfterSeconds: 60 });
  });

  it('counts per source address: one address guessing many app keys is stopped', () => {
    const t = new LoginThrottle({ maxFailures: 3, windowMs: 60_000, now: clock().now });
    for (const k of ['a', 'b', 'c']) t.failed(k, '10.0.0.9');
    expect(t.check('d', '10.0.0.9')).toMatchObject({ by: 'source' });
    expect(t.check('d', '10.0.0.10')).toBeNull();
  });

  it('counts per app key: many addresses guessing one secret are stopped', () => {
    const t = new LoginThrottle({ maxFailures: 3, windowMs: 60_000, now: clock().now });
    for (const a of ['10.0.0.1', '10.0.0.2', '10.0.0.3']) t.failed('alice', a);
    expect(t.check('alice', '10.0.0.4')).toMatchObject({ by: 'appKey' });
    expect(t.check('bob', '10.0.0.4')).toBeNull();
  });

  it('says how long to wait, in whole seconds, until the oldest counted failure leaves the sliding window', () => {
    const c = clock();
    const t = new LoginThrottle({ maxFailures: 2, windowMs: 60_000, now: c.now });
    t.failed('k', 's');
    c.advance(20_000);
    t.failed('k', 's');
    c.advance(500);
    expect(t.check('k', 's')?.retryAfterSeconds).toBe(40);
    c.advance(39_499);
    expect(t.check('k', 's')?.retryAfterSeconds).toBe(1);
    c.advance(1);
    expect(t.check('k', 's')).toBeNull();
  });

  it('reports an episode once, however many logins it refuses, and a new episode again', () => {
    const c = clock();
    const t = new LoginThrottle({ maxFailures: 2, windowMs: 10_000, now: c.now });
    failTimes(t, 2, 'k', 's');
    const firsts = Array.from({ length: 50 }, () => t.check('k', 's')?.firstOfEpisode);
    expect(firsts.filter((f) => f === true)).toHaveLength(1);
    c.advance(10_000);
    failTimes(t, 2, 'k', 's');
    expect(t.check('k', 's')?.firstOfEpisode).toBe(true);
  });

  it('a success clears its own address\'s failures, but not another address\'s', () => {
    const t = new LoginThrottle({ maxFailures: 3, windowMs: 60_000, now: clock().now });
    failTimes(t, 2, 'alice', 'good');
    failTimes(t, 2, 'alice', 'bad');
    t.succeeded('alice', 'good');
    expect(t.check('alice', 'good')).toBeNull();
    // alice's two failures from `bad` still count: one more from anywhere throttles her.
    t.failed('alice', 'third');
    expect(t.check('alice', 'good')).toMatchObject({ by: 'appKey' });
    failTimes(t, 1, 'x', 'bad');
    expect(t.check('y', 'bad')).toMatchObject({ by: 'source' });
  });

  it('remembers a bounded number of keys, forgetting the least recently failed first', () => {
    const t = new LoginThrottle({ maxFailures: 2, windowMs: 60_000, maxEntries: 100, now: clock().now });
    failTimes(t, 2, 'victim', 'attacker');
    for (let i = 0; i < 10_000; i++) t.failed(`k${i}`, `10.1.${i >> 8}.${i & 255}`);
    expect(t.size).toBeLessThanOrEqual(100);
    expect(t.check('victim', 'elsewhere')).toBeNull();
  });

  it('is off with a limit of 0', () => {
    const t = new LoginThrottle({ maxFailures: 0, windowMs: 60_000 });
    failTimes(t, 1000, 'k', 's');
    expect(t.check('k', 's')).toBeNull();
    expect(t.size).toBe(0);
  });
});
