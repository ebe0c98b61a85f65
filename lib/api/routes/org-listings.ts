/**
 * `GET /api/v1/objects/{org}?…`: the CSS-wide listings by destination policy, by filters,
 * and of object types. [ref rest-api §1.2 O18–O20]
 */
import { BadRequestError, NotFoundError, UnauthorizedError, msToNanos, orderedMetaData, parseGoBool, parseInt64 } from '../../model/index.js';
import {
  filteredObjects,
  objectTypes,
  policyObjects,
  objectDestinationPolicies,
  type ObjectFilters,
} from '../../sync/object-queries.js';
import { isListingRole, filterReadableByType } from '../authz.js';
import { boolQuery, queryString } from '../../http/request.js';
import { sendJson } from '../../http/response.js';
import type { RouteContext } from '../context.js';

function serviceQuery(raw: string, name: string): { orgID: string; serviceName: string } {
  const [orgID = '', serviceName = '', ...rest] = raw.split('/');
  if (orgID === '' || serviceName === '' || rest.length > 0) {
    throw new BadRequestError(`Invalid ${name} (${raw}), expected serviceOrgID/serviceName`);
  }
  return { orgID, serviceName };
}

/** RFC3339 → epoch milliseconds. */
function rfc3339Ms(raw: string, name: string): number {
  const ms = Date.parse(raw);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(raw) || Number.isNaN(ms)) throw new BadRequestError(`Invalid ${name} (${raw}), expected an RFC3339 time`);
  return ms;
}

function nonEmpty<T>(list: T[]): T[] {
  if (list.length === 0) throw new NotFoundError();
  return list;
}

async function byPolicy(ctx: RouteContext, org: string): Promise<void> {
  const received = boolQuery(ctx.req, 'received') ?? false;
  const service = queryString(ctx.req, 'service');
  const sinceRaw = queryString(ctx.req, 'since');
  let since: bigint | undefined;
  if (sinceRaw !== undefined && sinceRaw !== '') {
    // An int64 as in the reference, kept exact: a double would round nanoseconds away.
    since = parseInt64(sinceRaw) ?? undefined;
    if (since === undefined || since < 1n) {
      throw new BadRequestError(`Invalid since (${sinceRaw}), expected an integer of Unix nanoseconds ≥ 1`);
    }
  }
  const objs = await policyObjects(ctx.deps.objects, org, {
    received,
    ...(since !== undefined ? { since } : {}),
    ...(service !== undefined && service !== '' ? { service: serviceQuery(service, 'service') } : {}),
  });
  sendJson(ctx.res, await objectDestinationPolicies(ctx.deps.notifications, nonEmpty(await filterReadableByType(ctx, org, objs))));
}

function parseFilters(ctx: RouteContext): ObjectFilters {
  const f: ObjectFilters = {};
  const q = (name: string): string | undefined => {
    const v = queryString(ctx.req, name);
    return v === '' ? undefined : v;
  };
  const dp = boolQuery(ctx.req, 'destinationPolicy');
  if (dp !== undefined) f.destinationPolicy = dp;
  if (dp === true) {
    const svc = q('dpService');
    if (svc !== undefined) f.dpService = serviceQuery(svc, 'dpService');
    const prop = q('dpPropertyName');
    if (prop !== undefined) f.dpPropertyName = prop;
    const since = q('since');
    if (since !== undefined) f.since = msToNanos(rfc3339Ms(since, 'since')); // as the reference's filters `since`
  }
  const type = q('objectType');
  if (type !== undefined) {
    f.objectType = type;
    const id = q('objectID');
    if (id !== undefined) f.objectID = id;
  }
  const destType = q('destinationType');
  if (destType !== undefined) {
    f.destinationType = destType;
    const destID = q('destinationID');
    if (destID !== undefined) f.destinationID = destID;
  }
  const noData = boolQuery(ctx.req, 'noData');
  if (noData !== undefined) f.noData = noData;
  const exp = q('expirationTimeBefore');
  if (exp !== undefined) f.expirationTimeBefore = rfc3339Ms(exp, 'expirationTimeBefore');
  const deleted = boolQuery(ctx.req, 'deleted');
  if (deleted !== undefined) f.deleted = deleted;
  return f;
}

/** GET /api/v1/objects/{org}: the first non-empty of the three selectors decides, and must be true. */
export async function orgListing(ctx: RouteContext): Promise<void> {
  const org = ctx.params.orgID ?? '';
  if (ctx.deps.objects.node.nodeType === 'ESS') throw new BadRequestError('');
  if (!isListingRole(ctx)) throw new UnauthorizedError();
  const selectors = ['destination_policy', 'filters', 'list_object_type'] as const;
  const chosen = selectors.find((s) => (queryString(ctx.req, s) ?? '') !== '');
  if (chosen === undefined) throw new BadRequestError('');
  if (parseGoBool(queryString(ctx.req, chosen) ?? '') !== true) throw new BadRequestError('');
  const objects = ctx.deps.objects;
  switch (chosen) {
    case 'destination_policy':
      return byPolicy(ctx, org);
    case 'filters': {
      const objs = await filterReadableByType(ctx, org, await filteredObjects(objects, org, parseFilters(ctx)));
      sendJson(ctx.res, nonEmpty(objs).map((o) => orderedMetaData(o.meta)));
      return;
    }
    case 'list_object_type': {
      const objs = await filterReadableByType(ctx, org, await objects.listAll(org));
      sendJson(ctx.res, nonEmpty(objectTypes(objs)));
      return;
    }
  }
}
