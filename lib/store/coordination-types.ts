/**
 * Ports for several CSS processes sharing one database (issue #14; DESIGN.md "Scale-out"): a
 * leader lease so that the periodic jobs run on one instance only, and a wake bus so that a
 * long-poll held by one instance wakes when another queues work for that ESS. A node on SQLite
 * is one process: it takes the single-process implementations (single-process-coordination.ts),
 * so the wiring is the same whatever the store.
 */

/** Told of every change of leadership: true when this instance starts leading, false when it stops. */
export type LeadershipListener = (leading: boolean) => void;

/**
 * A lease held by at most one instance at a time. The holder renews it by heartbeat; when it
 * stops renewing (killed, cut off from the database) another instance takes over once the lease
 * has expired; a clean stop resigns it, so another takes over at its next heartbeat.
 */
export interface LeaderLease {
  /** This instance's id in the lease: host, pid and a random part, e.g. `css-1:4242:9f3a`. */
  readonly instanceId: string;
  /** Starts contending (and renewing once it holds the lease). */
  start(): Promise<void>;
  /** Stops; resigns the lease when it holds it, so that another instance takes over without waiting for expiry. */
  stop(): Promise<void>;
  /**
   * Whether this instance leads now. Read it at the start of each pass: it turns false on its
   * own when renewals have failed for too long, before any other instance can take over.
   */
  isLeader(): boolean;
  /** The instance that held the lease when last seen (this one or another), or null when none does; for health and logs. */
  holder(): string | null;
  /** Calls `listener` on each change of leadership; returns the unsubscription. */
  onChange(listener: LeadershipListener): () => void;
}

/** Told of a wake published by another instance. */
export type PeerWakeHandler = (orgID: string, peerType: string, peerID: string) => void;

/**
 * Carries "something is pending for this peer" between the instances of a CSS. Only a hint,
 * as PeerSignal's wakes are: the notification records stay the truth, and a lost wake costs
 * one long-poll wait, never a delivery.
 */
export interface PeerWakeBus {
  /** Tells the other instances (never this one: its own waiters are woken in process). Returns at once. */
  publish(orgID: string, peerType: string, peerID: string): void;
  /** Calls `handler` for each wake another instance published; returns the unsubscription. */
  subscribe(handler: PeerWakeHandler): () => void;
  start(): Promise<void>;
  /** Stops listening; wakes published and not yet sent may be dropped. */
  stop(): Promise<void>;
}
