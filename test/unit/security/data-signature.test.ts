import { constants, generateKeyPairSync, sign, createHash, type KeyObject } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { describe, expect, it } from '@jest/globals';
import {
  BadRequestError,
  SignatureVerifier,
  decodeObjectUpdate,
  validateObjectUpdate,
  isSigned,
  parseDataSignature,
  receivedDataSignature,
  signatureTap,
  verifyDataSignature,
  type DataSignature,
  type SignatureHash,
} from '../../../lib/model/index.js';

type Kind = 'rsa' | 'p256' | 'p384' | 'ed25519';

function keyPair(kind: Kind): { publicKey: KeyObject; privateKey: KeyObject } {
  switch (kind) {
    case 'rsa':
      return generateKeyPairSync('rsa', { modulusLength: 2048 });
    case 'p256':
      return generateKeyPairSync('ec', { namedCurve: 'P-256' });
    case 'p384':
      return generateKeyPairSync('ec', { namedCurve: 'P-384' });
    case 'ed25519':
      return generateKeyPairSync('ed25519');
  }
}

const KEYS: Record<Kind, { publicKey: KeyObject; privateKey: KeyObject }> = {
  rsa: keyPair('rsa'),
  p256: keyPair('p256'),
  p384: keyPair('p384'),
  ed25519: keyPair('ed25519'),
};

const digest = (h: SignatureHash): string => (h === 'SHA1' ? 'sha1' : 'sha256');

/** Signs as a publisher would for each key type (see the README's signing examples). */
function signData(kind: Kind, hash: SignatureHash, data: Buffer, opts: { saltLength?: number; dsaEncoding?: 'der' | 'ieee-p1363' } = {}): string {
  const { privateKey } = KEYS[kind];
  if (kind === 'rsa') {
    return sign(digest(hash), data, { key: privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: opts.saltLength ?? constants.RSA_PSS_SALTLEN_DIGEST }).toString('base64');
  }
  if (kind === 'ed25519') return sign(null, createHash(digest(hash)).update(data).digest(), privateKey).toString('base64');
  return sign(digest(hash), data, { key: privateKey, dsaEncoding: opts.dsaEncoding ?? 'der' }).toString('base64');
}

const spki = (kind: Kind): string => KEYS[kind].publicKey.export({ format: 'der', type: 'spki' }).toString('base64');

function statement(kind: Kind, hash: SignatureHash, signature: string, publicKey = spki(kind)): DataSignature {
  const parsed = parseDataSignature({ hashAlgorithm: hash, publicKey, signature });
  if (parsed === null) throw new Error('expected a signature');
  return parsed;
}

const DATA = Buffer.from('the object data, as the app published it\n'.repeat(50));

describe('data signatures: every key type with both hashes', () => {
  const cases: [Kind, SignatureHash, string][] = [];
  for (const kind of ['rsa', 'p256', 'p384', 'ed25519'] as const) for (const hash of ['SHA1', 'SHA256'] as const) cases.push([kind, hash, `${kind} ${hash}`]);

  it.each(cases)('%s with %s: the signed data verifies; tampered data, signature or key do not', (kind, hash) => {
    const sig = signData(kind, hash, DATA);
    expect(verifyDataSignature(statement(kind, hash, sig), DATA)).toEqual({ ok: true });

    const tampered = Buffer.from(DATA);
    tampered[10] = (tampered[10] ?? 0) ^ 1;
    const bad = verifyDataSignature(statement(kind, hash, sig), tampered);
    expect(bad.ok).toBe(false);
    expect(bad.ok === false && bad.reason).toMatch(/data signature verification failed .* with .*: the data does not match/);

    const sigBytes = Buffer.from(sig, 'base64');
    sigBytes[sigBytes.length - 3] = (sigBytes[sigBytes.length - 3] ?? 0) ^ 0x40;
    expect(verifyDataSignature(statement(kind, hash, sigBytes.toString('base64')), DATA).ok).toBe(false);

    const other = keyPair(kind).publicKey.export({ format: 'der', type: 'spki' }).toString('base64');
    expect(verifyDataSignature(statement(kind, hash, sig, other), DATA).ok).toBe(false);

    // The other hash than the one signed with fails too.
    const otherHash: SignatureHash = hash === 'SHA1' ? 'SHA256' : 'SHA1';
    expect(verifyDataSignature(statement(kind, otherHash, sig), DATA).ok).toBe(false);
  });

  it('detects the key type from the SPKI DER', () => {
    const kinds = (['rsa', 'p256', 'p384', 'ed25519'] as const).map((k) => statement(k, 'SHA256', signData(k, 'SHA256', DATA)).kind);
    expect(kinds).toEqual(['RSA-PSS', 'ECDSA P-256', 'ECDSA P-384', 'Ed25519']);
  });
});

describe('RSA-PSS as the reference verifies it (Go rsa.VerifyPSS, salt length auto)', () => {
  it.each([
    ['the digest length', constants.RSA_PSS_SALTLEN_DIGEST],
    ['the maximum', constants.RSA_PSS_SALTLEN_MAX_SIGN],
    ['none', 0],
  ])('accepts a salt of %s', (_name, saltLength) => {
    const sig = signData('rsa', 'SHA256', DATA, { saltLength });
    expect(verifyDataSignature(statement('rsa', 'SHA256', sig), DATA)).toEqual({ ok: true });
  });

  it('refuses a PKCS#1 v1.5 signature: the reference checks PSS only', () => {
    const v15 = sign('sha256', DATA, { key: KEYS.rsa.privateKey, padding: constants.RSA_PKCS1_PADDING }).toString('base64');
    expect(verifyDataSignature(statement('rsa', 'SHA256', v15), DATA).ok).toBe(false);
  });

  it('verifies empty data', () => {
    const sig = signData('rsa', 'SHA1', Buffer.alloc(0));
    expect(verifyDataSignature(statement('rsa', 'SHA1', sig), Buffer.alloc(0))).toEqual({ ok: true });
  });
});

describe('ECDSA signature encodings', () => {
  it.each(['p256', 'p384'] as const)('%s accepts DER and raw r||s (WebCrypto) signatures', (kind) => {
    for (const dsaEncoding of ['der', 'ieee-p1363'] as const) {
      const sig = signData(kind, 'SHA256', DATA, { dsaEncoding });
      expect(verifyDataSignature(statement(kind, 'SHA256', sig), DATA)).toEqual({ ok: true });
    }
  });
});

describe('streamed verification', () => {
  it('gives the same verdict fed chunk by chunk, through a tap that passes the bytes on unchanged', async () => {
    for (const kind of ['rsa', 'p384', 'ed25519'] as const) {
      const sig = signData(kind, 'SHA256', DATA);
      const verifier = new SignatureVerifier(statement(kind, 'SHA256', sig));
      const chunks: Buffer[] = [];
      const parts = [DATA.subarray(0, 1), DATA.subarray(1, 777), DATA.subarray(777)];
      await pipeline(
        Readable.from(parts),
        signatureTap(verifier),
        new Writable({
          write(chunk: Buffer, _e, cb): void {
            chunks.push(chunk);
            cb();
          },
        }),
      );
      expect(Buffer.concat(chunks).equals(DATA)).toBe(true);
      expect(verifier.size).toBe(DATA.length);
      expect(verifier.verify()).toEqual({ ok: true });
    }
  });

  it('is used once', () => {
    const v = new SignatureVerifier(statement('p256', 'SHA1', signData('p256', 'SHA1', DATA)));
    v.update(DATA);
    v.verify();
    expect(() => v.verify()).toThrow(/used already/);
    expect(() => v.update(DATA)).toThrow(/used already/);
  });
});

describe('the statement: what a PUT may carry', () => {
  const sig = signData('rsa', 'SHA256', DATA);
  const key = spki('rsa');
  const refused = (fields: { hashAlgorithm: string; publicKey: string; signature: string }): string => {
    try {
      parseDataSignature(fields);
    } catch (e) {
      expect(e).toBeInstanceOf(BadRequestError);
      return (e as Error).message;
    }
    throw new Error('expected a refusal');
  };

  it('all three empty: no signature', () => {
    expect(parseDataSignature({ hashAlgorithm: '', publicKey: '', signature: '' })).toBeNull();
  });

  it('needs all three together', () => {
    expect(refused({ hashAlgorithm: 'SHA256', publicKey: '', signature: '' })).toMatch(/together; publicKey and signature missing/);
    expect(refused({ hashAlgorithm: 'SHA256', publicKey: key, signature: '' })).toMatch(/signature missing/);
    expect(refused({ hashAlgorithm: '', publicKey: key, signature: sig })).toMatch(/needs a hashAlgorithm \(SHA1 or SHA256\)/);
  });

  it('takes the hash names in the exact case the reference does', () => {
    expect(refused({ hashAlgorithm: 'sha256', publicKey: key, signature: sig })).toMatch(/Hash algorithm \(sha256\) is not supported/);
    expect(refused({ hashAlgorithm: 'SHA512', publicKey: key, signature: sig })).toMatch(/not supported, use SHA1 or SHA256/);
  });

  it('refuses keys and signatures that are not base64, and keys that are not SPKI DER', () => {
    expect(refused({ hashAlgorithm: 'SHA1', publicKey: 'not base64!', signature: sig })).toBe('PublicKey is not base64 encoded');
    expect(refused({ hashAlgorithm: 'SHA1', publicKey: key, signature: 'abc' })).toBe('Signature is not base64 encoded');
    expect(refused({ hashAlgorithm: 'SHA1', publicKey: Buffer.from('hello world').toString('base64'), signature: sig })).toMatch(/PublicKey is not a DER-encoded SPKI/);
  });

  it('refuses a key type it cannot verify with, naming it', () => {
    const x25519 = generateKeyPairSync('x25519').publicKey.export({ format: 'der', type: 'spki' }).toString('base64');
    expect(refused({ hashAlgorithm: 'SHA256', publicKey: x25519, signature: sig })).toMatch(/Unsupported public key type x25519/);
    const secp256k1 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey.export({ format: 'der', type: 'spki' }).toString('base64');
    expect(refused({ hashAlgorithm: 'SHA256', publicKey: secp256k1, signature: sig })).toMatch(/Unsupported public key type ec \(secp256k1\)/);
  });

  it('is signed exactly when the reference would verify (NeedDataVerification)', () => {
    expect(isSigned({ hashAlgorithm: 'SHA256', publicKey: key, signature: sig })).toBe(true);
    expect(isSigned({ hashAlgorithm: 'SHA256', publicKey: key, signature: '' })).toBe(false);
    expect(isSigned({ hashAlgorithm: 'MD5', publicKey: key, signature: sig })).toBe(false);
  });

  it('received metadata with a statement nothing can verify is a failure with the reason, not an exception', () => {
    const got = receivedDataSignature({ hashAlgorithm: 'SHA256', publicKey: Buffer.from('junk').toString('base64'), signature: sig });
    expect(got.signature).toBeNull();
    expect('reason' in got && got.reason).toMatch(/data signature cannot be verified: PublicKey is not a DER-encoded SPKI/);
    expect(receivedDataSignature({ hashAlgorithm: '', publicKey: '', signature: '' })).toEqual({ signature: null });
  });
});

describe('an object PUT carrying a signature (validateObjectUpdate)', () => {
  const ctx = { orgID: 'org1', objectType: 'model', objectID: 'm1', nodeType: 'CSS' as const, now: new Date('2030-01-01T00:00:00Z') };
  const put = (meta: Record<string, unknown>, data?: string): (() => void) => () =>
    validateObjectUpdate(decodeObjectUpdate({ meta: { objectID: 'm1', objectType: 'model', ...meta }, ...(data !== undefined ? { data } : {}) }), ctx);
  const sig = signData('p256', 'SHA256', DATA);
  const key = spki('p256');

  it('accepts a complete, well-formed statement, with or without data', () => {
    expect(put({ hashAlgorithm: 'SHA256', publicKey: key, signature: sig })).not.toThrow();
    expect(put({ hashAlgorithm: 'SHA256', publicKey: key, signature: sig }, DATA.toString('base64'))).not.toThrow();
  });

  it('refuses with 400 and the reason: a partial statement, a bad key, a signature on a noData object', () => {
    const status = (fn: () => void): number => {
      try {
        fn();
      } catch (e) {
        return (e as BadRequestError).status;
      }
      return 0;
    };
    expect(put({ hashAlgorithm: 'SHA256' })).toThrow(/publicKey and signature missing/);
    expect(put({ publicKey: key, signature: sig })).toThrow(/needs a hashAlgorithm/);
    expect(put({ hashAlgorithm: 'SHA1', publicKey: Buffer.from('not a key').toString('base64'), signature: sig })).toThrow(/not a DER-encoded SPKI/);
    expect(put({ noData: true, hashAlgorithm: 'SHA256', publicKey: key, signature: sig })).toThrow(/A noData object has no data to sign/);
    expect(status(put({ hashAlgorithm: 'SHA256' }))).toBe(400);
  });
});
