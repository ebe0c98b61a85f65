/** Counting, and hashing, the bytes of a blob write as they stream (every BlobStore). */
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/**
 * Passes bytes through while counting (and optionally hashing) them; fails the stream as soon as
 * `tooMany` says the count is over a limit, so an over-long source is never read to its end.
 */
export class ByteMeter extends Transform {
  bytes = 0;
  private readonly hash: Hash | null;
  private readonly tooMany: (bytes: number) => Error | null;

  constructor(opts: { hash: boolean; tooMany?: (bytes: number) => Error | null }) {
    super();
    this.hash = opts.hash ? createHash('sha256') : null;
    this.tooMany = opts.tooMany ?? (() => null);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    const err = this.tooMany(this.bytes);
    if (err !== null) {
      callback(err);
      return;
    }
    this.hash?.update(chunk);
    callback(null, chunk);
  }

  /** Lower-case hex SHA-256 of what went through; call once, after the stream finished. */
  sha256(): string {
    if (this.hash === null) throw new TypeError('ByteMeter created without hashing');
    return this.hash.digest('hex');
  }
}
