/**
 * Polling for new objects of a type, the way the reference SDKs' update pollers do, as an async
 * iterable instead of a channel or callback.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { MetaData } from './types.js';

/** Options of {@link SyncServiceClient.watch}. */
export interface WatchOptions {
  /** Pause between two polls, in ms. */
  intervalMs: number;
  /** Ends the iteration (cleanly, without an error) when aborted. */
  signal?: AbortSignal;
  /**
   * Mark each yielded object received once the loop body that handled it returns (at-least-once:
   * an object whose handling threw or was interrupted is not marked). Default false. An object
   * the loop body marked itself through the same client (consumed, received, or a deletion
   * confirmed) is left as the body left it, and a deletion is never marked received: the server
   * refuses to mark an object in those states received.
   */
  markReceived?: boolean;
  /** Also list objects already marked received (the reference pollers do this on their first poll). */
  received?: boolean;
  /**
   * Called with a failed poll's error, after which polling goes on. Without it, the first failed
   * poll ends the iteration by throwing.
   */
  onError?: (err: unknown) => void;
}

/** What the watcher needs from the client; a seam so the loop can be tested on its own. */
export interface WatchSource {
  list(signal: AbortSignal | undefined): Promise<MetaData[]>;
  markReceived(meta: MetaData, signal: AbortSignal | undefined): Promise<void>;
  /**
   * Called just before `meta` is yielded. The function it returns tells, once the loop body
   * returned, whether the app marked that object itself meanwhile.
   */
  handling?(meta: MetaData): () => boolean;
  /** Called once when the iteration ends, however it ends. */
  close?(): void;
}

/**
 * Identity of one delivery of an object. `deleted` is part of it because the reference marks a
 * remote deletion on the stored object without a new instanceID; without it a deletion would
 * never be reported.
 */
function deliveryKey(meta: MetaData): string {
  return `${meta.instanceID}/${meta.deleted}`;
}

/**
 * Yields each object whose (objectID, instanceID) was not yielded before; a deletion of an
 * object is yielded again with `deleted: true`.
 */
export async function* watchObjects(source: WatchSource, options: WatchOptions): AsyncGenerator<MetaData, void, undefined> {
  const { signal } = options;
  // A function, not an inline test: TypeScript would otherwise keep the narrowing from the loop
  // condition across awaits, during which the signal can fire.
  const aborted = (): boolean => signal?.aborted === true;
  // The last delivery yielded per objectID (the type is fixed). instanceIDs only grow, so this
  // is enough to never yield one twice, and memory stays bounded by the number of objects
  // rather than growing with every update.
  const yielded = new Map<string, string>();
  try {
    yield* poll(source, options, yielded, aborted);
  } finally {
    source.close?.();
  }
}

async function* poll(
  source: WatchSource,
  options: WatchOptions,
  yielded: Map<string, string>,
  aborted: () => boolean,
): AsyncGenerator<MetaData, void, undefined> {
  const { signal } = options;
  while (!aborted()) {
    let listed: MetaData[] | undefined;
    try {
      listed = await source.list(signal);
    } catch (err) {
      if (aborted()) return;
      if (options.onError === undefined) throw err;
      options.onError(err);
    }
    for (const meta of listed ?? []) {
      const key = deliveryKey(meta);
      if (yielded.get(meta.objectID) === key) continue;
      yielded.set(meta.objectID, key);
      const markedByApp = source.handling?.(meta);
      yield meta;
      if (aborted()) return;
      if (options.markReceived === true && meta.deleted !== true && markedByApp?.() !== true) {
        try {
          await source.markReceived(meta, signal);
        } catch (err) {
          if (aborted()) return;
          if (options.onError === undefined) throw err;
          options.onError(err);
        }
      }
    }
    try {
      await sleep(options.intervalMs, undefined, signal === undefined ? {} : { signal });
    } catch {
      // Only an abort rejects the timer.
      return;
    }
  }
}
