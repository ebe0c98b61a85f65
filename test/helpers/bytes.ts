/** Byte helpers shared by unit and integration tests. */
import { createHash } from 'node:crypto';

/** The SHA-256 of `b`, hex. */
export const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** All the bytes of a stream (object data fetched through the SDK), in one buffer. */
export async function readAll(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c);
  return Buffer.concat(chunks);
}
