/**
 * The API's view of the access rules of lib/security: the caller and node come from the
 * route context, and failures become the reference's 403/404 answers. [ref rest-api §4]
 */
import { NotFoundError, UnauthorizedError, type EdgesyncError, type MetaData } from '../model/index.js';
import * as access from '../security/access.js';
import type { StoredObject } from '../store/types.js';
import type { RouteContext } from './context.js';

export type ReadLevel = access.ReadAccess;

function accessContext(ctx: RouteContext): access.AccessContext {
  const node = ctx.deps.objects.node;
  return { nodeType: node.nodeType, nodeOrg: node.orgID, acls: ctx.deps.acls };
}

export function readLevel(ctx: RouteContext, org: string, objectType: string): Promise<ReadLevel> {
  return access.readAccess(ctx.identity, accessContext(ctx), org, objectType);
}

/**
 * Loads an object the caller may read, including one whose deletion is still under way
 * (`objdeleted`). A missing object is 404 only for callers who may read every object of its
 * type; others get the same 403 as for an object they may not see.
 * [ref rest-api §1.2 O1, O12, O13, O16]
 */
export async function readableObject(
  ctx: RouteContext,
  org: string,
  type: string,
  id: string,
  forbidden: EdgesyncError = new UnauthorizedError(),
): Promise<StoredObject> {
  const level = await readLevel(ctx, org, type);
  if (level === 'none') throw forbidden;
  const obj = await ctx.deps.objects.getOrDeleted(org, type, id);
  if (obj === null) throw access.missingIsNotFound(ctx.identity, accessContext(ctx), level) ? new NotFoundError() : forbidden;
  if ((await access.objectReadAccess(ctx.identity, accessContext(ctx), org, obj.meta)) === 'none') throw forbidden;
  return obj;
}

/**
 * The marks (consumed, received, deleted, activate, policyreceived) need full read access:
 * public is not enough [ref rest-api §4.5], and a service on an ESS needs the object's policy to
 * name it (a missing object is then 403). [ref rest-api §4.3]
 */
export async function requireFullAccess(ctx: RouteContext, org: string, type: string, id: string): Promise<void> {
  if ((await readLevel(ctx, org, type)) !== 'full') throw new UnauthorizedError();
  const actx = accessContext(ctx);
  if (!access.accessIsPerObject(ctx.identity, actx)) return;
  const obj = await ctx.deps.objects.getOrDeleted(org, type, id);
  if (obj === null || (await access.objectReadAccess(ctx.identity, actx, org, obj.meta)) !== 'full') throw new UnauthorizedError();
}

/** Narrows a listing to what the caller may see. */
export function filterReadable(ctx: RouteContext, level: ReadLevel, objs: StoredObject[]): StoredObject[] {
  if (level === 'none') return [];
  const node = ctx.deps.objects.node;
  const id = ctx.identity;
  return objs.filter((o) => {
    if (level === 'public') return o.meta.public;
    if (node.nodeType === 'ESS' && id.role === 'service') return o.meta.public || access.serviceMayAccessObject(id, o.meta);
    return true;
  });
}

/** Narrows objects of several types to what the caller may see: per type, everything (full access) or the public ones. */
export async function filterReadableByType(ctx: RouteContext, org: string, objs: StoredObject[]): Promise<StoredObject[]> {
  const levels = new Map<string, ReadLevel>();
  const out: StoredObject[] = [];
  for (const o of objs) {
    const type = o.meta.objectType;
    let level = levels.get(type);
    if (level === undefined) {
      level = await readLevel(ctx, org, type);
      levels.set(type, level);
    }
    out.push(...filterReadable(ctx, level, [o]));
  }
  return out;
}

export function canWrite(ctx: RouteContext, org: string, meta: MetaData): Promise<boolean> {
  return access.canCreateObject(ctx.identity, accessContext(ctx), org, meta);
}

/**
 * O3: on the CSS a sync admin may delete anything; others need the write check on the stored
 * object (missing → 404). On the ESS any identity of its org may, a service only an object its
 * policy names. [ref rest-api §1.2 O3, §4.3]
 * Divergence: the reference lets a service on an ESS delete a public object whose policy does
 * not name it.
 */
export async function canDeleteObject(ctx: RouteContext, org: string, type: string, id: string): Promise<void> {
  const node = ctx.deps.objects.node;
  if (node.nodeType === 'ESS') {
    await requireFullAccess(ctx, org, type, id);
    return;
  }
  if (ctx.identity.role === 'syncAdmin') return;
  requireMayWriteInOrg(ctx, org);
  const obj = await ctx.deps.objects.getOrDeleted(org, type, id);
  if (obj === null) throw new NotFoundError();
  if (!(await canWrite(ctx, org, obj.meta))) throw new UnauthorizedError();
}

/** Before looking up the object of a write: a caller who could write nothing in the org gets 403, missing object or not. */
export function requireMayWriteInOrg(ctx: RouteContext, org: string): void {
  if (!access.mayWriteInOrg(ctx.identity, accessContext(ctx), org)) throw new UnauthorizedError();
}

export function canManageWebhooks(ctx: RouteContext, org: string, type: string): Promise<boolean> {
  return access.canManageWebhooks(ctx.identity, accessContext(ctx), org, type);
}

export const isListingRole = (ctx: RouteContext): boolean => access.isListingRole(ctx.identity);
export const canAccessDestinations = (ctx: RouteContext, org: string): boolean => access.canAccessDestinations(ctx.identity, org);
export const canManageOrgs = (ctx: RouteContext, org: string): boolean => access.canManageOrgs(ctx.identity, org);
/** On an ESS, of its org. */
export const canResend = (ctx: RouteContext): boolean => {
  const node = ctx.deps.objects.node;
  return access.canResend(ctx.identity, node.nodeType === 'ESS' ? node.orgID : undefined);
};
export const canShutdown = (ctx: RouteContext): boolean => access.canShutdown(ctx.identity);
export const canReadHealth = (ctx: RouteContext): boolean => access.canReadHealth(ctx.identity);
