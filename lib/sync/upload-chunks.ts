/**
 * One chunk of a chunked data upload (`Content-Range: bytes S-E/TOTAL`), kept in the store's
 * upload session and a BlobStore staging area so that any process takes the next chunk and an
 * upload survives a restart. Chunks come in order; one wholly inside what was received is a
 * retry. The one implementation of these rules: the API's chunked uploads (ObjectService) and
 * the CSS's uploads from an ESS (UpstreamReceiver) both append through it, so both refuse the
 * same ranges the same way. [ref rest-api §1.2 O17]
 */
import type { Readable } from 'node:stream';
import { BadRequestError, ConflictError, type ByteRange } from '../model/index.js';
import type { BlobStore, BlobWriteResult, Store, UploadSession } from '../store/types.js';

/** A chunk's `Content-Range`: the bytes it carries and the size of the whole data. */
export interface ContentRange extends ByteRange {
  total: number;
}

export interface ChunkTarget {
  orgID: string;
  objectType: string;
  objectID: string;
  /** The instance the data belongs to: an upload of another instance is discarded. */
  instanceID: bigint;
}

/**
 * - `partial`: the chunk is durable, more are expected;
 * - `retry`: the chunk was received before; nothing changed;
 * - `complete`: the last byte arrived: the data is a blob now. The session is left to the
 *   caller to delete, before or after it gives the blob an owner, as its failure rules need.
 */
export type ChunkResult = { kind: 'partial' } | { kind: 'retry' } | { kind: 'complete'; written: BlobWriteResult; chunkSize: number };

export interface AppendChunkDeps {
  store: Pick<Store, 'getUpload' | 'putUpload' | 'advanceUpload'>;
  blobs: Pick<BlobStore, 'createStaging' | 'deleteStaging' | 'writeStaging' | 'commitStaging'>;
  /** Epoch ms, for the session's `lastUpdate`. */
  now: () => number;
}

export interface AppendChunkOptions {
  signal?: AbortSignal;
  /**
   * A chunk past offset 0 found no upload of its instance (`session` is one of another instance
   * or total, or null). Returns the message it is refused with, or null when the caller knows it
   * for a retry (its bytes are drained, nothing changes). By default it is refused.
   */
  noUpload?: (session: UploadSession | null) => string | null;
}

/**
 * Appends one chunk. The caller serialises chunks of one object within its process.
 * @throws BadRequestError for a gap, an overlap, or a first chunk not at 0
 * @throws ConflictError when another process accepted the same offset meanwhile
 */
export async function appendChunk(deps: AppendChunkDeps, target: ChunkTarget, range: ContentRange, source: Readable, opts: AppendChunkOptions = {}): Promise<ChunkResult> {
  const { store, blobs } = deps;
  const { orgID, objectType, objectID } = target;
  const length = range.end - range.start + 1;
  let session: UploadSession | null = await store.getUpload(orgID, objectType, objectID);
  if (session === null || session.instanceID !== target.instanceID || session.total !== range.total) {
    if (range.start !== 0) {
      const refusal = opts.noUpload ? opts.noUpload(session) : `No upload in progress for this instance: the first chunk must start at offset 0, not ${range.start}`;
      if (refusal !== null) throw new BadRequestError(refusal);
      source.resume();
      return { kind: 'retry' };
    }
    if (session !== null) await blobs.deleteStaging(session.stagingId);
    session = { orgID, objectType, objectID, stagingId: await blobs.createStaging(), total: range.total, received: 0, chunkSize: length, instanceID: target.instanceID, lastUpdate: deps.now() };
    await store.putUpload(session);
  } else if (range.end < session.received) {
    source.resume();
    return { kind: 'retry' };
  } else if (range.start !== session.received) {
    throw new BadRequestError(
      range.start > session.received
        ? `Content-Range starts at ${range.start}, leaving a gap: the upload expects offset ${session.received}`
        : `Content-Range ${range.start}-${range.end} overlaps bytes already received (up to ${session.received - 1})`,
    );
  }
  await blobs.writeStaging(session.stagingId, range.start, length, source, opts.signal ? { signal: opts.signal } : {});
  if (!(await store.advanceUpload(orgID, objectType, objectID, range.start, range.end + 1))) throw new ConflictError('Another chunk for this offset was accepted concurrently');
  if (range.end + 1 < range.total) return { kind: 'partial' };
  const written = await blobs.commitStaging(session.stagingId);
  return { kind: 'complete', written, chunkSize: session.chunkSize };
}

/**
 * Abandons the object's chunked upload in progress, with its staging area, unless it is one of
 * `keepInstance` (undefined: whatever its instance).
 */
export async function abandonUpload(
  deps: { store: Pick<Store, 'getUpload' | 'deleteUpload'>; blobs: Pick<BlobStore, 'deleteStaging'> },
  org: string,
  type: string,
  id: string,
  keepInstance?: bigint,
): Promise<void> {
  const upload = await deps.store.getUpload(org, type, id);
  if (upload === null || upload.instanceID === keepInstance) return;
  await deps.store.deleteUpload(org, type, id);
  await deps.blobs.deleteStaging(upload.stagingId);
}
