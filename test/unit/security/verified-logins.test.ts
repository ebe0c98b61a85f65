/** What the preset and external handlers remember of verified logins (verified-logins.ts). */
import { describe, expect, test } from '@jest/globals';
import type { Identity } from '../../../lib/security/identity.js';
import { VerifiedLogins } from '../../../lib/security/verified-logins.js';

const ALICE: Identity = { role: 'user', orgID: 'o', userID: 'alice' };

describe('VerifiedLogins', () => {
  test('a remembered login matches its own secret only, until it expires', () => {
    let now = 0;
    const v = new VerifiedLogins(() => now);
    v.remember('alice', v.mac('s1'), ALICE, 1000);
    expect(v.hit('alice', v.mac('s1'))).toBe(ALICE);
    expect(v.hit('alice', v.mac('s2'))).toBeNull();
    // A different secret does not evict the entry.
    expect(v.hit('alice', v.mac('s1'))).toBe(ALICE);
    now = 1000;
    expect(v.hit('alice', v.mac('s1'))).toBeNull();
  });

  test('concurrent identical logins share one verification; another secret gets its own', async () => {
    const v = new VerifiedLogins(() => 0);
    let runs = 0;
    const verify = async (): Promise<Identity> => {
      runs++;
      await new Promise((r) => setTimeout(r, 10));
      return ALICE;
    };
    await Promise.all([v.verifyOnce('alice', v.mac('s1'), verify), v.verifyOnce('alice', v.mac('s1'), verify), v.verifyOnce('alice', v.mac('s2'), verify)]);
    expect(runs).toBe(2);
  });

  test('holds at most its cap of app keys, dropping the oldest; a TTL of 0 remembers nothing', () => {
    const v = new VerifiedLogins(() => 0, 2);
    for (const k of ['a', 'b', 'c']) v.remember(k, v.mac('s'), ALICE, 1000);
    expect(['a', 'b', 'c'].map((k) => v.hit(k, v.mac('s')) !== null)).toEqual([false, true, true]);
    v.remember('d', v.mac('s'), ALICE, 0);
    expect(v.hit('d', v.mac('s'))).toBeNull();
  });
});
