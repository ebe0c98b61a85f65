/**
 * The form of the `file:` URIs of `sourceDataUri` and `destinationDataUri`, checked without
 * touching the file system (the confinement to configured directories is lib/store/data-files.ts).
 */
import { isAbsolute } from 'node:path';
import { BadRequestError } from './errors.js';

/**
 * The absolute path a `file:///…` URI names, checked for form only (no file system access).
 * @throws BadRequestError naming what is wrong
 */
export function fileUriPath(uri: string, where: { field: string }): string {
  const bad = (reason: string): BadRequestError => new BadRequestError(`Invalid ${where.field} (${uri}): ${reason}`);
  const m = /^file:\/\/([^/]*)(\/.*)?$/i.exec(uri);
  if (m === null) throw bad('it must be a file:/// URI');
  if (m[1] !== '') throw bad(`a file URI must not name a host (${m[1]})`);
  const raw = m[2] ?? '';
  if (raw === '' || raw.endsWith('/')) throw bad('it must name a file');
  if (/[?#]/.test(raw)) throw bad('a query or fragment is not allowed');
  let path: string;
  try {
    path = decodeURIComponent(raw);
  } catch {
    throw bad('bad percent-encoding');
  }
  if (path.includes('\0')) throw bad('a NUL character is not allowed');
  // Checked on the decoded text: URL parsing would quietly fold `..` away.
  if (path.split('/').slice(1).some((s) => s === '..' || s === '.' || s === '')) throw bad('the path must not contain `.`, `..` or empty segments');
  if (!isAbsolute(path)) throw bad('the path must be absolute');
  return path;
}

