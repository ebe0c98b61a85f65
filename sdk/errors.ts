/**
 * Errors thrown by the SDK. The server answers errors in plain text (never JSON, [ref rest-api §3.8]),
 * so the body is kept verbatim for callers that match on the reference's messages.
 */

/** A non-2xx answer from the sync service, or (as {@link NetworkError}) no answer at all. */
export class SyncServiceError extends Error {
  override name = 'SyncServiceError';
  /** HTTP status; 0 when no response was received. */
  readonly status: number;
  /** Plain-text response body, as sent (it usually ends with a newline). */
  readonly body: string;
  /** HTTP method of the failed request. */
  readonly method: string;
  /** Request path, query included. */
  readonly path: string;

  constructor(status: number, body: string, method: string, path: string, options?: ErrorOptions) {
    const detail = body.trim();
    super(`${method} ${path} failed with status ${status}${detail === '' ? '' : `: ${detail}`}`, options);
    this.status = status;
    this.body = body;
    this.method = method;
    this.path = path;
  }
}

/** 400: the request was rejected, e.g. a validation message. */
export class BadRequestError extends SyncServiceError {
  override name = 'BadRequestError';
}

/** 403: the reference never answers 401; a failed or insufficient authentication is 403 `Unauthorized`. */
export class UnauthorizedError extends SyncServiceError {
  override name = 'UnauthorizedError';
}

/** 404: unknown object, or no data yet. (Empty listings are turned into `[]` by the client instead.) */
export class NotFoundError extends SyncServiceError {
  override name = 'NotFoundError';
}

/** 409: the request was ignored by the handler. */
export class ConflictError extends SyncServiceError {
  override name = 'ConflictError';
}

/** 429: the server's download semaphore is full; retry later. */
export class TooManyRequestsError extends SyncServiceError {
  override name = 'TooManyRequestsError';
}

/** No usable response: connection refused or reset, TLS failure, timeout. The original error is `cause`. */
export class NetworkError extends SyncServiceError {
  override name = 'NetworkError';

  constructor(method: string, path: string, cause: unknown) {
    super(0, '', method, path, { cause });
    this.message = `${method} ${path} failed: ${cause instanceof Error ? cause.message : String(cause)}`;
  }
}

/** Raised through {@link NetworkError} (as its cause) when the socket stays idle longer than `timeoutMs`. */
export class TimeoutError extends Error {
  override name = 'TimeoutError';

  constructor(timeoutMs: number) {
    super(`no activity for ${timeoutMs} ms`);
  }
}

/** Maps a non-2xx status to the most specific error class. */
export function errorForStatus(status: number, body: string, method: string, path: string): SyncServiceError {
  switch (status) {
    case 400:
      return new BadRequestError(status, body, method, path);
    case 403:
      return new UnauthorizedError(status, body, method, path);
    case 404:
      return new NotFoundError(status, body, method, path);
    case 409:
      return new ConflictError(status, body, method, path);
    case 429:
      return new TooManyRequestsError(status, body, method, path);
    default:
      return new SyncServiceError(status, body, method, path);
  }
}
