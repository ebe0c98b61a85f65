/**
 * Coalesces fsyncs: `run()` resolves after a call of the sync function that started after
 * `run()` was called, so whatever the caller wrote before is on disk; every caller that arrives
 * while a sync is in flight shares the next one. N concurrent writers then pay for about two
 * fsyncs, not N. Used for the WAL of a SQLite store and the blob directories.
 */
interface Waiter {
  resolve(): void;
  reject(err: unknown): void;
}

export class CoalescedSync {
  private waiting: Waiter[] = [];
  private running: Promise<void> | null = null;

  constructor(private readonly sync: () => Promise<void>) {}

  /** Resolves once a sync that started after this call is done; rejects if that sync failed. */
  run(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.running ??= this.loop();
    });
  }

  /** Resolves once no sync is in flight or wanted. */
  async idle(): Promise<void> {
    while (this.running !== null) await this.running;
  }

  private async loop(): Promise<void> {
    // Entered with at least one waiter, so the first await comes before `running` is cleared.
    while (this.waiting.length > 0) {
      const batch = this.waiting;
      this.waiting = [];
      try {
        await this.sync();
        for (const w of batch) w.resolve();
      } catch (err) {
        for (const w of batch) w.reject(err);
      }
    }
    this.running = null;
  }
}
