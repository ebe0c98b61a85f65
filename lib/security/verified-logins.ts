/**
 * The memory an authenticator keeps of logins it verified, shared by the preset and external
 * handlers: per app key, an HMAC of the secret that passed (under a per-process key, so the
 * cache is worthless outside this process and holds no secret), with an expiry; and one
 * verification in flight per (app key, secret), which concurrent identical logins share.
 * A different secret never matches an entry (a changed secret is verified again) and never
 * evicts it (evicting would let anyone who knows an app key force verifications).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Identity } from './identity.js';

interface Entry {
  mac: Buffer;
  identity: Identity;
  expiresAt: number;
}

export class VerifiedLogins {
  private readonly key = randomBytes(32);
  private readonly entries = new Map<string, Entry>();
  private readonly inFlight = new Map<string, Promise<Identity | null>>();

  /**
   * @param now millisecond clock
   * @param maxEntries app keys remembered at most; the oldest remembered goes first
   */
  constructor(
    private readonly now: () => number,
    private readonly maxEntries = Infinity,
  ) {}

  /** The MAC a secret is remembered and compared by; equal lengths, so comparisons leak nothing. */
  mac(secret: string): Buffer {
    return createHmac('sha256', this.key).update(secret, 'utf8').digest();
  }

  /** Whether two MACs of this instance are equal, in constant time. */
  same(a: Buffer, b: Buffer): boolean {
    return timingSafeEqual(a, b);
  }

  /** The identity verified for exactly this secret, while fresh; an expired entry is dropped. */
  hit(appKey: string, mac: Buffer): Identity | null {
    const e = this.entries.get(appKey);
    if (e === undefined) return null;
    if (this.now() >= e.expiresAt) {
      this.entries.delete(appKey);
      return null;
    }
    return timingSafeEqual(e.mac, mac) ? e.identity : null;
  }

  remember(appKey: string, mac: Buffer, identity: Identity, ttlMs: number): void {
    if (ttlMs <= 0) return;
    this.entries.delete(appKey);
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(appKey, { mac, identity, expiresAt: this.now() + ttlMs });
  }

  /** The cached identity, else `verify` run once for every concurrent login with these credentials. */
  verifyOnce(appKey: string, mac: Buffer, verify: () => Promise<Identity | null>): Promise<Identity | null> {
    const hit = this.hit(appKey, mac);
    if (hit !== null) return Promise.resolve(hit);
    const flightKey = `${appKey}\0${mac.toString('hex')}`;
    let pending = this.inFlight.get(flightKey);
    if (pending === undefined) {
      pending = verify().finally(() => this.inFlight.delete(flightKey));
      this.inFlight.set(flightKey, pending);
    }
    return pending;
  }

  clear(): void {
    this.entries.clear();
  }
}
