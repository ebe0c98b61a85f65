/**
 * The ESS side of the protocol engine talks to its CSS only through this port. The agent
 * (agent.ts) decides what to send and commits everything to the store; a link moves bytes:
 * HTTP (lib/transport/http: polls, ranged GETs, PUTs) or MQTT (lib/transport/mqtt: messages
 * pushed by the CSS, getdata windows, binary chunks). [ref sync-protocol §1–3]
 */
import type { Readable } from 'node:stream';
import type { ByteRange, MetaData } from '../../model/index.js';
import type { RegistrationOutcome } from '../css/types.js';
import type { Feedback } from '../sender-acks.js';

/** Which object instance and data a message is about. */
export interface EssObjectRef {
  objectType: string;
  objectID: string;
  instanceID: bigint;
  dataID: bigint;
}

/** Something the CSS sent this ESS: a poll entry (HTTP) or a control message (MQTT). */
export interface CssItem {
  /** `update`, `delete`, `received`, `consumed`, `deleted`, or a link's own extension type. */
  type: string;
  meta: MetaData;
  /** The object's data when the CSS sent it along (HTTP `?inline=`, our extension). */
  inline: { data: Buffer; sha256: string } | null;
  /** The SHA-256 the CSS states for the data of an update (our extension). */
  statedSha256?: string;
  /** Bytes on offer in an early-data entry (HTTP extension). */
  size?: number;
}

/** Messages the ESS sends about objects: acks of CSS objects and answers about its own. */
export type EssAction = 'updated' | 'received' | 'consumed' | 'ackDelete' | 'deleted' | 'ackreceived' | 'ackconsumed' | 'ackDeleted';

/** A range of an object's data, as the CSS sends it. */
export interface FetchedData {
  stream: Readable;
  /** First byte of `stream` within the object. */
  start: number;
  /** Bytes of the whole object, as the CSS states it. */
  total: number;
  /**
   * Hex SHA-256 of the whole data, when the CSS states it (our CSS does). Over MQTT it comes with
   * the data: read it once the stream has ended.
   */
  sha256?: string | undefined;
}

/** The answer to the `update` of an object this ESS published. */
export type PublishOutcome = 'taken' | 'stale' | 'refused';

/**
 * The answer to a `pushData` (HTTP):
 * - `taken`: the CSS stored the range;
 * - `notExpected`: the CSS expects no data of this instance (it lost or dropped the metadata);
 * - `resumeRefused`: the CSS will not continue the upload where this range starts (it lost its part);
 * - `refused`: anything else; retried later.
 */
export type PushOutcome = 'taken' | 'notExpected' | 'resumeRefused' | 'refused';

/** The `type` of a CssItem offering the data of an upload still arriving at the CSS (HTTP `?early=1`, our extension). */
export const EARLY_DATA_ITEM = 'edgesync-early';

/** Reads a range of the data of an object this ESS published, for a CSS that pulls (MQTT). */
export type OwnDataSource = (ref: EssObjectRef, range: ByteRange) => Promise<Readable | null>;

/** The CSS does not know this ESS (HTTP 424, MQTT `registerAsNew` to a ping): register again. */
export class NotRegisteredError extends Error {}

/** The CSS (or broker) refuses this ESS's credentials: nothing improves until an operator acts. */
export class CredentialsRefusedError extends Error {}

/**
 * The CSS did not serve the data asked for (`fetchData`):
 * - `unavailable`: it has none to give now (HTTP 404, 409: a newer instance or a deletion is on its way);
 * - `rangeRefused`: it refuses the range asked for (HTTP 416, 400): it holds fewer bytes than assumed;
 * - `rangeMismatch`: it answered with other bytes than those asked for.
 * The engine retries after RESEND_INTERVAL, from 0 after the last two.
 */
export class DataUnavailableError extends Error {
  constructor(
    message: string,
    readonly kind: 'unavailable' | 'rangeRefused' | 'rangeMismatch',
  ) {
    super(message);
  }
}

export interface CssLink {
  /** The CSS or broker address, for log lines and the health report. */
  readonly address: string;
  /** Whether `poll` may be held open (long-poll, or messages pushed by the CSS). */
  readonly holdsPolls: boolean;
  /**
   * Downloads of objects up to this many bytes cost the link no more than a light item (MQTT:
   * a few messages and one small chunk on the shared connection, no socket or stream of their
   * own), so the agent runs them with the light items, many at once. Absent: every download
   * counts against the agent's download concurrency.
   */
  readonly lightDownloadBytes?: number;
  /**
   * Items come as the CSS pushes them, each poll returning what arrived since the last (MQTT):
   * the agent polls again while earlier items are handled, instead of finishing a poll's items
   * first (item-pool.ts). Absent or false: a poll's items are all handled before the next poll.
   */
  readonly itemsPushed?: boolean;
  /** `register` with persistent storage. */
  register(): Promise<RegistrationOutcome>;
  registerNew(): Promise<void>;
  ping(): Promise<RegistrationOutcome>;
  /** Asks the CSS for everything again. @throws NotRegisteredError */
  resend(): Promise<void>;
  /**
   * What the CSS has for this ESS; with `holdS` > 0 waits up to that long for something.
   * An abort of `signal` ends the wait with what arrived (possibly nothing), not an error.
   * @throws NotRegisteredError when the CSS does not know this ESS
   */
  poll(opts: { holdS: number; signal: AbortSignal }): Promise<CssItem[]>;
  /**
   * The data of `ref`, whole or `range` of it (the CSS may answer a range with the whole data:
   * `start` then says 0).
   * @throws DataUnavailableError, NotRegisteredError
   */
  fetchData(ref: EssObjectRef, meta: MetaData, range: ByteRange | undefined, signal: AbortSignal): Promise<FetchedData>;
  /**
   * One action about an object; `body` is the MetaData some actions carry (`deleted`).
   * @returns false when the CSS did not take it (retry later)
   * @throws NotRegisteredError
   */
  send(ref: EssObjectRef, action: EssAction, body?: MetaData): Promise<boolean>;
  feedback(ref: EssObjectRef, feedback: Feedback): Promise<void>;
  /** The `update` of an object published on this ESS. */
  publish(meta: MetaData): Promise<PublishOutcome>;
  /** The `delete` of an object published on this ESS. @returns false when not taken */
  publishDelete(meta: MetaData): Promise<boolean>;
  /**
   * HTTP: the ESS pushes the data of what it published (`pushData`). MQTT: the CSS pulls it,
   * and the link answers its requests from `source`.
   */
  readonly pushesData: boolean;
  /**
   * Sends `range` of the data of `ref` (whole when the range covers all `total` bytes), read
   * from `source`; `sha256` is the whole data's digest, stated to the CSS when known.
   * @throws NotRegisteredError
   */
  pushData?(ref: EssObjectRef, source: Readable, range: ByteRange & { total: number }, sha256: string | null): Promise<PushOutcome>;
  serveData?(source: OwnDataSource): void;
  /**
   * The data offered by an EARLY_DATA_ITEM, from its start (HTTP extension); null when the CSS
   * no longer offers it. Absent: the link never brings such items.
   */
  fetchEarly?(meta: MetaData, signal: AbortSignal): Promise<Readable | null>;
  /**
   * The log line for a failure only an operator can mend (refused credentials, an untrusted
   * certificate), naming the settings to fix; undefined for a passing one (the CSS unreachable).
   * Absent: a CredentialsRefusedError is the only such failure.
   */
  operatorAction?(err: unknown): string | undefined;
  /** Ends every request in flight and releases connections. */
  close(): Promise<void>;
}
