/**
 * The reference's consumer counts, as every object stored here (published or received) keeps
 * them.
 */

/** Reference consumer counts: 0 means 1, -1 means "unlimited". [ref rest-api §2 consumers] */
export function normalizeConsumers(n: number): number {
  if (n === 0) return 1;
  if (n === -1) return 2147483647;
  return n;
}
