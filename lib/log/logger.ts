/**
 * Logging seam. ERROR means a human must act; WARN is rare; INFO tells the story of an
 * object; DEBUG is for us.
 */
import { pino, destination, type Logger as PinoLogger } from 'pino';

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

/** JSON lines on stdout (or the given file descriptor / path). */
export function createLogger(opts: { level: LogLevel; destination?: string | number; name?: string }): Logger {
  const dest = destination({ dest: opts.destination ?? 1, sync: false, mkdir: true });
  return wrap(pino({ level: opts.level, base: { name: opts.name ?? 'edgesync', pid: process.pid } }, dest));
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
