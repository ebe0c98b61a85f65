/**
 * Authorization rules of the REST API as pure functions of the caller's identity, the node
 * (CSS or ESS, and the ESS's org) and the ACLs. An identity of `null` is the anonymous caller
 * (no or bad credentials). [ref rest-api §4.2–4.6]
 */
import { parseDestinationsListEntry, type MetaData, type PolicyService } from '../model/index.js';
import type { Identity } from './identity.js';

export type NodeType = 'CSS' | 'ESS';
export type AclUserType = 'user' | 'node';
export type AclRole = 'aclWriter' | 'aclReader' | 'na';

/** One entry of an objects or destinations ACL. Username `*` stands for every user of its type. */
export interface AclEntry {
  username: string;
  aclUserType: AclUserType;
  /** `na` in destinations ACLs, which have no roles. */
  aclRole: AclRole;
}

/** Read side of the ACL store. [ref rest-api §1.5] */
export interface AclLookup {
  /** Entries of the objects ACL for one object type, or {@link ALL_TYPES_ACL_KEY}; [] when none. */
  objectsAcl(org: string, key: string): Promise<AclEntry[]>;
  /** Entries of the destinations ACL for one destination type, or {@link ALL_TYPES_ACL_KEY}; [] when none. */
  destinationsAcl(org: string, key: string): Promise<AclEntry[]>;
}

/** Key of the ACL that applies to every type. [ref rest-api §1.5 "`*` = the all-types ACL"] */
export const ALL_TYPES_ACL_KEY = '*';

/** No ACLs at all: only admins pass the ACL checks. Also what an ESS has. [ref rest-api §1.5] */
export const EMPTY_ACLS: AclLookup = {
  objectsAcl: () => Promise.resolve([]),
  destinationsAcl: () => Promise.resolve([]),
};

/** The node a request is served by. */
export interface AccessContext {
  nodeType: NodeType;
  /** The ESS's org, which replaces the URL org on an ESS; ignored on a CSS. */
  nodeOrg: string;
  acls: AclLookup;
}

/** The object type an object admin may not write and a node may always read. [ref rest-api §1 roles] */
export const MANIFEST_OBJECT_TYPE = 'agent_upgrade_manifests';

/** `full`: every object of the type; `public`: only objects with `public: true`; `none`: 403. */
export type ReadAccess = 'full' | 'public' | 'none';

function aclUserTypeOf(id: Identity): AclUserType | null {
  if (id.role === 'user') return 'user';
  if (id.role === 'node') return 'node';
  return null;
}

/** Entries match on username (or `*`) and on the user type, as the reference's Mongo store does. [ref rest-api §5.15] */
function matching(entries: readonly AclEntry[], id: Identity, type: AclUserType): AclEntry[] {
  return entries.filter((e) => e.aclUserType === type && (e.username === '*' || e.username === id.userID));
}

/** The org rules are checked against: the URL org on a CSS, the node's own org on an ESS. */
function scopeOrg(ctx: AccessContext, org: string): string {
  return ctx.nodeType === 'ESS' ? ctx.nodeOrg : org;
}

/** In the type's objects ACL or the all-types one, any role. [ref rest-api §4.3] */
async function inObjectsAcl(ctx: AccessContext, org: string, objectType: string, id: Identity, type: AclUserType): Promise<boolean> {
  for (const key of [objectType, ALL_TYPES_ACL_KEY]) {
    if (matching(await ctx.acls.objectsAcl(org, key), id, type).length > 0) return true;
  }
  return false;
}

/**
 * aclWriter required: in the type's ACL the first matching entry decides, then the same in the
 * all-types ACL; no match denies. [ref rest-api §4.4 step 1]
 */
async function isObjectsWriter(ctx: AccessContext, org: string, objectType: string, id: Identity, type: AclUserType): Promise<boolean> {
  for (const key of [objectType, ALL_TYPES_ACL_KEY]) {
    for (const e of matching(await ctx.acls.objectsAcl(org, key), id, type)) {
      if (e.aclRole === 'aclWriter') return true;
      if (e.aclRole === 'aclReader') return false;
    }
  }
  return false;
}

async function inDestinationsAcl(ctx: AccessContext, org: string, keys: readonly string[], id: Identity, type: AclUserType): Promise<boolean> {
  for (const key of keys) {
    if (matching(await ctx.acls.destinationsAcl(org, key), id, type).length > 0) return true;
  }
  return false;
}

/** Distinct destination types of `destinationType` and of the `type:id` entries of `destinationsList`. */
function destinationTypes(meta: MetaData): string[] {
  const types = new Set<string>();
  if (meta.destinationType !== '') types.add(meta.destinationType);
  for (const d of meta.destinationsList ?? []) types.add(parseDestinationsListEntry(d).destType.trim());
  return [...types];
}

/** Any authenticated identity that may use the client API: everyone but anon and EN. [ref rest-api §4.6] */
export function isClientIdentity(id: Identity | null): id is Identity {
  return id !== null && id.role !== 'edgeNode';
}

/**
 * Whether the caller may read every object of `objectType` in `org`, only public ones, or none.
 * On an ESS a service gets `full` here and is narrowed per object by
 * {@link objectReadAccess}. [ref rest-api §4.3]
 */
export async function readAccess(id: Identity | null, ctx: AccessContext, org: string, objectType: string): Promise<ReadAccess> {
  if (id === null) return 'none';
  if (id.role === 'syncAdmin') return 'full';
  if (id.role === 'edgeNode') return 'none';
  // [ref rest-api §4.3 ESS] every role of the node's org reads everything; other orgs nothing.
  if (ctx.nodeType === 'ESS') return id.orgID === ctx.nodeOrg ? 'full' : 'none';
  if (id.role === 'service') return 'none';
  const sameOrg = id.orgID === org;
  // [ref rest-api §4.3 CSS] OADM reads like ADM; an admin of another org is treated as a user.
  if (id.role === 'admin' || id.role === 'objectAdmin') return sameOrg ? 'full' : 'public';
  if (!sameOrg) return 'public';
  if (id.role === 'node' && objectType === MANIFEST_OBJECT_TYPE) return 'full';
  const type = aclUserTypeOf(id);
  return type !== null && (await inObjectsAcl(ctx, org, objectType, id, type)) ? 'full' : 'public';
}

/**
 * Access to one existing object: {@link readAccess} narrowed by the object's `public` flag and,
 * for a service on an ESS, by the object's policy services. `public` here means "may read it
 * (metadata, status, destinations, data) but not mark it consumed/received/activated/deleted".
 * @param removedServices services recently removed from the policy; they count for listings
 *   and the `deleted` op only [ref rest-api §4.3]
 */
export async function objectReadAccess(
  id: Identity | null,
  ctx: AccessContext,
  org: string,
  meta: MetaData,
  removedServices: readonly PolicyService[] = [],
): Promise<ReadAccess> {
  const base = await readAccess(id, ctx, org, meta.objectType);
  if (base === 'none' || id === null) return 'none';
  // [ref rest-api §4.5] public objects are readable without full access, never markable.
  if (base === 'public') return meta.public ? 'public' : 'none';
  if (ctx.nodeType === 'ESS' && id.role === 'service' && !serviceMayAccessObject(id, meta, removedServices)) {
    return meta.public ? 'public' : 'none';
  }
  return 'full';
}

/**
 * Whether a missing object is 404 for this caller rather than 403: only for a caller who reads
 * every object of the type, and never for a service on an ESS, whose access is decided per
 * object ("fail (403), even when the object simply doesn't exist"). [ref rest-api §4.3]
 */
export function missingIsNotFound(id: Identity | null, ctx: AccessContext, level: ReadAccess): boolean {
  return level === 'full' && !accessIsPerObject(id, ctx);
}

/** A service on an ESS: what it may read is decided object by object, by the object's policy. [ref rest-api §4.3] */
export function accessIsPerObject(id: Identity | null, ctx: AccessContext): boolean {
  return ctx.nodeType === 'ESS' && id?.role === 'service';
}

/**
 * Whether a service identity (`svcOrg/version/svcName`) is among the object's policy services:
 * same org and name, and its version inside the service's version range. An object without a
 * policy, or whose policy names no services, is open to every service. [ref rest-api §4.3]
 */
export function serviceMayAccessObject(id: Identity, meta: MetaData, removedServices: readonly PolicyService[] = []): boolean {
  const services = meta.destinationPolicy?.services ?? [];
  if (services.length === 0) return true;
  const parts = id.userID.split('/');
  if (parts.length < 3) return false;
  const [svcOrg, version] = parts as [string, string];
  const name = parts.slice(2).join('/');
  return [...services, ...removedServices].some((s) => s.orgID === svcOrg && s.serviceName === name && versionInRange(version, s.version));
}

const VERSION = /^\d+(?:\.\d+){0,2}$/;
const RANGE = /^([[(])?\s*(\d+(?:\.\d+){0,2})\s*(?:,\s*(\d+(?:\.\d+){0,2}|INFINITY)\s*)?([\])])?$/;

function parseVersion(v: string): number[] | null {
  if (!VERSION.test(v)) return null;
  const parts = v.split('.').map(Number);
  while (parts.length < 3) parts.push(0);
  return parts;
}

function compareVersions(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < 3; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * Open Horizon version ranges: `[1.0.0,2.0.0)` with `[`/`]` inclusive and `(`/`)` exclusive,
 * `INFINITY` as an open upper end, and a bare version `1.2.3` meaning "at least 1.2.3".
 * Versions have up to three numeric parts; missing parts are 0. Anything else never matches.
 */
export function versionInRange(version: string, range: string): boolean {
  const v = parseVersion(version.trim());
  const m = RANGE.exec(range.trim());
  if (v === null || m === null) return false;
  const [, open = '[', lowText, highText, close = ')'] = m;
  const low = parseVersion(lowText ?? '');
  if (low === null) return false;
  const fromLow = compareVersions(v, low);
  if (fromLow < 0 || (fromLow === 0 && open === '(')) return false;
  if (highText === undefined || highText === 'INFINITY') return true;
  const high = parseVersion(highText);
  if (high === null) return false;
  const toHigh = compareVersions(v, high);
  return toHigh < 0 || (toHigh === 0 && close === ']');
}

/**
 * The write check for creating or changing an object (PUT object, PUT data, PUT destinations,
 * DELETE on a CSS), evaluated on the payload's metadata for a create and on the stored one
 * otherwise. [ref rest-api §4.4]
 *
 * Divergence: on a CSS the reference lets a service fall through to the ACL checks with an
 * empty ACL user type; services only mean something on an ESS, so we refuse them.
 */
export async function canCreateObject(id: Identity | null, ctx: AccessContext, org: string, meta: MetaData): Promise<boolean> {
  if (id === null) return false;
  if (id.role === 'syncAdmin') return true;
  const scope = scopeOrg(ctx, org);
  if (id.role === 'edgeNode' || id.orgID !== scope) return false;
  if (ctx.nodeType === 'ESS') return true;
  if (id.role === 'admin') return true;
  if (id.role === 'objectAdmin') return meta.objectType !== MANIFEST_OBJECT_TYPE;
  const type = aclUserTypeOf(id);
  if (type === null) return false;
  if (!(await isObjectsWriter(ctx, scope, meta.objectType, id, type))) return false;
  // [ref rest-api §4.4 step 4] policy-based objects skip the destination checks.
  if (meta.destinationPolicy !== null) return true;
  const types = destinationTypes(meta);
  // [ref rest-api §4.4 step 2] a broadcast needs the all-destinations ACL.
  if (types.length === 0) return inDestinationsAcl(ctx, scope, [ALL_TYPES_ACL_KEY], id, type);
  for (const destType of types) {
    if (!(await inDestinationsAcl(ctx, scope, [destType, ALL_TYPES_ACL_KEY], id, type))) return false;
  }
  return true;
}

/**
 * Whether the caller could write some object of `org` at all: checked before an object is looked
 * up for a write (DELETE, PUT data, PUT/POST destinations), so that the 404 of a missing object
 * is told only to those (USR/NODE may hold ACLs; the write check on the object follows).
 * Divergence: the reference answers 404 to anyone, which tells another org what exists.
 */
export function mayWriteInOrg(id: Identity | null, ctx: AccessContext, org: string): boolean {
  if (!isClientIdentity(id)) return false;
  if (id.role === 'syncAdmin') return true;
  if (id.orgID !== scopeOrg(ctx, org)) return false;
  return ctx.nodeType === 'ESS' || id.role !== 'service';
}

/** Roles that may use the org-wide listings O18–O20 (objects are then filtered one by one). [ref rest-api §4.2] */
export function isListingRole(id: Identity | null): boolean {
  if (id === null) return false;
  return id.role === 'syncAdmin' || id.role === 'admin' || id.role === 'objectAdmin' || id.role === 'user' || id.role === 'node';
}

/**
 * Registering or deleting a webhook for an object type. [ref rest-api §4.2 "Webhook", §1.2 O6]
 * Divergence: the reference lets a user of another org through to an ACL check in the URL's
 * org; we require the caller's own org (or SA) first.
 */
export async function canManageWebhooks(id: Identity | null, ctx: AccessContext, org: string, objectType: string): Promise<boolean> {
  if (!isClientIdentity(id) || id.role === 'service') return false;
  if (id.role === 'syncAdmin') return true;
  const scope = scopeOrg(ctx, org);
  if (id.orgID !== scope) return false;
  if (ctx.nodeType === 'ESS') return true;
  const type = aclUserTypeOf(id);
  if (type === null) return true; // admin, objectAdmin
  return isObjectsWriter(ctx, scope, objectType, id, type);
}

/** The destinations routes: any non-EN member of the org, or SA; no ACL check. [ref rest-api §1.3, §4.2] */
export function canAccessDestinations(id: Identity | null, org: string): boolean {
  return isClientIdentity(id) && (id.role === 'syncAdmin' || id.orgID === org);
}

/** Changing an org, or its ACLs: ADM of that org, or SA. [ref rest-api §1.4, §1.5, §4.2] */
export function canManageOrgs(id: Identity | null, org: string): boolean {
  return id !== null && (id.role === 'syncAdmin' || (id.role === 'admin' && id.orgID === org));
}

/** The ACL routes have the same gate as the org routes. [ref rest-api §1.5] */
export const canManageAcls = canManageOrgs;

/** The org list: ADM (who then sees its own org only) or SA. [ref rest-api §1.4] */
export function canListOrgs(id: Identity | null): boolean {
  return id !== null && (id.role === 'syncAdmin' || id.role === 'admin');
}

/**
 * POST /resend: ADM, USR or SA [ref rest-api §1.6]; with `nodeOrg` (an ESS's org), ADM and USR
 * of that org only. Divergence: the reference lets another org's identity ask an ESS's CSS to
 * send everything again.
 */
export function canResend(id: Identity | null, nodeOrg?: string): boolean {
  if (id === null) return false;
  if (id.role === 'syncAdmin') return true;
  return (id.role === 'admin' || id.role === 'user') && (nodeOrg === undefined || id.orgID === nodeOrg);
}

/** POST /shutdown: SA only. [ref rest-api §1.6] */
export function canShutdown(id: Identity | null): boolean {
  return id !== null && id.role === 'syncAdmin';
}

/** GET /health: any authenticated non-EN identity. [ref rest-api §1.6] */
export function canReadHealth(id: Identity | null): boolean {
  return isClientIdentity(id);
}

/** The ESS a SPI request speaks for. */
export interface SpiDestination {
  orgID: string;
  destType: string;
  destID: string;
}

/**
 * Checks the `X-Sync-Service-Dest: org/destType/destID` claim of a SPI request: an EN must
 * claim itself, an ADM of the org any destination, a USR one whose type is in its destinations
 * ACL. Divergence: the reference does not compare a USR's org with the claimed org; we do.
 * [ref rest-api §4.6]
 */
export async function authorizeSpiClaim(id: Identity | null, claim: string, acls: AclLookup): Promise<SpiDestination | null> {
  const parts = claim.split('/');
  if (id === null || parts.length !== 3 || parts.some((p) => p === '')) return null;
  const [orgID, destType, destID] = parts as [string, string, string];
  if (id.orgID !== orgID) return null;
  if (id.role === 'edgeNode') return id.userID === `${destType}/${destID}` ? { orgID, destType, destID } : null;
  if (id.role === 'admin') return { orgID, destType, destID };
  if (id.role === 'user') {
    const ctx: AccessContext = { nodeType: 'CSS', nodeOrg: '', acls };
    return (await inDestinationsAcl(ctx, orgID, [destType, ALL_TYPES_ACL_KEY], id, 'user')) ? { orgID, destType, destID } : null;
  }
  return null;
}
