/**
 * Large test data made as it is read (never held whole), with its SHA-256 known up front, and
 * the SHA-256 of a received stream. Every MiB differs (its index is stamped into a random block).
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';

const MiB = 1024 * 1024;

function mebibyte(block: Buffer, index: number, n: number): Buffer {
  const out = Buffer.from(block.subarray(0, n));
  if (n >= 8) out.writeBigUInt64BE(BigInt(index), 0);
  return out;
}

/** `size` bytes of data, as a fresh stream per call of `stream()`, and their digest. */
export function generatedData(size: number): { stream: () => Readable; sha256: string } {
  const block = randomBytes(MiB);
  const hash = createHash('sha256');
  for (let at = 0, i = 0; at < size; at += MiB, i++) hash.update(mebibyte(block, i, Math.min(MiB, size - at)));
  return {
    sha256: hash.digest('hex'),
    stream: () => {
      let at = 0;
      let i = 0;
      return new Readable({
        read() {
          if (at >= size) {
            this.push(null);
            return;
          }
          const n = Math.min(MiB, size - at);
          this.push(mebibyte(block, i++, n));
          at += n;
        },
      });
    },
  };
}

/** The SHA-256 (hex) of everything a stream yields. */
export async function sha256Of(stream: AsyncIterable<Buffer>): Promise<string> {
  const hash = createHash('sha256');
  for await (const c of stream) hash.update(c);
  return hash.digest('hex');
}

/** The SHA-256 (hex) of a buffer. */
export function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}
