/**
 * Small request/response helpers with the reference's wire conventions: plain-text errors,
 * Go-style indented JSON, bare statuses with empty bodies. [ref rest-api §3.8, §5]
 */
import type { Request, Response } from 'express';
import { BadRequestError, PayloadTooLargeError, goJson, parseGoBool, parseJsonBody } from '../model/index.js';
import type { ContentRange } from '../sync/object-service.js';

export function sendJson(res: Response, value: unknown, status = 200): void {
  const body = goJson(value);
  // setHeader, not res.set: Express would append `; charset=utf-8`, which the reference never sends.
  res.status(status).setHeader('Content-Type', 'application/json').setHeader('Content-Length', String(Buffer.byteLength(body))).end(body);
}

export function sendText(res: Response, status: number, text: string, contentType = 'text/plain; charset=utf-8'): void {
  if (text === '') {
    res.status(status).end();
    return;
  }
  res.status(status).set('Content-Type', contentType).end(text);
}

/** 204, the reference's answer to every successful write. */
export function sendNoContent(res: Response): void {
  res.status(204).end();
}

/**
 * Reads a (small) request body as text, refusing more than `limit` bytes with a 413 as soon as
 * it is known, without buffering past the limit. Plain listeners rather than `for await`: an
 * async iterator per request was about a quarter of the cost of a small PUT's body handling.
 */
export function readBodyText(req: Request, limit: number): Promise<string> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    return Promise.reject(new PayloadTooLargeError(limit));
  }
  if (req.readableEnded) return Promise.resolve('');
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const settle = (err: Error | null): void => {
      req.off('data', onData).off('end', onEnd).off('error', settle).off('close', onClose);
      if (err === null) resolve(Buffer.concat(chunks, size).toString('utf8'));
      else reject(err);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= limit) {
        chunks.push(chunk);
        return;
      }
      settle(new PayloadTooLargeError(limit));
      // The rest is read and dropped, so that the client gets to read the 413.
      req.resume();
    };
    const onEnd = (): void => settle(null);
    const onClose = (): void => settle(new Error('the client closed the connection before the end of the request body'));
    req.on('data', onData).on('end', onEnd).on('error', settle).on('close', onClose);
  });
}

export async function readJson(req: Request, limit: number, prefix: string): Promise<unknown> {
  return parseJsonBody(await readBodyText(req, limit), prefix);
}

/** Kept here for the API routes; the rules live in lib/model so that the SPI shares them. */
export { parseRange } from '../model/index.js';

/** `Content-Range: bytes S-E/TOTAL` of a chunked upload. [ref rest-api §1.2 O17] */
export function parseContentRange(header: string): ContentRange {
  const prefix = 'Failed to parse Content-Range header, Error: ';
  const m = /^bytes (\d{1,15})-(\d{1,15})\/(\d{1,15})$/.exec(header.trim());
  if (!m) throw new BadRequestError(`${prefix}expected "bytes start-end/total", got "${header}"`);
  const start = Number(m[1]);
  const end = Number(m[2]);
  const total = Number(m[3]);
  if (end < start) throw new BadRequestError(`${prefix}the end (${end}) is before the start (${start})`);
  if (end >= total) throw new BadRequestError(`${prefix}the range ${start}-${end} goes past the total size (${total})`);
  return { start, end, total };
}

/** The first value of a query parameter. */
export function queryString(req: Request, name: string): string | undefined {
  const v = req.query[name];
  if (Array.isArray(v)) return typeof v[0] === 'string' ? v[0] : undefined;
  return typeof v === 'string' ? v : undefined;
}

/**
 * A boolean query parameter in Go's ParseBool spellings; absent or empty → undefined.
 * @throws BadRequestError for any other value
 */
export function boolQuery(req: Request, name: string): boolean | undefined {
  const raw = queryString(req, name);
  if (raw === undefined || raw === '') return undefined;
  const v = parseGoBool(raw);
  if (v === undefined) throw new BadRequestError(`Invalid value (${raw}) for the ${name} parameter, expected a boolean`);
  return v;
}

/**
 * The status and headers of a data answer, the API's and the SPI's alike: 206 with
 * `Content-Range` for a range, else 200; the length of what follows either way.
 */
export function sendDataHeaders(res: Response, read: { size: number; range?: { start: number; end: number } }): void {
  res.set('Content-Type', 'application/octet-stream');
  if (read.range) {
    res.status(206).set('Content-Range', `bytes ${read.range.start}-${read.range.end}/${read.size}`);
    res.set('Content-Length', String(read.range.end - read.range.start + 1));
  } else {
    res.status(200).set('Content-Length', String(read.size));
  }
}
