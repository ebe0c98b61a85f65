/**
 * The one place where errors become HTTP answers: typed errors with their status and
 * plain-text body; anything else is a 500 logged with the request id the client also gets.
 * [ref rest-api §3.8]
 */
import type { NextFunction, Request, Response } from 'express';
import { AuthenticationRequiredError, EdgesyncError, InsufficientStorageError, RangeNotSatisfiableError, StoreUnavailableError, TooManyRequestsError, isStorageFull } from '../model/index.js';
import type { Logger } from '../log/logger.js';
import type { HealthMonitor } from './health-monitor.js';

/** SQLite and driver errors look like this; they count as database failures in health. */
function isStoreError(err: unknown): boolean {
  return err instanceof Error && /^(SqliteError|MongoError|MongoServerError)$/.test(err.name);
}

/**
 * A full disk (ENOSPC, EDQUOT) or database (SQLITE_FULL) as the typed 507: the operator has
 * something to do, the client learns why, and the write it made left nothing behind (blob
 * writes remove their temp file, a failed commit keeps none of its changes).
 */
function storageFull(err: unknown): InsufficientStorageError | null {
  if (!isStorageFull(err)) return null;
  return new InsufficientStorageError('Not enough storage space on this node to keep the request; nothing of it was stored');
}

/** The client went away mid-request (an aborted upload or download): nobody to answer. */
function clientGone(req: Request, err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return req.destroyed || code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || (err instanceof Error && err.name === 'AbortError');
}

export function createErrorHandler(logger: Logger, health: HealthMonitor) {
  return (thrown: unknown, req: Request, res: Response, _next: NextFunction): void => {
    const err = storageFull(thrown) ?? thrown;
    if (err !== thrown && isStoreError(thrown)) health.recordDbFailure('write');
    const requestId = String(res.getHeader('X-Request-Id') ?? '');
    if (!(err instanceof EdgesyncError) && clientGone(req, err)) {
      logger.debug({ requestId, method: req.method, url: req.originalUrl }, 'client closed the connection mid-request');
      res.destroy();
      return;
    }
    if (res.headersSent) {
      // The body was already streaming (data download): all we can do is cut it short.
      logger.warn({ requestId, err }, 'response failed after headers were sent');
      res.destroy();
      return;
    }
    // A request refused before its body was read must not leave the client sending into a
    // connection nobody reads.
    if (!req.complete) res.set('Connection', 'close');
    if (err instanceof EdgesyncError) {
      if (err instanceof RangeNotSatisfiableError) res.set('Content-Range', `bytes */${err.size}`);
      if (err instanceof AuthenticationRequiredError) res.set('WWW-Authenticate', `Basic realm="${err.realm}", charset="UTF-8"`);
      if (err instanceof TooManyRequestsError && err.retryAfterSeconds !== undefined) res.set('Retry-After', String(err.retryAfterSeconds));
      if (err instanceof StoreUnavailableError) {
        res.set('Retry-After', String(err.retryAfterSeconds));
        health.recordDbFailure(req.method === 'GET' ? 'read' : 'write');
      }
      // A full disk is logged with the system's own error (its code and path). A 503 is the node
      // starting or stopping, or a service it depends on being down, which that service's client
      // reports once: not one line per request.
      if (err.status >= 500 && err.code !== 'unavailable') logger.error({ requestId, err: thrown, method: req.method, url: req.originalUrl }, 'request failed');
      else logger.debug({ requestId, status: err.status, reason: err.message, method: req.method, url: req.originalUrl }, 'request refused');
      res.status(err.status);
      if (err.body === '') res.end();
      else res.set('Content-Type', 'text/plain; charset=utf-8').end(err.body);
      return;
    }
    if (isStoreError(err)) health.recordDbFailure(req.method === 'GET' ? 'read' : 'write');
    logger.error({ requestId, err, method: req.method, url: req.originalUrl }, 'unexpected error');
    res.status(500).set('Content-Type', 'text/plain; charset=utf-8').end(`Internal error (request ${requestId})\n`);
  };
}
