/**
 * What a chunked `object publish` of a file remembers between runs so that running it again
 * resumes: which metadata it published (the object instance the server's upload belongs to),
 * which file, and how far the server has acknowledged. Kept under
 * `$XDG_STATE_HOME/edgesync/uploads` (`~/.local/state/…`), one small JSON file per object, and
 * removed when the upload completes.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, writeFile, rename } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** One upload in progress. */
export interface UploadState {
  /** sha256 of the metadata sent, so a changed metadata file starts over. */
  metaDigest: string;
  /** The instance the metadata PUT made: the server keeps only that instance's upload. */
  instanceID: string;
  /** Absolute path, size and mtime: a changed file starts over. */
  file: string;
  size: number;
  mtimeMs: number;
  chunkSize: number;
  /** Bytes the server acknowledged. */
  acknowledged: number;
}

export function uploadsDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_STATE_HOME !== undefined && env.XDG_STATE_HOME !== '' ? env.XDG_STATE_HOME : join(homedir(), '.local', 'state');
  return join(base, 'edgesync', 'uploads');
}

/** The state file of one object of one node. */
export function uploadStatePath(dir: string, node: { url: string; org?: string }, objectType: string, objectID: string): string {
  const key = createHash('sha256').update(JSON.stringify([node.url, node.org ?? '', objectType, objectID])).digest('hex');
  return join(dir, `${key.slice(0, 32)}.json`);
}

export async function readUploadState(path: string): Promise<UploadState | null> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as UploadState;
  } catch {
    // Missing or unreadable: the upload starts over, which is always correct, only slower.
    return null;
  }
}

export async function writeUploadState(path: string, state: UploadState): Promise<void> {
  await mkdir(join(path, '..'), { recursive: true, mode: 0o700 });
  const temp = `${path}.tmp`;
  await writeFile(temp, JSON.stringify(state), { mode: 0o600 });
  await rename(temp, path);
}

export async function clearUploadState(path: string): Promise<void> {
  await rm(path, { force: true });
}
