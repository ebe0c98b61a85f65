/**
 * Periodic maintenance of a node's store: activation of inactive objects, expiry, removal of
 * ESS registrations gone quiet, trimming of finished deletions. Each job is one idempotent pass
 * over the store that any instance may run at any time (two passes at once change nothing the
 * first did not). With several CSS instances on one database, only the holder of the leader
 * lease starts passes; a pass under way when leadership is lost finishes (it is idempotent).
 */
import type { LeaderLease } from '../../store/coordination-types.js';

/** One periodic task. */
export interface MaintenanceJob {
  /** For the logs. */
  readonly name: string;
  /**
   * One pass, as of `now` (epoch ms). Idempotent; may run on any instance.
   * @returns how many things it changed, for the logs.
   */
  run(now: number): Promise<number>;
}

export interface ScheduledJob {
  job: MaintenanceJob;
  intervalMs: number;
}

export interface MaintenanceSchedulerDeps {
  jobs: readonly ScheduledJob[];
  /** Epoch ms; tests inject a fake clock. */
  now?: () => number;
  log?: { info(obj: object, msg: string): void; error(obj: object, msg: string): void };
  /** When given, passes start only while this instance leads; it catches up each time it starts leading. */
  leader?: Pick<LeaderLease, 'isLeader' | 'onChange'>;
}

export class MaintenanceScheduler {
  private readonly now: () => number;
  private readonly timers: NodeJS.Timeout[] = [];
  /** Passes under way, so a stop waits for them and a slow pass is never overlapped by the next tick. */
  private readonly running = new Map<MaintenanceJob, Promise<void>>();
  private stopped = false;
  private unsubscribe: (() => void) | null = null;

  constructor(private readonly deps: MaintenanceSchedulerDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** Runs every job once at once (a node that was down catches up), then on its interval. */
  start(): void {
    // A new leader catches up as a node just started does: the previous leader may have been down a while.
    this.unsubscribe = this.deps.leader?.onChange((leading) => {
      if (leading) for (const { job } of this.deps.jobs) void this.tick(job);
    }) ?? null;
    for (const { job, intervalMs } of this.deps.jobs) {
      void this.tick(job);
      const timer = setInterval(() => void this.tick(job), intervalMs);
      timer.unref();
      this.timers.push(timer);
    }
  }

  /**
   * One pass of a job, unless one is under way or another instance leads; never rejects (a
   * failed pass is logged and the next tick retries).
   */
  tick(job: MaintenanceJob): Promise<void> {
    if (this.stopped || this.deps.leader?.isLeader() === false) return Promise.resolve();
    const current = this.running.get(job);
    if (current !== undefined) return current;
    const pass = job
      .run(this.now())
      .then(
        (changed) => {
          if (changed > 0) this.deps.log?.info({ job: job.name, changed }, 'maintenance pass');
        },
        (err: unknown) => this.deps.log?.error({ err, job: job.name }, 'maintenance pass failed; the next one retries'),
      )
      .finally(() => this.running.delete(job));
    this.running.set(job, pass);
    return pass;
  }

  /** Stops the timers and waits for the passes under way. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    this.unsubscribe = null;
    for (const t of this.timers) clearInterval(t);
    this.timers.length = 0;
    await Promise.all([...this.running.values()]);
  }
}
