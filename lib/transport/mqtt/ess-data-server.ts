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
 *
 * The requests about one object are answered in order, one at a time (other objects' side by
 * side), and its chunks read from one open stream straight into their messages, as the CSS reads
 * what it serves (chunk-reader.ts): the CSS asks in ascending order.
 */
import type { MetaData } from '../../model/index.js';
import type { EssObjectRef, OwnDataSource } from '../../sync/ess/css-link.js';
import { ChunkReader, ChunkReaders } from './chunk-reader.js';
import type { ControlInput, ControlMessage } from './control-codec.js';
import { allocDataMessage, dataMessageOverhead } from './data-codec.js';
import { eventTopic } from './topics.js';

/** Chunk size of an object whose metadata states none (the reference's MaxDataChunkSize is 5 MiB; a smaller one suits brokers' limits). */
export const DEFAULT_CHUNK_SIZE = 1024 * 1024;
/** Feedback code "invalid object / not found". [ref common.InvalidObject] */
const FEEDBACK_INVALID_OBJECT = 5;
const DEFAULT_CONCURRENCY = 4;
/** getdata requests waiting their turn; more are dropped (the CSS asks again). */
const DEFAULT_QUEUE_LIMIT = 256;
/** Transfers whose reader is kept between requests, at most. */
const MAX_READERS = 8;
/** A transfer not asked for more for this long closes its reader. */
const READER_IDLE_MS = 10_000;
/** A reader this old is not used again: the store is asked anew (the object replaced?). */
const READER_REOPEN_MS = 2_000;
/** Bytes read ahead of the chunk asked for, at most. */
const READ_AHEAD = 1024 * 1024;

export interface EssDataServerDeps {
  orgID: string;
  destinationType: string;
  destinationID: string;
  /** Publishes a data message on a topic (QoS 0, as the reference: the CSS asks again for what is lost). */
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

const transferKey = (meta: Pick<MetaData, 'objectType' | 'objectID' | 'instanceID'>): string => `${meta.objectType}\u0000${meta.objectID}\u0000${meta.instanceID}`;

export class EssDataServer {
  private source: OwnDataSource | null = null;
  private readonly queue: ControlMessage[] = [];
  /** Objects whose request is being answered: their next ones wait. */
  private readonly busy = new Set<string>();
  private readonly readers = new ChunkReaders({ max: MAX_READERS, idleMs: READER_IDLE_MS, reopenMs: READER_REOPEN_MS });
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
    this.readers.close();
  }

  /** Starts the first waiting request of each object not being answered, within the concurrency. */
  private next(): void {
    const concurrency = this.deps.concurrency ?? DEFAULT_CONCURRENCY;
    for (let i = 0; !this.closed && this.busy.size < concurrency && i < this.queue.length; ) {
      const msg = this.queue[i]!;
      const key = transferKey(msg.meta);
      if (this.busy.has(key)) {
        i++;
        continue;
      }
      this.queue.splice(i, 1);
      this.busy.add(key);
      this.answer(msg)
        .catch((err: unknown) => this.deps.log.debug({ err, objectID: msg.meta.objectID, offset: msg.offset.toString() }, 'a data request was not answered (the CSS asks again)'))
        .finally(() => {
          this.busy.delete(key);
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
    const key = transferKey(meta);
    // The rest of the object is opened: the next request most likely continues where this one ends.
    const reader = valid ? (this.readers.take(key, offset) ?? (await this.open(ref, offset, size))) : null;
    if (reader === null) {
      // [ref handleGetData → SendErrorMessage(NotFound)] the CSS drops the transfer; a newer
      // instance comes with its own update.
      this.deps.log.debug({ objectID: meta.objectID, instanceID: meta.instanceID.toString(), offset: msg.offset.toString() }, 'the CSS asked for data this ESS does not hold');
      await this.deps.sendControl({ command: 'feedback', meta, feedbackCode: FEEDBACK_INVALID_OBJECT, feedbackFromOrigin: true, reason: 'object data not found' });
      return;
    }
    const length = Math.max(0, Math.min(end - offset, reader.remaining));
    const { message, data } = allocDataMessage({ orgID: this.deps.orgID, objectType: meta.objectType, objectID: meta.objectID, offset: msg.offset, instanceID: meta.instanceID }, length);
    try {
      await reader.fill(data);
    } catch (err) {
      reader.close();
      throw err;
    }
    this.readers.keep(key, reader);
    // [ref handleGetData] `chunked` = not the whole object in this one message.
    const chunked = offset !== 0 || offset + length < size;
    await this.deps.publish(eventTopic(this.deps.destinationType, this.deps.destinationID, { leader: chunked }), message);
  }

  /** The object's data from `offset` to its end, or null when this ESS does not hold it. */
  private async open(ref: EssObjectRef, offset: number, size: number): Promise<ChunkReader | null> {
    if (this.source === null) return null;
    const last = Math.max(offset, size - 1);
    const openedAt = Date.now();
    const stream = await this.source(ref, { start: offset, end: last });
    // An object of no bytes: an empty stream, one empty chunk.
    return stream === null ? null : new ChunkReader(stream, offset, size === 0 ? offset - 1 : last, openedAt, READ_AHEAD);
  }
}
