/**
 * Calls the webhooks registered for an object's type when an object of that type becomes
 * available on this node (a new version stored with its data, or a noData/link/metaOnly one)
 * or is deleted. The request is the reference's: `POST <url>`, `Content-Type:
 * Application/JSON`, the object's metadata as pretty JSON (`deleted: true` for a deletion)
 * [ref rest-api §3.6]; we add an `X-Edgesync-Event` header. Unlike the reference, it never runs
 * in the path of the change that caused it, every attempt has a timeout, a failure is retried
 * with exponential backoff a bounded number of times, and each delivery is logged
 * (delivery-log.ts).
 */
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import type { LookupFunction } from 'node:net';
import type { Logger } from '../../log/logger.js';
import { goJson, orderedMetaData } from '../../model/index.js';
import type { Store, StoredObject } from '../../store/types.js';
import type { ObjectChangeListener } from '../object-listeners.js';
import { DeliveryLog, type WebhookDelivery, type WebhookEvent } from './delivery-log.js';
import { TargetPolicy, UnresolvedTargetError, WebhookTargetError } from './targets.js';

/** Statuses in which an object's current version can be read by the apps of this node. */
const AVAILABLE = new Set<string>(['ready', 'completelyReceived']);

/**
 * What a committed change means to the webhooks: `available` when the object reaches a readable
 * status with a version not announced yet, `deleted` when a received object becomes a deletion
 * placeholder. Marks (received, consumed) and in-place changes (destinations, activation) of a
 * version already announced are not events.
 */
export function webhookEvent(before: StoredObject | null, after: StoredObject): WebhookEvent | null {
  if (after.status === 'objdeleted') return before?.status === 'objdeleted' ? null : 'deleted';
  if (!AVAILABLE.has(after.status)) return null;
  if (before === null || before.meta.instanceID !== after.meta.instanceID || !AVAILABLE.has(before.status)) return 'available';
  return null;
}

export interface WebhookDispatcherOptions {
  store: Pick<Store, 'listWebhooks'>;
  policy: TargetPolicy;
  log: Logger;
  /** The longest one attempt may take, connection and answer included. */
  timeoutMs: number;
  /** Attempts per delivery, the first included. */
  maxAttempts: number;
  /** Wait before the first retry; doubled before each next one, up to `maxRetryDelayMs`. */
  retryDelayMs: number;
  maxRetryDelayMs?: number;
  /** Attempts in flight at once, over all hooks. */
  concurrency?: number;
  /** Deliveries not finished (queued, in flight, waiting to retry) beyond which new ones are dropped, and logged as failed. */
  maxOutstanding?: number;
  deliveryLog?: DeliveryLog;
  now?: () => Date;
}

interface Job {
  org: string;
  delivery: WebhookDelivery;
  body: string;
}

/** What one attempt found out. */
interface AttemptResult {
  status?: number;
  error?: string;
}

const MAX_ERROR_TEXT = 300;

export class WebhookDispatcher implements ObjectChangeListener {
  readonly log: DeliveryLog;
  private readonly queue: Job[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly inFlight = new Set<http.ClientRequest>();
  private running = 0;
  private outstanding = 0;
  private nextId = 1;
  private stopped = false;
  private readonly now: () => Date;

  constructor(private readonly opts: WebhookDispatcherOptions) {
    this.log = opts.deliveryLog ?? new DeliveryLog();
    this.now = opts.now ?? (() => new Date());
  }

  onObjectStored(before: StoredObject | null, after: StoredObject): void {
    const event = webhookEvent(before, after);
    if (event !== null) this.fire(event, after);
  }

  onObjectRemoved(obj: StoredObject): void {
    // A placeholder already announced as deleted goes when the app confirms: nothing new to tell.
    if (obj.status !== 'objdeleted') this.fire('deleted', obj);
  }

  /** Queues a call of every hook of the object's type; returns at once. */
  fire(event: WebhookEvent, obj: StoredObject): void {
    if (this.stopped) return;
    const org = obj.meta.destinationOrgID;
    const meta = event === 'deleted' ? { ...obj.meta, deleted: true } : obj.meta;
    this.opts.store.listWebhooks(org, meta.objectType).then(
      (hooks) => {
        if (hooks.length === 0 || this.stopped) return;
        const body = goJson(orderedMetaData(meta));
        for (const hook of hooks) this.enqueue(org, event, meta.objectType, meta.objectID, meta.instanceID, hook.url, body);
      },
      (err: unknown) => this.opts.log.error({ err, org, objectType: meta.objectType }, 'could not read the webhooks of an object type'),
    );
  }

  private enqueue(org: string, event: WebhookEvent, objectType: string, objectID: string, instanceID: bigint, url: string, body: string): void {
    const delivery: WebhookDelivery = { id: this.nextId++, url, event, objectType, objectID, instanceID, state: 'pending', createdAt: this.now().toISOString(), attempts: [] };
    this.log.add(org, delivery);
    if (this.outstanding >= (this.opts.maxOutstanding ?? 1000)) {
      delivery.state = 'failed';
      delivery.attempts.push({ at: delivery.createdAt, error: 'not attempted: too many webhook deliveries outstanding', durationMs: 0 });
      this.opts.log.warn({ org, objectType, objectID, url }, 'webhook delivery dropped: too many outstanding');
      return;
    }
    this.outstanding++;
    this.queue.push({ org, delivery, body });
    this.pump();
  }

  private pump(): void {
    const limit = this.opts.concurrency ?? 4;
    while (!this.stopped && this.running < limit && this.queue.length > 0) {
      const job = this.queue.shift();
      if (job === undefined) break;
      this.running++;
      void this.attempt(job).finally(() => {
        this.running--;
        this.pump();
      });
    }
  }

  private async attempt(job: Job): Promise<void> {
    const { delivery } = job;
    const started = this.now();
    let result: AttemptResult;
    let retry = true;
    try {
      const addresses = await this.opts.policy.check(delivery.url);
      result = await this.post(delivery.url, job.body, delivery.event, addresses);
    } catch (e) {
      // A target the policy refuses now will not be allowed by waiting.
      retry = !(e instanceof WebhookTargetError);
      result = { error: e instanceof Error ? e.message : String(e) };
    }
    if (this.stopped) return;
    delete delivery.nextAttemptAt;
    delivery.attempts.push({ at: started.toISOString(), ...result, durationMs: this.now().getTime() - started.getTime() });
    const ok = result.status !== undefined && result.status >= 200 && result.status < 300;
    const fields = { org: job.org, objectType: delivery.objectType, objectID: delivery.objectID, url: delivery.url, event: delivery.event, attempt: delivery.attempts.length };
    if (ok) {
      delivery.state = 'delivered';
      this.outstanding--;
      this.opts.log.debug({ ...fields, status: result.status }, 'webhook called');
      return;
    }
    const reason = result.error ?? `status ${result.status ?? 'none'}`;
    if (!retry || delivery.attempts.length >= this.opts.maxAttempts) {
      delivery.state = 'failed';
      this.outstanding--;
      this.opts.log.warn({ ...fields, reason }, 'webhook delivery failed; giving up');
      return;
    }
    const delay = Math.min(this.opts.retryDelayMs * 2 ** (delivery.attempts.length - 1), this.opts.maxRetryDelayMs ?? 300_000);
    delivery.state = 'retrying';
    delivery.nextAttemptAt = new Date(this.now().getTime() + delay).toISOString();
    this.opts.log.info({ ...fields, reason, retryInMs: delay }, 'webhook call failed; will retry');
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.queue.push(job);
      this.pump();
    }, delay);
    timer.unref();
    this.timers.add(timer);
  }

  /**
   * One POST. `addresses` (checked by the policy) are the only ones connected to, so a name
   * that resolves elsewhere between the check and the connection cannot redirect the call.
   * Redirects are not followed.
   */
  private post(url: string, body: string, event: WebhookEvent, addresses: readonly string[]): Promise<AttemptResult> {
    const target = new URL(url);
    const client = target.protocol === 'https:' ? https : http;
    const pinned = addresses.length > 0 && isIP(target.hostname.replace(/^\[|\]$/g, '')) === 0 ? pinnedLookup(addresses) : undefined;
    return new Promise((resolve) => {
      let settled = false;
      const done = (r: AttemptResult): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.inFlight.delete(req);
        resolve(r);
      };
      const req = client.request(
        target,
        {
          method: 'POST',
          headers: { 'Content-Type': 'Application/JSON', 'Content-Length': Buffer.byteLength(body), 'X-Edgesync-Event': event },
          ...(pinned !== undefined ? { lookup: pinned } : {}),
        },
        (res) => {
          // The answer's body means nothing to us; read it away so the socket is released.
          res.resume();
          res.on('end', () => done({ status: res.statusCode ?? 0 }));
          res.on('error', (e) => done({ error: e.message.slice(0, MAX_ERROR_TEXT) }));
        },
      );
      const timer = setTimeout(() => {
        done({ error: `no answer within ${this.opts.timeoutMs} ms` });
        req.destroy();
      }, this.opts.timeoutMs);
      this.inFlight.add(req);
      req.on('error', (e) => done({ error: e.message.slice(0, MAX_ERROR_TEXT) }));
      req.end(body);
    });
  }

  /**
   * Whether the node may call `url` (the registration check). A name that does not resolve
   * now is accepted: it is checked again before every call.
   * @throws WebhookTargetError with the reason
   */
  async checkTarget(url: string): Promise<void> {
    try {
      await this.opts.policy.check(url);
    } catch (e) {
      if (!(e instanceof UnresolvedTargetError)) throw e;
    }
  }

  /** The deliveries of a type, newest first. */
  deliveries(org: string, type: string): WebhookDelivery[] {
    return this.log.list(org, type);
  }

  /** Forgets the delivery log of a deleted org. */
  forgetOrg(org: string): void {
    this.log.forgetOrg(org);
  }

  /** Drops queued and waiting deliveries and aborts the calls in flight. */
  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.queue.length = 0;
    for (const req of this.inFlight) req.destroy();
    this.inFlight.clear();
  }
}

/** A `lookup` that answers with the addresses already checked, in either form Node asks for. */
function pinnedLookup(addresses: readonly string[]): LookupFunction {
  const entries = addresses.map((address) => ({ address, family: isIP(address) }));
  return ((_host: string, options: { all?: boolean }, callback: (err: NodeJS.ErrnoException | null, address: string | { address: string; family: number }[], family?: number) => void) => {
    const first = entries[0];
    if (options.all === true) callback(null, entries);
    else if (first !== undefined) callback(null, first.address, first.family);
  }) as LookupFunction;
}
