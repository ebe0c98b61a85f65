/** Byte counting for upload and download progress, without holding on to the data. */
import { Readable, Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import type { ProgressListener } from './types.js';

/** A pass-through stream that reports the running byte count after each chunk. */
export function progressStream(onProgress: ProgressListener, total?: number, startAt = 0): Transform {
  let bytes = startAt;
  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
      bytes += chunk.length;
      // A throwing listener is a caller bug; fail the stream rather than crash the process.
      try {
        if (total === undefined) onProgress(bytes);
        else onProgress(bytes, total);
      } catch (err) {
        callback(err as Error);
        return;
      }
      callback(null, chunk);
    },
  });
}

/** Slice size used to stream a Buffer so that progress moves in steps rather than all at once. */
const SLICE = 64 * 1024;

/** A Buffer as a Readable of views (no copies), for progress reporting on in-memory uploads. */
export function bufferStream(data: Buffer): Readable {
  function* slices(): Generator<Buffer> {
    for (let at = 0; at < data.length; at += SLICE) yield data.subarray(at, at + SLICE);
  }
  return Readable.from(slices(), { objectMode: false });
}
