/**
 * The CSS side of the SPI object routes: the data download of a CSS-originated object, the
 * ESS's acks and feedback about it (`PUT …/{action}`), the resend request, and the upload of
 * ESS-originated objects with their acks. The protocol decisions live in the CSS engine's
 * session (lib/sync/css/ess-session.ts); this module maps HTTP onto it.
 * [ref sync-protocol §1 Endpoints, "Upload of ESS → CSS objects", §3; rest-api §6]
 */
import { pipeline } from 'node:stream/promises';
import { pipeline as pipeStreams, type Readable } from 'node:stream';
import type { Request, Response } from 'express';
import {
  BadRequestError,
  ConflictError,
  DecodeError,
  MethodNotAllowedError,
  UnauthorizedError,
  decodeFields,
  decodeObjectUpdate,
  parseJsonBody,
  parseRange,
  type MetaData,
} from '../../model/index.js';
import { parseContentRange, readBodyText } from '../../http/request.js';
import { sendDataHeaders } from '../../http/response.js';
import { notRegistered } from '../../sync/css/ess-session.js';
import type { EssSession, ObjectRef, UpstreamAck } from '../../sync/css/types.js';
import { ACK_TRANSITIONS, UPSTREAM_ACK_TRANSITIONS } from '../../sync/notification-states.js';
import type { AckOutcome, Feedback, SenderAck } from '../../sync/sender-acks.js';
import type { UpstreamData } from '../../sync/upstream-messages.js';
import type { SyncEvents } from '../../sync/sync-events.js';
import { withoutPadding } from './padded-chunk.js';
import { sendTellingProgress } from './sent-progress.js';
import { DATA_SHA256_HEADER, type SpiRoute } from './spi-paths.js';

export type SpiObjectRoute = Extract<SpiRoute, { kind: 'object' }>;

export interface SpiObjectActionsDeps {
  /** Where refused-but-expected requests are noted (the 409s are not errors to act on). */
  log?: { debug(obj: object, msg: string): void };
  /** Told of the data ranges served and received. */
  events?: SyncEvents;
}

/** An ESS as the peer the events name. */
export function peerOf(session: Pick<EssSession, 'peer'>): { peerType: string; peerID: string } {
  return { peerType: session.peer.destType, peerID: session.peer.destID };
}

/** Answers about a CSS-originated object. [ref sync-protocol §3] */
const SENDER_ACKS: ReadonlySet<string> = new Set(Object.keys(ACK_TRANSITIONS));

/** Acks of what the CSS queued about an ESS-originated object. [ref sync-protocol §1] */
const UPSTREAM_ACKS: ReadonlySet<string> = new Set(Object.keys(UPSTREAM_ACK_TRANSITIONS));

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

/**
 * The 409 of an ack that changed nothing, worded as the reference words it; why (stale,
 * unknown, out of order) is in the CSS's debug log. [ref traffic errors.jsonl 24–28]
 */
function conflictFor(outcome: Exclude<AckOutcome, 'applied' | 'duplicate'>, action: string, log: SpiObjectActionsDeps['log']): ConflictError {
  log?.debug({ action, outcome }, 'SPI message ignored');
  return new ConflictError(IGNORED[action] ?? `Ignore object ${action}`);
}

export function createSpiObjectActions(deps: SpiObjectActionsDeps): {
  object(route: SpiObjectRoute, session: EssSession, req: Request, res: Response): Promise<void>;
  resend(orgID: string, session: EssSession, req: Request, res: Response): Promise<void>;
} {
  function refOf(route: SpiObjectRoute): ObjectRef {
    return { objectType: route.objectType, objectID: route.objectID, instanceID: route.instanceID, ...(route.dataID !== undefined ? { dataID: route.dataID } : {}) };
  }

  /** Answers 204 to what was applied or repeated, 409 to what changed nothing. */
  function answer(outcome: AckOutcome, action: string, res: Response): void {
    if (outcome !== 'applied' && outcome !== 'duplicate') throw conflictFor(outcome, action, deps.log);
    res.status(204).end();
  }

  /**
   * `GET …/{instanceID}/{dataID}/data`, whole or one `Range`, streamed from the blob.
   * [ref sync-protocol §1 Endpoints, §3 step 4]
   */
  async function getData(route: SpiObjectRoute, session: EssSession, req: Request, res: Response): Promise<void> {
    const header = req.headers.range;
    const range = header !== undefined ? parseRange(header) : undefined;
    const abort = new AbortController();
    res.on('close', () => abort.abort());
    const slice = await session.openData(refOf(route), range, abort.signal);
    sendDataHeaders(res, { size: slice.total, ...(slice.whole ? {} : { range: { start: slice.start, end: slice.end } }) });
    // The whole data's digest, on 206 answers too: a resumed download hashes the bytes it
    // staged before plus these, and checks the whole. A reference ESS ignores the header.
    if (slice.sha256 !== null) res.set(DATA_SHA256_HEADER, slice.sha256);
    await sendTellingProgress(slice.stream, () => pipeline(slice.stream, res), deps.events, {
      obj: { ...refOf(route), orgID: route.orgID },
      peer: peerOf(session),
      start: slice.start,
      total: slice.total,
    });
  }

  /** `PUT …/{action}` for an ack or feedback about a CSS-originated object. */
  async function ack(route: SpiObjectRoute, session: EssSession, req: Request, res: Response): Promise<void> {
    const action = route.action as SenderAck;
    let feedback: Feedback | undefined;
    if (action === 'feedback') feedback = parseFeedback(await readBodyText(req, FEEDBACK_BODY_LIMIT));
    else if (action === 'deleted') {
      // A reference ESS sends the object's MetaData and the reference CSS decodes it first, so
      // garbage is a 400. The key in the path is what counts; an empty body is accepted too.
      const text = await readBodyText(req, METADATA_BODY_LIMIT);
      if (text.trim() !== '') parseMetaDataBody(text);
    } else req.resume();
    answer(await session.ack(refOf(route), action, feedback), action, res);
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

  /** Data of an ESS's object, stored: a chunk's range, or the whole body. */
  function noteReceived(route: SpiObjectRoute, session: EssSession, data: UpstreamData): void {
    if (deps.events?.dataReceived === undefined) return;
    const bytes = data.range !== undefined ? data.range.end + 1 - data.range.start : data.size;
    if (bytes === undefined) return;
    deps.events.dataReceived({ ...refOf(route), orgID: route.orgID }, peerOf(session), 'http', bytes, data.range?.start ?? 0, data.range?.total ?? data.size ?? null);
  }

  /**
   * `PUT …/{action}` about an object the calling ESS published: `update` and `delete` with
   * the MetaData, `data`, and the acks of what the CSS queued for it. A stale or repeated
   * message changes nothing and is answered 204 (repeat) or 409 (stale), as the reference does.
   * [ref sync-protocol §1 "Upload of ESS → CSS objects", §3]
   */
  async function upstreamAction(route: SpiObjectRoute, session: EssSession, req: Request, res: Response): Promise<void> {
    const ref = refOf(route);
    const action = route.action;
    let outcome: AckOutcome;
    try {
      if (action === 'update' || action === 'delete') {
        const meta = parseMetaDataBody(await readBodyText(req, METADATA_BODY_LIMIT));
        outcome = action === 'update' ? await session.upstreamUpdate(ref, meta) : await session.upstreamDelete(ref, meta);
      } else if (action === 'data') {
        const { source, data } = dataOf(req);
        outcome = await session.upstreamData(ref, source, data);
        if (outcome === 'applied') noteReceived(route, session, data);
      } else if (UPSTREAM_ACKS.has(action)) {
        req.resume();
        outcome = await session.upstreamAck(ref, action as UpstreamAck);
      } else throw new BadRequestError(`Unknown SPI action (${action}) for an object of the ESS`);
    } catch (e) {
      refusedUnread(req, res);
      throw e;
    }
    answer(outcome, action, res);
  }

  async function object(route: SpiObjectRoute, session: EssSession, req: Request, res: Response): Promise<void> {
    // Records are keyed by the caller, but an org it does not belong to is refused outright.
    if (route.orgID !== session.peer.orgID) throw new UnauthorizedError();
    if (req.method === 'GET') {
      if (route.action !== 'data') throw new MethodNotAllowedError();
      return getData(route, session, req, res);
    }
    if (req.method !== 'PUT') throw new MethodNotAllowedError();
    // Every message about an object comes from a registered ESS; refused before its body is
    // read. [ref traffic errors.jsonl 32]
    if ((await session.destination()) === null) {
      refusedUnread(req, res);
      throw notRegistered(session.peer);
    }
    if (SENDER_ACKS.has(route.action)) return ack(route, session, req, res);
    return upstreamAction(route, session, req, res);
  }

  /** `PUT /spi/v1/objects/{org}/resend`: the ESS wants everything again. [ref sync-protocol §1, §3] */
  async function resend(orgID: string, session: EssSession, req: Request, res: Response): Promise<void> {
    if (req.method !== 'PUT') throw new MethodNotAllowedError();
    if (orgID !== session.peer.orgID) throw new UnauthorizedError();
    if ((await session.destination()) === null) throw notRegistered(session.peer);
    req.resume();
    await session.resend();
    res.status(204).end();
  }

  return { object, resend };
}
