/**
 * Typed errors. Each kind carries the HTTP status it maps to and the plain-text body the
 * reference sends (`<prefix><message>\n`, rest-api §3.8); the API maps them in one place.
 */
export type ErrorCode =
  | 'bad_request'
  | 'unauthorized'
  | 'authentication_required'
  | 'not_found'
  | 'method_not_allowed'
  | 'conflict'
  | 'payload_too_large'
  | 'range_not_satisfiable'
  | 'too_many_requests'
  | 'failed_dependency'
  | 'unavailable'
  | 'insufficient_storage'
  | 'internal';

export class EdgesyncError extends Error {
  /** Stable machine-readable kind. */
  readonly code: ErrorCode;
  /** HTTP status the API answers with. */
  readonly status: number;
  /** Exact response body; empty string for a bare status. */
  readonly body: string;

  constructor(code: ErrorCode, status: number, message: string, body?: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.status = status;
    this.body = body ?? (message === '' ? '' : `${message}\n`);
  }
}

/** 400 with the reason as a plain-text line. */
export class BadRequestError extends EdgesyncError {
  constructor(message: string, body?: string) {
    super('bad_request', 400, message, body);
  }
}

/** 403 `Unauthorized` (never 401: the reference clients expect 403). [ref rest-api §3.8] */
export class UnauthorizedError extends EdgesyncError {
  constructor(body = 'Unauthorized') {
    super('unauthorized', 403, 'Unauthorized', body);
  }
}

/**
 * 401 with a Basic challenge: for routes of ours beyond the reference's API (`/metrics`), where
 * a client such as a browser or Prometheus expects the standard answer to missing credentials.
 */
export class AuthenticationRequiredError extends EdgesyncError {
  /** The realm the `WWW-Authenticate` challenge names. */
  constructor(readonly realm: string) {
    super('authentication_required', 401, 'Unauthorized', 'Unauthorized\n');
  }
}

export class NotFoundError extends EdgesyncError {
  constructor(message = '') {
    super('not_found', 404, message);
  }
}

/** 405 with an empty body and no Allow header. [ref rest-api §5.8] */
export class MethodNotAllowedError extends EdgesyncError {
  constructor() {
    super('method_not_allowed', 405, '');
  }
}

export class ConflictError extends EdgesyncError {
  constructor(message: string) {
    super('conflict', 409, message);
  }
}

export class PayloadTooLargeError extends EdgesyncError {
  constructor(limit: number) {
    super('payload_too_large', 413, `Request body is larger than the configured limit of ${limit} bytes`);
  }
}

export class RangeNotSatisfiableError extends EdgesyncError {
  /** Object size, for the `Content-Range: bytes *\/size` header. */
  readonly size: number;
  constructor(message: string, size: number) {
    super('range_not_satisfiable', 416, message);
    this.size = size;
  }
}

/** 429; with `retryAfterSeconds`, the API also sends `Retry-After` (e.g. a throttled login). */
export class TooManyRequestsError extends EdgesyncError {
  readonly retryAfterSeconds: number | undefined;
  constructor(message: string, retryAfterSeconds?: number) {
    super('too_many_requests', 429, message);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** 424: the SPI caller is not a registered destination. [ref sync-protocol §1] */
export class FailedDependencyError extends EdgesyncError {
  constructor(message: string) {
    super('failed_dependency', 424, message);
  }
}

/** 503 with an empty body: the service is starting or stopping. [ref rest-api §1.1] */
export class UnavailableError extends EdgesyncError {
  constructor(message = '') {
    super('unavailable', 503, message, '');
  }
}

/**
 * 503 with the reason in the body: a service the request depends on (the external identity
 * service) did not answer usefully. Unlike {@link UnavailableError}, the node itself is up.
 */
export class DependencyUnavailableError extends EdgesyncError {
  constructor(message: string) {
    super('unavailable', 503, message);
  }
}

/**
 * 503 with the reason: the node's database cannot be reached (a MongoDB down or failing over).
 * Nothing of the request was kept; the client may retry once the database is back.
 */
export class StoreUnavailableError extends DependencyUnavailableError {
  /** Seconds a client may wait before retrying (the driver's reconnect rhythm). */
  readonly retryAfterSeconds = 5;
}

/** 507: the node's disk (or its database) is full; nothing of the request was kept. */
export class InsufficientStorageError extends EdgesyncError {
  constructor(message: string) {
    super('insufficient_storage', 507, message);
  }
}

export class InternalError extends EdgesyncError {
  constructor(message: string) {
    super('internal', 500, message);
  }
}

/**
 * Whether an error says the node's storage is full: the disk (ENOSPC, EDQUOT from the system)
 * or the database (SQLITE_FULL). Nothing the node can retry its way out of; an operator must
 * free space.
 */
export function isStorageFull(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT' || code === 'SQLITE_FULL';
}

/** Re-wraps an error's message with a route-specific prefix, keeping its kind and status. */
export function withPrefix(err: EdgesyncError, prefix: string): EdgesyncError {
  const msg = `${prefix}${err.message}`;
  return new EdgesyncError(err.code, err.status, msg);
}
