/**
 * The size rules of BlobStore.write (types.ts), shared by every implementation so that a
 * client hears the same reason whichever tier keeps its bytes.
 */
import { BadRequestError, PayloadTooLargeError } from '../model/index.js';
import type { BlobWriteOptions } from './types.js';

/** The error for a source that has already sent `bytes` bytes, or null while that is allowed. */
export function overLimit(bytes: number, opts: BlobWriteOptions): Error | null {
  const { maxBytes, expectedSize } = opts;
  if (maxBytes !== undefined && bytes > maxBytes) return new PayloadTooLargeError(maxBytes);
  if (expectedSize !== undefined && bytes > expectedSize) return new BadRequestError(`Received more than the expected ${expectedSize} bytes of data`);
  return null;
}

/** @throws BadRequestError when a source that ended after `bytes` bytes was expected to send another count */
export function checkEndedSize(bytes: number, opts: BlobWriteOptions): void {
  const { expectedSize } = opts;
  if (expectedSize !== undefined && bytes !== expectedSize) throw new BadRequestError(`Received ${bytes} bytes of data, expected ${expectedSize}`);
}
