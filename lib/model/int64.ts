/**
 * Go int64 values as the reference sends them: instance and data ids are nanosecond
 * timestamps (19 digits, beyond 2^53), so a JS number would round them and every exchange
 * with a reference peer would then name the wrong instance. They are `bigint` here, from
 * the wire to the store and back. [ref sync-protocol §1, traffic README observation 1]
 */

export const INT64_MAX = 2n ** 63n - 1n;
export const INT64_MIN = -(2n ** 63n);

const DECIMAL = /^-?\d+$/;

/** True when `v` fits a Go int64. */
export function isInt64(v: bigint): boolean {
  return v >= INT64_MIN && v <= INT64_MAX;
}

/**
 * Reads a decimal integer (a path segment, a query value, a column as text) exactly.
 * Returns null for anything that is not a decimal int64.
 */
export function parseInt64(text: string): bigint | null {
  if (!DECIMAL.test(text) || text.length > 20) return null;
  const v = BigInt(text);
  return isInt64(v) ? v : null;
}

/**
 * A JSON value that may carry an int64: an integral number (exact only while it is safe) or
 * a bigint (from parseJson). Returns null for anything else or out of range.
 */
export function toInt64(v: unknown): bigint | null {
  if (typeof v === 'bigint') return isInt64(v) ? v : null;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v);
  return null;
}

/** Nanoseconds since the epoch of a millisecond clock reading, as the reference stamps. */
export function msToNanos(ms: number): bigint {
  return BigInt(Math.trunc(ms)) * 1_000_000n;
}
