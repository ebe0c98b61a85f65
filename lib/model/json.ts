/**
 * JSON text with exact 64-bit integers. `JSON.parse` turns `1796424756755170134` into
 * 1796424756755170000 and `JSON.stringify` throws on a bigint, so every JSON that may carry
 * a reference id goes through here: integers beyond 2^53 are read as `bigint`, and a
 * `bigint` is written as a bare JSON number, as Go writes an int64.
 */
import { randomBytes } from 'node:crypto';

// A per-process marker, so that no text a peer sends can pass for a marked integer.
const NONCE = randomBytes(6).toString('hex');
const MARK = `\u0000int64:${NONCE}:`;
const MARK_SOURCE = `\\u0000int64:${NONCE}:`;
const MARKED_OUTPUT = new RegExp(`"\\\\u0000int64:${NONCE}:(-?\\d+)"`, 'g');
/** Any run of 16 digits: the fast test that a text cannot hold an unsafe integer. */
const LONG_DIGITS = /\d{16}/;

const isDigit = (c: number): boolean => c >= 48 && c <= 57;

/**
 * Rewrites the integer literals that a double cannot hold into marked strings; null when
 * there is none. Strings are skipped; fractions, exponents and leading zeros are left for
 * JSON.parse to take or refuse as usual.
 */
function markUnsafeIntegers(text: string): string | null {
  if (!LONG_DIGITS.test(text)) return null;
  let parts: string[] | null = null;
  let copied = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 34) {
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 92) i++;
        else if (d === 34) break;
      }
      continue;
    }
    if (c !== 45 && !isDigit(c)) continue;
    const first = c === 45 ? i + 1 : i;
    let end = first;
    while (end < text.length && isDigit(text.charCodeAt(end))) end++;
    const next = text.charCodeAt(end);
    const integral = next !== 46 && next !== 101 && next !== 69;
    const literal = text.slice(i, end);
    if (integral && end - first >= 16 && text.charCodeAt(first) !== 48 && !Number.isSafeInteger(Number(literal))) {
      parts ??= [];
      parts.push(text.slice(copied, i), `"${MARK_SOURCE}${literal}"`);
      copied = end;
    }
    while (end < text.length && /[\d.eE+-]/.test(text.charAt(end))) end++;
    i = end - 1;
  }
  if (parts === null) return null;
  parts.push(text.slice(copied));
  return parts.join('');
}

/**
 * JSON.parse with exact integers: those beyond 2^53 become `bigint`; so do the integers of
 * the properties named in `int64Keys`, whatever their size (for records whose ids must
 * always be bigint). Throws JSON.parse's SyntaxError on bad JSON.
 */
export function parseJson(text: string, int64Keys?: ReadonlySet<string>): unknown {
  const marked = markUnsafeIntegers(text);
  if (marked === null && int64Keys === undefined) return JSON.parse(text);
  // A walk of the parsed tree, not a reviver: JSON.parse calls a reviver for every value, which
  // makes it several times slower, and ids are in most of what the sync parses.
  return reviveInt64(JSON.parse(marked ?? text), '', marked !== null, int64Keys);
}

/** The value read from JSON at `key`, its marked integers and its `int64Keys` numbers made bigint; objects in place. */
function reviveInt64(value: unknown, key: string, marks: boolean, int64Keys: ReadonlySet<string> | undefined): unknown {
  if (typeof value === 'string') return marks && value.startsWith(MARK) ? BigInt(value.slice(MARK.length)) : value;
  if (typeof value === 'number') return int64Keys?.has(key) === true && Number.isSafeInteger(value) ? BigInt(value) : value;
  if (value === null || typeof value !== 'object') return value;
  const entries: Record<string, unknown> = value as Record<string, unknown>;
  for (const k of Object.keys(entries)) {
    const v = entries[k];
    const revived = reviveInt64(v, k, marks, int64Keys);
    // Only a new bigint is written back, as an own property (never through a `__proto__` setter).
    if (revived !== v) Object.defineProperty(entries, k, { value: revived, writable: true, enumerable: true, configurable: true });
  }
  return value;
}

/** JSON.stringify that writes a `bigint` as a bare number. */
export function stringifyJson(value: unknown, indent?: number): string {
  let sawBigint = false;
  const text = JSON.stringify(
    value,
    (_key, v: unknown) => {
      if (typeof v !== 'bigint') return v;
      sawBigint = true;
      return `${MARK}${v}`;
    },
    indent,
  );
  return sawBigint ? text.replace(MARKED_OUTPUT, '$1') : text;
}
