/**
 * Data signatures of objects: the MetaData fields `hashAlgorithm`, `publicKey` and `signature`.
 * Interoperable with the reference for RSA: it hashes the data with SHA1 or SHA256 and checks
 * an RSA-PSS signature of that digest (MGF1 with the same hash, any salt length), the key a
 * base64 PKIX (SPKI) DER public key, the signature base64. [ref core/dataVerifier,
 * common.NeedDataVerification] Ours as well: ECDSA P-256/P-384 (DER or raw r‖s signature of
 * the data with that hash) and Ed25519 (over the digest, since Ed25519 cannot take a stream).
 * The key type comes from the SPKI DER itself. Verification is streamed: `update` with the bytes
 * as they are stored, `verify` at the end; nothing holds the data whole.
 *
 * Lives in the model (pure, node:crypto only) because the API's validation and the sync
 * engine's data paths both need it, and the sync layer may not import lib/security.
 */
import { createHash, createPublicKey, createVerify, constants, verify as verifyOneShot, type Hash, type KeyObject, type Verify } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { BadRequestError } from './errors.js';

/** The hash names the reference accepts, exact case. [ref common.IsValidHashAlgorithm] */
export const SIGNATURE_HASHES = ['SHA1', 'SHA256'] as const;
export type SignatureHash = (typeof SIGNATURE_HASHES)[number];

export type SignatureKeyKind = 'RSA-PSS' | 'ECDSA P-256' | 'ECDSA P-384' | 'Ed25519';

/** A parsed, checked signature statement: everything needed to verify data against it. */
export interface DataSignature {
  hashAlgorithm: SignatureHash;
  kind: SignatureKeyKind;
  key: KeyObject;
  signature: Buffer;
}

/** The three fields, as they are in MetaData. */
export interface SignatureFields {
  hashAlgorithm: string;
  publicKey: string;
  signature: string;
}

export type SignatureCheck = { ok: true } | { ok: false; reason: string };

/** Go's base64.StdEncoding: padded, standard alphabet; Buffer.from alone would accept anything. */
const STD_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function isSignatureHash(s: string): s is SignatureHash {
  return (SIGNATURE_HASHES as readonly string[]).includes(s);
}

/**
 * Whether the object's data is to be verified: all three fields set and the hash one the
 * reference knows, exactly its rule. [ref common.NeedDataVerification]
 */
export function isSigned(m: SignatureFields): boolean {
  return isSignatureHash(m.hashAlgorithm) && m.publicKey !== '' && m.signature !== '';
}

function keyKind(key: KeyObject): SignatureKeyKind | null {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return 'RSA-PSS';
    case 'ed25519':
      return 'Ed25519';
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      if (curve === 'prime256v1') return 'ECDSA P-256';
      if (curve === 'secp384r1') return 'ECDSA P-384';
      return null;
    }
    // RSASSA-PSS-restricted keys are refused: Go's x509 cannot parse them, so the reference
    // could never verify with one either.
    case 'rsa-pss':
    case 'dsa':
    case 'ed448':
    case 'x25519':
    case 'x448':
    case undefined:
      return null;
  }
  return null;
}

function describeKey(key: KeyObject): string {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  return curve !== undefined ? `${key.asymmetricKeyType ?? 'unknown'} (${curve})` : (key.asymmetricKeyType ?? 'unknown');
}

/**
 * Parses and checks the three fields. All empty: no signature (null). Otherwise all three must
 * be there, the hash SHA1 or SHA256, the key a base64 SPKI DER public key of a supported type,
 * the signature base64.
 * @throws BadRequestError naming what is wrong
 */
export function parseDataSignature(m: SignatureFields): DataSignature | null {
  const { hashAlgorithm, publicKey, signature } = m;
  if (hashAlgorithm === '' && publicKey === '' && signature === '') return null;
  if (!isSignatureHash(hashAlgorithm)) {
    throw new BadRequestError(
      hashAlgorithm === ''
        ? 'A publicKey or signature needs a hashAlgorithm (SHA1 or SHA256) to verify the data with'
        : `Hash algorithm (${hashAlgorithm}) is not supported, use SHA1 or SHA256`,
    );
  }
  if (publicKey === '' || signature === '') {
    const missing = [publicKey === '' ? 'publicKey' : null, signature === '' ? 'signature' : null].filter((s) => s !== null).join(' and ');
    throw new BadRequestError(`A data signature needs hashAlgorithm, publicKey and signature together; ${missing} missing`);
  }
  if (!STD_BASE64.test(publicKey)) throw new BadRequestError('PublicKey is not base64 encoded');
  if (!STD_BASE64.test(signature)) throw new BadRequestError('Signature is not base64 encoded');
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(publicKey, 'base64'), format: 'der', type: 'spki' });
  } catch (e) {
    throw new BadRequestError(`PublicKey is not a DER-encoded SPKI (PKIX) public key: ${(e as Error).message}`);
  }
  const kind = keyKind(key);
  if (kind === null) {
    throw new BadRequestError(`Unsupported public key type ${describeKey(key)}: use RSA (RSA-PSS signatures), ECDSA P-256 or P-384, or Ed25519`);
  }
  const sig = Buffer.from(signature, 'base64');
  if (sig.length === 0) throw new BadRequestError('Signature is empty');
  return { hashAlgorithm, kind, key, signature: sig };
}

/**
 * Like parseDataSignature, for metadata received from a peer: a statement that cannot be parsed
 * is a verification failure (the data cannot be trusted), not a request error.
 */
export function receivedDataSignature(m: SignatureFields): { signature: DataSignature | null } | { signature: null; reason: string } {
  if (!isSigned(m)) return { signature: null };
  try {
    return { signature: parseDataSignature(m) };
  } catch (e) {
    return { signature: null, reason: `data signature cannot be verified: ${(e as Error).message}` };
  }
}

/** The node:crypto digest name of a hash the reference knows. */
function digestName(h: SignatureHash): 'sha1' | 'sha256' {
  return h === 'SHA1' ? 'sha1' : 'sha256';
}

/**
 * A strict DER ECDSA-Sig-Value (SEQUENCE of two INTEGERs, nothing after): tells a DER signature
 * from a raw r‖s one, which is 64 or 96 bytes of arbitrary content.
 */
function isDerEcdsaSignature(sig: Buffer): boolean {
  if (sig.length < 8 || sig[0] !== 0x30) return false;
  let at = 2;
  let len = sig[1] ?? 0;
  if (len === 0x81) {
    len = sig[2] ?? 0;
    at = 3;
  } else if (len > 0x80) return false;
  if (at + len !== sig.length) return false;
  for (let i = 0; i < 2; i++) {
    if (sig[at] !== 0x02) return false;
    const n = sig[at + 1] ?? 0;
    if (n === 0 || n > 0x7f) return false;
    at += 2 + n;
  }
  return at === sig.length;
}

/**
 * Verifies data against a signature as the bytes go by. One use: `verify` ends it.
 */
export class SignatureVerifier {
  private readonly verifier: Verify | null;
  private readonly hash: Hash | null;
  private bytes = 0;
  private done = false;

  constructor(readonly statement: DataSignature) {
    const name = digestName(statement.hashAlgorithm);
    // Ed25519 signs a message whole, so it signs the digest; the others hash as they go.
    this.verifier = statement.kind === 'Ed25519' ? null : createVerify(name);
    this.hash = statement.kind === 'Ed25519' ? createHash(name) : null;
  }

  update(chunk: Buffer): void {
    if (this.done) throw new Error('this signature verifier was used already');
    this.bytes += chunk.length;
    this.verifier?.update(chunk);
    this.hash?.update(chunk);
  }

  /** Bytes seen so far. */
  get size(): number {
    return this.bytes;
  }

  /** The verdict over every byte given to `update`. */
  verify(): SignatureCheck {
    if (this.done) throw new Error('this signature verifier was used already');
    this.done = true;
    const { kind, key, signature, hashAlgorithm } = this.statement;
    let ok: boolean;
    try {
      if (this.hash !== null) {
        ok = verifyOneShot(null, this.hash.digest(), key, signature);
      } else if (kind === 'RSA-PSS') {
        // Any salt length, as Go's rsa.VerifyPSS with nil options. [ref dataVerifier.verifyHelper]
        ok = this.verifier!.verify({ key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO }, signature);
      } else {
        ok = this.verifier!.verify({ key, dsaEncoding: isDerEcdsaSignature(signature) ? 'der' : 'ieee-p1363' }, signature);
      }
    } catch {
      // A signature of the wrong length or shape for the key: a failure like any other.
      ok = false;
    }
    if (ok) return { ok: true };
    return { ok: false, reason: `data signature verification failed (${kind} with ${hashAlgorithm}): the data does not match the signature and public key` };
  }
}

/** Verifies a whole buffer at once (small data, tests). */
export function verifyDataSignature(statement: DataSignature, data: Buffer): SignatureCheck {
  const v = new SignatureVerifier(statement);
  v.update(data);
  return v.verify();
}

/**
 * A pass-through stream that feeds every byte to `verifier` on its way to storage: the data is
 * hashed for the signature on the same pass that stores it.
 */
export function signatureTap(verifier: { update(chunk: Buffer): void }): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
      verifier.update(chunk);
      cb(null, chunk);
    },
  });
}
