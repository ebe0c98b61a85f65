/**
 * In-process wake-up calls per peer: the Sender says "something is pending for this peer", and
 * a transport holding a long-poll for that peer answers at once instead of at the end of its
 * wait. Only a hint: the notification records stay the truth, a missed signal costs at most
 * one wait. Transport-agnostic (an extension of ours; the reference has no long-poll).
 *
 * With several CSS instances on one database, the long-poll may be held by another instance
 * than the one that queued the work: a PeerWakeBus carries each notify to the others, whose
 * PeerSignal wakes its own waiters (and does not publish again).
 */
import { destinationKey } from '../model/index.js';
import type { PeerWakeBus } from '../store/coordination-types.js';

const keyOf = (orgID: string, peerType: string, peerID: string): string => destinationKey({ orgID, destType: peerType, destID: peerID });

export class PeerSignal {
  private readonly waiters = new Map<string, Set<() => void>>();

  /** `bus`: the other instances of a scaled-out CSS, told of each notify and heard from. */
  constructor(private readonly bus?: Pick<PeerWakeBus, 'publish' | 'subscribe'>) {
    bus?.subscribe((orgID, peerType, peerID) => this.wake(orgID, peerType, peerID));
  }

  /** Wakes every current waiter of the peer, here and on the other instances; a later `wait` is not affected. */
  notify(orgID: string, peerType: string, peerID: string): void {
    this.wake(orgID, peerType, peerID);
    this.bus?.publish(orgID, peerType, peerID);
  }

  private wake(orgID: string, peerType: string, peerID: string): void {
    const set = this.waiters.get(keyOf(orgID, peerType, peerID));
    if (set === undefined) return;
    // Each waiter removes itself from the set: iterate over a copy.
    for (const wake of [...set]) wake();
  }

  /**
   * Resolves on the peer's next `notify`, after `ms`, or when `signal` aborts, whichever comes
   * first; never rejects. Whatever ends the wait removes its timer and listeners, so abandoned
   * waits leak nothing.
   */
  wait(orgID: string, peerType: string, peerID: string, ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted === true) return Promise.resolve();
    const key = keyOf(orgID, peerType, peerID);
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        const set = this.waiters.get(key);
        set?.delete(done);
        if (set?.size === 0) this.waiters.delete(key);
        resolve();
      };
      const timer = setTimeout(done, ms);
      // A wait never keeps a process alive on its own: the request it serves does that.
      timer.unref();
      signal?.addEventListener('abort', done, { once: true });
      let set = this.waiters.get(key);
      if (set === undefined) {
        set = new Set();
        this.waiters.set(key, set);
      }
      set.add(done);
    });
  }

  /** How many waits are outstanding, over all peers (for tests and diagnostics). */
  get waiting(): number {
    let n = 0;
    for (const set of this.waiters.values()) n += set.size;
    return n;
  }
}
