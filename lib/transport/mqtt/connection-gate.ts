/**
 * Waiting for a broker connection: every push loop whose ESS has something queued waits here
 * while its broker is away, instead of asking the engine in vain. However many loops wait for
 * one connection, one timer looks at it.
 */
export class ConnectionGate {
  private readonly reopened = new Map<string, Promise<void>>();

  constructor(
    /** Whether the connection `key` names is up. */
    private readonly isConnected: (key: string) => boolean,
    private readonly checkMs: number,
    /** Once aborted, every wait ends. */
    private readonly closed: AbortSignal,
  ) {}

  /** Resolves once the connection `key` names is up, or when `signal` (or the gate) is aborted. */
  wait(key: string, signal: AbortSignal): Promise<void> {
    if (this.isConnected(key) || this.closed.aborted) return Promise.resolve();
    let reopened = this.reopened.get(key);
    if (reopened === undefined) {
      reopened = new Promise<void>((resolve) => {
        const timer = setInterval(() => {
          if (!this.isConnected(key) && !this.closed.aborted) return;
          clearInterval(timer);
          this.reopened.delete(key);
          resolve();
        }, this.checkMs);
        timer.unref();
      });
      this.reopened.set(key, reopened);
    }
    const opened = reopened;
    return new Promise<void>((resolve) => {
      const done = (): void => {
        signal.removeEventListener('abort', done);
        resolve();
      };
      signal.addEventListener('abort', done, { once: true });
      void opened.then(done);
    });
  }
}
