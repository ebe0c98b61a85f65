/**
 * Downloads the data of one object the CSS sent to this ESS and hands the result to the
 * Receiver. The data goes into a staging area in durable segments, the Receiver persisting the
 * offset after each one, so that a download broken by anything (the CSS gone, a reset
 * connection, this ESS killed) resumes from that offset with `Range: bytes=N-(size-1)` instead of
 * starting over: the reference restarts from 0 after a restart [ref sync-protocol §1 "Resume",
 * §8 item 6]. The whole data's SHA-256, when the CSS states it (on 206 answers too), is checked
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
  const res = await conn.request('GET', path, { timeoutMs: DATA_TIMEOUT_MS, ...(from > 0 ? { headers: { range: `bytes=${from}-${total - 1}` } } : {}) });
  if (res.statusCode === 200 && from > 0) {
    // The CSS sent it whole (a reference CSS may ignore Range): start over on a fresh area.
    log.info({ ...what, offset: from }, 'the CSS answered a resume with the whole data; starting over from offset 0');
    await receiver.discardDownload(meta);
    state = await receiver.beginDownload(meta);
    writer = StagingWriter.fresh(deps.blobs, state.stagingId, segmentOpts(deps));
  } else if (res.statusCode === 206 && from > 0) {
    const range = contentRange(res);
    if (range === null || range.start !== from || range.end !== total - 1 || range.total !== total) {
      res.destroy();
      // Not the bytes asked for (the data is not what the metadata says): keep none of it.
      await receiver.discardDownload(meta);
      throw new Error(`the CSS answered bytes=${from}-${total - 1} with Content-Range ${res.headers['content-range'] ?? '(none)'} for ${total} bytes`);
    }
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
  const stated = res.headers[DATA_SHA256_HEADER.toLowerCase()];
  const current = state;
  const resumedAt = writer.offset;
  await writer.append(res, total - writer.offset, async (offset) => {
    // The last segment's offset is not persisted: completion follows (see advanceDownload).
    if (offset < total && !(await receiver.advanceDownload(meta, current, offset))) {
      throw new Error(`the download of ${meta.objectType}/${meta.objectID} was discarded meanwhile`);
    }
  }, deps.signal);
  const check = verifyDownloadedData(typeof stated === 'string' ? stated : undefined, writer.sha256());
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
