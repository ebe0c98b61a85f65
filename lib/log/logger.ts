/**
 * Logging seam. ERROR means a human must act; WARN is rare; INFO tells the story of an
 * object; DEBUG is for us.
 */
import { pino, destination, type Logger as PinoLogger } from 'pino';
import { deliveryTraceId } from '../model/log-fields.js';

export interface Logger {
  trace(obj: object | string, msg?: string): void;
  debug(obj: object | string, msg?: string): void;
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
  fatal(obj: object | string, msg?: string): void;
  /** A logger whose lines carry these fields, e.g. `{ component: 'api' }`. */
  child(bindings: Record<string, unknown>): Logger;
  /** Writes out anything buffered (before the process exits). */
  flush(): void;
}

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

function wrap(p: PinoLogger): Logger {
  const call =
    (level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal') =>
    (obj: object | string, msg?: string): void => {
      if (typeof obj === 'string') p[level](obj);
      else p[level](obj, msg);
    };
  return {
    trace: call('trace'),
    debug: call('debug'),
    info: call('info'),
    warn: call('warn'),
    error: call('error'),
    fatal: call('fatal'),
    child: (bindings) => wrap(p.child(bindings)),
    flush: () => p.flush(),
  };
}

/**
 * JSON lines on stdout (or the given file descriptor / path). With `traceIds` (tracing is on), a
 * line naming an object instance (`object` and `instance`, see objectLogFields) also carries
 * `traceId`, the trace of that delivery; without it no hook runs at all.
 */
export function createLogger(opts: { level: LogLevel; destination?: string | number; name?: string; traceIds?: boolean }): Logger {
  const dest = destination({ dest: opts.destination ?? 1, sync: false, mkdir: true });
  const base = { level: opts.level, base: { name: opts.name ?? 'edgesync', pid: process.pid } };
  return wrap(pino(opts.traceIds === true ? { ...base, mixin: traceIdMixin() } : base, dest));
}

/**
 * pino hands a mixin the line's own fields. Story lines of one delivery come in bursts, so the
 * last few ids are kept rather than hashing every line again.
 */
export function traceIdMixin(): (fields: object) => { traceId?: string } {
  const recent = new Map<string, string>();
  return (fields) => {
    const { object, instance } = fields as { object?: unknown; instance?: unknown };
    if (typeof object !== 'string' || typeof instance !== 'string') return {};
    const key = `${object}/${instance}`;
    let traceId = recent.get(key);
    if (traceId === undefined) {
      const [org, type, id, ...rest] = object.split('/');
      if (org === undefined || type === undefined || id === undefined || rest.length > 0) return {};
      traceId = deliveryTraceId(org, type, id, instance);
      if (recent.size >= 64) recent.delete(recent.keys().next().value as string);
      recent.set(key, traceId);
    }
    return { traceId };
  };
}

/** Discards everything; for tests of components that take a logger. */
export const silentLogger: Logger = {
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  fatal: () => undefined,
  child: () => silentLogger,
  flush: () => undefined,
};
