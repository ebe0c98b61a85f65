/**
 * The ESS's side of objects it published (the OriginSender decides what is owed): sends the
 * owed `update` with the MetaData, then the data, or the `delete`, through the link, and answers
 * what the CSS says about them (`received`, `consumed`, `deleted`) with the matching ack.
 *
 * The data goes one of two ways, as the link moves it:
 * - pushed (HTTP): streamed from the blob store in chunks sent one after the other; every
 *   chunk the CSS took is persisted (OriginSender.chunkTaken), so a failure or a restart
 *   resumes from the last one;
 * - pulled (MQTT, the reference's way: the receiver pulls): the link asks `ownDataSource` for
 *   the ranges the CSS requests; each one served is recorded (OriginSender.dataServed), the
 *   last byte ending the record's `data` step. If the CSS stops asking before the end, the
 *   record falls due after PULL_WATCHDOG_INTERVALS × RESEND_INTERVAL and the metadata is
 *   announced again, as the reference sender resends a record it heard nothing about.
 * [ref sync-protocol §1 "Upload of ESS → CSS objects", "Ack semantics"; §2 Flow; §3]
 */
import { Readable } from 'node:stream';
import { emptyMetaData, orderedMetaData, type MetaData } from '../../model/index.js';
import { objectLogFields } from '../../model/log-fields.js';
import type { Notification } from '../../store/notification-types.js';
import type { BlobStore, StoredObject } from '../../store/types.js';
import type { OriginSender } from '../origin-sender.js';
import type { CssLink, EssAction, OwnDataSource } from './css-link.js';
import { ORIGIN_ANSWERS } from '../notification-states.js';
import { CSS_PEER } from '../receiver.js';
import type { SyncEvents, TransportKind } from '../sync-events.js';

export interface UploadDeps {
  link: CssLink;
  origin: OriginSender;
  blobs: BlobStore;
  /** This ESS: the origin of what it publishes. */
  self: { orgID: string; destinationType: string; destinationID: string };
  /** Bytes per pushed range (MAX_DATA_CHUNK_SIZE); an object no larger goes whole. */
  chunkSize: number;
  /** RESEND_INTERVAL, ms: how long a refused step waits before it is tried again. */
  resendIntervalMs: number;
  /** Epoch ms. */
  now: () => number;
  /** Aborted when the agent stops. */
  signal: AbortSignal;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void; debug(obj: object, msg: string): void };
  /** Told when a record falls due again (epoch ms), so that a held poll ends in time for it. */
  dueAt?(at: number): void;
  /** Told of the data the CSS took (pushed) or was served (pulled). */
  events?: SyncEvents;
  /** How the link moves data, for the events. */
  transport?: TransportKind;
}

const refOfMeta = (orgID: string, meta: MetaData): { orgID: string; objectType: string; objectID: string; instanceID: bigint } => ({ orgID, objectType: meta.objectType, objectID: meta.objectID, instanceID: meta.instanceID });

/** How long a CSS that pulls may go without asking for more data, in RESEND_INTERVALs (the reference's 60 s chunk resend). */
export const PULL_WATCHDOG_INTERVALS = 6;

/** The INFO line of a CSS answer that moved an object this ESS published on. */
const STORY: ReadonlyMap<string, string> = new Map([
  ['received', 'object sent to the CSS'],
  ['consumed', 'object consumed by the CSS'],
  ['deleted', 'object deletion taken by the CSS'],
]);

/** Whether something the CSS sent is about an object this ESS published. */
export function isOriginAnswer(type: string): boolean {
  return ORIGIN_ANSWERS.has(type);
}

/**
 * Applies one CSS answer about an object this ESS published, then acks it. A stale or repeated
 * one is acked too, so the CSS stops sending it. [ref sync-protocol §3 "stale or duplicate"]
 * @returns false when the ack did not go through (the CSS sends the answer again)
 */
export async function answerCss(deps: Pick<UploadDeps, 'link' | 'origin' | 'self' | 'log'>, type: string, meta: MetaData): Promise<boolean> {
  const ack: EssAction | undefined = ORIGIN_ANSWERS.get(type);
  if (ack === undefined) return true;
  const outcome = type === 'received' ? await deps.origin.onReceived(meta) : type === 'consumed' ? await deps.origin.onConsumed(meta) : await deps.origin.onDeleted(meta);
  deps.log.debug({ type, objectType: meta.objectType, objectID: meta.objectID, instanceID: meta.instanceID, outcome }, 'CSS answer about an object this ESS published');
  const story = outcome === 'applied' ? STORY.get(type) : undefined;
  if (story !== undefined) deps.log.info({ ...objectLogFields(deps.self.orgID, meta.objectType, meta.objectID, undefined, meta.instanceID), css: deps.link.address }, story);
  return deps.link.send(meta, ack);
}

/**
 * Sends one owed step of an object this ESS published.
 * @returns false when it did not go through and must be retried after RESEND_INTERVAL
 * @throws NotRegisteredError; a network error as is
 */
export async function sendOriginOwed(deps: UploadDeps, rec: Notification): Promise<boolean> {
  if (rec.status === 'update') return sendUpdate(deps, rec);
  if (rec.status === 'deletePending') return sendDelete(deps, rec);
  if (rec.status !== 'data') return true;
  if (!deps.link.pushesData) {
    // Due only when a CSS that pulls stopped asking for the data: tell it of the object again.
    deps.log.info({ objectType: rec.objectType, objectID: rec.objectID, offset: rec.offset }, 'the CSS stopped asking for the data; sending the metadata again');
    return sendUpdate(deps, rec);
  }
  const obj = await deps.origin.sendable(rec);
  return obj === null ? true : pushData(deps, rec, obj);
}

/** The `update` with the MetaData; once taken, the data follows (pushed at once, or pulled). */
async function sendUpdate(deps: UploadDeps, rec: Notification): Promise<boolean> {
  const { link, origin, self } = deps;
  const obj = await origin.sendable(rec);
  if (obj === null) return true;
  // The origin is this ESS, whatever the stored metadata says (the CSS checks it anyway). The
  // destination fields name this ESS too, as the reference ESS sends them (its notification
  // addressing sets them; a reference CSS stores and shows them): reference-traffic
  // ess-to-css.jsonl seq 3. Not beside a destination policy, which excludes a destination type.
  const { destinationType, destinationID } = self;
  const here = obj.meta.destinationPolicy === null ? { destinationType, destinationID } : {};
  const meta = orderedMetaData({ ...obj.meta, destinationOrgID: self.orgID, ...here, originType: destinationType, originID: destinationID });
  const outcome = await link.publish(meta);
  if (outcome === 'stale') {
    // The CSS holds a newer instance of the key: this one is of no use to it.
    deps.log.warn({ objectType: meta.objectType, objectID: meta.objectID, instanceID: meta.instanceID }, 'the CSS refused the object as stale');
    await origin.refused(rec);
    return true;
  }
  if (outcome === 'refused') return false;
  const pullBy = link.pushesData ? 0 : deps.now() + PULL_WATCHDOG_INTERVALS * deps.resendIntervalMs;
  const next = await origin.updateTaken(rec, obj, pullBy);
  if (next === null || next.status !== 'data') return true;
  if (!link.pushesData) {
    deps.dueAt?.(pullBy);
    return true;
  }
  return pushData(deps, next, obj);
}

/**
 * The data, from the offset the CSS last took: one whole range for a small object, else chunks
 * one after the other, each streamed from the blob store.
 */
async function pushData(deps: UploadDeps, rec: Notification, obj: StoredObject): Promise<boolean> {
  const { link, origin, blobs } = deps;
  const blobId = obj.blobId;
  if (blobId === null || link.pushData === undefined) return true;
  const total = obj.meta.objectSize;
  const whole = total <= deps.chunkSize;
  let offset = whole ? 0 : Math.min(rec.offset, total);
  do {
    if (deps.signal.aborted) return true;
    const end = whole ? total - 1 : Math.min(offset + deps.chunkSize, total) - 1;
    // An empty object has no byte to read.
    const source = total === 0 ? Readable.from([]) : blobs.read(blobId, { start: offset, end, signal: deps.signal });
    const outcome = await link.pushData(obj.meta, source, { start: offset, end, total }, obj.dataSha256);
    if (outcome === 'taken') {
      deps.events?.dataSent?.(refOfMeta(deps.self.orgID, obj.meta), CSS_PEER, deps.transport ?? 'http', end + 1 - offset, offset, total);
      if (!(await origin.chunkTaken(rec, end + 1, total))) return true;
      offset = end + 1;
      continue;
    }
    const log = { objectType: obj.meta.objectType, objectID: obj.meta.objectID, offset };
    const at = deps.now() + deps.resendIntervalMs;
    if (outcome === 'notExpected') {
      // The CSS is not expecting this instance's data (it lost or dropped the metadata).
      deps.log.info(log, 'the CSS does not expect this data; sending the metadata again');
      await origin.reannounce(rec, at);
      return true;
    }
    if (outcome === 'resumeRefused' && offset > 0) {
      // Our persisted offset and the CSS's upload disagree (it lost its part): from 0 again.
      deps.log.info(log, 'the CSS refused to resume the upload; starting it again');
      await origin.restartData(rec, at);
      return true;
    }
    deps.log.warn(log, 'the CSS refused data of an object published here');
    return false;
  } while (offset < total);
  return true;
}

/** The `delete` with the MetaData of the gone object. */
async function sendDelete(deps: UploadDeps, rec: Notification): Promise<boolean> {
  const { link, origin } = deps;
  const meta: MetaData = orderedMetaData({ ...emptyMetaData(), ...origin.deletedMetaData(rec, deps.self) });
  if (!(await link.publishDelete(meta))) return false;
  await origin.deleteTaken(rec);
  return true;
}

/**
 * What a link serves a CSS that pulls (MQTT) from: a range of the data of `ref`, when `ref` is
 * the current instance of an object published here; each range served is recorded.
 */
export function ownDataSource(deps: Pick<UploadDeps, 'origin' | 'blobs' | 'resendIntervalMs' | 'now' | 'signal' | 'events' | 'transport'>): OwnDataSource {
  return async (ref, range) => {
    const obj = await deps.origin.servable(ref);
    if (obj === null || obj.blobId === null) return null;
    const total = obj.meta.objectSize;
    const end = Math.min(range.end, total - 1);
    if (range.start < 0 || (range.start > end && total > 0)) return null;
    const stream = total === 0 ? Readable.from([]) : deps.blobs.read(obj.blobId, { start: range.start, end, signal: deps.signal });
    await deps.origin.dataServed(ref, end + 1, total, deps.now() + PULL_WATCHDOG_INTERVALS * deps.resendIntervalMs);
    deps.events?.dataSent?.(refOfMeta(obj.meta.destinationOrgID, obj.meta), CSS_PEER, deps.transport ?? 'mqtt', Math.max(0, end + 1 - range.start), range.start, total);
    return stream;
  };
}
