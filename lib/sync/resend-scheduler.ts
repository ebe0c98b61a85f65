/**
 * The sender's resend timer: a record whose delivery failed (the receiver's error feedback)
 * is offered again when its `resendAt` falls due. Each retry waits twice as long as the one
 * before, from RESEND_INTERVAL up to an hour, unless the receiver named its own retry interval.
 * The reference retries every error every 60 s forever and, on MongoDB, never (the `resend-time`
 * type bug); this one works on every store through the indexed `listDue` query. With several
 * CSS instances on one database, only the holder of the leader lease runs it.
 * [ref sync-protocol §3 "Resend timer", "Feedback"; §8 items 8, 11]
 */
import { notificationKey, type Notification, type NotificationStore } from '../store/notification-types.js';
import { MAY_HOLD } from './notification-states.js';
import type { Store } from '../store/types.js';
import type { LeaderLease } from '../store/coordination-types.js';
import type { PeerSignal } from './peer-signal.js';
import { NO_SYNC_EVENTS, type SyncEvents } from './sync-events.js';

/** The longest wait between two retries of one record. */
export const MAX_RETRY_DELAY_MS = 3_600_000;
/** Records handled per tick; the rest wait for the next one. */
const TICK_BATCH = 500;

/** The wait before retry number `attempts + 1` of a failed delivery, at most `maxMs`. */
export function retryDelay(resendIntervalMs: number, attempts: number, maxMs = MAX_RETRY_DELAY_MS): number {
  return Math.min(maxMs, resendIntervalMs * 2 ** Math.min(attempts, 30));
}

export interface ResendSchedulerDeps {
  notifications: NotificationStore;
  store: Pick<Store, 'getObject'>;
  /** Wakes the long-poll of the peer a record was requeued for. */
  peerSignal?: Pick<PeerSignal, 'notify'>;
  /** RESEND_INTERVAL, ms: how often the timer looks for due records. */
  intervalMs: number;
  log: { warn(obj: object, msg: string): void };
  /** Epoch ms; tests inject a fake clock. */
  now?: () => number;
  /** When given, the timer's passes start only while this instance leads (a pass under way when it stops leading finishes). */
  leader?: Pick<LeaderLease, 'isLeader'>;
  /** Told of each retry (its delivery is `delivering` again) and, per org, how many a pass offered again. */
  events?: SyncEvents;
}

export class ResendScheduler {
  private readonly now: () => number;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private readonly events: SyncEvents;

  constructor(private readonly deps: ResendSchedulerDeps) {
    this.now = deps.now ?? Date.now;
    this.events = deps.events ?? NO_SYNC_EVENTS;
  }

  start(): void {
    this.timer ??= setInterval(() => {
      if (this.deps.leader?.isLeader() === false) return;
      // One tick at a time: a slow store does not pile ticks up.
      this.running ??= this.tick()
        .then(() => undefined)
        .catch((err: unknown) => this.deps.log.warn({ err }, 'the resend timer failed; it will try again'))
        .finally(() => (this.running = null));
    }, this.deps.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  /** One pass over the due records. @returns how many were offered again */
  async tick(): Promise<number> {
    let requeued = 0;
    // Counted per org only when someone listens: a pass spans every org.
    const byOrg = this.events.notificationsResent !== undefined ? new Map<string, number>() : null;
    for (const rec of await this.deps.notifications.listDue(this.now(), TICK_BATCH)) {
      if (!(await this.retry(rec))) continue;
      requeued++;
      byOrg?.set(rec.orgID, (byOrg.get(rec.orgID) ?? 0) + 1);
    }
    if (byOrg !== null) for (const [orgID, count] of byOrg) this.events.notificationsResent?.(orgID, count);
    return requeued;
  }

  /**
   * An `error` record about the object's current instance becomes an `update` the peer's
   * next poll serves; one about an older instance is left to the newer instance's record.
   */
  private async retry(rec: Notification): Promise<boolean> {
    const { notifications, store } = this.deps;
    const key = notificationKey(rec);
    const expected = { status: rec.status, instanceID: rec.instanceID };
    const obj = rec.status === 'error' ? await store.getObject(rec.orgID, rec.objectType, rec.objectID) : null;
    if (obj === null || obj.meta.instanceID !== rec.instanceID) {
      // Nothing to retry: stop the timer from finding it again.
      await notifications.updateNotificationIf(key, expected, { resendAt: 0 });
      return false;
    }
    // `message` keeps the last error's reason while the retry is under way.
    const moved = await notifications.updateNotificationIf(key, expected, { status: MAY_HOLD, deliveryStatus: 'delivering', resendAt: 0, lastUpdate: this.now() });
    if (moved) {
      if (rec.deliveryStatus !== 'delivering') this.events.deliveryStatus?.(rec, rec, 'delivering');
      this.deps.peerSignal?.notify(rec.orgID, rec.peerType, rec.peerID);
    }
    return moved;
  }
}
