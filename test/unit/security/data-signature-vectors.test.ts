/**
 * Signatures made by other implementations verify here: Go's crypto/rsa SignPSS (the library the
 * reference verifies with, salt lengths auto and equal-to-hash) and the openssl command line the
 * README shows. The vectors were produced once by those tools; the reverse (node:crypto
 * signatures accepted by Go's x509.ParsePKIXPublicKey + rsa.VerifyPSS with nil options, as the
 * reference's dataVerifier calls them) was checked when they were made.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { parseDataSignature, verifyDataSignature } from '../../../lib/model/index.js';

interface Vector {
  hashAlgorithm: string;
  publicKey: string;
  signature: string;
  data: string;
  salt: string;
}

const load = (name: string): Vector[] => JSON.parse(readFileSync(new URL(`../../fixtures/signatures/${name}`, import.meta.url), 'utf8')) as Vector[];

describe.each([['go-rsa-pss.json'], ['openssl-rsa-pss.json']])('vectors of %s', (file) => {
  const vectors = load(file);
  it.each(vectors.map((v) => [`${v.hashAlgorithm}, salt ${v.salt}`, v] as const))('%s verifies, and not with one byte changed', (_n, v) => {
    const statement = parseDataSignature(v);
    expect(statement?.kind).toBe('RSA-PSS');
    if (statement === null) return;
    const data = Buffer.from(v.data, 'base64');
    expect(verifyDataSignature(statement, data)).toEqual({ ok: true });
    const again = parseDataSignature(v);
    data[0] = (data[0] ?? 0) ^ 1;
    expect(again !== null && verifyDataSignature(again, data).ok).toBe(false);
  });
});
