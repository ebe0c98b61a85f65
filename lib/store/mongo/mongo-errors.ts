/**
 * A database that cannot be reached is a 503 with the reason, not a 500: the request did
 * nothing wrong and may be retried, and nothing was half-written (every write is one document).
 * The driver reconnects by itself to the configured address; the next request after the
 * database is back succeeds.
 */
import { MongoError, MongoNetworkError, MongoNotConnectedError, MongoOperationTimeoutError, MongoServerClosedError, MongoServerError, MongoServerSelectionError, MongoTopologyClosedError } from 'mongodb';
import { StoreUnavailableError } from '../../model/index.js';

/** Whether `e` says the database was not reachable (as opposed to a bad query or a bug). */
export function isUnreachable(e: unknown): boolean {
  if (!(e instanceof MongoError)) return false;
  if (
    e instanceof MongoNetworkError ||
    e instanceof MongoServerSelectionError ||
    e instanceof MongoNotConnectedError ||
    e instanceof MongoTopologyClosedError ||
    e instanceof MongoServerClosedError ||
    e instanceof MongoOperationTimeoutError
  ) {
    return true;
  }
  // A replica set between primaries (failover in progress) answers writes with a retryable error.
  if (e instanceof MongoServerError && e.hasErrorLabel('RetryableWriteError')) return true;
  // The connection pool's own errors (cleared after a network error, wait queue timeout).
  return e.name === 'MongoPoolClearedError' || e.name === 'MongoWaitQueueTimeoutError' || e.name === 'MongoPoolClosedError';
}

/** The 503 for an unreachable database, or `e` itself. */
export function storeError(e: unknown): Error {
  if (!isUnreachable(e)) return e instanceof Error ? e : new Error(String(e));
  const reason = e instanceof Error ? e.message : String(e);
  return new StoreUnavailableError(`the database is unreachable: ${reason}`);
}

/**
 * `target` with every promise its methods return rejecting with {@link storeError}'s mapping.
 * Methods that return something else (a stream, a sub-store) are passed through untouched.
 */
export function mappingUnreachable<T extends object>(target: T): T {
  return new Proxy(target, {
    get(obj, prop, receiver) {
      const value: unknown = Reflect.get(obj, prop, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]): unknown => {
        const result: unknown = (value as (...a: unknown[]) => unknown).apply(obj, args);
        return result instanceof Promise ? result.catch((e: unknown) => Promise.reject(storeError(e))) : result;
      };
    },
  });
}
