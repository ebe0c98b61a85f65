/**
 * Throttling of failed logins, per app key and per source address: after `maxFailures` failures
 * within `windowMs` (a sliding window), further logins of that app key, or from that address, are
 * refused for the rest of the window, before any secret is checked (no scrypt run, no call to an
 * identity service). The REST API and the SPI answer such a login 429 with `Retry-After`; the
 * embedded MQTT broker refuses it with CONNACK "not authorized".
 *
 * Why both keys: per address stops one client guessing many app keys; per app key stops many
 * addresses (a botnet) guessing one secret. The price of the second is that anyone can keep a
 * known app key locked out; the lock lasts one window at a time and the counters of a successful
 * login's own address are cleared, so a client that knows its secret gets back in as soon as the
 * guesses stop.
 */

export interface LoginThrottleOptions {
  /** Failures within the window that throttle a key; 0 turns throttling off. */
  maxFailures: number;
  /** The sliding window, ms. */
  windowMs: number;
  /** Keys (app keys plus addresses) remembered at most; the least recently failed are forgotten first. */
  maxEntries?: number;
  /** Millisecond clock; tests inject a fake one. */
  now?: () => number;
}

/** Why a login is refused unchecked, and for how long. */
export interface Throttled {
  /** Which counter is full. */
  by: 'appKey' | 'source';
  /** Whole seconds until a login may be tried again (at least 1), for `Retry-After`. */
  retryAfterSeconds: number;
  /** True the first time this throttle episode is reported: log it then, not on every attempt. */
  firstOfEpisode: boolean;
}

interface Failure {
  at: number;
  /** The address a failure of an app key came from; '' in the per-address counters. */
  source: string;
}

interface Counter {
  /** Oldest first; at most `maxFailures` kept, older ones no longer matter. */
  failures: Failure[];
  /** The `blockedUntil` an episode was reported for, so each episode is reported once. */
  reportedUntil: number;
}

const DEFAULT_MAX_ENTRIES = 10_000;

export class LoginThrottle {
  private readonly max: number;
  private readonly windowMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;
  /** Keys `k:<appKey>` and `a:<address>`, in least-recently-failed order (Map keeps insertion order). */
  private readonly counters = new Map<string, Counter>();

  constructor(options: LoginThrottleOptions) {
    this.max = Math.max(0, Math.floor(options.maxFailures));
    this.windowMs = Math.max(1, options.windowMs);
    this.maxEntries = Math.max(2, options.maxEntries ?? DEFAULT_MAX_ENTRIES);
    this.now = options.now ?? Date.now;
  }

  /** Whether throttling is on at all. */
  get enabled(): boolean {
    return this.max > 0;
  }

  /** How many keys are remembered now (bounded by `maxEntries`). */
  get size(): number {
    return this.counters.size;
  }

  /**
   * Asks before checking a login's secret.
   * @returns null when the login may be checked, else why not and for how long
   */
  check(appKey: string, source: string): Throttled | null {
    if (!this.enabled) return null;
    const now = this.now();
    return this.blocked(`a:${source}`, 'source', now) ?? this.blocked(`k:${appKey}`, 'appKey', now);
  }

  /** Counts a failed login (wrong secret, unknown app key). */
  failed(appKey: string, source: string): void {
    if (!this.enabled) return;
    const at = this.now();
    this.add(`a:${source}`, { at, source: '' });
    this.add(`k:${appKey}`, { at, source });
  }

  /**
   * A successful login clears the failures of its own address, and those of its app key that
   * came from that address; another address's failures stay counted.
   */
  succeeded(appKey: string, source: string): void {
    if (!this.enabled) return;
    this.counters.delete(`a:${source}`);
    const key = this.counters.get(`k:${appKey}`);
    if (key === undefined) return;
    key.failures = key.failures.filter((f) => f.source !== source);
    if (key.failures.length === 0) this.counters.delete(`k:${appKey}`);
  }

  private blocked(key: string, by: Throttled['by'], now: number): Throttled | null {
    const c = this.counters.get(key);
    if (c === undefined) return null;
    const live = c.failures.filter((f) => now - f.at < this.windowMs);
    if (live.length !== c.failures.length) c.failures = live;
    if (live.length < this.max) {
      if (live.length === 0) this.counters.delete(key);
      return null;
    }
    // Blocked until the oldest failure that counts leaves the window.
    const until = live[live.length - this.max]!.at + this.windowMs;
    const firstOfEpisode = c.reportedUntil !== until;
    c.reportedUntil = until;
    return { by, retryAfterSeconds: Math.max(1, Math.ceil((until - now) / 1000)), firstOfEpisode };
  }

  private add(key: string, failure: Failure): void {
    let c = this.counters.get(key);
    if (c === undefined) {
      c = { failures: [], reportedUntil: 0 };
    } else {
      // Re-inserted below: the map's order is least recently failed first.
      this.counters.delete(key);
    }
    c.failures.push(failure);
    if (c.failures.length > this.max) c.failures.splice(0, c.failures.length - this.max);
    this.counters.set(key, c);
    while (this.counters.size > this.maxEntries) {
      const oldest = this.counters.keys().next().value;
      if (oldest === undefined) break;
      this.counters.delete(oldest);
    }
  }
}
