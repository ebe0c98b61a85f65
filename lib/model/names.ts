import { BadRequestError } from './errors.js';

/**
 * Allowed characters of org, type, id and similar path parameters. [ref rest-api §1.1]
 * Letters and digits of any script plus `| ! @ # $ ^ * - _ . ~`.
 */
const VALID_NAME = /^[a-zA-Z0-9|!@#$^*\-_.~\p{L}\p{N}]+$/u;

export function isValidName(value: string): boolean {
  return VALID_NAME.test(value);
}

/** `.` and `..` pass the reference's character class but would be path traversal in a URL. */
function isDotSegment(value: string): boolean {
  return value === '.' || value === '..';
}

function htmlEscape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&#34;', "'": '&#39;' })[c] ?? c);
}

/**
 * Validates one path parameter; empty values pass as in the reference.
 * @throws BadRequestError `<Field> (<value>) contains invalid characters`
 */
export function validatePathParam(field: string, value: string): void {
  if (value === '') return;
  if (!isValidName(value) || isDotSegment(value)) {
    throw new BadRequestError(`${field} (${htmlEscape(value)}) contains invalid characters`);
  }
}

/** Key of an object inside one store: org, type and id never contain `:`. */
export function objectKey(org: string, type: string, id: string): string {
  return `${org}:${type}:${id}`;
}
