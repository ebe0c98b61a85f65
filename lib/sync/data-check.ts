/**
 * End-to-end check of downloaded data: the sender states the SHA-256 of the object's data,
 * the receiver compares it with the one it computed while storing the bytes. An edgesync
 * extension; a reference peer neither sends nor expects it, so an absent statement means
 * "not checked", never "failed". Transport-agnostic: the HTTP SPI carries the statement in a
 * header today.
 */
import { SignatureVerifier, receivedDataSignature, type MetaData, type SignatureCheck } from '../model/index.js';
import type { Feedback } from './sender-acks.js';

/**
 * - `unchecked`: the sender stated nothing (a reference CSS): accept as before.
 * - `ok`: the stated and computed digests are equal.
 * - `mismatch`: they differ; `reason` is what the sender is told.
 */
export type DataCheck = { kind: 'unchecked' } | { kind: 'ok' } | { kind: 'mismatch'; reason: string };

/** Feedback code of a mismatch: 1, a generic error the sender shows and may retry. [ref sync-protocol §3 Feedback] */
export const DATA_MISMATCH_CODE = 1;

/**
 * Compares the digest the sender stated (`expected`, hex, as received) with the one computed
 * here (`actual`, lower-case hex). Hex is case-insensitive, so the case of the statement
 * does not matter; anything else that differs, a malformed statement included, is a mismatch.
 */
export function verifyDownloadedData(expected: string | undefined, actual: string): DataCheck {
  if (expected === undefined) return { kind: 'unchecked' };
  const stated = expected.trim().toLowerCase();
  if (stated === actual.toLowerCase()) return { kind: 'ok' };
  return { kind: 'mismatch', reason: `data SHA-256 mismatch: expected ${stated}, got ${actual}` };
}

/**
 * The feedback reporting a mismatch. The retry hint is the receiver's own retry interval
 * (it will download again then), in whole seconds as the wire wants, never 0 (= no hint).
 */
export function mismatchFeedback(reason: string, resendIntervalMs: number): Feedback {
  return { code: DATA_MISMATCH_CODE, retryInterval: Math.max(1, Math.ceil(resendIntervalMs / 1000)), reason };
}

/**
 * The feedback telling the sender that this node's storage is full: the sender shows it as the
 * destination's error and offers the object again later. The hint is the receiver's own retry
 * interval, as for a mismatch.
 */
export function storageFullFeedback(resendIntervalMs: number): Feedback {
  return mismatchFeedback('not enough storage space on the receiving node to store the data; it will retry once space is freed', resendIntervalMs);
}

/**
 * The data signature of an object received from the other side, checked on the pass that stores
 * its data (`update` with every byte, in order): the receiver's own check, before the app may see
 * the object. [ref sync-protocol §6 Signature verification]
 */
export class ReceivedSignature {
  private readonly verifier: SignatureVerifier | null;
  /** Set when the metadata's statement cannot even be parsed: nothing can verify it. */
  private readonly unusable: string | null;

  constructor(meta: MetaData) {
    const parsed = receivedDataSignature(meta);
    this.verifier = parsed.signature === null ? null : new SignatureVerifier(parsed.signature);
    this.unusable = 'reason' in parsed ? parsed.reason : null;
  }

  /** Whether the object is signed (then its data must pass `check`). */
  get signed(): boolean {
    return this.verifier !== null || this.unusable !== null;
  }

  update(chunk: Buffer): void {
    this.verifier?.update(chunk);
  }

  /** The verdict over the bytes given, null for an object that is not signed. Once. */
  check(): SignatureCheck | null {
    if (this.unusable !== null) return { ok: false, reason: this.unusable };
    return this.verifier?.verify() ?? null;
  }
}

/**
 * The SHA-256 check and the signature check of received data together. The signature is looked
 * at first: when the data was damaged where it was stored, both fail, and the signature is the
 * check the publisher asked for.
 */
export function verifyReceivedData(expected: string | undefined, actual: string, signature: SignatureCheck | null): DataCheck {
  if (signature !== null && !signature.ok) return { kind: 'mismatch', reason: signature.reason };
  return verifyDownloadedData(expected, actual);
}
