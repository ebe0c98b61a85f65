/**
 * The fleet read model behind `/api/v1/fleet` (an edgesync extension): what the dashboard and
 * `edgesync top` show, built from the stores and the live transfer view. Pure functions here;
 * the handlers in fleet.ts load, authorize and answer.
 */
import { BadRequestError, type DeliveryStatus, type ObjectStatus } from '../../model/index.js';
import type { Destination, StoredObject } from '../../store/types.js';
import type { Notification } from '../../store/notification-types.js';
import type { TransferProgress } from '../../sync/transfer-progress.js';

/**
 * `ok`: heard from within the time a healthy node of its kind speaks; `late`: up to three times
 * that; `silent`: longer. An HTTP ESS polls every few seconds, but the CSS records its contact
 * at most once a minute; an MQTT ESS may only ping (hourly by default) when nothing moves.
 */
export type NodeHealth = 'ok' | 'late' | 'silent';

const EXPECTED_CONTACT_MS: Record<Destination['communication'], number> = { http: 150_000, mqtt: 65 * 60_000 };

export function healthFromContact(communication: Destination['communication'], lastContact: number, now: number): NodeHealth {
  const expected = EXPECTED_CONTACT_MS[communication];
  const age = now - lastContact;
  if (age <= expected) return 'ok';
  return age <= 3 * expected ? 'late' : 'silent';
}

export interface FleetNode {
  /** `ESS` for a destination of a CSS; `CSS` for the cloud an ESS talks to. */
  kind: 'ESS' | 'CSS';
  destinationType: string;
  destinationID: string;
  communication: string;
  codeVersion: string;
  /** RFC 3339; null when never heard from. */
  lastContact: string | null;
  health: NodeHealth;
}

export interface Progress {
  bytes: number;
  total: number | null;
}

export interface FleetDelivery {
  destinationType: string;
  destinationID: string;
  status: DeliveryStatus;
  message: string;
  /** RFC 3339 of the record's last change. */
  lastUpdate: string;
  /** Present while bytes move toward (or from) this peer. */
  progress?: Progress;
}

export interface FleetObject {
  objectType: string;
  objectID: string;
  /** A decimal string: the reference's 64-bit ids do not fit a JavaScript number. */
  instanceID: string;
  status: ObjectStatus;
  size: number;
  deleted: boolean;
  public: boolean;
  lastUpdate: string;
  /** Per delivery status, across every destination of the object. */
  deliveryCounts: Record<DeliveryStatus, number>;
  /** The first destinations, in (type, id) order; the object's page lists them all. */
  deliveries: FleetDelivery[];
  /** How many destinations the object has, listed or not. */
  deliveriesTotal: number;
}

export interface Page<T> {
  items: T[];
  /** Pass as `after` for the next page; null on the last one. */
  next: string | null;
  total: number;
}

export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 1000;
/** Destinations shown per object in the fleet listing. */
export const DELIVERIES_PER_OBJECT = 20;

/** `?limit=`: 1..MAX_LIMIT, DEFAULT_LIMIT when absent. */
export function parseLimit(raw: string | undefined, fallback = DEFAULT_LIMIT): number {
  if (raw === undefined || raw === '') return fallback;
  const n = /^\d{1,6}$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 1 && n <= MAX_LIMIT)) throw new BadRequestError(`Invalid limit (${raw}), expected an integer from 1 to ${MAX_LIMIT}`);
  return n;
}

/**
 * Cursors name the last item of a page by its (type, id) key, so a page stays right when items
 * are added or removed meanwhile. Opaque to clients: base64url of a JSON pair.
 */
export function encodeCursor(type: string, id: string): string {
  return Buffer.from(JSON.stringify([type, id])).toString('base64url');
}

export function decodeCursor(raw: string | undefined, name: string): [string, string] | null {
  if (raw === undefined || raw === '') return null;
  try {
    const v: unknown = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && typeof v[1] === 'string') return [v[0], v[1]];
  } catch {
    // falls through to the 400 below
  }
  throw new BadRequestError(`Invalid ${name} (${raw}), expected a cursor from a previous page's "next"`);
}

function after(key: [string, string], cursor: [string, string]): boolean {
  return key[0] === cursor[0] ? key[1] > cursor[1] : key[0] > cursor[0];
}

function compareKeys(a: [string, string], b: [string, string]): number {
  if (a[0] !== b[0]) return a[0] < b[0] ? -1 : 1;
  if (a[1] !== b[1]) return a[1] < b[1] ? -1 : 1;
  return 0;
}

/** One page of `items` in (type, id) order, starting after `cursor`. */
export function paginate<T>(items: readonly T[], keyOf: (item: T) => [string, string], limit: number, cursor: [string, string] | null): Page<T> {
  const sorted = [...items].sort((a, b) => compareKeys(keyOf(a), keyOf(b)));
  const rest = cursor === null ? sorted : sorted.filter((i) => after(keyOf(i), cursor));
  const page = rest.slice(0, limit);
  const last = page[page.length - 1];
  const next = rest.length > limit && last !== undefined ? encodeCursor(...keyOf(last)) : null;
  return { items: page, next, total: items.length };
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

export function fleetNode(d: Destination, now: number): FleetNode {
  return {
    kind: 'ESS',
    destinationType: d.destinationType,
    destinationID: d.destinationID,
    communication: d.communication,
    codeVersion: d.codeVersion,
    lastContact: d.lastPing > 0 ? iso(d.lastPing) : null,
    health: d.lastPing > 0 ? healthFromContact(d.communication, d.lastPing, now) : 'silent',
  };
}

export type ProgressOf = (peerType: string, peerID: string) => TransferProgress | undefined;

export function fleetDelivery(n: Notification, progressOf: ProgressOf): FleetDelivery {
  const out: FleetDelivery = {
    destinationType: n.peerType,
    destinationID: n.peerID,
    status: n.deliveryStatus,
    message: n.message,
    lastUpdate: iso(n.lastUpdate),
  };
  const live = progressOf(n.peerType, n.peerID);
  if (live !== undefined && live.instanceID === n.instanceID) out.progress = { bytes: live.bytes, total: live.total };
  else if (n.deliveryStatus === 'delivering' && n.offset > 0) out.progress = { bytes: n.offset, total: null };
  return out;
}

export function emptyCounts(): Record<DeliveryStatus, number> {
  return { pending: 0, delivering: 0, delivered: 0, consumed: 0, deleted: 0, error: 0 };
}

export function fleetObject(o: StoredObject, records: readonly Notification[], progressOf: ProgressOf, shown = DELIVERIES_PER_OBJECT): FleetObject {
  const counts = emptyCounts();
  for (const r of records) counts[r.deliveryStatus]++;
  return {
    objectType: o.meta.objectType,
    objectID: o.meta.objectID,
    instanceID: o.meta.instanceID.toString(),
    status: o.status,
    size: o.meta.objectSize,
    deleted: o.meta.deleted,
    public: o.meta.public,
    lastUpdate: iso(o.lastUpdate),
    deliveryCounts: counts,
    deliveries: records.slice(0, shown).map((r) => fleetDelivery(r, progressOf)),
    deliveriesTotal: records.length,
  };
}
