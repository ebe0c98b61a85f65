/**
 * Decoding JSON bodies the way Go's encoding/json does for the reference: keys match
 * case-insensitively, unknown keys are ignored, `null` leaves a field at its zero value,
 * and a value of the wrong type is an error. [ref rest-api §2, §5.6]
 */
import { BadRequestError } from './errors.js';
import { toInt64 } from './int64.js';
import { parseJson } from './json.js';

/** `int64` fields come out as `bigint` (exact); `int` fields as safe JS numbers. */
export type FieldKind = 'string' | 'bool' | 'int' | 'int64' | 'stringList' | 'object' | 'any';

export type Schema = Record<string, FieldKind>;

export class DecodeError extends Error {}

function goType(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (v === null) return 'null';
  if (typeof v === 'object') return 'object';
  if (typeof v === 'bigint') return 'number';
  return typeof v;
}

function checkKind(kind: FieldKind, v: unknown, where: string): unknown {
  const bad = (want: string): never => {
    throw new DecodeError(`json: cannot unmarshal ${goType(v)} into Go struct field ${where} of type ${want}`);
  };
  switch (kind) {
    case 'any':
      return v;
    case 'string':
      return typeof v === 'string' ? v : bad('string');
    case 'bool':
      return typeof v === 'boolean' ? v : bad('bool');
    case 'int':
      if (typeof v !== 'number') return bad('int64');
      if (!Number.isSafeInteger(v)) return bad('int64');
      return v;
    case 'int64':
      return toInt64(v) ?? bad('int64');
    case 'stringList':
      if (!Array.isArray(v)) return bad('[]string');
      for (const e of v) if (typeof e !== 'string') bad('string');
      return v;
    case 'object':
      return typeof v === 'object' && !Array.isArray(v) ? v : bad('struct');
  }
}

/**
 * Picks the schema's fields out of `input`, matching keys case-insensitively (an exact match
 * wins, as in Go). Fields that are absent or `null` are left out of the result.
 */
export function decodeFields(input: unknown, schema: Schema, structName: string): Record<string, unknown> {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new DecodeError(`json: cannot unmarshal ${goType(input)} into Go value of type ${structName}`);
  }
  const src = input as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  const lowerToField = new Map(Object.keys(schema).map((k) => [k.toLowerCase(), k]));
  const exactSeen = new Set<string>();
  for (const [key, value] of Object.entries(src)) {
    const field = key in schema ? key : lowerToField.get(key.toLowerCase());
    if (field === undefined) continue;
    if (key !== field && exactSeen.has(field)) continue;
    if (key === field) exactSeen.add(field);
    if (value === null) {
      delete out[field];
      continue;
    }
    out[field] = checkKind(schema[field] ?? 'any', value, `${structName}.${field}`);
  }
  return out;
}

/**
 * Parses a request body as JSON; only the first JSON value counts, as with Go's decoder.
 * @throws BadRequestError `<prefix><go-like error>`
 */
export function parseJsonBody(text: string, prefix: string): unknown {
  const trimmed = text.trim();
  if (trimmed === '') throw new BadRequestError(`${prefix}EOF`);
  try {
    return parseJson(trimmed);
  } catch (e) {
    const first = firstJsonValue(trimmed);
    if (first !== null) {
      try {
        return parseJson(first);
      } catch {
        /* fall through to the original error */
      }
    }
    const msg = e instanceof Error ? e.message : String(e);
    throw new BadRequestError(`${prefix}${msg}`);
  }
}

/** The text of the first complete JSON object or array, when trailing bytes follow it. */
function firstJsonValue(text: string): string | null {
  const open = text[0];
  if (open !== '{' && open !== '[') return null;
  let depth = 0;
  let inStr = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inStr) {
      if (c === '\\') i++;
      else if (c === '"') inStr = false;
      continue;
    }
    if (c === '"') inStr = true;
    else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') {
      depth--;
      if (depth === 0) return text.slice(0, i + 1);
    }
  }
  return null;
}

/** Go's strconv.ParseBool. Returns undefined for anything it does not accept. */
export function parseGoBool(v: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  return undefined;
}
