/**
 * Answers with the reference's wire conventions: plain-text errors, Go-style indented JSON,
 * bare statuses with empty bodies. Shared by the API (/api/v1) and the SPI's HTTP adapter
 * (/spi/v1); imports nothing of ours but the model. [ref rest-api §3.8, §5]
 */
import type { Response } from 'express';
import { goJson } from '../model/index.js';

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
