/**
 * The vocabulary of the messages an ESS sends the CSS about the objects it publishes: who sends
 * one, which object instance it is about, how a `data` message carries its bytes, and what
 * applying one came to (which the transport turns into its answer).
 */
import type { ByteRange } from '../model/index.js';

/** The ESS a message comes from (authenticated by the transport): the record's peer. */
export interface UpstreamPeer {
  orgID: string;
  peerType: string;
  peerID: string;
}

/** Which object instance a message is about (from the SPI path). */
export interface UpstreamRef {
  objectType: string;
  objectID: string;
  instanceID: bigint;
  /** Absent in the reference's short path form. */
  dataID?: bigint;
}

/**
 * - `applied`: the message changed something.
 * - `duplicate`: already applied; the sender must hear "acked" (204) so it stops repeating.
 * - `stale`: about an older instance than the one held, or one already deleted (409).
 * - `unknown`: nothing to apply it to, e.g. an ack for a record already gone (409).
 * - `ignored`: the record is not in a state that takes this message (409).
 * The last three change nothing. [ref sync-protocol §1 "409 = ignored by handler"]
 */
export type UpstreamOutcome = 'applied' | 'duplicate' | 'stale' | 'unknown' | 'ignored';

/** How a `data` message carries its bytes. */
export interface UpstreamData {
  /** Whole body: its declared length, when known. */
  size?: number;
  /** One chunk: `Content-Range: bytes start-end/total`. */
  range?: ByteRange & { total: number };
  /** Hex SHA-256 of the whole data, when the ESS states it (our extension); checked on the last byte. */
  sha256?: string;
  signal?: AbortSignal;
}
