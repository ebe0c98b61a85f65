/**
 * Downloads the data of one object the CSS sent to this ESS, through the link, and commits the
 * result with the Receiver. The data goes into a staging area in durable segments, the Receiver
 * persisting the offset after each one, so that a download broken by anything (the CSS gone, a
 * reset connection, this ESS killed) resumes from that offset with closed ranges (see
 * resumeSpan) instead of starting over: the reference restarts from 0 after a restart [ref
 * sync-protocol §1 "Resume", §8 item 6]. The whole data's SHA-256, when the CSS states it (on
 * ranged answers too), is checked before the object completes. [ref sync-protocol §1 "Download
 * of CSS → ESS objects", §3 steps 4–5]
 */
import { pipeline, type Readable } from 'node:stream';
import { signatureTap, type ByteRange, type MetaData } from '../../model/index.js';
import type { BlobStore } from '../../store/types.js';
import { ReceivedSignature, mismatchFeedback, verifyReceivedData } from '../data-check.js';
import type { DownloadState, Receiver } from '../receiver.js';
import { StagingLostError, StagingWriter, type StagingWriterOptions } from '../staging-writer.js';
import { DataUnavailableError, type CssLink, type FetchedData } from './css-link.js';
import { CSS_PEER } from '../receiver.js';
import type { SyncEvents, TransportKind } from '../sync-events.js';

export interface DownloadDeps {
  link: Pick<CssLink, 'fetchData' | 'feedback'>;
  receiver: Receiver;
  blobs: Pick<BlobStore, 'appendStaging' | 'commitStaging' | 'openStaging' | 'delete' | 'write'>;
  /** RESEND_INTERVAL, ms: the retry hint of a mismatch feedback. */
  resendIntervalMs: number;
  /** Aborted when the agent stops. */
  signal: AbortSignal;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void; debug(obj: object, msg: string): void };
  /** Bytes per durable segment; the StagingWriter's default when absent. */
  segmentBytes?: number;
  /** Told of the data stored: each durable segment, or the whole object. */
  events?: SyncEvents;
  /** How the link moves data, for the events. */
  transport?: TransportKind;
}

/** Bytes of `meta`'s data from `offset` are durable here. */
export function noteReceived(deps: DownloadDeps, meta: MetaData, bytes: number, offset: number): void {
  if (deps.events?.dataReceived === undefined) return;
  deps.events.dataReceived({ orgID: meta.destinationOrgID, objectType: meta.objectType, objectID: meta.objectID, instanceID: meta.instanceID }, CSS_PEER, deps.transport ?? 'http', bytes, offset, meta.objectSize);
}

/** Objects from this size on download resumably (one staging segment's worth, by default). */
export const RESUMABLE_FROM = 1024 * 1024;

/** A reference CSS's default MaxDataChunkSize: the span of a resume when the metadata gives none. */
const DEFAULT_RESUME_SPAN = 5 * 1024 * 1024;

/**
 * Bytes asked for per request of a resume. A reference CSS reads a requested range into memory
 * whole (its handleGetData), so until the CSS shows it is ours (by stating the data's digest) a
 * resume goes the object's chunk size at a time, as a reference ESS asks; our CSS streams any
 * range, so the rest then comes in one request.
 */
function resumeSpan(meta: MetaData, oursCss: boolean): number {
  if (oursCss) return Infinity;
  return meta.chunkSize > 0 ? meta.chunkSize : DEFAULT_RESUME_SPAN;
}

const what = (meta: MetaData): object => ({ objectType: meta.objectType, objectID: meta.objectID, instanceID: meta.instanceID });

/**
 * Asks the link for the data; a refusal is logged and yields null (the record stays where it
 * is, and the caller's retry comes back). Progress is discarded when the CSS refuses or
 * garbles a range of a resume (`discardOn`), so the retry starts from 0.
 */
async function fetch(deps: DownloadDeps, meta: MetaData, range: ByteRange | undefined, discardOn: readonly DataUnavailableError['kind'][]): Promise<FetchedData | null> {
  try {
    return await deps.link.fetchData(meta, meta, range, deps.signal);
  } catch (err) {
    if (!(err instanceof DataUnavailableError)) throw err;
    if (discardOn.includes(err.kind)) await deps.receiver.discardDownload(meta);
    // A newer instance or a deletion is on its way, or nothing is to get: the retry sees.
    deps.log.debug({ ...what(meta), kind: err.kind, err }, 'data download refused');
    return null;
  }
}

/**
 * Streams the data into staging, then completes the object. A refusal or a mismatch leaves the
 * record at `getdata`; the caller's retry comes back here, and resumes if it can.
 * @throws NotRegisteredError; a network or disk error as is (progress so far is kept)
 */
export async function downloadData(deps: DownloadDeps, meta: MetaData): Promise<void> {
  if (meta.objectSize < RESUMABLE_FROM) return downloadWhole(deps, meta);
  const { receiver, log } = deps;
  const total = meta.objectSize;
  let state = await receiver.beginDownload(meta);
  let signature = new ReceivedSignature(meta);
  let writer = await openWriter(deps, meta, state, signature);
  if (writer === null) {
    state = await receiver.beginDownload(meta);
    signature = new ReceivedSignature(meta);
    writer = StagingWriter.fresh(deps.blobs, state.stagingId, segmentOpts(deps, signature));
  }
  const from = writer.offset;
  if (from > 0) log.info({ ...what(meta), offset: from, total }, `resuming download of ${meta.objectType}/${meta.objectID} at offset ${from}`);
  // A closed range, the form the reference ESS sends and every CSS parses. [ref sync-protocol §1 Chunked]
  const rangeFrom = (start: number, ours: boolean): ByteRange => ({ start, end: Math.min(total, start + resumeSpan(meta, ours)) - 1 });
  let asked = from > 0 ? rangeFrom(from, false) : null;
  // 416 or 400 to a resume: the CSS holds fewer bytes than it assumed, or takes no range from us.
  const first = await fetch(deps, meta, asked ?? undefined, from > 0 ? ['rangeRefused', 'rangeMismatch'] : []);
  if (first === null) return;
  if (asked !== null && first.start === 0) {
    asked = null;
    // The CSS sent it whole (a reference CSS may ignore Range): start over on a fresh area.
    log.info({ ...what(meta), offset: from }, 'the CSS answered a resume with the whole data; starting over from offset 0');
    await receiver.discardDownload(meta);
    state = await receiver.beginDownload(meta);
    signature = new ReceivedSignature(meta);
    writer = StagingWriter.fresh(deps.blobs, state.stagingId, segmentOpts(deps, signature));
  } else if (asked !== null) {
    await expectRange(deps, meta, first, asked);
  }
  let stated = first.sha256;
  const current = state;
  const resumedAt = writer.offset;
  let durable = resumedAt;
  const onSegment = async (offset: number): Promise<void> => {
    // The last segment's offset is not persisted: completion follows (see advanceDownload).
    if (offset < total && !(await receiver.advanceDownload(meta, current, offset))) {
      throw new Error(`the download of ${meta.objectType}/${meta.objectID} was discarded meanwhile`);
    }
    noteReceived(deps, meta, offset - durable, durable);
    durable = offset;
  };
  await writer.append(first.stream, (asked?.end ?? total - 1) + 1 - writer.offset, onSegment, deps.signal);
  // Over MQTT the digest comes with the data: known now that it came.
  stated ??= first.sha256;
  // The rest of a resume a range at a time; an answer that breaks off keeps what came, for the
  // next attempt to resume from.
  while (writer.offset < total) {
    const next = rangeFrom(writer.offset, stated !== undefined);
    const more = await fetch(deps, meta, next, ['rangeMismatch']);
    if (more === null) return;
    if (more.start === 0) {
      more.stream.destroy();
      log.debug({ ...what(meta), offset: next.start }, 'data download refused: the CSS answered a range with the whole data');
      return;
    }
    await expectRange(deps, meta, more, next);
    stated ??= more.sha256;
    await writer.append(more.stream, next.end + 1 - next.start, onSegment, deps.signal);
    stated ??= more.sha256;
  }
  const check = verifyReceivedData(stated, writer.sha256(), signature.check());
  if (check.kind === 'mismatch') {
    // Corrupted on the way or at the CSS: keep nothing of it, so the retry starts from 0. The
    // object stays `partiallyreceived` and its record `getdata`, so the owed download is
    // retried after RESEND_INTERVAL; the CSS hears why, and shows it as this destination's error.
    await receiver.discardDownload(meta);
    log.warn({ ...what(meta), reason: check.reason }, 'downloaded data failed its check; will retry');
    await deps.link.feedback(meta, mismatchFeedback(check.reason, deps.resendIntervalMs));
    return;
  }
  const written = await writer.commit();
  if (!(await receiver.completeData(meta, written))) await deps.blobs.delete(written.blobId);
  if (resumedAt > 0) log.info({ ...what(meta), offset: resumedAt, total }, `resumed download of ${meta.objectType}/${meta.objectID} complete`);
}

/**
 * Checks that a ranged answer holds the bytes asked for, of an object of the size the metadata
 * says; otherwise none of it is kept, and the retry starts from 0.
 */
async function expectRange(deps: DownloadDeps, meta: MetaData, got: FetchedData, asked: ByteRange): Promise<void> {
  if (got.start === asked.start && got.total === meta.objectSize) return;
  got.stream.destroy();
  await deps.receiver.discardDownload(meta);
  throw new Error(`the CSS answered bytes=${asked.start}-${asked.end} with bytes from ${got.start} of ${got.total} for ${meta.objectSize} bytes`);
}

/**
 * A small object in one go, straight into a blob: a broken download of it simply starts over,
 * so it needs no staging area or session, and costs a few writes less per object (which is
 * what limits how many small objects per second an ESS takes in).
 */
async function downloadWhole(deps: DownloadDeps, meta: MetaData): Promise<void> {
  // No `getdata` step: there is no progress to record, and the record completes from
  // `handleUpdate` as well; one write (and fsync wait) less per object.
  const fetched = await fetch(deps, meta, undefined, []);
  if (fetched === null) return;
  await keepWholeData(deps, meta, fetched.stream, () => fetched.sha256);
}

/**
 * Stores the whole data of an object, from a data request or inline in what the CSS sent, and
 * completes the object if its SHA-256 is the one the CSS stated. A mismatch is reported to the
 * CSS as feedback, and the object keeps waiting for its data.
 * @returns whether the object is complete now
 */
export async function keepWholeData(deps: DownloadDeps, meta: MetaData, source: Readable, statedSha256: string | undefined | (() => string | undefined)): Promise<boolean> {
  const { receiver, blobs } = deps;
  const signature = new ReceivedSignature(meta);
  const input = signature.signed ? pipeline(source, signatureTap(signature), () => undefined) : source;
  const written = await blobs.write(input, { expectedSize: meta.objectSize, signal: deps.signal });
  // A function: the digest comes with the data (MQTT), known once it was all written.
  const check = verifyReceivedData(typeof statedSha256 === 'function' ? statedSha256() : statedSha256, written.sha256, signature.check());
  if (check.kind === 'mismatch') {
    await blobs.delete(written.blobId);
    deps.log.warn({ ...what(meta), reason: check.reason }, 'downloaded data failed its check; will retry');
    await deps.link.feedback(meta, mismatchFeedback(check.reason, deps.resendIntervalMs));
    return false;
  }
  if (await receiver.completeData(meta, written)) {
    noteReceived(deps, meta, written.size, 0);
    return true;
  }
  await blobs.delete(written.blobId);
  return false;
}

function segmentOpts(deps: DownloadDeps, signature?: ReceivedSignature): StagingWriterOptions {
  return { ...(deps.segmentBytes !== undefined ? { segmentBytes: deps.segmentBytes } : {}), ...(signature?.signed === true ? { observer: signature } : {}) };
}

/**
 * A writer at the persisted offset of `state`, its hash rebuilt from the staged bytes; null
 * when those bytes are lost (the progress is then discarded, and the caller begins anew).
 */
async function openWriter(deps: DownloadDeps, meta: MetaData, state: DownloadState, signature: ReceivedSignature): Promise<StagingWriter | null> {
  if (state.offset === 0) return StagingWriter.fresh(deps.blobs, state.stagingId, segmentOpts(deps, signature));
  try {
    return await StagingWriter.resume(deps.blobs, state.stagingId, state.offset, { ...segmentOpts(deps, signature), signal: deps.signal });
  } catch (e) {
    if (!(e instanceof StagingLostError)) throw e;
    deps.log.warn({ objectType: meta.objectType, objectID: meta.objectID, err: e }, 'the staged part of a download is lost; starting over from offset 0');
    await deps.receiver.discardDownload(meta);
    return null;
  }
}
