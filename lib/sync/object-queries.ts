/**
 * The listings of the object API. Access filtering (public-only callers) is the API's job;
 * these return everything that matches. [ref rest-api §1.2 O4, O5, O13, O18–O20]
 */
import type { Store, StoredObject, Destination } from '../store/types.js';
import { isAddressedTo } from './addressing.js';
import type { DeliveryStatus, ObjectStatus, Policy } from '../model/index.js';

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

/**
 * Where an object is addressed, with its delivery state. Until CSS⇄ESS sync records real
 * delivery, every addressed destination is `pending`.
 */
export function destinationsOf(obj: StoredObject, registered: readonly Destination[]): DestinationsStatus[] {
  const m = obj.meta;
  const pending = (destinationType: string, destinationID: string): DestinationsStatus => ({ destinationType, destinationID, status: 'pending', message: '' });
  if (m.destinationsList !== null) {
    return m.destinationsList.map((d) => {
      const [t = '', i = ''] = d.split(':');
      return pending(t, i);
    });
  }
  if (m.destinationPolicy !== null) return [];
  if (m.destinationType !== '' && m.destinationID !== '') return [pending(m.destinationType, m.destinationID)];
  return registered
    .filter((d) => isAddressedTo(m, d))
    .map((d) => pending(d.destinationType, d.destinationID));
}

/** Keys in the reference's order: the policy (omitted when null) comes before the destinations. [ref rest-api §2.2] */
export function toObjectDestinationPolicy(obj: StoredObject, registered: readonly Destination[]): ObjectDestinationPolicy {
  const m = obj.meta;
  return {
    orgID: m.destinationOrgID,
    objectType: m.objectType,
    objectID: m.objectID,
    ...(m.destinationPolicy !== null ? { destinationPolicy: m.destinationPolicy } : {}),
    destinations: destinationsOf(obj, registered),
  };
}

export interface PolicyQuery {
  received: boolean;
  /** `svcOrg/svcName` */
  service?: { orgID: string; serviceName: string };
  /** Unix nanoseconds; objects whose policy timestamp is at or after it. */
  since?: bigint;
}

/**
 * A policy timestamp as the integer clients read in the JSON (the shortest decimal of the
 * double). Nanosecond stamps exceed 2^53: compared as doubles, `since = stamp + 1` would still
 * match the object that carried `stamp`.
 */
function policyNanos(p: Policy | null): bigint {
  const t = Math.trunc(p?.timestamp ?? 0);
  return Number.isFinite(t) && Math.abs(t) < 1e21 ? BigInt(String(t)) : 0n;
}

/** Objects with a destination policy. Precedence: since, then service, then plain. [ref rest-api §1.2 O18] */
export async function policyObjects(store: Store, org: string, q: PolicyQuery): Promise<StoredObject[]> {
  const all = (await store.listObjects({ org })).filter((o) => o.meta.destinationPolicy !== null);
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
  since?: number;
  objectType?: string;
  objectID?: string;
  destinationType?: string;
  destinationID?: string;
  noData?: boolean;
  /** Epoch ms; objects with an expiration at or before it. */
  expirationTimeBefore?: number;
  deleted?: boolean;
}

function matchesDestination(o: StoredObject, type: string, id: string | undefined): boolean {
  const m = o.meta;
  if (m.destinationType !== '') return m.destinationType === type && (id === undefined || m.destinationID === id);
  return (m.destinationsList ?? []).some((d) => (id === undefined ? d.startsWith(`${type}:`) : d === `${type}:${id}`));
}

/** The O19 filter set; every given filter must match. [ref rest-api §1.2 O19] */
export async function filteredObjects(store: Store, org: string, f: ObjectFilters): Promise<StoredObject[]> {
  const all = await store.listObjects(f.objectType !== undefined ? { org, objectType: f.objectType } : { org });
  return all.filter((o) => {
    const m = o.meta;
    if (f.destinationPolicy === true) {
      const p = m.destinationPolicy;
      if (p === null || p.timestamp < (f.since ?? 0)) return false;
      if (f.dpService && !(p.services ?? []).some((s) => s.orgID === f.dpService?.orgID && s.serviceName === f.dpService.serviceName)) return false;
      if (f.dpPropertyName !== undefined && !(p.properties ?? []).some((pr) => pr.name === f.dpPropertyName)) return false;
    } else if (f.destinationPolicy === false && m.destinationPolicy !== null) return false;
    if (f.objectType !== undefined && f.objectID !== undefined && m.objectID !== f.objectID) return false;
    if (f.destinationType !== undefined && !matchesDestination(o, f.destinationType, f.destinationID)) return false;
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
