/**
 * Object data in files an operator allowed: `sourceDataUri` (the publishing node reads an
 * object's data from a file) and `destinationDataUri` (an ESS also writes what it received to
 * a file its apps read). A REST client names the path, so every path is confined to the
 * directories the node's configuration lists, after symlinks are resolved: a `file:` URI with a
 * host, a relative or `..` path, or a path that leaves those directories (through a symlink
 * too) is refused with the reason. Writes are atomic (temporary file in the same directory,
 * fsync, rename), so an app never sees half a file, nor a failed write leaves one.
 * [ref core/dataURI, rest-api §2 MetaData]
 */
import { randomBytes } from 'node:crypto';
import { constants, type ReadStream } from 'node:fs';
import { open, realpath, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { BadRequestError, fileUriPath } from '../model/index.js';

/** What a data URI is for, and the configuration key that lists its directories. */
export interface DataDirs {
  /** The field of the metadata, for messages: `sourceDataUri` or `destinationDataUri`. */
  field: string;
  /** The configuration key that allows directories, for messages: `SOURCE_DATA_DIRS`, … */
  key: string;
  /** Absolute directories; empty = the feature is off. */
  dirs: readonly string[];
}

/** A comma-separated configuration value as a list of directories ('' = none). */
export function parseDataDirs(value: string): string[] {
  return value
    .split(',')
    .map((d) => d.trim())
    .filter((d) => d !== '');
}

function refuse(where: DataDirs, uri: string, reason: string): BadRequestError {
  return new BadRequestError(`Invalid ${where.field} (${uri}): ${reason}`);
}

function inside(dir: string, path: string): boolean {
  const rel = relative(dir, path);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) && !rel.split(sep).includes('..');
}

/** The configured directories, symlinks resolved (a missing one allows nothing). */
async function realDirs(dirs: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const d of dirs) {
    const real = await realpath(d).catch(() => null);
    if (real !== null) out.push(real);
  }
  return out;
}

/**
 * Where a destination file goes: the URI's path with its directory resolved (symlinks
 * followed), which must lie within one of `where.dirs`; the directory must exist.
 * @throws BadRequestError with the reason (feature off, outside, no such directory)
 */
export async function destinationPath(uri: string, where: DataDirs): Promise<string> {
  const path = fileUriPath(uri, where);
  if (where.dirs.length === 0) throw refuse(where, uri, `${where.field} is off on this node (${where.key} is empty)`);
  const parent = await realpath(dirname(path)).catch(() => null);
  if (parent === null) throw refuse(where, uri, `the directory ${dirname(path)} does not exist`);
  const target = join(parent, basename(path));
  const allowed = await realDirs(where.dirs);
  if (!allowed.some((d) => inside(d, target))) throw refuse(where, uri, `the path is outside the directories ${where.key} allows`);
  return target;
}

/**
 * Opens a source file for streaming: the URI's path, symlinks resolved, must be a regular file
 * within one of `where.dirs`. The file is opened by its resolved path, and its identity checked
 * against what was resolved, so a swap after the check is noticed.
 * @throws BadRequestError with the reason
 */
export async function openSourceFile(uri: string, where: DataDirs): Promise<{ stream: ReadStream; size: number }> {
  const path = fileUriPath(uri, where);
  if (where.dirs.length === 0) throw refuse(where, uri, `${where.field} is off on this node (${where.key} is empty)`);
  const real = await realpath(path).catch(() => null);
  if (real === null) throw refuse(where, uri, 'no such file');
  const allowed = await realDirs(where.dirs);
  if (!allowed.some((d) => inside(d, real))) throw refuse(where, uri, `the path is outside the directories ${where.key} allows`);
  const handle = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW).catch(() => null);
  if (handle === null) throw refuse(where, uri, 'the file cannot be opened');
  try {
    const [byHandle, byPath] = await Promise.all([handle.stat(), stat(real)]);
    if (!byHandle.isFile()) throw refuse(where, uri, 'not a regular file');
    if (byHandle.ino !== byPath.ino || byHandle.dev !== byPath.dev) throw refuse(where, uri, 'the file changed while it was opened');
    return { stream: handle.createReadStream({ autoClose: true }), size: byHandle.size };
  } catch (e) {
    await handle.close();
    throw e;
  }
}

/**
 * Writes `source` to `target` atomically: into a new temporary file beside it, fsynced, then
 * renamed over it, and the directory fsynced. On any failure the temporary file is removed and
 * `target` is left as it was.
 */
export async function writeFileAtomically(target: string, source: Readable): Promise<void> {
  const tmp = join(dirname(target), `.${basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
  try {
    for await (const chunk of source) {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
      // write() may write less than asked: loop until the chunk is all out.
      for (let off = 0; off < buf.length; ) off += (await handle.write(buf, off, buf.length - off)).bytesWritten;
    }
    await handle.sync();
    await handle.close();
    await rename(tmp, target);
  } catch (e) {
    await handle.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  const dir = await open(dirname(target), constants.O_RDONLY);
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/** Removes a destination file, if it is still there; a file outside the allowed directories is left alone. */
export async function removeDestinationFile(uri: string, where: DataDirs): Promise<void> {
  const target = await destinationPath(uri, where).catch(() => null);
  if (target !== null) await unlink(target).catch(() => undefined);
}
