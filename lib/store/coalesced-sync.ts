/**
 * Coalesces fsyncs: `run()` resolves after a call of the sync function that started after
 * `run()` was called, so whatever the caller wrote before is on disk; every caller that arrives
 * while the allowed number of syncs is in flight shares the next one. N concurrent writers then
 * pay for about two fsyncs, not N. Used for the WAL of a SQLite store and the blob directories.
 *
 * With two syncs allowed in flight, a caller that arrives while one runs does not wait for it to
 * end before its own starts: its wait is about one fsync instead of one and a half.
 */
interface Waiter {
  resolve(): void;
  reject(err: unknown): void;
}

export class CoalescedSync {
  private waiting: Waiter[] = [];
  private inFlight = 0;
  private idlers: (() => void)[] = [];

  /** @param maxInFlight syncs allowed to run at once (default 1) */
  constructor(
    private readonly sync: () => Promise<void>,
    private readonly maxInFlight = 1,
  ) {}

  /** Resolves once a sync that started after this call is done; rejects if that sync failed. */
  run(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.pump();
    });
  }

  /** Resolves once no sync is in flight or wanted. */
  idle(): Promise<void> {
    if (this.inFlight === 0 && this.waiting.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idlers.push(resolve));
  }

  private pump(): void {
    while (this.waiting.length > 0 && this.inFlight < this.maxInFlight) {
      const batch = this.waiting;
      this.waiting = [];
      this.inFlight++;
      this.sync()
        .then(
          () => batch.forEach((w) => w.resolve()),
          (err: unknown) => batch.forEach((w) => w.reject(err)),
        )
        .finally(() => {
          this.inFlight--;
          this.pump();
          if (this.inFlight === 0 && this.waiting.length === 0) this.idlers.splice(0).forEach((resolve) => resolve());
        });
    }
  }
}
