/**
 * A measuring proxy over a store port (Store, NotificationStore): every method that answers a
 * promise is timed, under the method's name. The names are the port's methods, a fixed set, so
 * the label stays bounded whatever the callers do.
 */

export type ObserveOperation = (operation: string, seconds: number, failed: boolean) => void;

const isPromise = (v: unknown): v is Promise<unknown> => typeof (v as { then?: unknown } | null)?.then === 'function';

/**
 * `target` with its asynchronous methods timed. Methods run with `this` = `target`, so private
 * fields and identity checks inside the store keep working; anything else (properties,
 * synchronous methods such as `notifications()`) passes through as is.
 */
export function measuredStore<T extends object>(target: T, observe: ObserveOperation): T {
  // One wrapper per method, made on first use: no allocation per call.
  const wrappers = new Map<PropertyKey, unknown>();
  return new Proxy(target, {
    get(t, prop) {
      const value: unknown = Reflect.get(t, prop, t);
      if (typeof value !== 'function' || typeof prop !== 'string' || prop === 'constructor') return value;
      let wrapper = wrappers.get(prop);
      if (wrapper === undefined) {
        const method = value as (...args: unknown[]) => unknown;
        wrapper = (...args: unknown[]): unknown => {
          const started = performance.now();
          const out = method.apply(t, args);
          if (!isPromise(out)) return out;
          void out.then(
            () => observe(prop, (performance.now() - started) / 1000, false),
            () => observe(prop, (performance.now() - started) / 1000, true),
          );
          return out;
        };
        wrappers.set(prop, wrapper);
      }
      return wrapper;
    },
  });
}
