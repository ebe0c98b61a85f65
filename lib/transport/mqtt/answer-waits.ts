/**
 * Waits for answers that come as separate MQTT messages (`regack`, `updated`, `ackreceived`…):
 * over MQTT nothing answers a publish the way an HTTP status does, so a sender registers what it
 * waits for before it publishes, and the message handler settles it when the answer arrives.
 */

interface Wait<T> {
  resolve(value: T | undefined): void;
  timer: NodeJS.Timeout;
}

export class AnswerWaits<T> {
  private readonly waits = new Map<string, Set<Wait<T>>>();

  /**
   * Resolves with the value `settle` gives `key`, or undefined after `timeoutMs` or on `close`.
   * Register before publishing the question: the answer may come before the publish resolves.
   */
  wait(key: string, timeoutMs: number): Promise<T | undefined> {
    return new Promise((resolve) => {
      let set = this.waits.get(key);
      if (set === undefined) {
        set = new Set();
        this.waits.set(key, set);
      }
      const entry: Wait<T> = {
        resolve: (value) => {
          clearTimeout(entry.timer);
          this.remove(key, entry);
          resolve(value);
        },
        timer: setTimeout(() => entry.resolve(undefined), timeoutMs),
      };
      set.add(entry);
    });
  }

  /** Whether anyone waits for `key`. */
  has(key: string): boolean {
    return this.waits.has(key);
  }

  /** Settles every wait for `key`. @returns whether there was one */
  settle(key: string, value: T): boolean {
    const set = this.waits.get(key);
    if (set === undefined) return false;
    for (const entry of [...set]) entry.resolve(value);
    return true;
  }

  /** Ends every wait with no answer. */
  close(): void {
    for (const set of [...this.waits.values()]) for (const entry of [...set]) entry.resolve(undefined);
    this.waits.clear();
  }

  private remove(key: string, entry: Wait<T>): void {
    const set = this.waits.get(key);
    if (set === undefined) return;
    set.delete(entry);
    if (set.size === 0) this.waits.delete(key);
  }
}
