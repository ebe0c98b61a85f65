/**
 * The CSS side of the HTTP SPI (`/spi/v1`), a thin adapter of the CSS engine
 * (lib/sync/css/ess-session.ts): it authenticates the ESS, parses the request, calls the ESS's
 * session and encodes the answer as the reference does. Registration and the poll here, object
 * actions and resend in spi-object-actions.ts, batched acks in spi-batch-acks.ts. The ESS always
 * initiates; what the CSS has for it waits until it polls. Our HTTP extensions live here too:
 * the long-poll (`?wait=`), small data inline (`?inline=`), early-data offers (`?early=1`).
 * [ref sync-protocol §1, rest-api §6]
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { BadRequestError, MethodNotAllowedError, NotFoundError, UnauthorizedError, UnavailableError, goJson, orderedMetaData, type MetaData } from '../../model/index.js';
import { LoginGate, authorizeSpiClaim, basicCredentials, type AclLookup, type Authenticator, type Identity, type SpiDestination } from '../../security/index.js';
import type { Destination } from '../../store/types.js';
import { boolQuery, queryString } from '../../http/request.js';
import type { CssSyncEngine, EssSession, SyncItem } from '../../sync/css/types.js';
import { notRegistered } from '../../sync/css/ess-session.js';
import type { EarlyData } from '../../sync/early-data.js';
import type { ObjectService } from '../../sync/object-service.js';
import { corkedPipe } from './corked-pipe.js';
import { sendTellingProgress } from './sent-progress.js';
import { createBatchAcks } from './spi-batch-acks.js';
import { createSpiObjectActions, peerOf } from './spi-object-actions.js';
import type { SyncEvents } from '../../sync/sync-events.js';
import { InlineBudget, inlineFields, pollInlineLimit, type InlineFields } from './spi-inline-data.js';
import { EARLY_ENTRY, EARLY_PARAM, parseSpiPath, spiRouteTemplate, type SpiRegistrationAction } from './spi-paths.js';

/** Where the router is mounted; parseSpiPath wants the whole path. */
export const SPI_MOUNT = '/spi/v1';

export interface SpiServerDeps {
  /** The protocol: one session per ESS, made per request. */
  engine: CssSyncEngine;
  /** Data of the small objects a poll inlines (`?inline=`, our extension). */
  objects: Pick<ObjectService, 'openData'>;
  /** Uploads offered while they arrive, to an ESS that asks (`?early=1`). */
  early?: Pick<EarlyData, 'announce' | 'open'>;
  /** Refused logins (INFO); debug notes about requests refused as expected. */
  log?: { debug(obj: object, msg: string): void; info(obj: object, msg: string): void };
  authenticator: Authenticator;
  acls: AclLookup;
  /** False while starting or stopping: the SPI then answers 503. [ref sync-protocol §1] */
  isRunning(): boolean;
  /** Aborted when the node stops: outstanding long-polls end at once instead of holding the stop. */
  shutdown?: AbortSignal;
  /** Told of the data served (ranges, inline in polls) and received. */
  events?: SyncEvents;
}

/**
 * Bytes an early-data answer may have waiting for its socket before it stops taking more of the
 * upload: about one batch of the upload's writer (file-blob-store.ts WRITE_HIGH_WATER_MARK).
 */
const EARLY_SEND_WINDOW = 1024 * 1024;

/** Bounds of the long-poll's `wait`, seconds (our extension; a reference ESS never sends it). */
const MAX_POLL_WAIT_S = 60;

/**
 * `?wait=N` of a poll: N seconds, 1–60; undefined when absent (a plain, reference poll).
 * @throws BadRequestError for anything else
 */
function pollWait(req: Request): number | undefined {
  const raw = queryString(req, 'wait');
  if (raw === undefined) return undefined;
  const n = /^\d{1,2}$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 1 && n <= MAX_POLL_WAIT_S)) throw new BadRequestError(`Invalid value (${raw}) for the wait parameter, expected seconds from 1 to ${MAX_POLL_WAIT_S}`);
  return n;
}

/**
 * `?persistent-storage=` of register, register-new and ping: absent or empty means false,
 * anything Go's ParseBool refuses is a 400, as in the reference. [ref sync-protocol §1 Registration]
 * @throws BadRequestError for a value that is not a bool
 */
function persistentStorage(req: Request): boolean {
  return boolQuery(req, 'persistent-storage') ?? false;
}

/** One entry of the poll answer, with the reference's capitalised keys. [ref rest-api §6] */
interface PollEntry extends Partial<InlineFields> {
  Type: string;
  MetaData: MetaData;
  /** Bytes of the data on offer in an early-data entry, when the upload said. */
  Size?: number;
}

/** What a poll asks for beyond the reference's answer. */
interface PollOptions {
  /** `?inline=N`: data of objects up to N bytes inside the entries (spi-inline-data.ts). */
  inlineLimit: number;
  /** `?early=1`: the caller, registered, wants early-data offers and every update's SHA-256. */
  early: Destination | null;
}

export function createSpiServer(deps: SpiServerDeps): RequestHandler {
  const batchAcks = createBatchAcks();
  const objectActions = createSpiObjectActions({ ...(deps.log !== undefined ? { log: deps.log } : {}), ...(deps.events !== undefined ? { events: deps.events } : {}) });

  const gate = LoginGate.of(deps.authenticator);

  /**
   * The caller's identity through the node's login gate (throttle, passport, the handler), then its claim to the `X-Sync-Service-Dest` it names.
   * @throws UnauthorizedError (403) for no or refused credentials or a claim beyond them;
   *   TooManyRequestsError (429) while throttled; DependencyUnavailableError (503)
   */
  async function authorize(req: Request): Promise<SpiDestination> {
    // Behind a trusted load balancer, the ESS it names: else every ESS shares its counter.
    const source = gate.clientAddress(req.socket.remoteAddress, req.header('x-forwarded-for'));
    const identity: Identity | null = await gate.login({ authorization: req.header('authorization'), source, transport: 'SPI' });
    const claim = await authorizeSpiClaim(identity, req.header('X-Sync-Service-Dest') ?? '', deps.acls);
    if (claim === null) {
      // The app key and the address, never the secret.
      const creds = basicCredentials(req.header('authorization'));
      if (creds !== null) {
        const why = identity === null ? 'credentials' : 'destination claim';
        deps.log?.info({ appKey: creds.appKey, claimed: req.header('X-Sync-Service-Dest') ?? '', refused: why, source }, 'SPI login refused');
      }
      throw new UnauthorizedError();
    }
    return claim;
  }

  /** register, register-new, ping, unregister: 204, or 404 for an ESS that must register as new. */
  async function registration(action: SpiRegistrationAction, session: EssSession, persistent: boolean, res: Response): Promise<void> {
    const outcome = await session.register(action, { persistent, communication: 'http' });
    if (outcome === 'unknown') throw new NotFoundError();
    res.status(204).end();
  }

  /** The data of an update entry, when the poll asked for it and it fits (spi-inline-data.ts). */
  async function inlined(item: SyncItem, budget: InlineBudget): Promise<Partial<InlineFields>> {
    const obj = item.object;
    // metaOnly: the ESS keeps the data it holds; one that lacks it asks with a data GET.
    if (item.type !== 'update' || obj === null || obj.dataSha256 === null || obj.meta.metaOnly || !budget.take(obj)) return {};
    try {
      return await inlineFields(deps.objects.openData(obj).stream, obj.dataSha256);
    } catch (err) {
      // Replaced or removed meanwhile: the entry goes without, and a data GET tells the ESS.
      deps.log?.debug({ err, objectType: obj.meta.objectType, objectID: obj.meta.objectID }, 'data not inlined in the poll answer');
      return {};
    }
  }

  /**
   * With early data asked for, an update whose data is not inline states its SHA-256: that is
   * what tells the ESS whether the bytes it took early are the object's.
   */
  function statedDigest(item: SyncItem, inline: Partial<InlineFields>, opts: PollOptions): Partial<InlineFields> {
    if (opts.early === null || item.type !== 'update' || item.object?.dataSha256 == null || inline.DataSHA256 !== undefined) return {};
    return { DataSHA256: item.object.dataSha256 };
  }

  /** Early-data offers for the caller, after its records' entries. */
  function earlyEntries(session: EssSession, opts: PollOptions): PollEntry[] {
    if (opts.early === null || deps.early === undefined) return [];
    const addressed = { destinationType: session.peer.destType, destinationID: session.peer.destID };
    return deps.early
      .announce(opts.early)
      .map((o) => ({ Type: EARLY_ENTRY, MetaData: orderedMetaData({ ...o.meta, ...addressed }), ...(o.size !== null ? { Size: o.size } : {}) }));
  }

  /** Data inlined in a poll answer leaves with it: the whole object, in one go. */
  function noteInlineSent(session: EssSession, obj: NonNullable<SyncItem['object']>): void {
    if (deps.events?.dataSent === undefined) return;
    const m = obj.meta;
    deps.events.dataSent({ orgID: m.destinationOrgID, objectType: m.objectType, objectID: m.objectID, instanceID: m.instanceID }, peerOf(session), 'http', m.objectSize, 0, m.objectSize);
  }

  /** What is pending for the caller, as poll entries. */
  async function pendingEntries(session: EssSession, opts: PollOptions): Promise<PollEntry[]> {
    const items = await session.pending();
    const budget = new InlineBudget(opts.inlineLimit);
    const entries = await Promise.all(
      items.map(async (item): Promise<PollEntry> => {
        const inline = await inlined(item, budget);
        if (inline.Data !== undefined && item.object !== null) noteInlineSent(session, item.object);
        return { Type: item.type, MetaData: item.meta, ...inline, ...statedDigest(item, inline, opts) };
      }),
    );
    return [...entries, ...earlyEntries(session, opts)];
  }

  /**
   * Long-poll: with nothing pending, waits for work for the caller, for `waitS` seconds, or
   * until the client goes or the node stops. The wait starts before the listing, so a record
   * written between the listing and the wait still wakes it.
   * @returns the entries, or null when nobody is left to answer
   */
  async function longPollEntries(session: EssSession, opts: PollOptions, waitS: number, res: Response): Promise<PollEntry[] | null> {
    const ac = new AbortController();
    let gone = false;
    const onClose = (): void => {
      gone = true;
      ac.abort();
    };
    const onShutdown = (): void => ac.abort();
    res.on('close', onClose);
    deps.shutdown?.addEventListener('abort', onShutdown, { once: true });
    try {
      const woken = session.waitForWork(waitS * 1000, ac.signal);
      const entries = await pendingEntries(session, opts);
      if (entries.length > 0) return entries;
      await woken;
      if (gone) return null;
      if (!deps.isRunning()) throw new UnavailableError();
      return await pendingEntries(session, opts);
    } finally {
      // Ends the wait if the listing answered first, so no timer or listener outlives the request.
      ac.abort();
      res.off('close', onClose);
      deps.shutdown?.removeEventListener('abort', onShutdown);
    }
  }

  /**
   * `GET /spi/v1/objects/[?wait=N]`: everything pending for the caller. With `wait` (ours) an
   * empty answer is held back until something is pending or N seconds passed.
   * [ref sync-protocol §1 Poll]
   */
  async function poll(session: EssSession, req: Request, res: Response): Promise<void> {
    const waitS = pollWait(req);
    const inlineLimit = pollInlineLimit(req);
    const early = boolQuery(req, EARLY_PARAM) ?? false;
    const dest = await session.destination();
    if (dest === null) throw notRegistered(session.peer);
    const opts: PollOptions = { inlineLimit, early: early ? dest : null };
    const entries = waitS === undefined ? await pendingEntries(session, opts) : await longPollEntries(session, opts, waitS, res);
    if (entries === null) return;
    if (entries.length === 0) {
      res.status(204).end();
      return;
    }
    const body = goJson(entries);
    // setHeader, not res.set: Express would append `; charset=utf-8`, which the reference never sends.
    res.status(200).setHeader('Content-Type', 'application/json').setHeader('Content-Length', String(Buffer.byteLength(body))).end(body);
  }

  /**
   * `GET /spi/v1/early/{org}/{type}/{id}` (ours): the data of an upload in progress, streamed
   * as it arrives. 404 when none is on offer for the caller (never was, it is over, or enough
   * nodes download it already: the usual data GET then serves the object). An upload that
   * fails cuts the answer short.
   */
  async function earlyData(route: { orgID: string; objectType: string; objectID: string }, session: EssSession, res: Response): Promise<void> {
    if (route.orgID !== session.peer.orgID) throw new UnauthorizedError();
    const dest = await session.destination();
    if (dest === null) throw notRegistered(session.peer);
    const data = deps.early?.open(route.orgID, route.objectType, route.objectID, dest) ?? null;
    if (data === null) throw new NotFoundError('No upload of this object is on offer');
    res.status(200).set('Content-Type', 'application/octet-stream');
    // Without it (an upload that did not say its length) the answer goes out chunked.
    if (data.size !== null) res.set('Content-Length', String(data.size));
    try {
      await sendTellingProgress(data.stream, () => corkedPipe(data.stream, res, EARLY_SEND_WINDOW), deps.events, {
        obj: { orgID: route.orgID, objectType: route.objectType, objectID: route.objectID, instanceID: data.instanceID },
        peer: peerOf(session),
        start: 0,
        total: data.size,
      });
    } catch (err) {
      deps.log?.debug({ err, objectID: route.objectID }, 'early data cut short');
      data.stream.destroy();
      res.destroy();
    }
  }

  async function handle(req: Request, res: Response): Promise<void> {
    if (!deps.isRunning()) throw new UnavailableError();
    const claim = await authorize(req);
    // The reference acts for the ESS that the header names (checked against the caller's
    // identity) and ignores the path's: a register for …/node2 sent as node1 registers node1.
    // [ref traffic errors.jsonl 40]
    const session = deps.engine.session({ orgID: claim.orgID, destType: claim.destType, destID: claim.destID });
    const route = parseSpiPath(`${SPI_MOUNT}${req.path}`);
    // For the request metrics (lib/api/app.ts): which route this was, as a template.
    res.locals.route = spiRouteTemplate(route);
    switch (route.kind) {
      case 'registration':
        if (req.method !== 'PUT') throw new MethodNotAllowedError();
        return registration(route.action, session, route.action === 'unregister' || persistentStorage(req), res);
      case 'poll':
        if (req.method !== 'GET') throw new MethodNotAllowedError();
        return poll(session, req, res);
      case 'resend':
        return objectActions.resend(route.orgID, session, req, res);
      case 'acks':
        return batchAcks(route.orgID, session, req, res);
      case 'early':
        if (req.method !== 'GET') throw new MethodNotAllowedError();
        return earlyData(route, session, res);
      case 'object':
        return objectActions.object(route, session, req, res);
    }
  }

  return (req: Request, res: Response, next: NextFunction): void => {
    handle(req, res).catch(next);
  };
}
