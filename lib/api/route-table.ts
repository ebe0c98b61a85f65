/**
 * Every /api/v1 route, in one table that the dispatcher matches and the OpenAPI test compares
 * with swagger/openapi.yaml. Paths are written in their CSS form; on the ESS the `{orgID}`
 * segment of object paths is absent and the node's own org is used. [ref rest-api §1.1]
 */
import type { RouteHandler, RouteContext } from './context.js';
import type { Identity } from '../security/identity.js';
import { canResend, canShutdown } from '../security/access.js';
import { deleteObject, getObject, listObjects, putObject, putWebhook } from './routes/objects.js';
import {
  getData,
  getDestinations,
  getStatus,
  postDestinations,
  putActivate,
  putConsumed,
  putData,
  putDeleted,
  putDestinations,
  putPolicyReceived,
  putReceived,
} from './routes/object-ops.js';
import { orgListing } from './routes/org-listings.js';
import { deleteOrganization, listOrganizations, putOrganization } from './routes/organizations.js';
import { listDestinationObjects, listDestinations } from './routes/destinations.js';
import { getHealth, postResend, postShutdown } from './routes/system.js';
import { deleteAclEntry, getAcl, putAcl } from './routes/security.js';
import { getFleet, getFleetNode, getFleetObject } from './routes/fleet.js';
import { getFleetEvents } from './routes/fleet-events.js';
import { boolQuery } from '../http/request.js';

export type Method = 'GET' | 'PUT' | 'POST' | 'DELETE';
export type NodeType = 'CSS' | 'ESS';

export interface RouteDef {
  method: Method;
  /** OpenAPI-style path, CSS form. */
  path: string;
  nodes: readonly NodeType[];
  handler: RouteHandler;
  /** Checks that the reference runs before authentication (400 beats 403). */
  beforeAuth?: (ctx: Pick<RouteContext, 'req' | 'params'>) => void;
  /**
   * A role check the reference makes before the method check, so that a caller without the
   * role gets 403 even for a wrong method. [ref rest-api §1.6]
   */
  gate?: (identity: Identity) => boolean;
  /** Health and similar routes answer even while the service is not running. */
  alwaysAvailable?: boolean;
}

const BOTH: readonly NodeType[] = ['CSS', 'ESS'];
const CSS: readonly NodeType[] = ['CSS'];
const O = '/api/v1/objects/{orgID}/{objectType}/{objectID}';
const ACL = '/api/v1/security/{aclType}/{orgID}';

/** `details` is validated before authentication. [ref rest-api §1.6] */
function healthDetails(ctx: Pick<RouteContext, 'req' | 'params'>): void {
  if (boolQuery(ctx.req, 'details') === true) ctx.params.details = 'true';
}

export const ROUTES: readonly RouteDef[] = [
  { method: 'GET', path: '/api/v1/objects/{orgID}', nodes: CSS, handler: orgListing },
  { method: 'GET', path: '/api/v1/objects/{orgID}/{objectType}', nodes: BOTH, handler: listObjects },
  { method: 'PUT', path: '/api/v1/objects/{orgID}/{objectType}', nodes: BOTH, handler: putWebhook },
  { method: 'GET', path: O, nodes: BOTH, handler: getObject },
  { method: 'PUT', path: O, nodes: BOTH, handler: putObject },
  { method: 'DELETE', path: O, nodes: BOTH, handler: deleteObject },
  { method: 'PUT', path: `${O}/consumed`, nodes: BOTH, handler: putConsumed },
  { method: 'PUT', path: `${O}/received`, nodes: BOTH, handler: putReceived },
  { method: 'PUT', path: `${O}/deleted`, nodes: BOTH, handler: putDeleted },
  { method: 'PUT', path: `${O}/activate`, nodes: BOTH, handler: putActivate },
  { method: 'PUT', path: `${O}/policyreceived`, nodes: BOTH, handler: putPolicyReceived },
  { method: 'GET', path: `${O}/status`, nodes: BOTH, handler: getStatus },
  { method: 'GET', path: `${O}/destinations`, nodes: BOTH, handler: getDestinations },
  { method: 'PUT', path: `${O}/destinations`, nodes: BOTH, handler: putDestinations },
  { method: 'POST', path: `${O}/destinations`, nodes: BOTH, handler: postDestinations },
  { method: 'GET', path: `${O}/data`, nodes: BOTH, handler: getData },
  { method: 'PUT', path: `${O}/data`, nodes: BOTH, handler: putData },
  { method: 'GET', path: '/api/v1/destinations/{orgID}', nodes: CSS, handler: listDestinations },
  { method: 'GET', path: '/api/v1/destinations/{orgID}/{destType}/{destID}/objects', nodes: CSS, handler: listDestinationObjects },
  { method: 'GET', path: '/api/v1/organizations', nodes: BOTH, handler: listOrganizations },
  { method: 'PUT', path: '/api/v1/organizations/{orgID}', nodes: BOTH, handler: putOrganization },
  { method: 'DELETE', path: '/api/v1/organizations/{orgID}', nodes: BOTH, handler: deleteOrganization },
  // The dispatcher hands /api/v1/security/ to routes/security.ts's handleSecurity, which checks
  // in the reference's order before calling these handlers; the rows document what it serves.
  { method: 'GET', path: ACL, nodes: CSS, handler: getAcl },
  { method: 'GET', path: `${ACL}/{key}`, nodes: CSS, handler: getAcl },
  { method: 'PUT', path: ACL, nodes: CSS, handler: putAcl },
  { method: 'PUT', path: `${ACL}/{key}`, nodes: CSS, handler: putAcl },
  { method: 'DELETE', path: `${ACL}/{key}/{aclUserType}/{username}`, nodes: CSS, handler: deleteAclEntry },
  { method: 'GET', path: '/api/v1/health', nodes: BOTH, handler: getHealth, beforeAuth: healthDetails, alwaysAvailable: true },
  { method: 'POST', path: '/api/v1/resend', nodes: BOTH, handler: postResend, gate: canResend },
  { method: 'POST', path: '/api/v1/shutdown', nodes: BOTH, handler: postShutdown, alwaysAvailable: true, gate: canShutdown },
  // edgesync extensions: the fleet read model of the dashboard and `edgesync top`.
  { method: 'GET', path: '/api/v1/fleet/{orgID}', nodes: BOTH, handler: getFleet },
  { method: 'GET', path: '/api/v1/fleet/{orgID}/events', nodes: BOTH, handler: getFleetEvents },
  { method: 'GET', path: '/api/v1/fleet/{orgID}/objects/{objectType}/{objectID}', nodes: BOTH, handler: getFleetObject },
  { method: 'GET', path: '/api/v1/fleet/{orgID}/nodes/{destType}/{destID}', nodes: CSS, handler: getFleetNode },
];

/** The path of a route as a node of this type serves it. */
export function pathOn(node: NodeType, path: string): string {
  return node === 'ESS' && path.startsWith('/api/v1/objects/{orgID}') ? path.replace('/{orgID}', '') : path;
}

/** The (method, path) pairs a node of this type serves. */
export function routesOf(node: NodeType): { method: Method; path: string }[] {
  return ROUTES.filter((r) => r.nodes.includes(node)).map((r) => ({ method: r.method, path: pathOn(node, r.path) }));
}
