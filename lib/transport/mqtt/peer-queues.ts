/**
 * One queue per peer: the messages of one ESS are handled one at a time, in the order they
 * came (an `update` before the `delete` that follows it), while different ESS nodes are
 * handled side by side. A queue holds a bounded number of messages: an ESS that sends faster
 * than it is answered loses the excess, as QoS 0 would, and repeats what stays unanswered.
 */
export class PeerQueues {
  private readonly queues = new Map<string, { tail: Promise<void>; length: number }>();

  constructor(private readonly limit: number) {}

  /**
   * Queues `work` behind the peer's earlier messages; `onError` gets what it throws. Returns
   * false (and queues nothing) when the peer's queue is full.
   */
  add(key: string, work: () => Promise<void>, onError: (err: unknown) => void): boolean {
    const queue = this.queues.get(key) ?? { tail: Promise.resolve(), length: 0 };
    if (queue.length >= this.limit) return false;
    queue.length++;
    queue.tail = queue.tail
      .then(work)
      .catch(onError)
      .finally(() => {
        queue.length--;
        if (queue.length === 0 && this.queues.get(key) === queue) this.queues.delete(key);
      });
    this.queues.set(key, queue);
    return true;
  }

  /** Resolves when every queued message was handled, or after `ms`, whichever comes first. */
  async drain(ms: number): Promise<void> {
    const drained = Promise.all([...this.queues.values()].map((q) => q.tail));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([drained, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
    clearTimeout(timer);
  }
}
