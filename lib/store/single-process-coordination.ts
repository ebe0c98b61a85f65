/**
 * The coordination ports for a node that is the only process on its store (SQLite, which
 * refuses a second process): it always leads, and there is no other instance to wake.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { LeaderLease, LeadershipListener, PeerWakeBus } from './coordination-types.js';

/** host:pid:random, unique among the instances of one database even across restarts. */
export function newInstanceId(): string {
  return `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
}

/** Leads from start to stop. */
export class SoleLeaderLease implements LeaderLease {
  readonly instanceId = newInstanceId();
  private leading = false;
  private readonly listeners = new Set<LeadershipListener>();

  start(): Promise<void> {
    this.set(true);
    return Promise.resolve();
  }

  stop(): Promise<void> {
    this.set(false);
    return Promise.resolve();
  }

  isLeader(): boolean {
    return this.leading;
  }

  holder(): string | null {
    return this.leading ? this.instanceId : null;
  }

  onChange(listener: LeadershipListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private set(leading: boolean): void {
    if (this.leading === leading) return;
    this.leading = leading;
    for (const l of [...this.listeners]) l(leading);
  }
}

/** Nobody else to tell: the in-process PeerSignal already woke this process's waiters. */
export class NoPeerWakeBus implements PeerWakeBus {
  publish(): void {}

  subscribe(): () => void {
    return () => {};
  }

  start(): Promise<void> {
    return Promise.resolve();
  }

  stop(): Promise<void> {
    return Promise.resolve();
  }
}
