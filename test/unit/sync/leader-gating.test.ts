/**
 * With several CSS instances on one database, the periodic jobs (maintenance passes, the resend
 * timer) run only on the instance that holds the leader lease. The lease here is a stand-in
 * switched by hand; the real one is tested in test/contract/mongo-coordination.test.ts.
 */
import { afterEach, describe, expect, it, jest } from '@jest/globals';
import type { LeaderLease, LeadershipListener } from '../../../lib/store/coordination-types.js';
import type { NotificationStore } from '../../../lib/store/notification-types.js';
import { MaintenanceScheduler, type MaintenanceJob } from '../../../lib/sync/maintenance/index.js';
import { ResendScheduler } from '../../../lib/sync/resend-scheduler.js';

/** A lease whose leadership the test sets. */
class HandLease implements Pick<LeaderLease, 'isLeader' | 'onChange'> {
  private readonly listeners = new Set<LeadershipListener>();
  constructor(private leading: boolean) {}
  isLeader(): boolean {
    return this.leading;
  }
  onChange(l: LeadershipListener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  set(leading: boolean): void {
    this.leading = leading;
    for (const l of this.listeners) l(leading);
  }
}

/** A job counting its passes; each pass waits until released. */
function heldJob(name: string): MaintenanceJob & { passes: number; release(): void } {
  let release = (): void => {};
  const job = {
    name,
    passes: 0,
    run: () => {
      job.passes++;
      return new Promise<number>((r) => (release = () => r(0)));
    },
    release: () => release(),
  };
  return job;
}

const HOUR = 3_600_000;

describe('MaintenanceScheduler under a leader lease', () => {
  it('starts no pass while another instance leads, not even the one at start', async () => {
    const lease = new HandLease(false);
    const job = heldJob('expiry');
    const s = new MaintenanceScheduler({ jobs: [{ job, intervalMs: HOUR }], leader: lease });
    s.start();
    await s.tick(job);
    expect(job.passes).toBe(0);
    await s.stop();
  });

  it('catches up with every job as soon as this instance starts leading', async () => {
    const lease = new HandLease(false);
    const a = heldJob('activation');
    const b = heldJob('expiry');
    const s = new MaintenanceScheduler({ jobs: [{ job: a, intervalMs: HOUR }, { job: b, intervalMs: HOUR }], leader: lease });
    s.start();
    lease.set(true);
    expect([a.passes, b.passes]).toEqual([1, 1]);
    a.release();
    b.release();
    await s.stop();
  });

  it('lets a pass under way finish when leadership is lost, and starts no other', async () => {
    const lease = new HandLease(true);
    const job = heldJob('trim');
    const s = new MaintenanceScheduler({ jobs: [{ job, intervalMs: HOUR }], leader: lease });
    s.start();
    expect(job.passes).toBe(1);
    lease.set(false);
    let finished = false;
    const stopping = s.stop().then(() => (finished = true));
    await Promise.resolve();
    expect(finished).toBe(false);
    job.release();
    await stopping;
    expect(job.passes).toBe(1);
  });

  it('no longer listens to the lease once stopped', async () => {
    const lease = new HandLease(false);
    const job = heldJob('registrations');
    const s = new MaintenanceScheduler({ jobs: [{ job, intervalMs: HOUR }], leader: lease });
    s.start();
    await s.stop();
    lease.set(true);
    expect(job.passes).toBe(0);
  });

  it('runs every pass without a lease (one process on its store)', async () => {
    const job = heldJob('expiry');
    const s = new MaintenanceScheduler({ jobs: [{ job, intervalMs: HOUR }] });
    s.start();
    expect(job.passes).toBe(1);
    job.release();
    await s.stop();
  });
});

describe('ResendScheduler under a leader lease', () => {
  afterEach(() => {
    jest.useRealTimers();
  });

  function counting(): { notifications: NotificationStore; looks: () => number } {
    let looks = 0;
    const notifications = {
      listDue: () => {
        looks++;
        return Promise.resolve([]);
      },
    } as unknown as NotificationStore;
    return { notifications, looks: () => looks };
  }

  it('looks for due records only while this instance leads', async () => {
    jest.useFakeTimers();
    const lease = new HandLease(false);
    const { notifications, looks } = counting();
    const s = new ResendScheduler({ notifications, store: { getObject: () => Promise.resolve(null) }, intervalMs: 1000, log: { warn: () => undefined }, leader: lease });
    s.start();
    await jest.advanceTimersByTimeAsync(5000);
    expect(looks()).toBe(0);
    lease.set(true);
    await jest.advanceTimersByTimeAsync(3000);
    expect(looks()).toBe(3);
    lease.set(false);
    await jest.advanceTimersByTimeAsync(3000);
    expect(looks()).toBe(3);
    await s.stop();
  });

  it('looks on every tick without a lease', async () => {
    jest.useFakeTimers();
    const { notifications, looks } = counting();
    const s = new ResendScheduler({ notifications, store: { getObject: () => Promise.resolve(null) }, intervalMs: 1000, log: { warn: () => undefined } });
    s.start();
    await jest.advanceTimersByTimeAsync(3000);
    expect(looks()).toBe(3);
    await s.stop();
  });
});
