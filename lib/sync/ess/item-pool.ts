/**
 * Items a pushing link brings (CssLink.itemsPushed: MQTT), handled as they come instead of a
 * poll's worth at a time: a poll's items would otherwise all wait for the slowest of them (one
 * whose ack is lost waits out a timeout) before the next poll's are even looked at. Order still
 * holds per object: an item about an object waits for the earlier one about it (an `update`
 * before the `delete` that follows it). Downloads and light items have bounds of their own, as
 * in a poll's batch (agent.ts).
 */
import type { CssItem } from './css-link.js';

/** A counting semaphore, first come first served. */
class Slots {
  private used = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly size: number) {}

  async acquire(): Promise<void> {
    if (this.used < this.size) {
      this.used++;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  release(): void {
    const next = this.waiting.shift();
    // The slot passes to the next waiter as it is.
    if (next !== undefined) next();
    else this.used--;
  }
}

export interface ItemPoolDeps {
  /** Downloads handled at once. */
  downloads: number;
  /** Other items handled at once. */
  light: number;
  /** Whether the item needs a download that counts against `downloads`. */
  isDownload(item: CssItem): boolean;
  handle(item: CssItem): Promise<void>;
  /** Gets what `handle` throws. */
  onError(err: unknown): void;
}

const objectKey = (item: CssItem): string => `${item.meta.objectType}\u0000${item.meta.objectID}`;

export class ItemPool {
  /** Per object in hand, the settling of its latest item. */
  private readonly tails = new Map<string, Promise<void>>();
  private readonly downloadSlots: Slots;
  private readonly lightSlots: Slots;
  private inHand = 0;
  private readonly waiters = new Set<{ below: number; resolve: () => void }>();

  constructor(private readonly deps: ItemPoolDeps) {
    this.downloadSlots = new Slots(Math.max(1, deps.downloads));
    this.lightSlots = new Slots(Math.max(1, deps.light));
  }

  /** Items queued or being handled. */
  get size(): number {
    return this.inHand;
  }

  /** Whether an item about this object is queued or being handled. */
  holds(objectType: string, objectID: string): boolean {
    return this.tails.has(`${objectType}\u0000${objectID}`);
  }

  /** Starts each item once the earlier item about its object is done and a slot is free. */
  add(items: readonly CssItem[]): void {
    for (const item of items) {
      const key = objectKey(item);
      this.inHand++;
      const done = this.run(this.tails.get(key), item);
      this.tails.set(key, done);
      void done.then(() => {
        if (this.tails.get(key) === done) this.tails.delete(key);
        this.inHand--;
        for (const w of [...this.waiters]) {
          if (this.inHand < w.below) {
            this.waiters.delete(w);
            w.resolve();
          }
        }
      });
    }
  }

  /** Resolves once fewer than `n` items are in hand. */
  below(n: number): Promise<void> {
    if (this.inHand < n) return Promise.resolve();
    return new Promise((resolve) => this.waiters.add({ below: n, resolve }));
  }

  /** Resolves once nothing is in hand. */
  idle(): Promise<void> {
    return this.below(1);
  }

  private async run(after: Promise<void> | undefined, item: CssItem): Promise<void> {
    await after;
    const slots = this.deps.isDownload(item) ? this.downloadSlots : this.lightSlots;
    await slots.acquire();
    try {
      await this.deps.handle(item);
    } catch (err) {
      try {
        this.deps.onError(err);
      } catch {
        // A failing error handler must not stop the pool.
      }
    } finally {
      slots.release();
    }
  }
}
