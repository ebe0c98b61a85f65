/**
 * The CSS's answer to `getdata{offset}`: one binary data message carrying the chunk of the
 * object's data that starts at the offset. [ref sync-protocol §2 "Flow", notificationHandler
 * handleGetData]
 *
 * The chunk is the object's `chunkSize` (set at create time; the ESS asks per that size), but
 * never more than a message the broker takes. One chunk is in memory at a time: the range is
 * read into one buffer bounded by the chunk size, the whole object never is.
 */
import { InternalError, RangeNotSatisfiableError, type MetaData } from '../../model/index.js';
import type { DataSlice, EssSession, ObjectRef } from '../../sync/css/types.js';
import { dataMessageOverhead, encodeData } from './data-codec.js';

/** Bytes of object data one message may carry when the publish may carry `maxPayload` bytes. */
export function chunkCapacity(maxPayload: number, orgID: string, objectType: string, objectID: string): number {
  return maxPayload - dataMessageOverhead(orgID, objectType, objectID);
}

/** Reads a range that the slice says is at most `limit` bytes into one buffer. */
async function readSlice(slice: DataSlice, limit: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let length = 0;
  for await (const part of slice.stream as AsyncIterable<Buffer | string>) {
    const buf = typeof part === 'string' ? Buffer.from(part) : part;
    length += buf.length;
    if (length > limit) {
      slice.stream.destroy();
      throw new InternalError(`the data store returned more than the ${limit} bytes of the range asked for`);
    }
    parts.push(buf);
  }
  return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, length);
}

export interface ChunkRequest {
  session: EssSession;
  orgID: string;
  meta: MetaData;
  offset: number;
  /** Bytes per chunk: the object's chunk size, already capped to what a message carries. */
  chunkSize: number;
  signal: AbortSignal;
}

/**
 * The data message answering `getdata` at `offset`.
 * @throws what `EssSession.openData` throws (NotFoundError, ConflictError, …)
 */
export async function chunkMessage(req: ChunkRequest): Promise<Buffer> {
  const { session, meta, offset, chunkSize, signal } = req;
  const ref: ObjectRef = { objectType: meta.objectType, objectID: meta.objectID, instanceID: meta.instanceID };
  let slice: DataSlice;
  try {
    slice = await session.openData(ref, { start: offset, end: offset + chunkSize - 1 }, signal);
  } catch (err) {
    // An object of no bytes has no byte 0: it is served whole, as one empty chunk.
    if (!(err instanceof RangeNotSatisfiableError) || offset !== 0) throw err;
    slice = await session.openData(ref, undefined, signal);
  }
  const data = await readSlice(slice, Math.min(Math.max(slice.end - slice.start + 1, 0), chunkSize));
  return encodeData({ orgID: req.orgID, objectType: meta.objectType, objectID: meta.objectID, offset: BigInt(slice.start), instanceID: meta.instanceID, data });
}
