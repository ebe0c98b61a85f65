/**
 * The CSS side of the HTTP SPI (`/spi/v1`): ESS registration and the poll here, object actions
 * and resend in spi-object-actions.ts. The ESS always initiates; whatever the CSS has for an ESS waits in its notification records until the ESS
 * polls. [ref sync-protocol §1, rest-api §6]
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { pipeline } from 'node:stream/promises';
import {
  BadRequestError,
  MethodNotAllowedError,
  NotFoundError,
  UnauthorizedError,
  UnavailableError,
  emptyMetaData,
  goJson,
  orderedMetaData,
  type MetaData,
} from '../../model/index.js';
import { authorizeSpiClaim, basicCredentials, type AclLookup, type Authenticator, type Identity, type SpiDestination } from '../../security/index.js';
import type { Notification, NotificationStatus, NotificationStore } from '../../store/notification-types.js';
import type { Destination, Store, StoredObject } from '../../store/types.js';
import type { EarlyData } from '../../sync/early-data.js';
import type { ObjectService } from '../../sync/object-service.js';
import { PeerSignal } from '../../sync/peer-signal.js';
import { MAY_HOLD, NEVER_SERVED, type Sender } from '../../sync/sender.js';
import type { SenderAcks } from '../../sync/sender-acks.js';
import type { UpstreamReceiver } from '../../sync/upstream-receiver.js';
import { boolQuery, queryString } from '../../api/http.js';
import { createBatchAcks } from './spi-batch-acks.js';
import { createSpiObjectActions, notRegistered } from './spi-object-actions.js';
import { InlineBudget, inlineFields, pollInlineLimit, type InlineFields } from './spi-inline-data.js';
import { EARLY_ENTRY, EARLY_PARAM, parseSpiPath, type SpiRegistrationAction } from './spi-paths.js';

/** Where the router is mounted; parseSpiPath wants the whole path. */
export const SPI_MOUNT = '/spi/v1';

export interface SpiServerDeps {
  store: Store;
  notifications: NotificationStore;
  sender: Pick<Sender, 'onDestinationRegistered'>;
  acks: Pick<SenderAcks, 'apply' | 'resend'>;
  objects: Pick<ObjectService, 'openData'>;
  /** Uploads offered while they arrive, to an ESS that asks (`?early=1`). */
  early?: Pick<EarlyData, 'announce' | 'open'>;
  /** Objects the ESS nodes publish (their upload and its acks). */
  upstream?: Pick<UpstreamReceiver, 'applyUpdate' | 'putData' | 'ackReceived' | 'ackConsumed' | 'applyDelete' | 'ackDeleted'>;
  /** Registrations and refused logins (INFO); debug notes about requests refused as expected. */
  log?: { debug(obj: object, msg: string): void; info(obj: object, msg: string): void };
  authenticator: Authenticator;
  acls: AclLookup;
  /** False while starting or stopping: the SPI then answers 503. [ref sync-protocol §1] */
  isRunning(): boolean;
  /** Wakes a long-poll when the Sender queues something for its peer; without it `wait` only delays. */
  peerSignal?: Pick<PeerSignal, 'wait'>;
  /** Aborted when the node stops: outstanding long-polls end at once instead of holding the stop. */
  shutdown?: AbortSignal;
  /** Epoch ms; tests inject a fake clock. */
  now?: () => number;
}

/**
 * Record statuses queued for an ESS that polls, and the notification type each is served as.
 * [ref sync-protocol §1 Poll, §3 Status constants]
 */
const POLL_TYPES: ReadonlyMap<NotificationStatus, string> = new Map<NotificationStatus, string>([
  [NEVER_SERVED, 'update'],
  [MAY_HOLD, 'update'],
  ['consumedPending', 'consumed'],
  ['deletePending', 'delete'],
  ['deletedPending', 'deleted'],
  ['receivedpending', 'received'],
]);
const POLL_STATUSES: readonly NotificationStatus[] = [...POLL_TYPES.keys()];

/**
 * Records served per poll. Records stay pending until acked, so a larger backlog is served by
 * the next polls as the first ones are acked.
 */
const POLL_BATCH = 1000;

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
  const now = deps.now ?? Date.now;
  // Without the Sender's signal (tests) nobody notifies a private one: `wait` then only delays.
  const peerSignal = deps.peerSignal ?? new PeerSignal();
  const batchAcks = createBatchAcks({ store: deps.store, acks: deps.acks });
  const objectActions = createSpiObjectActions({
    store: deps.store,
    notifications: deps.notifications,
    objects: deps.objects,
    acks: deps.acks,
    now,
    ...(deps.upstream !== undefined ? { upstream: deps.upstream } : {}),
    ...(deps.log !== undefined ? { log: deps.log } : {}),
  });

  async function authorize(req: Request): Promise<SpiDestination> {
    const creds = basicCredentials(req.header('authorization'));
    const identity: Identity | null = creds === null ? null : await deps.authenticator.authenticate(creds.appKey, creds.secret);
    const claim = await authorizeSpiClaim(identity, req.header('X-Sync-Service-Dest') ?? '', deps.acls);
    if (claim === null) {
      // The app key and the address, never the secret.
      if (creds !== null) {
        const why = identity === null ? 'credentials' : 'destination claim';
        deps.log?.info({ appKey: creds.appKey, claimed: req.header('X-Sync-Service-Dest') ?? '', refused: why, source: req.socket.remoteAddress ?? 'unix socket' }, 'SPI login refused');
      }
      throw new UnauthorizedError();
    }
    return claim;
  }

  function findDestination(claim: SpiDestination): Promise<Destination | null> {
    return deps.store.getDestination(claim.orgID, claim.destType, claim.destID);
  }

  /**
   * register, register-new, ping, unregister. An ESS that registers again without persistent
   * storage may have lost what it received: everything it was sent is offered again, as the
   * reference's resendNotificationsForDestination(dest, resendReceived) does.
   * [ref sync-protocol §1 Endpoints, §3 Registration]
   */
  async function registration(action: SpiRegistrationAction, claim: SpiDestination, persistent: boolean, res: Response): Promise<void> {
    const known = await findDestination(claim);
    const fresh: Destination = {
      destinationOrgID: claim.orgID,
      destinationType: claim.destType,
      destinationID: claim.destID,
      // As the reference's HTTP registration records every ESS. [ref traffic register.jsonl]
      communication: 'http',
      codeVersion: '1.0',
      lastPing: now(),
    };
    switch (action) {
      case 'register':
      case 'ping':
        // An ESS the CSS does not know must register as new (it then drops its own state).
        if (known === null) throw new NotFoundError();
        await deps.store.putDestination(fresh);
        if (action === 'register' && !persistent) await deps.acks.resend(claim.orgID, claim.destType, claim.destID);
        if (action === 'register') deps.log?.info({ org: claim.orgID, destination: `${claim.destType}/${claim.destID}`, registration: 'returning', persistent }, 'ESS registered');
        break;
      case 'register-new':
        await deps.store.putDestination(fresh);
        await deps.sender.onDestinationRegistered(fresh, true);
        deps.log?.info({ org: claim.orgID, destination: `${claim.destType}/${claim.destID}`, registration: 'new' }, 'ESS registered');
        break;
      case 'unregister':
        await deps.notifications.deleteForPeer(claim.orgID, claim.destType, claim.destID);
        await deps.store.deleteDestination(claim.orgID, claim.destType, claim.destID);
        break;
    }
    res.status(204).end();
  }

  /**
   * The metadata a poll entry carries, addressed to the caller, with the object it describes
   * (null when gone); null when the record is stale.
   */
  async function pollMetaData(rec: Notification, claim: SpiDestination): Promise<{ meta: MetaData; obj: StoredObject | null } | null> {
    const obj = await deps.store.getObject(rec.orgID, rec.objectType, rec.objectID);
    const addressed = { destinationType: claim.destType, destinationID: claim.destID };
    if (rec.status === 'deletePending' || rec.status === 'deletedPending') {
      // The object is removed at once on delete (see Sender.onObjectDeleted), and an
      // ESS-originated one once the app confirmed its deletion: a gone object is described by
      // the metadata its deletion keeps (deletions.ts), as the reference sends it, else by its
      // key and the instance the record is about.
      const kept = obj === null ? await deps.store.getDeletion(rec.orgID, rec.objectType, rec.objectID) : null;
      const base = obj?.meta ?? (kept !== null && kept.meta.instanceID === rec.instanceID ? kept.meta : null) ?? {
        ...emptyMetaData(),
        destinationOrgID: rec.orgID,
        objectType: rec.objectType,
        objectID: rec.objectID,
        instanceID: rec.instanceID,
        dataID: rec.dataID,
      };
      return { meta: orderedMetaData({ ...base, ...addressed, deleted: true }), obj };
    }
    // An object replaced between the two reads: its new record is served by the next poll.
    if (obj === null || obj.meta.instanceID !== rec.instanceID) return null;
    return { meta: orderedMetaData({ ...obj.meta, ...addressed }), obj };
  }

  /** The data of an update entry, when the poll asked for it and it fits (spi-inline-data.ts). */
  async function inlined(type: string, obj: StoredObject | null, budget: InlineBudget): Promise<Partial<InlineFields>> {
    if (type !== 'update' || obj === null || obj.dataSha256 === null || !budget.take(obj)) return {};
    try {
      return await inlineFields(deps.objects.openData(obj).stream, obj.dataSha256);
    } catch (err) {
      // Replaced or removed meanwhile: the entry goes without, and a data GET tells the ESS.
      deps.log?.debug({ err, objectType: obj.meta.objectType, objectID: obj.meta.objectID }, 'data not inlined in the poll answer');
      return {};
    }
  }

  /**
   * Marks an update as served before it is: from now on the peer may hold the object, so its
   * deletion must be sent (see Sender.retire). False when the record moved meanwhile (a newer
   * instance, or the object's deletion dropped it): the next poll serves what it says then.
   */
  async function markServed(rec: Notification): Promise<boolean> {
    if (rec.status !== NEVER_SERVED) return true;
    const key = { orgID: rec.orgID, objectType: rec.objectType, objectID: rec.objectID, peerType: rec.peerType, peerID: rec.peerID };
    return deps.notifications.updateNotificationIf(key, { status: NEVER_SERVED, instanceID: rec.instanceID }, { status: MAY_HOLD });
  }

  /**
   * With early data asked for, an update whose data is not inline states its SHA-256: that is
   * what tells the ESS whether the bytes it took early are the object's.
   */
  function statedDigest(type: string, obj: StoredObject | null, inline: Partial<InlineFields>, opts: PollOptions): Partial<InlineFields> {
    if (opts.early === null || type !== 'update' || obj?.dataSha256 == null || inline.DataSHA256 !== undefined) return {};
    return { DataSHA256: obj.dataSha256 };
  }

  /** Early-data offers for the caller, after its records' entries. */
  function earlyEntries(claim: SpiDestination, opts: PollOptions): PollEntry[] {
    if (opts.early === null || deps.early === undefined) return [];
    const addressed = { destinationType: claim.destType, destinationID: claim.destID };
    return deps.early
      .announce(opts.early)
      .map((o) => ({ Type: EARLY_ENTRY, MetaData: orderedMetaData({ ...o.meta, ...addressed }), ...(o.size !== null ? { Size: o.size } : {}) }));
  }

  /** What is pending for the caller, as poll entries. */
  async function pendingEntries(claim: SpiDestination, opts: PollOptions): Promise<PollEntry[]> {
    const records = await deps.notifications.listPendingForPeer(claim.orgID, claim.destType, claim.destID, POLL_STATUSES, POLL_BATCH);
    const budget = new InlineBudget(opts.inlineLimit);
    // All at once, not one after the other: their writes (markServed) then share one commit
    // and one fsync instead of waiting for one each. Promise.all keeps the records' order.
    const entries = await Promise.all(
      records.map(async (rec): Promise<PollEntry | null> => {
        // An update whose delivery is still `pending` waits for its object to become ready and active.
        if ((rec.status === NEVER_SERVED || rec.status === MAY_HOLD) && rec.deliveryStatus === 'pending') return null;
        const found = await pollMetaData(rec, claim);
        const type = POLL_TYPES.get(rec.status);
        if (found === null || type === undefined || !(await markServed(rec))) return null;
        const inline = await inlined(type, found.obj, budget);
        return { Type: type, MetaData: found.meta, ...inline, ...statedDigest(type, found.obj, inline, opts) };
      }),
    );
    return [...entries.filter((e): e is PollEntry => e !== null), ...earlyEntries(claim, opts)];
  }

  /**
   * Long-poll: with nothing pending, waits for the Sender's signal for this peer, for `waitS`
   * seconds, or until the client goes or the node stops. The wait starts before the listing, so
   * a record written between the listing and the wait still wakes it.
   * @returns the entries, or null when nobody is left to answer
   */
  async function longPollEntries(claim: SpiDestination, opts: PollOptions, waitS: number, res: Response): Promise<PollEntry[] | null> {
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
      const woken = peerSignal.wait(claim.orgID, claim.destType, claim.destID, waitS * 1000, ac.signal);
      const entries = await pendingEntries(claim, opts);
      if (entries.length > 0) return entries;
      await woken;
      if (gone) return null;
      if (!deps.isRunning()) throw new UnavailableError();
      return await pendingEntries(claim, opts);
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
  async function poll(claim: SpiDestination, req: Request, res: Response): Promise<void> {
    const waitS = pollWait(req);
    const inlineLimit = pollInlineLimit(req);
    const early = boolQuery(req, EARLY_PARAM) ?? false;
    const dest = await findDestination(claim);
    if (dest === null) throw notRegistered(claim);
    const opts: PollOptions = { inlineLimit, early: early ? dest : null };
    const entries = waitS === undefined ? await pendingEntries(claim, opts) : await longPollEntries(claim, opts, waitS, res);
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
  async function earlyData(route: { orgID: string; objectType: string; objectID: string }, claim: SpiDestination, res: Response): Promise<void> {
    if (route.orgID !== claim.orgID) throw new UnauthorizedError();
    const dest = await findDestination(claim);
    if (dest === null) throw notRegistered(claim);
    const data = deps.early?.open(route.orgID, route.objectType, route.objectID, dest) ?? null;
    if (data === null) throw new NotFoundError('No upload of this object is on offer');
    res.status(200).set('Content-Type', 'application/octet-stream');
    // Without it (an upload that did not say its length) the answer goes out chunked.
    if (data.size !== null) res.set('Content-Length', String(data.size));
    try {
      await pipeline(data.stream, res);
    } catch (err) {
      deps.log?.debug({ err, objectID: route.objectID }, 'early data cut short');
      res.destroy();
    }
  }

  async function handle(req: Request, res: Response): Promise<void> {
    if (!deps.isRunning()) throw new UnavailableError();
    const claim = await authorize(req);
    const route = parseSpiPath(`${SPI_MOUNT}${req.path}`);
    switch (route.kind) {
      case 'registration':
        if (req.method !== 'PUT') throw new MethodNotAllowedError();
        // The reference registers the ESS that the header names (checked against the caller's
        // identity) and ignores the path's: a register for …/node2 sent as node1 registers node1.
        // [ref traffic errors.jsonl 40]
        return registration(route.action, claim, route.action === 'unregister' || persistentStorage(req), res);
      case 'poll':
        if (req.method !== 'GET') throw new MethodNotAllowedError();
        return poll(claim, req, res);
      case 'resend':
        return objectActions.resend(route.orgID, claim, req, res);
      case 'acks':
        return batchAcks(route.orgID, claim, req, res);
      case 'early':
        if (req.method !== 'GET') throw new MethodNotAllowedError();
        return earlyData(route, claim, res);
      case 'object':
        return objectActions.object(route, claim, req, res);
    }
  }

  return (req: Request, res: Response, next: NextFunction): void => {
    handle(req, res).catch(next);
  };
}
