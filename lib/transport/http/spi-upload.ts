/**
 * The ESS's HTTP side of objects it originated: sends what the OriginSender's records say is
 * owed (`PUT …/update` with the MetaData, then the data, `PUT …/delete`), and answers what the
 * CSS's poll says about them (`received`, `consumed`, `deleted`) with the matching ack.
 * Data is streamed from the blob store in `Content-Range` chunks sent one after the other;
 * every acked chunk is persisted, so a failure or a restart resumes from the last one.
 * [ref sync-protocol §1 "Upload of ESS → CSS objects", "Ack semantics"; §3]
 */
import { emptyMetaData, goJson, orderedMetaData, type MetaData } from '../../model/index.js';
import { objectLogFields } from '../../model/log-fields.js';
import type { Notification } from '../../store/notification-types.js';
import type { BlobStore, StoredObject } from '../../store/types.js';
import type { OriginSender } from '../../sync/origin-sender.js';
import { DATA_TIMEOUT_MS, NotRegisteredError, type SpiConnection } from './spi-connection.js';
import { DATA_SHA256_HEADER, spiObjectPath, type SpiObjectAction } from './spi-paths.js';

export interface SpiUploadDeps {
  conn: SpiConnection;
  origin: OriginSender;
  blobs: BlobStore;
  /** Bytes per `PUT …/data` (MAX_DATA_CHUNK_SIZE); an object no larger goes in one whole PUT. */
  chunkSize: number;
  /** RESEND_INTERVAL, ms: how long a refused step waits before it is tried again. */
  resendIntervalMs: number;
  /** Epoch ms. */
  now: () => number;
  /** Aborted when the client stops. */
  signal: AbortSignal;
}

/** The poll types about objects this ESS originated, and the ack each is answered with. */
const ANSWERS: ReadonlyMap<string, SpiObjectAction> = new Map<string, SpiObjectAction>([
  ['received', 'ackreceived'],
  ['consumed', 'ackconsumed'],
  ['deleted', 'ackDeleted'],
]);

/** The INFO line of a CSS answer that moved an object this ESS published on. */
const STORY: ReadonlyMap<string, string> = new Map([
  ['received', 'object sent to the CSS'],
  ['consumed', 'object consumed by the CSS'],
  ['deleted', 'object deletion taken by the CSS'],
]);

/** Whether a poll item is about an object this ESS originated. */
export function isOriginAnswer(type: string): boolean {
  return ANSWERS.has(type);
}

function fail(status: number, body: string): never {
  if (status === 424) throw new NotRegisteredError();
  throw new Error(`the CSS answered ${status}: ${body.trim()}`);
}

/**
 * Applies one poll item about an object this ESS originated, then acks it. A stale or repeated
 * one is acked too, so the CSS stops serving it. [ref sync-protocol §3 "stale or duplicate"]
 * @returns false when the ack did not go through (the poll brings the item again)
 */
export async function answerPolled(deps: Pick<SpiUploadDeps, 'conn' | 'origin'>, type: string, meta: MetaData): Promise<boolean> {
  const ack = ANSWERS.get(type);
  if (ack === undefined) return true;
  const outcome = type === 'received' ? await deps.origin.onReceived(meta) : type === 'consumed' ? await deps.origin.onConsumed(meta) : await deps.origin.onDeleted(meta);
  deps.conn.deps.log.debug({ type, objectType: meta.objectType, objectID: meta.objectID, instanceID: meta.instanceID, outcome }, 'CSS answer about an object this ESS published');
  const story = outcome === 'applied' ? STORY.get(type) : undefined;
  if (story !== undefined) deps.conn.deps.log.info({ ...objectLogFields(deps.conn.deps.orgID, meta.objectType, meta.objectID), css: deps.conn.deps.baseUrl }, story);
  return deps.conn.sendAction(meta, ack);
}

/**
 * Sends one owed step of an object this ESS originated.
 * @returns false when it did not go through and must be retried after RESEND_INTERVAL
 * @throws NotRegisteredError on 424; a network error as is
 */
export async function sendOriginOwed(deps: SpiUploadDeps, rec: Notification): Promise<boolean> {
  if (rec.status === 'update') return sendUpdate(deps, rec);
  if (rec.status === 'deletePending') return sendDelete(deps, rec);
  if (rec.status !== 'data') return true;
  const obj = await deps.origin.sendable(rec);
  return obj === null ? true : pushData(deps, rec, obj);
}

/** `PUT …/update` with the MetaData; on 204 the data follows at once. */
async function sendUpdate(deps: SpiUploadDeps, rec: Notification): Promise<boolean> {
  const { conn, origin } = deps;
  const obj = await origin.sendable(rec);
  if (obj === null) return true;
  const { orgID, destinationType, destinationID } = conn.deps;
  // The origin is this ESS, whatever the stored metadata says (the CSS checks it anyway). The
  // destination fields name this ESS too, as the reference ESS sends them (its notification
  // addressing sets them; a reference CSS stores and shows them): reference-traffic
  // ess-to-css.jsonl seq 3. Not beside a destination policy, which excludes a destination type.
  const self = obj.meta.destinationPolicy === null ? { destinationType, destinationID } : {};
  const meta = orderedMetaData({ ...obj.meta, destinationOrgID: orgID, ...self, originType: destinationType, originID: destinationID });
  const res = await conn.call('PUT', spiObjectPath({ orgID, ...meta }, 'update'), goJson(meta));
  if (res.status === 409) {
    // The CSS holds a newer instance of the key: this one is of no use to it.
    conn.deps.log.warn({ objectType: meta.objectType, objectID: meta.objectID, instanceID: meta.instanceID, body: res.body.trim() }, 'the CSS refused the object as stale');
    await origin.refused(rec);
    return true;
  }
  if (res.status !== 204) {
    if (res.status === 424) fail(res.status, res.body);
    conn.deps.log.warn({ objectID: meta.objectID, status: res.status, body: res.body.trim() }, 'the CSS refused the metadata of an object published here');
    return false;
  }
  const next = await origin.updateTaken(rec, obj);
  if (next === null || next.status !== 'data') return true;
  return pushData(deps, next, obj);
}

/**
 * The data, from the offset the CSS last acked: one whole PUT for a small object, else
 * `Content-Range` chunks one after the other, each streamed from the blob store.
 */
async function pushData(deps: SpiUploadDeps, rec: Notification, obj: StoredObject): Promise<boolean> {
  const { conn, origin, blobs } = deps;
  const blobId = obj.blobId;
  if (blobId === null) return true;
  const total = obj.meta.objectSize;
  const path = spiObjectPath({ orgID: conn.deps.orgID, ...obj.meta }, 'data');
  const whole = total <= deps.chunkSize;
  let offset = whole ? 0 : Math.min(rec.offset, total);
  do {
    if (deps.signal.aborted) return true;
    const end = whole ? total - 1 : Math.min(offset + deps.chunkSize, total) - 1;
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream', 'content-length': String(end - offset + 1) };
    if (!whole) headers['content-range'] = `bytes ${offset}-${end}/${total}`;
    if (obj.dataSha256 !== null) headers[DATA_SHA256_HEADER] = obj.dataSha256;
    // An empty object has no byte to read; its body is empty.
    const body = total === 0 ? '' : blobs.read(blobId, { start: offset, end, signal: deps.signal });
    const res = await conn.request('PUT', path, { body, headers, timeoutMs: DATA_TIMEOUT_MS });
    const text = await conn.text(res);
    const status = res.statusCode ?? 0;
    if (status === 204) {
      if (!(await origin.chunkTaken(rec, end + 1, total))) return true;
      offset = end + 1;
      continue;
    }
    if (status === 424) fail(status, text);
    const log = { objectType: obj.meta.objectType, objectID: obj.meta.objectID, offset, status, body: text.trim() };
    const at = deps.now() + deps.resendIntervalMs;
    if (status === 409) {
      // The CSS is not expecting this instance's data (it lost or dropped the metadata).
      conn.deps.log.info(log, 'the CSS does not expect this data; sending the metadata again');
      await origin.reannounce(rec, at);
      return true;
    }
    if (status === 400 && offset > 0) {
      // Our persisted offset and the CSS's upload disagree (it lost its part): from 0 again.
      conn.deps.log.info(log, 'the CSS refused to resume the upload; starting it again');
      await origin.restartData(rec, at);
      return true;
    }
    conn.deps.log.warn(log, 'the CSS refused data of an object published here');
    return false;
  } while (offset < total);
  return true;
}

/** `PUT …/delete` with the MetaData of the gone object. */
async function sendDelete(deps: SpiUploadDeps, rec: Notification): Promise<boolean> {
  const { conn, origin } = deps;
  const meta: MetaData = orderedMetaData({ ...emptyMetaData(), ...origin.deletedMetaData(rec, conn.deps) });
  const res = await conn.call('PUT', spiObjectPath({ orgID: conn.deps.orgID, ...meta }, 'delete'), goJson(meta));
  if (res.status === 424) fail(res.status, res.body);
  // 409: the CSS has nothing to delete (never got it, or holds a newer instance): done as well.
  if (res.status !== 204 && res.status !== 409) {
    conn.deps.log.warn({ objectID: meta.objectID, status: res.status, body: res.body.trim() }, 'the CSS refused the deletion of an object published here');
    return false;
  }
  await origin.deleteTaken(rec);
  return true;
}
