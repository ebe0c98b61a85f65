/**
 * Downloads the data of one object the CSS sent to this ESS and hands the result to the
 * Receiver. The data goes into a staging area in durable segments, the Receiver persisting the
 * offset after each one, so that a download broken by anything (the CSS gone, a reset
 * connection, this ESS killed) resumes from that offset with closed ranges (see resumeSpan)
 * instead of starting over: the reference restarts from 0 after a restart [ref sync-protocol §1
 * "Resume", §8 item 6]. The whole data's SHA-256, when the CSS states it (on 206 answers too), is checked
 * before the object completes. [ref sync-protocol §1 "Download of CSS → ESS objects", §3 steps 4–5]
 */
import type http from 'node:http';
import type { Readable } from 'node:stream';
import type { MetaData } from '../../model/index.js';
import type { BlobStore } from '../../store/types.js';
import { mismatchFeedback, verifyDownloadedData } from '../../sync/data-check.js';
import type { DownloadState, Receiver } from '../../sync/receiver.js';
import { StagingLostError, StagingWriter } from '../../sync/staging-writer.js';
import { DATA_TIMEOUT_MS, NotRegisteredError, type SpiConnection } from './spi-connection.js';
import { DATA_SHA256_HEADER, spiObjectPath } from './spi-paths.js';

export interface SpiDownloadDeps {
  conn: SpiConnection;
  receiver: Receiver;
  blobs: Pick<BlobStore, 'appendStaging' | 'commitStaging' | 'openStaging' | 'delete' | 'write'>;
  /** RESEND_INTERVAL, ms: the retry hint of a mismatch feedback. */
  resendIntervalMs: number;
  /** Aborted when the client stops. */
  signal: AbortSignal;
  /** Bytes per durable segment; the StagingWriter's default when absent. */
  segmentBytes?: number;
}

/** Objects from this size on download resumably (one staging segment's worth, by default). */
export const RESUMABLE_FROM = 1024 * 1024;

/** `bytes a-b/total` of a 206 answer, or null when it is not one. */
function contentRange(res: http.IncomingMessage): { start: number; end: number; total: number } | null {
  const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(res.headers['content-range'] ?? '');
  return m === null ? null : { start: Number(m[1]), end: Number(m[2]), total: Number(m[3]) };
}

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

/** A reference CSS's default MaxDataChunkSize: the span of a resume when the metadata gives none. */
const DEFAULT_RESUME_SPAN = 5 * 1024 * 1024;

function statedDigest(res: http.IncomingMessage): string | undefined {
  const v = res.headers[DATA_SHA256_HEADER.toLowerCase()];
  return typeof v === 'string' ? v : undefined;
}

/**
 * Checks that a 206 answer holds the bytes asked for; otherwise the data is not what the
 * metadata says, and none of it is kept.
 */
async function expectRange(res: http.IncomingMessage, asked: { start: number; end: number }, total: number, discard: () => Promise<void>): Promise<void> {
  const range = contentRange(res);
  if (range !== null && range.start === asked.start && range.end === asked.end && range.total === total) return;
  res.destroy();
  await discard();
  throw new Error(`the CSS answered bytes=${asked.start}-${asked.end} with Content-Range ${res.headers['content-range'] ?? '(none)'} for ${total} bytes`);
}

/**
 * Streams the data into staging, then completes the object. A refusal or a mismatch leaves the
 * record at `getdata`; the caller's retry comes back here, and resumes if it can.
 * @throws NotRegisteredError on 424; a network or disk error as is (progress so far is kept)
 */
export async function downloadData(deps: SpiDownloadDeps, meta: MetaData): Promise<void> {
  if (meta.objectSize < RESUMABLE_FROM) return downloadWhole(deps, meta);
  const { conn, receiver } = deps;
  const log = conn.deps.log;
  const what = { objectType: meta.objectType, objectID: meta.objectID, instanceID: meta.instanceID };
  const total = meta.objectSize;
  let state = await receiver.beginDownload(meta);
  let writer = await openWriter(deps, meta, state);
  if (writer === null) {
    state = await receiver.beginDownload(meta);
    writer = StagingWriter.fresh(deps.blobs, state.stagingId, segmentOpts(deps));
  }
  const from = writer.offset;
  if (from > 0) log.info({ ...what, offset: from, total }, `resuming download of ${meta.objectType}/${meta.objectID} at offset ${from}`);
  const path = spiObjectPath({ orgID: conn.deps.orgID, ...meta }, 'data');
  // A closed range, the form the reference ESS sends and every CSS parses. [ref sync-protocol §1 Chunked]
  const rangeFrom = (start: number, ours: boolean): { start: number; end: number } => ({ start, end: Math.min(total, start + resumeSpan(meta, ours)) - 1 });
  let asked = from > 0 ? rangeFrom(from, false) : null;
  const res = await conn.request('GET', path, { timeoutMs: DATA_TIMEOUT_MS, ...(asked !== null ? { headers: { range: `bytes=${asked.start}-${asked.end}` } } : {}) });
  if (res.statusCode === 200 && from > 0) {
    asked = null;
    // The CSS sent it whole (a reference CSS may ignore Range): start over on a fresh area.
    log.info({ ...what, offset: from }, 'the CSS answered a resume with the whole data; starting over from offset 0');
    await receiver.discardDownload(meta);
    state = await receiver.beginDownload(meta);
    writer = StagingWriter.fresh(deps.blobs, state.stagingId, segmentOpts(deps));
  } else if (res.statusCode === 206 && asked !== null) {
    await expectRange(res, asked, total, () => receiver.discardDownload(meta));
  } else if (res.statusCode !== 200) {
    const body = await conn.text(res);
    if (res.statusCode === 424) throw new NotRegisteredError();
    // 416: the CSS holds fewer bytes than this resume assumed; 400: it takes no range from us.
    // Either way the next attempt starts from 0, without a Range.
    if (from > 0 && (res.statusCode === 416 || res.statusCode === 400)) await receiver.discardDownload(meta);
    // 409: a newer instance or a deletion is on its way through the poll; 404: nothing to get.
    log.debug({ ...what, status: res.statusCode, body: body.trim() }, 'data download refused');
    return;
  }
  let stated = statedDigest(res);
  const current = state;
  const resumedAt = writer.offset;
  const onSegment = async (offset: number): Promise<void> => {
    // The last segment's offset is not persisted: completion follows (see advanceDownload).
    if (offset < total && !(await receiver.advanceDownload(meta, current, offset))) {
      throw new Error(`the download of ${meta.objectType}/${meta.objectID} was discarded meanwhile`);
    }
  };
  await writer.append(res, (asked?.end ?? total - 1) + 1 - writer.offset, onSegment, deps.signal);
  // The rest of a resume a range at a time; an answer that breaks off keeps what came, for the
  // next attempt to resume from.
  while (writer.offset < total) {
    const next = rangeFrom(writer.offset, stated !== undefined);
    const more = await conn.request('GET', path, { timeoutMs: DATA_TIMEOUT_MS, headers: { range: `bytes=${next.start}-${next.end}` } });
    if (more.statusCode !== 206) {
      const body = await conn.text(more);
      if (more.statusCode === 424) throw new NotRegisteredError();
      log.debug({ ...what, status: more.statusCode, body: body.trim() }, 'data download refused');
      return;
    }
    await expectRange(more, next, total, () => receiver.discardDownload(meta));
    stated ??= statedDigest(more);
    await writer.append(more, next.end + 1 - next.start, onSegment, deps.signal);
  }
  const check = verifyDownloadedData(stated, writer.sha256());
  if (check.kind === 'mismatch') {
    // Corrupted on the way or at the CSS: keep nothing of it, so the retry starts from 0. The
    // object stays `partiallyreceived` and its record `getdata`, so the owed download is
    // retried after RESEND_INTERVAL; the CSS hears why, and shows it as this destination's error.
    await receiver.discardDownload(meta);
    log.warn({ ...what, reason: check.reason }, 'downloaded data failed its SHA-256 check; will retry');
    await conn.sendFeedback(meta, mismatchFeedback(check.reason, deps.resendIntervalMs));
    return;
  }
  const written = await writer.commit();
  if (!(await receiver.completeData(meta, written))) await deps.blobs.delete(written.blobId);
  if (resumedAt > 0) log.info({ ...what, offset: resumedAt, total }, `resumed download of ${meta.objectType}/${meta.objectID} complete`);
}

/**
 * A small object in one go, straight into a blob: a broken download of it simply starts over,
 * so it needs no staging area or session, and costs a few writes less per object (which is
 * what limits how many small objects per second an ESS takes in).
 */
async function downloadWhole(deps: SpiDownloadDeps, meta: MetaData): Promise<void> {
  const { conn } = deps;
  // No `getdata` step: there is no progress to record, and the record completes from
  // `handleUpdate` as well; one write (and fsync wait) less per object.
  const res = await conn.request('GET', spiObjectPath({ orgID: conn.deps.orgID, ...meta }, 'data'), { timeoutMs: DATA_TIMEOUT_MS });
  if (res.statusCode !== 200) {
    const body = await conn.text(res);
    if (res.statusCode === 424) throw new NotRegisteredError();
    conn.deps.log.debug({ objectID: meta.objectID, status: res.statusCode, body: body.trim() }, 'data download refused');
    return;
  }
  const stated = res.headers[DATA_SHA256_HEADER.toLowerCase()];
  await keepWholeData(deps, meta, res, typeof stated === 'string' ? stated : undefined);
}

/**
 * Stores the whole data of an object, from a data GET or a poll entry (spi-inline-data.ts),
 * and completes the object if its SHA-256 is the one the CSS stated. A mismatch is reported
 * to the CSS as feedback, and the object keeps waiting for its data.
 * @returns whether the object is complete now
 */
export async function keepWholeData(deps: SpiDownloadDeps, meta: MetaData, source: Readable, statedSha256: string | undefined): Promise<boolean> {
  const { conn, receiver, blobs } = deps;
  const written = await blobs.write(source, { expectedSize: meta.objectSize, signal: deps.signal });
  const check = verifyDownloadedData(statedSha256, written.sha256);
  if (check.kind === 'mismatch') {
    await blobs.delete(written.blobId);
    conn.deps.log.warn({ objectType: meta.objectType, objectID: meta.objectID, instanceID: meta.instanceID, reason: check.reason }, 'downloaded data failed its SHA-256 check; will retry');
    await conn.sendFeedback(meta, mismatchFeedback(check.reason, deps.resendIntervalMs));
    return false;
  }
  if (await receiver.completeData(meta, written)) return true;
  await blobs.delete(written.blobId);
  return false;
}

function segmentOpts(deps: SpiDownloadDeps): { segmentBytes?: number } {
  return deps.segmentBytes !== undefined ? { segmentBytes: deps.segmentBytes } : {};
}

/**
 * A writer at the persisted offset of `state`, its hash rebuilt from the staged bytes; null
 * when those bytes are lost (the progress is then discarded, and the caller begins anew).
 */
async function openWriter(deps: SpiDownloadDeps, meta: MetaData, state: DownloadState): Promise<StagingWriter | null> {
  if (state.offset === 0) return StagingWriter.fresh(deps.blobs, state.stagingId, segmentOpts(deps));
  try {
    return await StagingWriter.resume(deps.blobs, state.stagingId, state.offset, { ...segmentOpts(deps), signal: deps.signal });
  } catch (e) {
    if (!(e instanceof StagingLostError)) throw e;
    deps.conn.deps.log.warn({ objectType: meta.objectType, objectID: meta.objectID, err: e }, 'the staged part of a download is lost; starting over from offset 0');
    await deps.receiver.discardDownload(meta);
    return null;
  }
}
