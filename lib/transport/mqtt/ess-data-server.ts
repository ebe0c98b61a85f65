/**
 * The sender's side of an MQTT data transfer, on the ESS: the CSS pulls the data of an object
 * this ESS published with `getdata{offset}` messages, and each is answered with one binary data
 * message read from the ESS's store. [ref sync-protocol §2 Flow; notificationHandler handleGetData]
 *
 * As the reference: a chunk of a transfer in several chunks goes on `…/evt/sync-cmd-leader/…`
 * (only the leader CSS handles those), a whole object in one chunk on `…/evt/sync-cmd/…`; an
 * instance this ESS no longer holds is answered with feedback code 5 ("invalid object"), after
 * which the CSS forgets the transfer. Unlike it, chunks carry no zero padding, and at most a few
 * chunks are read at once, whatever window the CSS uses (a chunk may be several MiB).
 */
import type { Readable } from 'node:stream';
import type { MetaData } from '../../model/index.js';
import type { EssObjectRef, OwnDataSource } from '../../sync/ess/css-link.js';
import type { ControlInput, ControlMessage } from './control-codec.js';
import { dataMessageOverhead, encodeData } from './data-codec.js';
import { eventTopic } from './topics.js';

/** Chunk size of an object whose metadata states none (the reference's MaxDataChunkSize is 5 MiB; a smaller one suits brokers' limits). */
export const DEFAULT_CHUNK_SIZE = 1024 * 1024;
/** Feedback code "invalid object / not found". [ref common.InvalidObject] */
const FEEDBACK_INVALID_OBJECT = 5;
const DEFAULT_CONCURRENCY = 4;
/** getdata requests waiting their turn; more are dropped (the CSS asks again). */
const DEFAULT_QUEUE_LIMIT = 256;

export interface EssDataServerDeps {
  orgID: string;
  destinationType: string;
  destinationID: string;
  /** Publishes a payload on a topic (QoS 1). */
  publish(topic: string, payload: Buffer): Promise<void>;
  /** Sends a control message to the CSS. */
  sendControl(input: ControlInput): Promise<void>;
  /** The largest payload a publish on `topic` may carry. */
  maxPayload(topic: string): number;
  log: { debug(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  concurrency?: number;
  queueLimit?: number;
}

/**
 * The chunk size of an object on the wire: its stated one (a default when none), within what one
 * data message may carry (`maxPayload`: the broker's packet limit less the topic).
 */
export function chunkBound(opts: { maxPayload: number; orgID: string; objectType: string; objectID: string; chunkSize: number }): number {
  const wanted = opts.chunkSize > 0 ? opts.chunkSize : DEFAULT_CHUNK_SIZE;
  const room = opts.maxPayload - dataMessageOverhead(opts.orgID, opts.objectType, opts.objectID);
  return Math.max(1, Math.min(wanted, room));
}

export class EssDataServer {
  private source: OwnDataSource | null = null;
  private readonly queue: ControlMessage[] = [];
  private running = 0;
  private closed = false;

  constructor(private readonly deps: EssDataServerDeps) {}

  serve(source: OwnDataSource): void {
    this.source = source;
  }

  /** The largest chunk of `meta`'s data one message carries. */
  chunkSizeOf(meta: Pick<MetaData, 'objectType' | 'objectID' | 'chunkSize'>): number {
    const { orgID, destinationType, destinationID } = this.deps;
    const topic = eventTopic(destinationType, destinationID, { leader: true });
    return chunkBound({ maxPayload: this.deps.maxPayload(topic), orgID, objectType: meta.objectType, objectID: meta.objectID, chunkSize: meta.chunkSize });
  }

  /** A `getdata` from the CSS; answered when a reader is free. */
  request(msg: ControlMessage): void {
    if (this.closed) return;
    if (this.queue.length >= (this.deps.queueLimit ?? DEFAULT_QUEUE_LIMIT)) {
      this.deps.log.debug({ objectID: msg.meta.objectID, offset: msg.offset.toString() }, 'too many data requests waiting; dropped (the CSS asks again)');
      return;
    }
    this.queue.push(msg);
    this.next();
  }

  close(): void {
    this.closed = true;
    this.queue.length = 0;
  }

  private next(): void {
    while (!this.closed && this.running < (this.deps.concurrency ?? DEFAULT_CONCURRENCY) && this.queue.length > 0) {
      const msg = this.queue.shift()!;
      this.running++;
      this.answer(msg)
        .catch((err: unknown) => this.deps.log.debug({ err, objectID: msg.meta.objectID, offset: msg.offset.toString() }, 'a data request was not answered (the CSS asks again)'))
        .finally(() => {
          this.running--;
          this.next();
        });
    }
  }

  private async answer(msg: ControlMessage): Promise<void> {
    const { meta } = msg;
    const offset = Number(msg.offset);
    const ref: EssObjectRef = { objectType: meta.objectType, objectID: meta.objectID, instanceID: meta.instanceID, dataID: meta.dataID };
    const size = meta.objectSize;
    const valid = Number.isSafeInteger(offset) && offset >= 0 && (offset < size || (offset === 0 && size === 0));
    const end = Math.min(offset + this.chunkSizeOf(meta), size);
    const stream = valid && this.source !== null ? await this.source(ref, { start: offset, end: Math.max(offset, end - 1) }) : null;
    if (stream === null) {
      // [ref handleGetData → SendErrorMessage(NotFound)] the CSS drops the transfer; a newer
      // instance comes with its own update.
      this.deps.log.debug({ objectID: meta.objectID, instanceID: meta.instanceID.toString(), offset: msg.offset.toString() }, 'the CSS asked for data this ESS does not hold');
      await this.deps.sendControl({ command: 'feedback', meta, feedbackCode: FEEDBACK_INVALID_OBJECT, feedbackFromOrigin: true, reason: 'object data not found' });
      return;
    }
    const data = size === 0 ? Buffer.alloc(0) : await readAtMost(stream, end - offset);
    const payload = encodeData({ orgID: this.deps.orgID, objectType: meta.objectType, objectID: meta.objectID, offset: msg.offset, instanceID: meta.instanceID, data });
    // [ref handleGetData] `chunked` = not the whole object in this one message.
    const chunked = offset !== 0 || offset + data.length < size;
    await this.deps.publish(eventTopic(this.deps.destinationType, this.deps.destinationID, { leader: chunked }), payload);
  }
}

/** Reads a stream into one buffer of at most `limit` bytes, then releases it. */
async function readAtMost(stream: Readable, limit: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let length = 0;
  try {
    for await (const part of stream) {
      const buf = Buffer.isBuffer(part) ? part : Buffer.from(part as Uint8Array);
      parts.push(length + buf.length > limit ? buf.subarray(0, limit - length) : buf);
      length = Math.min(limit, length + buf.length);
      if (length >= limit) break;
    }
  } finally {
    stream.destroy();
  }
  return Buffer.concat(parts, length);
}
