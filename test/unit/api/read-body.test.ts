import { describe, expect, it } from '@jest/globals';
import type { Request } from 'express';
import { PassThrough } from 'node:stream';
import { readBodyText } from '../../../lib/http/request.js';
import { PayloadTooLargeError } from '../../../lib/model/index.js';

/** A request body the test feeds piece by piece. */
function body(headers: Record<string, string> = {}): PassThrough & Request {
  return Object.assign(new PassThrough(), { headers }) as unknown as PassThrough & Request;
}

describe('readBodyText', () => {
  it('gives the whole body as UTF-8 text, however it was split', async () => {
    const req = body();
    const text = readBodyText(req, 100);
    const bytes = Buffer.from('{"a":"ü"}');
    req.write(bytes.subarray(0, 7)); // splits the two bytes of ü
    req.end(bytes.subarray(7));
    await expect(text).resolves.toBe('{"a":"ü"}');
  });

  it('refuses a declared length over the limit before reading anything', async () => {
    const req = body({ 'content-length': '101' });
    await expect(readBodyText(req, 100)).rejects.toBeInstanceOf(PayloadTooLargeError);
  });

  it('refuses a body without a length once it passes the limit, and reads the rest to the end', async () => {
    const req = body();
    const text = readBodyText(req, 10);
    req.write('0123456789');
    req.write('x');
    await expect(text).rejects.toBeInstanceOf(PayloadTooLargeError);
    req.end('more');
    await new Promise((resolve) => req.once('end', resolve));
  });

  it('fails when the client goes away before the end of the body', async () => {
    const req = body();
    const text = readBodyText(req, 100);
    req.write('{"partial":');
    req.destroy();
    await expect(text).rejects.toThrow('before the end of the request body');
  });
});
