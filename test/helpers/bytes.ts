/** Byte helpers shared by unit and integration tests. */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** The SHA-256 of `b`, hex. */
export const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** All the bytes of a stream (object data fetched through the SDK), in one buffer. */
export async function readAll(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c);
  return Buffer.concat(chunks);
}

/** The CSS's blob file holding exactly `content` (its id is not exposed, its bytes are unique). */
export async function blobFileOf(root: string, content: Buffer): Promise<string> {
  const found: string[] = [];
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.parentPath.split(/[\\/]/).includes('blobs')) continue;
    const file = join(entry.parentPath, entry.name);
    if ((await readFile(file)).equals(content)) found.push(file);
  }
  if (found.length !== 1) throw new Error(`expected one blob with the content under ${root}, found ${found.length}`);
  return found[0]!;
}
