/**
 * The last deliveries of each object type's webhooks, in memory, for `GET
 * /api/v1/objects/{org}/{type}?webhooks=true`. Bounded twice: N deliveries per type, and a
 * number of types (the least recently touched type is forgotten first), so a busy node or a
 * tenant with many types cannot make it grow without end. Lost on restart, like the
 * deliveries still waiting for a retry.
 */

/** Why a delivery was made. */
export type WebhookEvent = 'available' | 'deleted';

/** `pending` (first attempt not done), `retrying` (waiting for the next), `delivered`, `failed` (gave up). */
export type DeliveryState = 'pending' | 'retrying' | 'delivered' | 'failed';

export interface WebhookAttempt {
  /** ISO time the attempt started. */
  at: string;
  /** The hook's HTTP status, when it answered. */
  status?: number;
  /** Why the attempt failed, when it did. */
  error?: string;
  durationMs: number;
}

export interface WebhookDelivery {
  /** Increasing within the node's run. */
  id: number;
  url: string;
  event: WebhookEvent;
  objectType: string;
  objectID: string;
  /** The object version the change made (a JSON number). */
  instanceID: bigint;
  state: DeliveryState;
  /** ISO time the change happened. */
  createdAt: string;
  attempts: WebhookAttempt[];
  /** ISO time of the next attempt while `retrying`. */
  nextAttemptAt?: string;
}

export interface DeliveryLogLimits {
  /** Deliveries kept per (org, type). */
  perType: number;
  /** (org, type) pairs kept. */
  types: number;
}

export const DEFAULT_LOG_LIMITS: DeliveryLogLimits = { perType: 50, types: 1000 };

const typeKey = (org: string, type: string): string => `${org}\u0000${type}`;

export class DeliveryLog {
  // A Map keeps insertion order: re-inserting on each touch makes the first key the least recent.
  private readonly byType = new Map<string, WebhookDelivery[]>();

  constructor(private readonly limits: DeliveryLogLimits = DEFAULT_LOG_LIMITS) {}

  /** Adds a delivery (mutated in place as its attempts go on) and forgets the oldest over the limits. */
  add(org: string, delivery: WebhookDelivery): void {
    const key = typeKey(org, delivery.objectType);
    const list = this.byType.get(key) ?? [];
    this.byType.delete(key);
    list.push(delivery);
    if (list.length > this.limits.perType) list.splice(0, list.length - this.limits.perType);
    this.byType.set(key, list);
    while (this.byType.size > this.limits.types) {
      const oldest = this.byType.keys().next().value;
      if (oldest === undefined) break;
      this.byType.delete(oldest);
    }
  }

  /** The type's deliveries, newest first, as copies. */
  list(org: string, type: string): WebhookDelivery[] {
    const list = this.byType.get(typeKey(org, type)) ?? [];
    return list
      .slice()
      .reverse()
      .map((d) => ({ ...d, attempts: d.attempts.map((a) => ({ ...a })) }));
  }

  /** Forgets an org's deliveries (the org was deleted). */
  forgetOrg(org: string): void {
    for (const key of [...this.byType.keys()]) if (key.startsWith(`${org}\u0000`)) this.byType.delete(key);
  }
}
