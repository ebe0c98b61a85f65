/**
 * Downloads the data of one object the CSS sent to this ESS, into the blob store, and hands
 * the result to the Receiver. The whole data's SHA-256, when the CSS states it, is checked
 * before the object completes. [ref sync-protocol §1 "Download of CSS → ESS objects", §3 steps 4–5]
 */
import type { MetaData } from '../../model/index.js';
import type { BlobStore } from '../../store/types.js';
import { mismatchFeedback, verifyDownloadedData } from '../../sync/data-check.js';
import type { Receiver } from '../../sync/receiver.js';
import { DATA_TIMEOUT_MS, NotRegisteredError, type SpiConnection } from './spi-connection.js';
import { DATA_SHA256_HEADER, spiObjectPath } from './spi-paths.js';

export interface SpiDownloadDeps {
  conn: SpiConnection;
  receiver: Receiver;
  blobs: BlobStore;
  /** RESEND_INTERVAL, ms: the retry hint of a mismatch feedback. */
  resendIntervalMs: number;
  /** Aborted when the client stops. */
  signal: AbortSignal;
}

/**
 * Streams the data into a blob, then completes the object. A refusal or a mismatch leaves the
 * record at `getdata`; the caller's retry comes back here.
 * @throws NotRegisteredError on 424; a network error as is
 */
export async function downloadData(deps: SpiDownloadDeps, meta: MetaData): Promise<void> {
  const { conn, receiver, blobs } = deps;
  const log = conn.deps.log;
  await receiver.startDownload(meta);
  const res = await conn.request('GET', spiObjectPath({ orgID: conn.deps.orgID, ...meta }, 'data'), { timeoutMs: DATA_TIMEOUT_MS });
  if (res.statusCode !== 200) {
    const body = await conn.text(res);
    if (res.statusCode === 424) throw new NotRegisteredError();
    // 409: a newer instance or a deletion is on its way through the poll; 404: nothing to get.
    log.debug({ objectID: meta.objectID, status: res.statusCode, body: body.trim() }, 'data download refused');
    return;
  }
  const stated = res.headers[DATA_SHA256_HEADER.toLowerCase()];
  const written = await blobs.write(res, { expectedSize: meta.objectSize, signal: deps.signal });
  const check = verifyDownloadedData(typeof stated === 'string' ? stated : undefined, written.sha256);
  if (check.kind === 'mismatch') {
    // Corrupted on the way or at the CSS: keep nothing of it. The object stays
    // `partiallyreceived` and its record `getdata`, so the owed download is retried after
    // RESEND_INTERVAL; the CSS hears why, and shows it as this destination's error.
    await blobs.delete(written.blobId);
    log.warn({ objectType: meta.objectType, objectID: meta.objectID, instanceID: meta.instanceID, reason: check.reason }, 'downloaded data failed its SHA-256 check; will retry');
    await conn.sendFeedback(meta, mismatchFeedback(check.reason, deps.resendIntervalMs));
    return;
  }
  if (!(await receiver.completeData(meta, written))) await blobs.delete(written.blobId);
}
