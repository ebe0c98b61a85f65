/**
 * RFC 3339 times (`activationTime`, `expiration`) as instants. The reference parses them with
 * Go's time.RFC3339, which requires an offset and rejects impossible dates; Date.parse would take
 * a time without offset as local time and roll 30 February over into March, so it is not used
 * alone. Times are compared as instants, never as strings: `…T10:00:00+02:00` is before
 * `…T09:00:00Z`.
 */

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|([+-])(\d{2}):(\d{2}))$/;

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** Epoch milliseconds of an RFC 3339 time (fractions past the millisecond dropped), or null when it is not one. */
export function parseRfc3339(value: string): number | null {
  const m = RFC3339.exec(value);
  if (m === null) return null;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return null;
  // 60 is a leap second, which Go also accepts; it reads as the last second of the minute.
  if (hour > 23 || minute > 59 || second > 60) return null;
  const ms = m[7] === undefined ? 0 : Math.floor(Number(`0${m[7]}`) * 1000);
  let offsetMin = 0;
  if (m[9] !== undefined) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) return null;
    offsetMin = (m[9] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  return Date.UTC(year, month - 1, day, hour, minute, Math.min(second, 59), ms) - offsetMin * 60_000;
}
