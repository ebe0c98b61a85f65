/**
 * A reference ESS sends the last chunk of a chunked upload as a full chunk: the data, then zero
 * bytes up to the chunk size, while its Content-Range names the real range (its own CSS then
 * fails with "Failed to write all the data to file"). We keep the range's bytes and check that
 * the rest is padding. [ref traffic README observation 10, large.jsonl 35]
 */
import { Transform, type TransformCallback } from 'node:stream';
import { BadRequestError } from '../../model/index.js';

/** Passes the first `keep` bytes on; the bytes after them must all be zero. */
export function withoutPadding(keep: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      const start = seen;
      seen += chunk.length;
      const take = Math.max(0, Math.min(chunk.length, keep - start));
      const padding = chunk.subarray(take);
      if (padding.some((b) => b !== 0)) {
        done(new BadRequestError(`The body holds more than the ${keep} bytes of its Content-Range, and they are not zero padding`));
        return;
      }
      done(null, take > 0 ? chunk.subarray(0, take) : undefined);
    },
  });
}
