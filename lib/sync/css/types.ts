/**
 * The CSS side of the protocol engine, as every transport sees it: one session per ESS. A
 * transport authenticates the peer, decodes its wire format, calls a session and encodes the
 * answer; it decides nothing about the protocol and commits nothing to a store itself.
 * HTTP (lib/transport/http) and MQTT (lib/transport/mqtt) are the two adapters.
 * [ref sync-protocol §1–3]
 */
import type { Readable } from 'node:stream';
import type { ByteRange, DestinationRef, MetaData } from '../../model/index.js';
import type { Destination, StoredObject } from '../../store/types.js';
import type { AckOutcome, Feedback, SenderAck } from '../sender-acks.js';
import type { UpstreamData } from '../upstream-messages.js';

/** How an ESS talks to its CSS; recorded on its destination (`communication`). */
export type Communication = 'http' | 'mqtt';

/** Which object instance a message is about. */
export interface ObjectRef {
  objectType: string;
  objectID: string;
  instanceID: bigint;
  /** Absent in the reference's short HTTP path form and in MQTT messages (the meta carries it). */
  dataID?: bigint;
}

/** register, register-new (MQTT `registerNew`), ping, unregister (HTTP only). */
export type RegistrationAction = 'register' | 'register-new' | 'ping' | 'unregister';

/**
 * - `registered`: the ESS is known (now); the transport acks (HTTP 204, MQTT `regack`).
 * - `unknown`: a `register` or `ping` from an ESS the CSS does not know: it must register as
 *   new (HTTP 404, MQTT `registerAsNew`).
 */
export type RegistrationOutcome = 'registered' | 'unknown';

/** The wire command of something queued for an ESS. [ref sync-protocol §3 Status constants] */
export type SyncItemType = 'update' | 'delete' | 'consumed' | 'deleted' | 'received';

/** One thing queued for an ESS, to be sent by the transport (HTTP: a poll entry; MQTT: a message). */
export interface SyncItem {
  type: SyncItemType;
  /** The object's metadata, addressed to the ESS (its destination fields name the ESS). */
  meta: MetaData;
  /** The object as stored; null when it is gone (a deletion of a removed object). */
  object: StoredObject | null;
}

/** What `pending` knows of an item before it reads the object: its type and instance. */
export interface PendingItemKey {
  type: SyncItemType;
  objectType: string;
  objectID: string;
  instanceID: bigint;
}

/** One range of an object's data, opened for an ESS. */
export interface DataSlice {
  stream: Readable;
  /** First byte served. */
  start: number;
  /** Last byte served, inclusive. */
  end: number;
  /** Bytes of the whole object. */
  total: number;
  /** Hex SHA-256 of the whole data, when known (our extension, stated to our ESS). */
  sha256: string | null;
  /** Whether the whole object is served (HTTP answers 200 rather than 206). */
  whole: boolean;
}

/** The acks an ESS sends about objects it published itself (ESS → CSS direction). */
export type UpstreamAck = 'ackreceived' | 'ackconsumed' | 'ackDeleted';

/** The CSS's conversation with one ESS. Every method commits what it decides before it resolves. */
export interface EssSession {
  readonly peer: DestinationRef;
  /** The ESS's destination record; null when it is not registered. */
  destination(): Promise<Destination | null>;
  register(action: RegistrationAction, opts: { persistent: boolean; communication: Communication }): Promise<RegistrationOutcome>;
  /**
   * What is queued for the ESS, oldest first, at most `limit` items. An update is marked as
   * served before it is returned (the ESS may hold it from now on), unless `markServed` is
   * false: a transport that pushes without knowing whether the ESS is there (MQTT: a message to
   * an ESS that is away is lost) leaves that to the ESS's first answer about the update
   * (`updated`, a data download, `received`), so that an object deleted meanwhile is not
   * announced as deleted to an ESS that never saw it.
   * `skip` sees each item before it is described (its object read): one it returns true for is
   * left out, so that a caller that has an item in hand already (MQTT: pushed, awaiting its
   * answer) does not pay for reading it again.
   * @throws FailedDependencyError when the ESS is not registered
   */
  /** `pushed`: the CSS reads on its own (an MQTT push round), which is no contact from the ESS. */
  pending(limit?: number, opts?: { markServed?: boolean; skip?: (item: PendingItemKey) => boolean; pushed?: boolean }): Promise<SyncItem[]>;
  /** Resolves when something may be queued for the ESS, after `ms`, or on `signal`; never rejects. */
  waitForWork(ms: number, signal?: AbortSignal): Promise<void>;
  /**
   * One range (or the whole) of the data of the instance `ref` names, as the ESS downloads it;
   * moves its record to `getdata`.
   * @throws NotFoundError (no record, no data) or ConflictError (another instance, deleted)
   */
  openData(ref: ObjectRef, range: ByteRange | undefined, signal: AbortSignal): Promise<DataSlice>;
  /** An ack or feedback about an object the CSS sent. [ref sync-protocol §3] */
  ack(ref: ObjectRef, action: SenderAck, feedback?: Feedback): Promise<AckOutcome>;
  /** The ESS asks for everything again. @throws FailedDependencyError when it is not registered */
  resend(): Promise<void>;
  /** `update` of an object the ESS published, with its metadata. */
  upstreamUpdate(ref: ObjectRef, meta: MetaData): Promise<AckOutcome>;
  /** Data (whole or one range) of an object the ESS published. */
  upstreamData(ref: ObjectRef, source: Readable, data: UpstreamData): Promise<AckOutcome>;
  /** `delete` of an object the ESS published. */
  upstreamDelete(ref: ObjectRef, meta: MetaData): Promise<AckOutcome>;
  upstreamAck(ref: ObjectRef, action: UpstreamAck): Promise<AckOutcome>;
}

/** The CSS engine: sessions by destination (looked up by key, never by listing an org). */
export interface CssSyncEngine {
  session(peer: DestinationRef): EssSession;
}
