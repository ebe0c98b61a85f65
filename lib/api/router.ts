/**
 * Dispatch of /api/v1 the way the reference's handlers split paths: one optional trailing
 * slash, op names case-insensitive, path parameters validated, authentication before the
 * method check (403 beats 405), unknown depths 400, unregistered prefixes 404.
 * [ref rest-api §1.1, §1.2, §5.7, §5.8]
 */
import { posix } from 'node:path';
import type { NextFunction, Request, Response } from 'express';
import { BadRequestError, MethodNotAllowedError, NotFoundError, UnauthorizedError, UnavailableError, validatePathParam } from '../model/index.js';
import type { ApiDeps } from './context.js';
import { pathOn, ROUTES, type NodeType, type RouteDef } from './route-table.js';
import type { Authenticate } from './auth.js';
import { handleSecurity } from './routes/security.js';

type Segment = { literal: string; caseInsensitive: boolean } | { param: string };

interface CompiledRoute {
  def: RouteDef;
  segments: Segment[];
}

function compile(node: NodeType, def: RouteDef): CompiledRoute {
  let afterParam = false;
  const segments = pathOn(node, def.path)
    .split('/')
    .slice(1)
    .map((s): Segment => {
      const m = /^\{(\w+)\}$/.exec(s);
      if (m) {
        afterParam = true;
        return { param: m[1] ?? '' };
      }
      return { literal: s, caseInsensitive: afterParam };
    });
  return { def, segments };
}

function match(route: CompiledRoute, parts: string[]): Record<string, string> | null {
  if (route.segments.length !== parts.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < parts.length; i++) {
    const seg = route.segments[i];
    const part = parts[i] ?? '';
    if (seg === undefined) return null;
    if ('param' in seg) {
      if (part === '') return null;
      params[seg.param] = part;
    } else if (seg.caseInsensitive ? seg.literal !== part.toLowerCase() : seg.literal !== part) {
      return null;
    }
  }
  return params;
}

const FIELD_NAMES: Record<string, string> = {
  orgID: 'Organization ID',
  objectType: 'object Type',
  objectID: 'object ID',
};

function validateParams(params: Record<string, string>): void {
  for (const [name, value] of Object.entries(params)) {
    const field = FIELD_NAMES[name];
    if (field !== undefined) validatePathParam(field, value);
    else if (/[<>]/.test(value)) throw new BadRequestError(`Destination Type and/or destination ID (${value}) contains invalid characters`);
  }
}

/** Collections whose unknown sub-paths answer 400 (after auth) rather than 404. */
const COLLECTIONS: Record<NodeType, readonly string[]> = {
  CSS: ['objects', 'destinations', 'organizations'],
  ESS: ['objects', 'organizations'],
};
/** Subtree roots: without their trailing slash they redirect. [ref rest-api §1.1] */
const SUBTREES: Record<NodeType, readonly string[]> = { CSS: ['/api/v1/objects', '/api/v1/destinations', '/api/v1/security'], ESS: ['/api/v1/objects'] };

function redirect(res: Response, location: string, query: string): void {
  res.redirect(301, location + query);
}

export interface Dispatcher {
  (req: Request, res: Response, next: NextFunction): void;
}

export function createDispatcher(node: NodeType, deps: ApiDeps, authenticate: Authenticate): Dispatcher {
  const routes = ROUTES.filter((r) => r.nodes.includes(node)).map((r) => compile(node, r));

  async function dispatch(req: Request, res: Response): Promise<void> {
    const url = req.originalUrl;
    const q = url.indexOf('?');
    const rawPath = q === -1 ? url : url.slice(0, q);
    const query = q === -1 ? '' : url.slice(q);
    const cleaned = posix.normalize(rawPath);
    if (cleaned !== rawPath && cleaned + '/' !== rawPath) {
      redirect(res, cleaned, query);
      return;
    }
    if (SUBTREES[node].includes(rawPath)) {
      redirect(res, `${rawPath}/`, query);
      return;
    }
    let parts: string[];
    try {
      parts = rawPath.split('/').slice(1).map(decodeURIComponent);
    } catch {
      throw new BadRequestError(`Invalid URL encoding in ${rawPath}`);
    }
    // [ref rest-api §1.5] the ACL subtree (CSS only) checks in its own order, depth and trailing
    // slash included; the ESS does not serve it (404 below).
    if (node === 'CSS' && parts[2] === 'security') {
      res.locals.route = '/api/v1/security';
      if (!deps.isRunning()) throw new UnavailableError();
      deps.health.countRequest();
      const identity = await authenticate(req);
      if (identity === null || identity.role === 'edgeNode') throw new UnauthorizedError();
      await handleSecurity({ req, res, deps, params: {}, identity }, parts.slice(3));
      return;
    }
    if (parts.length > 3 && parts[parts.length - 1] === '') parts.pop();
    const collection = parts[2] ?? '';

    let found: { route: CompiledRoute; params: Record<string, string> } | undefined;
    const pathMatches: CompiledRoute[] = [];
    for (const route of routes) {
      const params = match(route, parts);
      if (params === null) continue;
      pathMatches.push(route);
      if (route.def.method === req.method) {
        found = { route, params };
        break;
      }
    }
    const pathMatched = pathMatches.length > 0;
    if (!pathMatched && !COLLECTIONS[node].includes(collection)) throw new NotFoundError('404 page not found');

    const params = found?.params ?? {};
    if (found) {
      // For the request metrics (app.ts): the route's template, never the path itself.
      res.locals.route = found.route.def.path;
      validateParams(params);
      found.route.def.beforeAuth?.({ req, params });
    }
    if (!found?.route.def.alwaysAvailable && !deps.isRunning()) throw new UnavailableError();
    deps.health.countRequest();
    const identity = await authenticate(req);
    // [ref rest-api §4.6] an ESS's own credentials are for the SPI only.
    if (identity === null || identity.role === 'edgeNode') throw new UnauthorizedError();
    if (!found) {
      if (pathMatches.some((r) => r.def.gate !== undefined && !r.def.gate(identity))) throw new UnauthorizedError();
      throw pathMatched ? new MethodNotAllowedError() : new BadRequestError('');
    }

    if (node === 'ESS' && found.route.def.path.startsWith('/api/v1/objects/{orgID}')) params.orgID = deps.objects.node.orgID;
    else if (node === 'CSS' && params.orgID !== undefined && !found.route.def.path.startsWith('/api/v1/organizations')) {
      requireServedOrg(deps, params.orgID);
    }
    await found.route.def.handler({ req, res, deps, params, identity });
  }

  return (req, res, next) => {
    dispatch(req, res).catch(next);
  };
}

/**
 * A single-org CSS serves its org only. On a multi-org CSS any org is served without being
 * created first, as in the reference; who may act in it is authorization's call.
 * [ref rest-api §1.4]
 */
function requireServedOrg(deps: ApiDeps, org: string): void {
  const served = deps.objects.node.orgID;
  if (served !== '' && org !== served) throw new NotFoundError(`Organization (${org}) is not served by this CSS, which serves ${served} only`);
}
