/**
 * The CSS side of the SPI object routes: the data download of a CSS-originated object, the
 * ESS's acks and feedback about it (`PUT …/{action}`), and the resend request. The protocol
 * decisions live in the sync engine (SenderAcks); this module maps HTTP onto them.
 * [ref sync-protocol §1 Endpoints, §3; rest-api §6]
 */
import { pipeline } from 'node:stream/promises';
import type { Request, Response } from 'express';
import {
  BadRequestError,
  ConflictError,
  DecodeError,
  FailedDependencyError,
  MethodNotAllowedError,
  NotFoundError,
  PayloadTooLargeError,
  UnauthorizedError,
  decodeFields,
  parseJsonBody,
  parseRange,
} from '../../model/index.js';
import type { SpiDestination } from '../../security/index.js';
import type { NotificationKey, NotificationStatus, NotificationStore } from '../../store/notification-types.js';
import type { Store } from '../../store/types.js';
import type { ObjectService } from '../../sync/object-service.js';
import type { AckOutcome, Feedback, SenderAck, SenderAcks } from '../../sync/sender-acks.js';
import { DATA_SHA256_HEADER, type SpiObjectAction, type SpiRoute } from './spi-paths.js';

export type SpiObjectRoute = Extract<SpiRoute, { kind: 'object' }>;

export interface SpiObjectActionsDeps {
  store: Store;
  notifications: NotificationStore;
  objects: Pick<ObjectService, 'openData'>;
  acks: Pick<SenderAcks, 'apply' | 'resend'>;
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

async function readSmallBody(req: Request, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new PayloadTooLargeError(limit);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The 409 bodies: why an ack changed nothing. */
function conflictFor(outcome: Exclude<AckOutcome, 'applied' | 'duplicate'>, action: string): ConflictError {
  switch (outcome) {
    case 'stale':
      return new ConflictError('ignored: stale instance');
    case 'unknown':
      return new ConflictError('ignored: no notification for this object and destination');
    case 'ignored':
      return new ConflictError(`ignored: ${action} does not apply in the current state`);
  }
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
    if (stale) throw new ConflictError('ignored: stale instance');
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
        throw new ConflictError('ignored: stale instance');
      }
    }
    res.set('Content-Type', 'application/octet-stream');
    if (read.range) {
      res.status(206).set('Content-Range', `bytes ${read.range.start}-${read.range.end}/${read.size}`);
      res.set('Content-Length', String(read.range.end - read.range.start + 1));
    } else {
      res.status(200).set('Content-Length', String(read.size));
      // Whole object only: a range's digest would be of no use to a receiver that hashes
      // the whole blob it assembles.
      if (obj.dataSha256 !== null) res.set(DATA_SHA256_HEADER, obj.dataSha256);
    }
    await pipeline(read.stream, res);
  }

  /** `PUT …/{action}` for an ack or feedback about a CSS-originated object. */
  async function ack(route: SpiObjectRoute, claim: SpiDestination, req: Request, res: Response): Promise<void> {
    const action = route.action as SenderAck;
    let feedback: Feedback | undefined;
    if (action === 'feedback') feedback = parseFeedback(await readSmallBody(req, FEEDBACK_BODY_LIMIT));
    else req.resume();
    const outcome = await deps.acks.apply(keyFor(route, claim), route.instanceID, action, feedback);
    if (outcome !== 'applied' && outcome !== 'duplicate') throw conflictFor(outcome, action);
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
    if (SENDER_ACKS.has(route.action)) return ack(route, claim, req, res);
    // Messages about ESS-originated objects (their upload and its acks) come with the ESS
    // side of the sync. Expected from a reference ESS, so noted at debug level only.
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
