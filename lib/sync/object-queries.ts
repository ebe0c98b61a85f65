/**
 * The listings of the object API. Access filtering (public-only callers) is the API's job;
 * these return everything that matches. [ref rest-api §1.2 O4, O5, O13, O18–O20]
 */
import type { Store, StoredObject } from '../store/types.js';
import { NOTIFICATION_STATUSES, type Notification, type NotificationStore } from '../store/notification-types.js';
import type { DeliveryStatus, ObjectStatus, Policy } from '../model/index.js';
import { namesDestination } from './addressing.js';
import { REACHED_DELIVERY } from './notification-states.js';
import type { ObjectService } from './object-service.js';

/** The objects of an org in any status, deletions under way included (ObjectService.listAll). */
export type ObjectLister = Pick<ObjectService, 'listAll'>;

export interface DestinationsStatus {
  destinationType: string;
  destinationID: string;
  status: DeliveryStatus;
  message: string;
}

export interface ObjectDestinationPolicy {
  orgID: string;
  objectType: string;
  objectID: string;
  destinationPolicy?: Policy;
  destinations: DestinationsStatus[];
}

/** Objects that arrived from the other side and wait for the app. [ref rest-api §1.2 O4] */
export function receivedObjects(store: Store, org: string, type: string, includeReceived: boolean): Promise<StoredObject[]> {
  const statuses: ObjectStatus[] = ['completelyReceived', 'objdeleted'];
  if (includeReceived) statuses.push('objreceived');
  return store.listObjects({ org, objectType: type, statuses });
}

/** O13 entries from the object's notification records, ordered by destination. [ref rest-api §3.3] */
export function destinationsOf(records: readonly Notification[]): DestinationsStatus[] {
  return records.map((r) => ({ destinationType: r.peerType, destinationID: r.peerID, status: r.deliveryStatus, message: r.message }));
}

/** Keys in the reference's order: the policy (omitted when null) comes before the destinations. [ref rest-api §2.2] */
export function toObjectDestinationPolicy(obj: StoredObject, records: readonly Notification[]): ObjectDestinationPolicy {
  const m = obj.meta;
  return {
    orgID: m.destinationOrgID,
    objectType: m.objectType,
    objectID: m.objectID,
    ...(m.destinationPolicy !== null ? { destinationPolicy: m.destinationPolicy } : {}),
    destinations: destinationsOf(records),
  };
}

/** {@link toObjectDestinationPolicy} for a listing, reading each object's records. */
export async function objectDestinationPolicies(notifications: NotificationStore, objs: readonly StoredObject[]): Promise<ObjectDestinationPolicy[]> {
  const out: ObjectDestinationPolicy[] = [];
  for (const o of objs) {
    out.push(toObjectDestinationPolicy(o, await notifications.listForObject(o.meta.destinationOrgID, o.meta.objectType, o.meta.objectID)));
  }
  return out;
}


export interface ObjectDeliveryStatus {
  orgID: string;
  objectType: string;
  objectID: string;
  status: DeliveryStatus;
}

/** Objects with delivery under way or done toward one node, by (objectType, objectID). [ref rest-api §3.4] */
export async function objectsToward(notifications: NotificationStore, org: string, destType: string, destID: string): Promise<ObjectDeliveryStatus[]> {
  // Every record of the peer, whatever its protocol state: the filter is on the delivery state.
  const records = await notifications.listPendingForPeer(org, destType, destID, NOTIFICATION_STATUSES, Number.MAX_SAFE_INTEGER);
  return records
    .filter((r) => REACHED_DELIVERY.includes(r.deliveryStatus))
    .sort((a, b) => (a.objectType === b.objectType ? cmp(a.objectID, b.objectID) : cmp(a.objectType, b.objectType)))
    .map((r) => ({ orgID: r.orgID, objectType: r.objectType, objectID: r.objectID, status: r.deliveryStatus }));
}

function cmp(a: string, b: string): number {
  if (a === b) return 0;
  return a < b ? -1 : 1;
}

export interface PolicyQuery {
  received: boolean;
  /** `svcOrg/svcName` */
  service?: { orgID: string; serviceName: string };
  /** Unix nanoseconds; objects whose policy timestamp is at or after it. */
  since?: bigint;
}

/** A policy's timestamp: exact Unix nanoseconds (a bigint, as every Go int64 here). */
function policyNanos(p: Policy | null): bigint {
  return p?.timestamp ?? 0n;
}

/** Objects with a destination policy. Precedence: since, then service, then plain. [ref rest-api §1.2 O18] */
export async function policyObjects(objects: ObjectLister, org: string, q: PolicyQuery): Promise<StoredObject[]> {
  const all = (await objects.listAll(org)).filter((o) => o.meta.destinationPolicy !== null);
  if (q.since !== undefined) {
    const since = q.since;
    return all.filter((o) => policyNanos(o.meta.destinationPolicy) >= since);
  }
  if (q.service !== undefined) {
    const svc = q.service;
    return all.filter((o) => (o.meta.destinationPolicy?.services ?? []).some((s) => s.orgID === svc.orgID && s.serviceName === svc.serviceName));
  }
  return q.received ? all : all.filter((o) => !o.policyReceived);
}

export interface ObjectFilters {
  destinationPolicy?: boolean;
  dpService?: { orgID: string; serviceName: string };
  dpPropertyName?: string;
  /** Unix nanoseconds (from RFC3339). */
  since?: bigint;
  objectType?: string;
  objectID?: string;
  destinationType?: string;
  destinationID?: string;
  noData?: boolean;
  /** Epoch ms; objects with an expiration at or before it. */
  expirationTimeBefore?: number;
  deleted?: boolean;
}

/** The O19 filter set; every given filter must match. [ref rest-api §1.2 O19] */
export async function filteredObjects(objects: ObjectLister, org: string, f: ObjectFilters): Promise<StoredObject[]> {
  const all = await objects.listAll(org, f.objectType);
  return all.filter((o) => {
    const m = o.meta;
    if (f.destinationPolicy === true) {
      const p = m.destinationPolicy;
      if (p === null || p.timestamp < (f.since ?? 0n)) return false;
      if (f.dpService && !(p.services ?? []).some((s) => s.orgID === f.dpService?.orgID && s.serviceName === f.dpService.serviceName)) return false;
      if (f.dpPropertyName !== undefined && !(p.properties ?? []).some((pr) => pr.name === f.dpPropertyName)) return false;
    } else if (f.destinationPolicy === false && m.destinationPolicy !== null) return false;
    if (f.objectType !== undefined && f.objectID !== undefined && m.objectID !== f.objectID) return false;
    if (f.destinationType !== undefined && !namesDestination(o.meta, f.destinationType, f.destinationID)) return false;
    if (f.noData !== undefined && m.noData !== f.noData) return false;
    if (f.expirationTimeBefore !== undefined) {
      if (m.expiration === '' || Date.parse(m.expiration) > f.expirationTimeBefore) return false;
    }
    if (f.deleted !== undefined && m.deleted !== f.deleted) return false;
    return true;
  });
}

/** Distinct object types in first-seen order. [ref rest-api §1.2 O20] */
export function objectTypes(objects: readonly StoredObject[]): string[] {
  return [...new Set(objects.map((o) => o.meta.objectType))];
}
