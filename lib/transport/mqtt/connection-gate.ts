/**
 * Waiting for the broker connection: every push loop whose ESS has something queued waits here
 * while the broker is away, instead of asking the engine in vain. However many loops wait, one
 * timer looks at the connection.
 */
export class ConnectionGate {
  private reopened: Promise<void> | null = null;

  constructor(
    private readonly isConnected: () => boolean,
    private readonly checkMs: number,
    /** Once aborted, every wait ends. */
    private readonly closed: AbortSignal,
  ) {}

  /** Resolves once the connection is up, or when `signal` (or the gate) is aborted. */
  wait(signal: AbortSignal): Promise<void> {
    if (this.isConnected() || this.closed.aborted) return Promise.resolve();
    this.reopened ??= new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        if (!this.isConnected() && !this.closed.aborted) return;
        clearInterval(timer);
        this.reopened = null;
        resolve();
      }, this.checkMs);
      timer.unref();
    });
    const reopened = this.reopened;
    return new Promise<void>((resolve) => {
      const done = (): void => {
        signal.removeEventListener('abort', done);
        resolve();
      };
      signal.addEventListener('abort', done, { once: true });
      void reopened.then(done);
    });
  }
}
