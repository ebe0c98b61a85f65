import { describe, expect, it } from '@jest/globals';
import { BadRequestError, parseRange } from '../../../lib/model/index.js';
import { parseRange as apiParseRange } from '../../../lib/http/request.js';

describe('parseRange', () => {
  it('reads a single bytes=S-E range, whitespace around it allowed', () => {
    expect(parseRange('bytes=0-0')).toEqual({ start: 0, end: 0 });
    expect(parseRange(' bytes=2-5 ')).toEqual({ start: 2, end: 5 });
  });

  it('refuses every other form with a 400', () => {
    for (const h of ['bytes=5-2', 'bytes=-5', 'bytes=5-', 'bytes=0-1,3-4', 'items=0-1', 'bytes=1234567890123456-1234567890123457', '']) {
      expect(() => parseRange(h)).toThrow(BadRequestError);
    }
  });

  it('is the one the API uses', () => {
    expect(apiParseRange).toBe(parseRange);
  });
});
