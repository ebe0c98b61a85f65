/**
 * `GET /metrics` on the API's listener (Prometheus text format) and the timing of every request
 * the app answers. The metrics span every org of the node, so reading them takes the sync
 * admin, or on an ESS an admin of its org (who administers that node): an org admin of a
 * multi-org CSS would otherwise see the other orgs' names and figures. A request without
 * (valid) credentials is answered 401 with a Basic challenge, a known identity without that
 * right 403. (docs/adr/0023-sync-events-and-metric-labels.md)
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { AuthenticationRequiredError, UnauthorizedError } from '../model/index.js';
import type { Identity } from '../security/identity.js';
import type { Authenticate } from './auth.js';
import type { ApiMetrics } from './context.js';
import type { NodeType } from './route-table.js';

/** The `route` label of requests no route template matched (404s, bad paths, refused SPI logins). */
export const UNMATCHED_ROUTE = 'unmatched';
export const METRICS_PATH = '/metrics';
const REALM = 'edgesync metrics';

/** Methods Node's parser accepts are a fixed list; anything past the usual ones is one label. */
const METHODS: ReadonlySet<string> = new Set(['GET', 'PUT', 'POST', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH']);

/** Who may read the node's metrics; `nodeOrg` is an ESS's org ('' on a CSS). */
export function canReadMetrics(id: Identity, node: NodeType, nodeOrg: string): boolean {
  if (id.role === 'syncAdmin') return true;
  return node === 'ESS' && id.role === 'admin' && id.orgID === nodeOrg;
}

/**
 * Times each request until its answer is finished or abandoned. The route is the template the
 * dispatcher (router.ts), the SPI (spi-server.ts) or a fixed route leaves in `res.locals.route`.
 */
export function requestTiming(metrics: ApiMetrics): RequestHandler {
  return (req: Request, res: Response, next: NextFunction): void => {
    const started = performance.now();
    res.once('close', () => {
      const route = typeof res.locals.route === 'string' ? res.locals.route : UNMATCHED_ROUTE;
      metrics.observeRequest(route, METHODS.has(req.method) ? req.method : 'other', res.statusCode, (performance.now() - started) / 1000);
    });
    next();
  };
}

export function metricsRoute(metrics: ApiMetrics, authenticate: Authenticate, node: NodeType, nodeOrg: string): RequestHandler {
  const serve = async (req: Request, res: Response): Promise<void> => {
    res.locals.route = METRICS_PATH;
    const identity = await authenticate(req);
    if (identity === null || identity.role === 'edgeNode') throw new AuthenticationRequiredError(REALM);
    if (!canReadMetrics(identity, node, nodeOrg)) throw new UnauthorizedError();
    const { contentType, text } = await metrics.scrape();
    res.status(200).set('Content-Type', contentType).set('Cache-Control', 'no-store').end(text);
  };
  return (req, res, next) => {
    serve(req, res).catch(next);
  };
}
