/**
 * The ESS side of batched acks (spi-batch-acks.ts): body-less acks sent during one event-loop
 * turn, by the workers handling objects concurrently, leave in one request. A CSS that does
 * not know the extension (a reference CSS answers 400) turns batching off for good, and every
 * ack queued then is sent alone, so nothing is lost either way.
 */
import { stringifyJson } from '../../model/index.js';
import { BATCHABLE_ACKS, MAX_BATCH, type BatchableAck, type BatchedAck } from './spi-batch-acks.js';
import { spiAcksPath } from './spi-paths.js';

/** What a queued ack resolves to when it must be sent alone instead. */
export const SEND_ALONE = -1;

/** Answers of a CSS that does not take batches. */
const NOT_SUPPORTED = [400, 404, 405, 501];

interface Queued {
  ack: BatchedAck;
  resolve(status: number): void;
  reject(err: Error): void;
}

export function isBatchable(action: string): action is BatchableAck {
  return (BATCHABLE_ACKS as readonly string[]).includes(action);
}

export class AckBatcher {
  private queue: Queued[] = [];
  private scheduled = false;
  private supported = true;

  constructor(
    private readonly call: (method: string, path: string, payload?: string) => Promise<{ status: number; body: string }>,
    private readonly orgID: string,
    private readonly log: { info(obj: object, msg: string): void },
  ) {}

  /** False once the CSS showed it does not take batches. */
  get enabled(): boolean {
    return this.supported;
  }

  /**
   * Queues `ack` for the end of this turn.
   * @returns the HTTP status it got, or SEND_ALONE when the CSS does not take batches
   * @throws what the batch's request failed with (network, unexpected answer)
   */
  send(ack: BatchedAck): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      this.queue.push({ ack, resolve, reject });
      if (this.scheduled) return;
      this.scheduled = true;
      setImmediate(() => void this.flush());
    });
  }

  private async flush(): Promise<void> {
    this.scheduled = false;
    const all = this.queue;
    this.queue = [];
    for (let i = 0; i < all.length; i += MAX_BATCH) await this.sendBatch(all.slice(i, i + MAX_BATCH));
  }

  private async sendBatch(entries: Queued[]): Promise<void> {
    if (!this.supported) {
      for (const e of entries) e.resolve(SEND_ALONE);
      return;
    }
    let res: { status: number; body: string };
    try {
      res = await this.call('PUT', spiAcksPath(this.orgID), stringifyJson(entries.map((e) => e.ack)));
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      for (const e of entries) e.reject(error);
      return;
    }
    if (res.status === 200) {
      const statuses = parseStatuses(res.body, entries.length);
      if (statuses === null) {
        const error = new Error(`the CSS answered a batch of ${entries.length} acks with ${res.body.slice(0, 200)}`);
        for (const e of entries) e.reject(error);
        return;
      }
      entries.forEach((e, i) => e.resolve(statuses[i]!));
      return;
    }
    // Not registered: every ack in it gets the same answer, and the caller registers again.
    if (res.status === 424) {
      for (const e of entries) e.resolve(424);
      return;
    }
    if (NOT_SUPPORTED.includes(res.status)) {
      this.supported = false;
      this.log.info({ status: res.status }, 'the CSS does not take batched acks; sending them one by one');
      for (const e of entries) e.resolve(SEND_ALONE);
      return;
    }
    const error = new Error(`the CSS answered a batch of acks with ${res.status}: ${res.body.trim().slice(0, 200)}`);
    for (const e of entries) e.reject(error);
  }
}

/** The answer's statuses, or null when it is not an array of `count` HTTP statuses. */
function parseStatuses(body: string, count: number): number[] | null {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return null;
  }
  if (!Array.isArray(value) || value.length !== count) return null;
  return value.every((v) => Number.isInteger(v) && (v as number) >= 100 && (v as number) < 600) ? (value as number[]) : null;
}
