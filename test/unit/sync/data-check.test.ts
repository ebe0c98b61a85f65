import { describe, expect, it } from '@jest/globals';
import { DATA_MISMATCH_CODE, mismatchFeedback, verifyDownloadedData } from '../../../lib/sync/data-check.js';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);

describe('verifyDownloadedData', () => {
  it('accepts without checking when the sender stated nothing (a reference CSS)', () => {
    expect(verifyDownloadedData(undefined, A)).toEqual({ kind: 'unchecked' });
  });

  it('accepts equal digests, whatever the case or surrounding blanks of the statement', () => {
    expect(verifyDownloadedData(A, A)).toEqual({ kind: 'ok' });
    expect(verifyDownloadedData(` ${A.toUpperCase()} `, A)).toEqual({ kind: 'ok' });
  });

  it('reports a difference with both digests, a malformed statement included', () => {
    expect(verifyDownloadedData(B, A)).toEqual({ kind: 'mismatch', reason: `data SHA-256 mismatch: expected ${B}, got ${A}` });
    expect(verifyDownloadedData('', A)).toEqual({ kind: 'mismatch', reason: `data SHA-256 mismatch: expected , got ${A}` });
    expect(verifyDownloadedData('zz', A).kind).toBe('mismatch');
  });
});

describe('mismatchFeedback', () => {
  it('is code 1 with the retry interval in whole seconds, never 0', () => {
    expect(mismatchFeedback('why', 5000)).toEqual({ code: DATA_MISMATCH_CODE, retryInterval: 5, reason: 'why' });
    expect(mismatchFeedback('why', 1500).retryInterval).toBe(2);
    expect(mismatchFeedback('why', 0).retryInterval).toBe(1);
    expect(DATA_MISMATCH_CODE).toBe(1);
  });
});
