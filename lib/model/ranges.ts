/**
 * Byte ranges of object data, shared by the API's data GET and the SPI's data download so that
 * both refuse the same headers the same way. [ref rest-api §5.10, sync-protocol §1]
 */
import { BadRequestError } from './errors.js';

export interface ByteRange {
  start: number;
  /** Inclusive. */
  end: number;
}

/**
 * `Range: bytes=S-E`, the only form the reference accepts (no suffix, open or multiple
 * ranges). The reference panics on short values and streams after a 400; we answer 400.
 * [ref rest-api §5.10]
 */
export function parseRange(header: string): ByteRange {
  const m = /^bytes=(\d{1,15})-(\d{1,15})$/.exec(header.trim());
  if (!m) throw new BadRequestError(`Invalid Range header (${header}): only a single "bytes=start-end" range is supported`);
  const start = Number(m[1]);
  const end = Number(m[2]);
  if (end < start) throw new BadRequestError(`Invalid Range header (${header}): the end is before the start`);
  return { start, end };
}
