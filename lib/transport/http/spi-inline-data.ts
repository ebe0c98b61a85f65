/**
 * Inline data in poll answers, our SPI extension: an ESS that polls with `?inline=N` gets the
 * data of every announced object of at most N bytes inside the poll entry itself, as
 * `"Data"` (base64) with `"DataSHA256"`, so a small object costs no data request. It then
 * stores the data, checks its SHA-256 as for a download, and answers `received` alone (the
 * CSS takes it from `update`). An entry without `Data` is fetched with a data GET as usual,
 * and a reference CSS, which ignores the parameter, never sends any.
 *
 * Both sides bound the memory it takes: at most MAX_INLINE_BYTES per object, whatever the ESS
 * asks, and at most INLINE_BUDGET_BYTES of data per answer; the rest is left to data GETs.
 */
import type { Request } from 'express';
import type { Readable } from 'node:stream';
import { BadRequestError } from '../../model/index.js';
import type { StoredObject } from '../../store/types.js';

/** The largest object data a poll entry carries. */
export const MAX_INLINE_BYTES = 64 * 1024;
/** The most data one poll answer carries, over all its entries. */
export const INLINE_BUDGET_BYTES = 4 * 1024 * 1024;
/** The query parameter of the poll. */
export const INLINE_PARAM = 'inline';

/** The data fields of a poll entry. */
export interface InlineFields {
  Data: string;
  DataSHA256: string;
}

/** The limit a poll asks for with `?inline=N`: 0 when absent, at most MAX_INLINE_BYTES. @throws BadRequestError */
export function pollInlineLimit(req: Request): number {
  const raw = req.query[INLINE_PARAM];
  if (raw === undefined) return 0;
  const n = typeof raw === 'string' && /^\d{1,10}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n)) throw new BadRequestError(`Invalid value (${JSON.stringify(raw)}) for the ${INLINE_PARAM} parameter, expected a number of bytes`);
  return Math.min(n, MAX_INLINE_BYTES);
}

/** What is left of one answer's INLINE_BUDGET_BYTES. */
export class InlineBudget {
  private left = INLINE_BUDGET_BYTES;

  constructor(readonly limit: number) {}

  /** Takes room for `obj`'s data; false when it is not to be inlined. */
  take(obj: StoredObject): boolean {
    const size = obj.meta.objectSize;
    // A metaOnly update leaves the receiver's data as it is: nothing to send.
    if (this.limit <= 0 || obj.blobId === null || obj.dataSha256 === null || obj.meta.noData || obj.meta.metaOnly || size > this.limit || size > this.left) return false;
    this.left -= size;
    return true;
  }
}

/** Reads a stream of at most MAX_INLINE_BYTES (the object's size was checked) into the entry's fields. */
export async function inlineFields(data: Readable, sha256: string): Promise<InlineFields> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of data) {
    const b = chunk as Buffer;
    bytes += b.length;
    if (bytes > MAX_INLINE_BYTES) {
      data.destroy();
      throw new Error('inline data larger than its object size says');
    }
    chunks.push(b);
  }
  return { Data: Buffer.concat(chunks, bytes).toString('base64'), DataSHA256: sha256 };
}

/** The data a poll entry carried, decoded. */
export interface InlineData {
  data: Buffer;
  /** Lower-case hex SHA-256 the CSS states for it. */
  sha256: string;
}

/** Inline data of a decoded poll entry, when it has valid fields; see the module comment. */
export function parseInlineData(entry: Record<string, unknown>): InlineData | null {
  const { Data: data, DataSHA256: sha256 } = entry;
  if (typeof data !== 'string' || typeof sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(sha256)) return null;
  return { data: Buffer.from(data, 'base64'), sha256 };
}
