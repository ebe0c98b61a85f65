/**
 * createApp(deps) → the Express app for /api/v1 and /swagger (and, on a CSS, the SPI the node
 * hands in), without listening.
 */
import { randomUUID } from 'node:crypto';
import express, { type Express, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import type { ApiDeps } from './context.js';
import type { NodeType } from './route-table.js';
import { createBasicAuth } from './auth.js';
import { createDispatcher } from './router.js';
import { createErrorHandler } from './errors.js';
import { METRICS_PATH, metricsRoute, requestTiming } from './metrics-route.js';

/**
 * Headers the reference sets on every API answer (its setResponseHeaders: the cache headers and
 * HSTS), plus `X-Content-Type-Options: nosniff`, which it does not send: our answers are JSON,
 * plain text or data, none meant to be sniffed into something a browser runs, and no client
 * reads the header. [ref rest-api §1.1]
 */
function commonHeaders(_req: Request, res: Response, next: NextFunction): void {
  // setHeader, not Express's res.set: these are plain strings, and this runs on every request.
  res.setHeader('Cache-Control', 'no-store, no-cache, must-revalidate');
  res.setHeader('Pragma', 'no-cache');
  res.setHeader('Strict-Transport-Security', 'max-age=63072000; includeSubDomains; preload');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('X-Request-Id', randomUUID());
  next();
}

/**
 * swagger-ui is loaded on first use: most nodes never serve it, and it costs memory.
 *
 * The page loads the document from `/swagger.json` (relative to `/swagger/`, so a path prefix
 * added by a proxy keeps working). swagger-ui-express could inline it in `swagger-ui-init.js`
 * instead, but it does so with `String.replace`, which reads `$\``, `$'`, `$&` in the document's
 * text as replacement patterns: the script then is not JavaScript and the page stays blank. Only
 * our fixed options go through that template; the document only ever travels as JSON.
 */
function lazySwaggerUi(): (req: Request, res: Response, next: NextFunction) => void {
  let handlers: Promise<RequestHandler[]> | null = null;
  return (req, res, next) => {
    handlers ??= import('swagger-ui-express').then(({ default: ui }) => [
      ...ui.serve,
      ui.setup(undefined, { swaggerUrl: '../swagger.json', customSiteTitle: 'edgesync API' }),
    ]);
    handlers.then((list) => runChain(list, req, res, next), next);
  };
}

/**
 * The web dashboard's static files (HTML, CSS, ES modules; no build step, nothing from another
 * origin). The page holds no data: it reads the fleet API with the credentials typed into its
 * login form, so the files themselves need none. The CSP keeps everything same-origin.
 */
function dashboard(dir: string): RequestHandler[] {
  const files = express.static(dir, { index: 'index.html', redirect: true, dotfiles: 'ignore', etag: false, lastModified: false });
  const headers: RequestHandler = (req, res, next) => {
    // `/dashboard` without its slash: the page's relative URLs (style.css, app.js) need it.
    // A relative Location keeps a path prefix added by a proxy.
    if (req.path === '/' && !req.originalUrl.split('?')[0]?.endsWith('/')) {
      res.redirect(301, 'dashboard/');
      return;
    }
    res.setHeader(
      'Content-Security-Policy',
      "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    );
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('Cache-Control', 'no-cache');
    next();
  };
  return [headers, files];
}

function runChain(list: RequestHandler[], req: Request, res: Response, next: NextFunction): void {
  const step = (i: number) => (err?: unknown): void => {
    if (err !== undefined && err !== null) {
      next(err);
      return;
    }
    const h = list[i];
    if (h === undefined) next();
    else void h(req, res, step(i + 1));
  };
  step(0)();
}

/**
 * @param spi the `/spi/v1` handler of a CSS; the API does not know the transport, it only
 *   gives it the common headers and the error handling.
 */
export function createApp(node: NodeType, deps: ApiDeps, spi?: RequestHandler): Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('query parser', 'simple');
  // First, so that every answer is timed, refusals and 404s included.
  if (deps.metrics !== undefined) app.use(requestTiming(deps.metrics));

  app.get('/swagger.json', (_req, res) => {
    res.json(deps.openapi);
  });
  app.use('/swagger', lazySwaggerUi());
  if (deps.dashboardDir !== undefined) app.use('/dashboard', ...dashboard(deps.dashboardDir));

  const authenticate = createBasicAuth(deps.authenticator, deps.logger);
  app.use('/api/v1', commonHeaders, createDispatcher(node, deps, authenticate));
  if (deps.metrics !== undefined) app.get(METRICS_PATH, commonHeaders, metricsRoute(deps.metrics, authenticate, node, deps.objects.node.orgID));
  if (spi !== undefined) app.use('/spi/v1', commonHeaders, spi);
  app.use((_req, res) => {
    res.status(404).set('Content-Type', 'text/plain; charset=utf-8').end('404 page not found\n');
  });
  app.use(createErrorHandler(deps.logger, deps.health));
  return app;
}
