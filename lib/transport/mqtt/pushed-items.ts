/**
 * What the CSS pushed to this ESS over MQTT, waiting for the agent's next poll. Bounded, without
 * repeats (the CSS resends what is not acked yet), and handed out at most one item per object
 * per poll: the agent handles the items of a poll concurrently, as it may those of an HTTP poll
 * (one record per object there), so an `update` followed by a `delete` of the same object must
 * not come in the same batch, where they could be applied in either order.
 */
import type { MetaData } from '../../model/index.js';
import type { CssItem } from '../../sync/ess/css-link.js';

const objectKey = (meta: Pick<MetaData, 'objectType' | 'objectID'>): string => `${meta.objectType}\u0000${meta.objectID}`;
const itemKey = (item: CssItem): string => `${item.type}\u0000${objectKey(item.meta)}\u0000${item.meta.instanceID}`;

export class PushedItems {
  private items: CssItem[] = [];
  private readonly keys = new Set<string>();

  constructor(private readonly limit: number) {}

  get size(): number {
    return this.items.length;
  }

  /** @returns `repeat` when the same message waits already, `full` when it was dropped */
  push(item: CssItem): 'queued' | 'repeat' | 'full' {
    const key = itemKey(item);
    if (this.keys.has(key)) return 'repeat';
    if (this.items.length >= this.limit) return 'full';
    this.items.push(item);
    this.keys.add(key);
    return 'queued';
  }

  /** Up to `max` items in arrival order, at most one per object; the others wait, in order. */
  take(max: number): CssItem[] {
    const batch: CssItem[] = [];
    const rest: CssItem[] = [];
    const objects = new Set<string>();
    for (const item of this.items) {
      const key = objectKey(item.meta);
      if (batch.length < max && !objects.has(key)) {
        batch.push(item);
        objects.add(key);
        this.keys.delete(itemKey(item));
      } else {
        // Later items of an object already in the batch stay behind it, as do the ones past `max`.
        objects.add(key);
        rest.push(item);
      }
    }
    this.items = rest;
    return batch;
  }

  clear(): void {
    this.items = [];
    this.keys.clear();
  }
}
