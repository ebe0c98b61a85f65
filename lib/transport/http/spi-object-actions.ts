/**
 * The CSS side of the SPI object routes: the data download of a CSS-originated object, the
 * ESS's acks and feedback about it (`PUT …/{action}`), the resend request, and the upload of
 * ESS-originated objects with their acks. The protocol decisions live in the sync engine
 * (SenderAcks, UpstreamReceiver); this module maps HTTP onto them.
 * [ref sync-protocol §1 Endpoints, "Upload of ESS → CSS objects", §3; rest-api §6]
 */
import { pipeline } from 'node:stream/promises';
import { pipeline as pipeStreams, type Readable } from 'node:stream';
import type { Request, Response } from 'express';
import {
  BadRequestError,
  ConflictError,
  DecodeError,
  FailedDependencyError,
  MethodNotAllowedError,
  NotFoundError,
  UnauthorizedError,
  decodeFields,
  decodeObjectUpdate,
  parseJsonBody,
  parseRange,
  type MetaData,
} from '../../model/index.js';
import { parseContentRange, readBodyText, sendDataHeaders } from '../../api/http.js';
import type { SpiDestination } from '../../security/index.js';
import type { NotificationKey, NotificationStatus, NotificationStore } from '../../store/notification-types.js';
import type { Store } from '../../store/types.js';
import type { ObjectService } from '../../sync/object-service.js';
import type { AckOutcome, Feedback, SenderAck, SenderAcks } from '../../sync/sender-acks.js';
import type { UpstreamData, UpstreamPeer, UpstreamReceiver, UpstreamRef } from '../../sync/upstream-receiver.js';
import { withoutPadding } from './padded-chunk.js';
import { DATA_SHA256_HEADER, type SpiObjectAction, type SpiRoute } from './spi-paths.js';

export type SpiObjectRoute = Extract<SpiRoute, { kind: 'object' }>;

export interface SpiObjectActionsDeps {
  store: Store;
  notifications: NotificationStore;
  objects: Pick<ObjectService, 'openData'>;
  acks: Pick<SenderAcks, 'apply' | 'resend'>;
  /** ESS-originated objects; absent = those actions answer 501 (a node that takes none). */
  upstream?: Pick<UpstreamReceiver, 'applyUpdate' | 'putData' | 'ackReceived' | 'ackConsumed' | 'applyDelete' | 'ackDeleted'>;
  /** Where refused-but-expected requests are noted (the 501s below are not errors to act on). */
  log?: { debug(obj: object, msg: string): void };
  /** Epoch ms; tests inject a fake clock. */
  now: () => number;
}

/** Answers about a CSS-originated object, handled by SenderAcks. [ref sync-protocol §3] */
const SENDER_ACKS: ReadonlySet<SpiObjectAction> = new Set<SenderAck>(['updated', 'received', 'consumed', 'ackDelete', 'deleted', 'feedback']);

/** Record statuses from which a download start moves the record to `getdata`. [ref sync-protocol §3 step 4] */
const BEFORE_GETDATA: readonly NotificationStatus[] = ['updatePending', 'update', 'updated'];

/** Record statuses on the delete path: their object's data is no longer to be served. */
const DELETE_PATH: readonly NotificationStatus[] = ['delete', 'deletePending', 'ackDelete', 'deleted', 'deletedPending', 'ackDeleted'];

/** Messages about an ESS-originated object, handled by the UpstreamReceiver. [ref sync-protocol §1] */
const UPSTREAM_ACTIONS: ReadonlySet<SpiObjectAction> = new Set<SpiObjectAction>(['update', 'data', 'delete', 'ackreceived', 'ackconsumed', 'ackDeleted']);

/** A MetaData body (`update`, `delete`) is a few KiB; anything this large is garbage. */
const METADATA_BODY_LIMIT = 1024 * 1024;

/** As the reference prefixes a MetaData body it cannot decode. [ref traffic errors.jsonl 30] */
const METADATA_PREFIX = 'Invalid JSON in HTTP message body. Error: ';

/**
 * The MetaData body of `PUT …/update` or `…/delete`, decoded like the API's object PUT (keys
 * case-insensitive, values type-checked).
 * @throws BadRequestError for anything else
 */
export function parseMetaDataBody(text: string): MetaData {
  return decodeObjectUpdate({ meta: parseJsonBody(text, METADATA_PREFIX) }).meta;
}

/** A feedback body is three small fields; anything near this size is garbage. */
const FEEDBACK_BODY_LIMIT = 64 * 1024;

const FEEDBACK_PREFIX = 'Failed to parse feedback message, Error: ';

/**
 * The body of `PUT …/feedback`: `{"Code":int,"RetryInterval":int,"Reason":string}`, keys
 * matched case-insensitively like Go's decoder; absent fields are zero.
 * @throws BadRequestError for anything else
 */
export function parseFeedback(text: string): Feedback {
  const value = parseJsonBody(text, FEEDBACK_PREFIX);
  try {
    const f = decodeFields(value, { Code: 'int', RetryInterval: 'int', Reason: 'string' }, 'feedbackMessage');
    return { code: (f.Code as number | undefined) ?? 0, retryInterval: (f.RetryInterval as number | undefined) ?? 0, reason: (f.Reason as string | undefined) ?? '' };
  } catch (e) {
    if (e instanceof DecodeError) throw new BadRequestError(`${FEEDBACK_PREFIX}${e.message}`);
    throw e;
  }
}

/** A request refused before its body was read: the connection cannot carry another one. */
function refusedUnread(req: Request, res: Response): void {
  if (req.complete) return;
  res.set('Connection', 'close');
  req.resume();
}

/** A message from an ESS the CSS does not know: 424. [ref sync-protocol §1 424] */
export function notRegistered(claim: SpiDestination): FailedDependencyError {
  return new FailedDependencyError(`Destination ${claim.orgID}/${claim.destType}/${claim.destID} is not registered`);
}

/** The reference's 409 body per action: a stale, unknown or out-of-order message changed nothing. */
const IGNORED: Readonly<Record<string, string>> = {
  update: 'Ignore object update',
  updated: 'Ignore object updated',
  consumed: 'Ignore object consumed',
  ackconsumed: 'Ignore Ack consumed',
  received: 'Ignore object received',
  ackreceived: 'Ignore object ack received',
  ackDelete: 'Ignore object ack delete',
  deleted: 'Ignore object deleted',
  ackDeleted: 'Ignore ack object deleted',
  feedback: 'Ignore feedback',
};

/** The reference's 409 to a data GET that is not about the instance on offer. */
const STALE_DATA_GET = 'Error in handleGetData: notification.InstanceID != instanceID or notification status is not updated.';

/**
 * The 409 of an ack that changed nothing, worded as the reference words it; why (stale,
 * unknown, out of order) is in the CSS's debug log. [ref traffic errors.jsonl 24–28]
 */
function conflictFor(outcome: Exclude<AckOutcome, 'applied' | 'duplicate'>, action: string, log: SpiObjectActionsDeps['log']): ConflictError {
  log?.debug({ action, outcome }, 'SPI message ignored');
  return new ConflictError(IGNORED[action] ?? `Ignore object ${action}`);
}

export function createSpiObjectActions(deps: SpiObjectActionsDeps): {
  object(route: SpiObjectRoute, claim: SpiDestination, req: Request, res: Response): Promise<void>;
  resend(orgID: string, claim: SpiDestination, req: Request, res: Response): Promise<void>;
} {
  /** The caller's record of the object: an ESS only ever reaches its own. */
  function keyFor(route: SpiObjectRoute, claim: SpiDestination): NotificationKey {
    return { orgID: route.orgID, objectType: route.objectType, objectID: route.objectID, peerType: claim.destType, peerID: claim.destID };
  }

  /**
   * `GET …/{instanceID}/{dataID}/data`, whole or one `Range`. Streamed from the blob. We do not
   * limit concurrent downloads the way the reference does (its 429 semaphore made fan-out
   * crawl), so there is no 429 here. [ref sync-protocol §1 Endpoints, §3 step 4]
   */
  async function getData(route: SpiObjectRoute, claim: SpiDestination, req: Request, res: Response): Promise<void> {
    const header = req.headers.range;
    const range = header !== undefined ? parseRange(header) : undefined;
    const key = keyFor(route, claim);
    const rec = await deps.notifications.getNotification(key.orgID, key.objectType, key.objectID, key.peerType, key.peerID);
    if (rec === null) throw new NotFoundError();
    const obj = await deps.store.getObject(key.orgID, key.objectType, key.objectID);
    const stale =
      rec.instanceID !== route.instanceID ||
      DELETE_PATH.includes(rec.status) ||
      obj === null ||
      obj.meta.instanceID !== route.instanceID ||
      (route.dataID !== undefined && (route.dataID !== obj.meta.dataID || route.dataID !== rec.dataID));
    if (stale) throw new ConflictError(STALE_DATA_GET);
    const abort = new AbortController();
    res.on('close', () => abort.abort());
    const read = deps.objects.openData(obj, range, abort.signal);
    if (BEFORE_GETDATA.includes(rec.status)) {
      const moved = await deps.notifications.updateNotificationIf(
        key,
        { status: rec.status, instanceID: rec.instanceID },
        { status: 'getdata', lastUpdate: deps.now() },
      );
      // Lost the race to another request: fine if it is still this instance (a parallel
      // chunk download), stale otherwise.
      const current = moved ? rec : await deps.notifications.getNotification(key.orgID, key.objectType, key.objectID, key.peerType, key.peerID);
      if (current === null || current.instanceID !== route.instanceID || DELETE_PATH.includes(current.status)) {
        read.stream.destroy();
        throw new ConflictError(STALE_DATA_GET);
      }
    }
    sendDataHeaders(res, read);
    // The whole data's digest, on 206 answers too: a resumed download hashes the bytes it
    // staged before plus these, and checks the whole. A reference ESS ignores the header.
    if (obj.dataSha256 !== null) res.set(DATA_SHA256_HEADER, obj.dataSha256);
    await pipeline(read.stream, res);
  }

  /** `PUT …/{action}` for an ack or feedback about a CSS-originated object. */
  async function ack(route: SpiObjectRoute, claim: SpiDestination, req: Request, res: Response): Promise<void> {
    const action = route.action as SenderAck;
    let feedback: Feedback | undefined;
    if (action === 'feedback') feedback = parseFeedback(await readBodyText(req, FEEDBACK_BODY_LIMIT));
    else if (action === 'deleted') {
      // A reference ESS sends the object's MetaData and the reference CSS decodes it first, so
      // garbage is a 400. The key in the path is what counts; an empty body is accepted too.
      const text = await readBodyText(req, METADATA_BODY_LIMIT);
      if (text.trim() !== '') parseMetaDataBody(text);
    } else req.resume();
    // The dataID in the path must be the record's too: an ack about other data changes nothing.
    const outcome = await deps.acks.apply(keyFor(route, claim), route.instanceID, action, feedback, route.dataID);
    if (outcome !== 'applied' && outcome !== 'duplicate') throw conflictFor(outcome, action, deps.log);
    res.status(204).end();
  }

  /**
   * One data PUT: the whole body, or one `Content-Range` chunk, as the stream to store and what
   * is known of it. Streamed, never buffered. A body longer than its range is a reference ESS's
   * zero-padded last chunk: the padding is dropped (padded-chunk.ts).
   */
  function dataOf(req: Request): { source: Readable; data: UpstreamData } {
    const crHeader = req.headers['content-range'];
    const range = crHeader !== undefined ? parseContentRange(crHeader) : undefined;
    const lengthHeader = req.headers['content-length'];
    const size = lengthHeader !== undefined ? Number(lengthHeader) : undefined;
    const rangeLength = range !== undefined ? range.end - range.start + 1 : undefined;
    if (rangeLength !== undefined && size !== undefined && size < rangeLength) {
      throw new BadRequestError(`Content-Length (${size}) is less than the Content-Range length (${rangeLength})`);
    }
    let source: Readable = req;
    if (rangeLength !== undefined && size !== undefined && size > rangeLength) {
      const trimmed = withoutPadding(rangeLength);
      // Errors reach the consumer through `trimmed`, which pipeline destroys with them.
      pipeStreams(req, trimmed, () => undefined);
      source = trimmed;
    }
    const stated = req.headers[DATA_SHA256_HEADER.toLowerCase()];
    const abort = new AbortController();
    req.on('close', () => {
      if (!req.complete) abort.abort();
    });
    const data: UpstreamData = {
      ...(range !== undefined ? { range } : size !== undefined ? { size } : {}),
      ...(typeof stated === 'string' ? { sha256: stated } : {}),
      signal: abort.signal,
    };
    return { source, data };
  }

  /**
   * `PUT …/{action}` about an object the calling ESS published: `update` and `delete` with
   * the MetaData, `data`, and the acks of what the CSS queued for it. A stale or repeated
   * message changes nothing and is answered 204 (repeat) or 409 (stale), as the reference does.
   * [ref sync-protocol §1 "Upload of ESS → CSS objects", §3]
   */
  async function upstreamAction(upstream: NonNullable<SpiObjectActionsDeps['upstream']>, route: SpiObjectRoute, claim: SpiDestination, req: Request, res: Response): Promise<void> {
    const peer: UpstreamPeer = { orgID: claim.orgID, peerType: claim.destType, peerID: claim.destID };
    const ref: UpstreamRef = { objectType: route.objectType, objectID: route.objectID, instanceID: route.instanceID, ...(route.dataID !== undefined ? { dataID: route.dataID } : {}) };
    let outcome: AckOutcome;
    try {
      const action = route.action;
      if (action === 'update' || action === 'delete') {
        const meta = parseMetaDataBody(await readBodyText(req, METADATA_BODY_LIMIT));
        outcome = action === 'update' ? await upstream.applyUpdate(peer, ref, meta) : await upstream.applyDelete(peer, ref, meta);
      } else if (action === 'data') {
        const { source, data } = dataOf(req);
        outcome = await upstream.putData(peer, ref, source, data);
      } else {
        req.resume();
        if (action === 'ackreceived') outcome = await upstream.ackReceived(peer, ref);
        else if (action === 'ackconsumed') outcome = await upstream.ackConsumed(peer, ref);
        else if (action === 'ackDeleted') outcome = await upstream.ackDeleted(peer, ref);
        else throw new BadRequestError(`Unknown SPI action (${action}) for an object of the ESS`);
      }
    } catch (e) {
      refusedUnread(req, res);
      throw e;
    }
    if (outcome !== 'applied' && outcome !== 'duplicate') throw conflictFor(outcome, route.action, deps.log);
    res.status(204).end();
  }

  async function object(route: SpiObjectRoute, claim: SpiDestination, req: Request, res: Response): Promise<void> {
    // Records are keyed by the caller, but an org it does not belong to is refused outright.
    if (route.orgID !== claim.orgID) throw new UnauthorizedError();
    if (req.method === 'GET') {
      if (route.action !== 'data') throw new MethodNotAllowedError();
      return getData(route, claim, req, res);
    }
    if (req.method !== 'PUT') throw new MethodNotAllowedError();
    // Every message about an object comes from a registered ESS. [ref traffic errors.jsonl 32]
    if ((await deps.store.getDestination(claim.orgID, claim.destType, claim.destID)) === null) {
      refusedUnread(req, res);
      throw notRegistered(claim);
    }
    if (SENDER_ACKS.has(route.action)) return ack(route, claim, req, res);
    if (deps.upstream !== undefined && UPSTREAM_ACTIONS.has(route.action)) return upstreamAction(deps.upstream, route, claim, req, res);
    // Only a node built without the UpstreamReceiver gets here (the SPI's unit tests): messages
    // about ESS-originated objects are then refused, noted at debug level only.
    deps.log?.debug({ action: route.action, org: route.orgID, objectType: route.objectType, objectID: route.objectID }, 'SPI action not implemented yet');
    if (!req.complete) res.set('Connection', 'close');
    req.resume();
    res.status(501).set('Content-Type', 'text/plain; charset=utf-8').end('not implemented yet\n');
  }

  /** `PUT /spi/v1/objects/{org}/resend`: the ESS wants everything again. [ref sync-protocol §1, §3] */
  async function resend(orgID: string, claim: SpiDestination, req: Request, res: Response): Promise<void> {
    if (req.method !== 'PUT') throw new MethodNotAllowedError();
    if (orgID !== claim.orgID) throw new UnauthorizedError();
    const known = (await deps.store.listDestinations(orgID)).some((d) => d.destinationType === claim.destType && d.destinationID === claim.destID);
    if (!known) throw new FailedDependencyError(`Destination ${claim.orgID}/${claim.destType}/${claim.destID} is not registered`);
    req.resume();
    await deps.acks.resend(orgID, claim.destType, claim.destID);
    res.status(204).end();
  }

  return { object, resend };
}
