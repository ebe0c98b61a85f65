/**
 * Splits one source stream into sequential `Content-Range` uploads without buffering a whole chunk:
 * each chunk is a PassThrough fed from the source with backpressure. [ref rest-api §1.2 O17]
 */
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import type { Readable } from 'node:stream';
import type { ProgressListener } from './types.js';

/** One chunk to send: the body stream and its inclusive byte range. */
export interface ChunkRequest {
  body: PassThrough;
  start: number;
  end: number;
  total: number;
}

/** Sends one chunk and settles when the server has answered it (rejecting on a non-2xx). */
export type ChunkSender = (chunk: ChunkRequest) => Promise<void>;

/** Where a chunked upload starts and whom to tell of each chunk the server accepted. */
export interface ChunkPlan {
  /** Offset of the first byte to send; the source starts there. Default 0. */
  startAt?: number;
  /** Called with the offset after each accepted chunk (the end of what the server holds). */
  onChunk?: (acknowledged: number) => void;
  onProgress?: ProgressListener;
}

/** The `Content-Range` value of a chunk: `bytes S-E/TOTAL`, E inclusive. */
export function contentRange(start: number, end: number, total: number): string {
  return `bytes ${start}-${end}/${total}`;
}

/**
 * Uploads bytes `startAt..total-1` of the data, read from `source` (which starts at `startAt`),
 * as chunks of `chunkSize` bytes (the last one shorter), one request at a time. The source is
 * destroyed when the upload stops early.
 */
export async function uploadInChunks(source: Readable, total: number, chunkSize: number, send: ChunkSender, plan: ChunkPlan = {}): Promise<void> {
  const { startAt = 0, onChunk, onProgress } = plan;
  if (!Number.isSafeInteger(startAt) || startAt < 0 || startAt > total) throw new RangeError(`startAt must be within 0..${total}, got ${startAt}`);
  const iterator = (source as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  let carry: Buffer | undefined;
  let sent = startAt;
  let body: PassThrough | undefined;
  try {
    for (let start = startAt; start < total; start += chunkSize) {
      const end = Math.min(start + chunkSize, total) - 1;
      body = new PassThrough();
      let settled = false;
      const answered = send({ body, start, end, total }).finally(() => {
        settled = true;
      });
      // The answer may fail while we wait on the source; keep that rejection handled until awaited below.
      answered.catch(() => undefined);
      let remaining = end - start + 1;
      while (remaining > 0 && !settled) {
        let piece = carry ?? (await nextPiece(iterator, sent, total));
        carry = undefined;
        if (piece.length > remaining) {
          carry = piece.subarray(remaining);
          piece = piece.subarray(0, remaining);
        }
        remaining -= piece.length;
        sent += piece.length;
        const flowing = body.write(piece);
        if (onProgress) onProgress(sent, total);
        // Without the race, a request that died would leave us waiting for a 'drain' that never comes.
        if (!flowing) await Promise.race([once(body, 'drain'), answered]);
      }
      body.end();
      await answered;
      if (remaining > 0) throw new Error(`the server answered before chunk ${contentRange(start, end, total)} was fully sent`);
      onChunk?.(end + 1);
    }
  } catch (err) {
    // Abort the chunk in flight, otherwise its request would wait forever for the rest of its body.
    body?.destroy();
    throw err;
  } finally {
    await iterator.return?.();
  }
}

/** The next non-empty piece of the source; running out before `total` is an error, not a short upload. */
async function nextPiece(iterator: AsyncIterator<Buffer>, sent: number, total: number): Promise<Buffer> {
  for (;;) {
    const next = await iterator.next();
    if (next.done === true) throw new Error(`the source ended after ${sent} bytes, ${total} were announced`);
    const piece = typeof next.value === 'string' ? Buffer.from(next.value) : next.value;
    if (piece.length > 0) return piece;
  }
}

/**
 * Where the server wants a resumed upload to go on, read from its refusal of a chunk: the
 * offset it expects after a gap, or 0 when it holds no upload of this object (it abandoned it,
 * or the metadata changed since). Undefined for any other refusal. The API has no route that
 * reports an upload's progress; its 400 messages are the one place it says so.
 */
export function resumeOffsetFromRefusal(status: number, body: string): number | undefined {
  if (status !== 400) return undefined;
  const expects = /the upload expects offset (\d+)/.exec(body);
  if (expects !== null) return Number(expects[1]);
  if (/No upload in progress|does not match the upload in progress/.test(body)) return 0;
  return undefined;
}
