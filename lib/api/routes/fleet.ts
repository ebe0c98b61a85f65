/**
 * `/api/v1/fleet/{orgID}…` (an edgesync extension): the read model of fleet-model.ts for the
 * dashboard and `edgesync top`. Who may read it: whoever may list the org's destinations (its
 * identities, or a sync admin); objects are then narrowed per type as the object listings do.
 * On an ESS the org is the node's own and the one "node" is its CSS.
 */
import { NotFoundError, UnauthorizedError, orderedMetaData, type MetaData } from '../../model/index.js';
import { NOTIFICATION_STATUSES, type Notification } from '../../store/notification-types.js';
import { canAccessDestinations, filterReadableByType, readableObject } from '../authz.js';
import { queryString } from '../../http/request.js';
import { sendJson } from '../../http/response.js';
import type { RouteContext } from '../context.js';
import {
  decodeCursor,
  fleetDelivery,
  fleetNode,
  fleetObject,
  paginate,
  parseLimit,
  type FleetDelivery,
  type FleetNode,
  type FleetObject,
  type NodeHealth,
  type Page,
  type ProgressOf,
} from './fleet-model.js';

export interface FleetSnapshot {
  orgID: string;
  /** The node answering. */
  nodeType: 'CSS' | 'ESS';
  generatedAt: string;
  nodes: Page<FleetNode>;
  objects: Page<FleetObject>;
}

/** The org of a fleet route, authorized: 403 for a caller outside it, 404 for an org an ESS does not serve. */
export function fleetOrg(ctx: RouteContext): string {
  const org = ctx.params.orgID ?? '';
  const node = ctx.deps.objects.node;
  if (!canAccessDestinations(ctx, org)) throw new UnauthorizedError();
  if (node.nodeType === 'ESS' && org !== node.orgID) throw new NotFoundError(`Organization (${org}) is not served by this ESS, which serves ${node.orgID} only`);
  return org;
}

function progressFor(ctx: RouteContext, org: string, type: string, id: string): ProgressOf {
  const t = ctx.deps.transfers;
  return (peerType, peerID) => t?.get(org, type, id, peerType, peerID);
}

const CSS_HEALTH: Record<'green' | 'yellow' | 'red', NodeHealth> = { green: 'ok', yellow: 'late', red: 'silent' };

/** An ESS's one peer: its CSS, as its link health sees it. */
async function cssNode(ctx: RouteContext): Promise<FleetNode[]> {
  const css = (await ctx.deps.health.report(false)).cssHealth;
  if (css === undefined) return [];
  return [
    {
      kind: 'CSS',
      destinationType: 'Cloud',
      destinationID: 'Cloud',
      communication: css.css.startsWith('mqtt') ? 'mqtt' : 'http',
      codeVersion: '',
      lastContact: css.lastSuccessfulExchange ?? null,
      health: CSS_HEALTH[css.cssStatus],
    },
  ];
}

/** Builds one snapshot; the events route sends the same. */
export async function fleetSnapshot(ctx: RouteContext, org: string, q: { limit: number; nodesAfter: [string, string] | null; objectsAfter: [string, string] | null }): Promise<FleetSnapshot> {
  const node = ctx.deps.objects.node;
  const now = Date.now();
  const nodes =
    node.nodeType === 'CSS' ? (await ctx.deps.store.listDestinations(org)).map((d) => fleetNode(d, now)) : await cssNode(ctx);
  const objects = paginate(await filterReadableByType(ctx, org, await ctx.deps.objects.listAll(org)), (o) => [o.meta.objectType, o.meta.objectID], q.limit, q.objectsAfter);
  const items: FleetObject[] = [];
  for (const o of objects.items) {
    const { objectType: type, objectID: id } = o.meta;
    items.push(fleetObject(o, await ctx.deps.notifications.listForObject(org, type, id), progressFor(ctx, org, type, id)));
  }
  return {
    orgID: org,
    nodeType: node.nodeType,
    generatedAt: new Date(now).toISOString(),
    nodes: paginate(nodes, (n) => [n.destinationType, n.destinationID], q.limit, q.nodesAfter),
    objects: { ...objects, items },
  };
}

export function snapshotQuery(ctx: RouteContext): { limit: number; nodesAfter: [string, string] | null; objectsAfter: [string, string] | null } {
  return {
    limit: parseLimit(queryString(ctx.req, 'limit')),
    nodesAfter: decodeCursor(queryString(ctx.req, 'nodesAfter'), 'nodesAfter'),
    objectsAfter: decodeCursor(queryString(ctx.req, 'objectsAfter'), 'objectsAfter'),
  };
}

/** GET /api/v1/fleet/{orgID}: nodes and objects, one page of each. */
export async function getFleet(ctx: RouteContext): Promise<void> {
  const org = fleetOrg(ctx);
  sendJson(ctx.res, await fleetSnapshot(ctx, org, snapshotQuery(ctx)));
}

export interface FleetObjectDetail {
  object: FleetObject;
  /** The object's metadata as the objects API shows it, ids as decimal strings. */
  metadata: Record<string, unknown>;
  /** Every destination, one page at a time (`limit`, `after`). */
  deliveries: Page<FleetDelivery>;
}

function metadataForBrowser(meta: MetaData): Record<string, unknown> {
  const out: Record<string, unknown> = { ...orderedMetaData(meta) };
  for (const [k, v] of Object.entries(out)) if (typeof v === 'bigint') out[k] = v.toString();
  if (meta.destinationPolicy !== null) out.destinationPolicy = { ...meta.destinationPolicy, timestamp: meta.destinationPolicy.timestamp.toString() };
  return out;
}

/** GET /api/v1/fleet/{orgID}/objects/{objectType}/{objectID}: one object and every destination. */
export async function getFleetObject(ctx: RouteContext): Promise<void> {
  const org = fleetOrg(ctx);
  const { objectType = '', objectID = '' } = ctx.params;
  const obj = await readableObject(ctx, org, objectType, objectID);
  const records = await ctx.deps.notifications.listForObject(org, objectType, objectID);
  const progress = progressFor(ctx, org, objectType, objectID);
  const page = paginate(records, (r) => [r.peerType, r.peerID], parseLimit(queryString(ctx.req, 'limit')), decodeCursor(queryString(ctx.req, 'after'), 'after'));
  const detail: FleetObjectDetail = {
    object: fleetObject(obj, records, progress, 0),
    metadata: metadataForBrowser(obj.meta),
    deliveries: { ...page, items: page.items.map((r) => fleetDelivery(r, progress)) },
  };
  sendJson(ctx.res, detail);
}

export interface FleetNodeDelivery extends FleetDelivery {
  objectType: string;
  objectID: string;
}

export interface FleetNodeDetail {
  node: FleetNode;
  /** What is addressed to the node, whatever its delivery status, one page at a time. */
  objects: Page<FleetNodeDelivery>;
}

/** GET /api/v1/fleet/{orgID}/nodes/{destType}/{destID} (CSS): one ESS and what is addressed to it. */
export async function getFleetNode(ctx: RouteContext): Promise<void> {
  const org = fleetOrg(ctx);
  const { destType = '', destID = '' } = ctx.params;
  const dest = await ctx.deps.store.getDestination(org, destType, destID);
  if (dest === null) throw new NotFoundError(`No node ${destType}/${destID} in ${org}`);
  const records: Notification[] = await ctx.deps.notifications.listPendingForPeer(org, destType, destID, NOTIFICATION_STATUSES, Number.MAX_SAFE_INTEGER);
  const page = paginate(records, (r) => [r.objectType, r.objectID], parseLimit(queryString(ctx.req, 'limit')), decodeCursor(queryString(ctx.req, 'after'), 'after'));
  const detail: FleetNodeDetail = {
    node: fleetNode(dest, Date.now()),
    objects: {
      ...page,
      items: page.items.map((r) => ({
        objectType: r.objectType,
        objectID: r.objectID,
        ...fleetDelivery(r, (pt, pid) => ctx.deps.transfers?.get(org, r.objectType, r.objectID, pt, pid)),
      })),
    },
  };
  sendJson(ctx.res, detail);
}
