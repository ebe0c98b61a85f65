/**
 * The order in which the CSS handles what its MQTT ESS nodes send. Order matters per object, not
 * per ESS: an `update` before the `delete` that follows it, a `getdata` before the `received`
 * of the same object; messages about different objects are independent, and handling them side
 * by side lets their store commits share fsyncs (lib/store/sqlite/group-commit.ts) instead of
 * queueing one behind the other. So:
 *
 * - a message about an object waits for the earlier messages of its ESS about the same object;
 * - a message about the ESS as a whole (`register`, `ping`, `resend`) waits for every earlier
 *   message of its ESS, and every later one waits for it (a registration changes what the
 *   messages after it mean);
 * - different ESS nodes never wait for each other;
 * - at most `concurrency` messages are handled at once overall, and those of the `data` kind
 *   within a budget of bytes (each holds a chunk of object data in memory until it is
 *   published: many small ones at once, few large ones).
 *
 * Each ESS may have a bounded number of messages waiting: an ESS that sends faster than it is
 * answered loses the excess, as QoS 0 would, and repeats what stays unanswered.
 */

/**
 * A semaphore of `size` units whose waiters are served first come, first served; one taker
 * may take more than `size` when nothing else is taken (a chunk larger than the budget).
 */
class Slots {
  private used = 0;
  private readonly waiting: Array<{ units: number; resolve: () => void }> = [];

  constructor(private readonly size: number) {}

  acquire(units = 1): Promise<void> | null {
    if (this.waiting.length === 0 && this.fits(units)) {
      this.used += units;
      return null;
    }
    return new Promise((resolve) => this.waiting.push({ units, resolve }));
  }

  release(units = 1): void {
    this.used -= units;
    for (let next = this.waiting[0]; next !== undefined && this.fits(next.units); next = this.waiting[0]) {
      this.waiting.shift();
      this.used += next.units;
      next.resolve();
    }
  }

  private fits(units: number): boolean {
    return this.used === 0 || this.used + units <= this.size;
  }
}

interface PeerState {
  /** Messages of this ESS queued or being handled. */
  length: number;
  /** Settles when the latest message about the ESS as a whole was handled. */
  barrier: Promise<void>;
  /** Messages about objects queued since that one: the next message about the ESS waits for them. */
  sinceBarrier: Set<Promise<void>>;
  /** Per object, the settling of its latest message, and how many of its messages are queued. */
  objects: Map<string, { tail: Promise<void>; length: number }>;
}

export interface QueuedWork {
  /** The object the message is about; null for a message about the ESS as a whole. */
  object: string | null;
  /** `data`: the message serves object data (bounded apart, for memory). */
  kind?: 'control' | 'data';
  /** For the `data` kind: the bytes of data it may hold at most. */
  bytes?: number;
  work: () => Promise<void>;
  /** Gets what `work` throws. */
  onError: (err: unknown) => void;
}

export class PeerQueues {
  private readonly peers = new Map<string, PeerState>();
  private readonly all = new Set<Promise<void>>();
  private readonly slots: Slots;
  private readonly dataSlots: Slots;

  /**
   * @param limit messages one ESS may have queued or being handled
   * @param concurrency messages handled at once, over every ESS
   * @param dataBytes bytes of data the messages of the `data` kind handled at once may hold, over every ESS
   */
  constructor(
    private readonly limit: number,
    concurrency: number,
    dataBytes: number,
  ) {
    this.slots = new Slots(Math.max(1, concurrency));
    this.dataSlots = new Slots(Math.max(1, dataBytes));
  }

  /** Queues one message of the ESS `peer`. Returns false (and queues nothing) when the ESS's queue is full. */
  add(peer: string, message: QueuedWork): boolean {
    let state = this.peers.get(peer);
    if (state === undefined) {
      state = { length: 0, barrier: Promise.resolve(), sinceBarrier: new Set(), objects: new Map() };
      this.peers.set(peer, state);
    }
    if (state.length >= this.limit) return false;
    state.length++;
    const s = state;
    const { object } = message;
    let done: Promise<void>;
    if (object === null) {
      done = this.after(Promise.all([s.barrier, ...s.sinceBarrier]), message);
      s.barrier = done;
      s.sinceBarrier.clear();
    } else {
      let queue = s.objects.get(object);
      if (queue === undefined) {
        queue = { tail: Promise.resolve(), length: 0 };
        s.objects.set(object, queue);
      }
      const q = queue;
      q.length++;
      done = this.after(Promise.all([s.barrier, q.tail]), message);
      q.tail = done;
      s.sinceBarrier.add(done);
      void done.then(() => {
        s.sinceBarrier.delete(done);
        if (--q.length === 0 && s.objects.get(object) === q) s.objects.delete(object);
      });
    }
    this.all.add(done);
    void done.then(() => {
      this.all.delete(done);
      if (--s.length === 0 && this.peers.get(peer) === s) this.peers.delete(peer);
    });
    return true;
  }

  /** Resolves when every queued message was handled, or after `ms`, whichever comes first. */
  async drain(ms: number): Promise<void> {
    const drained = Promise.all([...this.all]);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([drained, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
    clearTimeout(timer);
  }

  /** Runs the message once `ready` settled and a slot is free; never rejects. */
  private async after(ready: Promise<unknown>, message: QueuedWork): Promise<void> {
    await ready;
    const bytes = message.kind === 'data' ? Math.max(1, message.bytes ?? 1) : 0;
    // The data budget first: a message waiting for it holds no general slot meanwhile.
    if (bytes > 0) await this.dataSlots.acquire(bytes);
    await this.slots.acquire();
    try {
      await message.work();
    } catch (err) {
      try {
        message.onError(err);
      } catch {
        // A failing error handler must not stop the queue.
      }
    } finally {
      this.slots.release();
      if (bytes > 0) this.dataSlots.release(bytes);
    }
  }
}
