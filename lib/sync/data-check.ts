/**
 * End-to-end check of downloaded data: the sender states the SHA-256 of the object's data,
 * the receiver compares it with the one it computed while storing the bytes. An edgesync
 * extension; a reference peer neither sends nor expects it, so an absent statement means
 * "not checked", never "failed". Transport-agnostic: the HTTP SPI carries the statement in a
 * header today.
 */
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
