/**
 * The MQTT control message: compact JSON, as the reference's `json.Marshal(messagePayload)`
 * writes it and `json.Unmarshal` reads it. [ref sync-protocol §2 "Message formats", traffic
 * README obs. 14]
 *
 *   {"version":{"Major":1,"Minor":0},"command":…,"meta":{32 MetaData keys},"offset":int64,
 *    "destination":{…5 keys},"persistent":true,"feedback-code":int,"feedback-from-origin":true,
 *    "retry":int32,"reason":"…"}
 *
 * `meta` and `destination` are always written (Go's omitempty never drops a struct); the other
 * fields are `omitempty`, so a zero is left out. Decoding follows Go's decoder: keys match
 * case-insensitively, absent or null fields stay zero, a value of the wrong type makes the
 * whole message invalid, and a version other than exactly 1.0 is dropped.
 */
import {
  decodeFields,
  decodeObjectUpdate,
  emptyMetaData,
  DecodeError,
  EdgesyncError,
  orderedMetaData,
  parseJson,
  stringifyJson,
  type MetaData,
} from '../../model/index.js';

/** The commands of the control message, spelled as the reference spells them. [ref sync-protocol §3] */
export const CONTROL_COMMANDS = [
  'update',
  'updated',
  'consumed',
  'ackconsumed',
  'received',
  'ackreceived',
  'delete',
  'ackDelete',
  'deleted',
  'ackDeleted',
  'getdata',
  'resend',
  'ackresend',
  'register',
  'regack',
  'registerNew',
  'registerAsNew',
  'ping',
  'feedback',
] as const;

export type ControlCommand = (typeof CONTROL_COMMANDS)[number];

const COMMANDS: ReadonlySet<string> = new Set(CONTROL_COMMANDS);

export function isControlCommand(value: string): value is ControlCommand {
  return COMMANDS.has(value);
}

/** Who is registering (register, registerNew, ping) or asking for a resend. Go's common.Destination. */
export interface ControlDestination {
  destinationOrgID: string;
  destinationType: string;
  destinationID: string;
  /** `mqtt` or `http` as the reference writes it. */
  communication: string;
  /** The peer's code version, `1.0` for the reference. */
  codeVersion: string;
}

/** A decoded control message; every field is present, zero when the wire left it out. */
export interface ControlMessage {
  command: ControlCommand;
  meta: MetaData;
  /** The chunk a `getdata` asks for. Go int64. */
  offset: bigint;
  destination: ControlDestination;
  /** register/registerNew: the ESS keeps its state across restarts. */
  persistent: boolean;
  /** feedback: the error code (Go int). */
  feedbackCode: number;
  /** feedback: sent by the object's origin (so about the receiver's record), not by its receiver. */
  feedbackFromOrigin: boolean;
  /** feedback: seconds before a retry (Go int32). */
  retry: number;
  /** feedback: the reason, for the log. */
  reason: string;
}

/** What `encodeControl` takes: the command, and whichever fields are not zero. */
export type ControlInput = { command: ControlCommand } & Partial<Omit<ControlMessage, 'command' | 'destination'>> & {
    destination?: Partial<ControlDestination>;
  };

/** The protocol version of both message kinds. [ref common.Version] */
export const PROTOCOL_VERSION = { major: 1, minor: 0 } as const;

const INT32_MAX = 2 ** 31 - 1;
const UINT32_MAX = 2 ** 32 - 1;

export function emptyDestination(): ControlDestination {
  return { destinationOrgID: '', destinationType: '', destinationID: '', communication: '', codeVersion: '' };
}

/** Compact JSON as Go's json.Marshal writes it: `<`, `>`, `&`, U+2028 and U+2029 escaped. */
function goCompactJson(value: unknown): string {
  return stringifyJson(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * The control message's bytes, keys in the reference's order.
 * @throws RangeError for an offset beyond int64 or a retry beyond int32 (a caller's bug)
 */
export function encodeControl(input: ControlInput): Buffer {
  const offset = input.offset ?? 0n;
  if (offset < -(2n ** 63n) || offset >= 2n ** 63n) throw new RangeError(`offset ${offset} is not an int64`);
  const retry = input.retry ?? 0;
  if (!Number.isInteger(retry) || Math.abs(retry) > INT32_MAX + 1) throw new RangeError(`retry ${retry} is not an int32`);
  const dest = { ...emptyDestination(), ...input.destination };
  const body: Record<string, unknown> = {
    version: { Major: PROTOCOL_VERSION.major, Minor: PROTOCOL_VERSION.minor },
    command: input.command,
    meta: orderedMetaData(input.meta ?? emptyMetaData()),
  };
  if (offset !== 0n) body.offset = offset;
  body.destination = {
    destinationOrgID: dest.destinationOrgID,
    destinationType: dest.destinationType,
    destinationID: dest.destinationID,
    communication: dest.communication,
    codeVersion: dest.codeVersion,
  };
  if (input.persistent === true) body.persistent = true;
  if (input.feedbackCode !== undefined && input.feedbackCode !== 0) body['feedback-code'] = input.feedbackCode;
  if (input.feedbackFromOrigin === true) body['feedback-from-origin'] = true;
  if (retry !== 0) body.retry = retry;
  if (input.reason !== undefined && input.reason !== '') body.reason = input.reason;
  return Buffer.from(goCompactJson(body), 'utf8');
}

/** Why a payload is not a control message we can act on. */
export class ControlDecodeError extends EdgesyncError {
  constructor(reason: string) {
    super('bad_request', 400, `Invalid MQTT control message: ${reason}`);
  }
}

/** What `decodeControl` makes of a payload; it never throws. */
export type ControlDecoded =
  | { kind: 'message'; message: ControlMessage }
  /**
   * Well-formed, but the reference would not act on it: another protocol version (it drops
   * those [ref mqttCommunication parseMessage]) or a command it does not know.
   */
  | { kind: 'dropped'; reason: 'unsupported-version' | 'unknown-command'; detail: string }
  /** Not JSON, or a field of the wrong type (Go's Unmarshal fails, the reference drops it too). */
  | { kind: 'invalid'; error: ControlDecodeError };

const TOP_SCHEMA = {
  version: 'object',
  command: 'string',
  meta: 'object',
  offset: 'int64',
  destination: 'object',
  persistent: 'bool',
  'feedback-code': 'int',
  'feedback-from-origin': 'bool',
  retry: 'int',
  reason: 'string',
} as const;

const DESTINATION_SCHEMA = { destinationOrgID: 'string', destinationType: 'string', destinationID: 'string', communication: 'string', codeVersion: 'string' } as const;

function uint32(v: unknown, where: string): number {
  if (v === undefined) return 0;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > UINT32_MAX) throw new DecodeError(`json: cannot unmarshal ${typeof v === 'number' ? `number ${v}` : typeof v} into Go struct field ${where} of type uint32`);
  return v;
}

function decodeMeta(raw: unknown): MetaData {
  if (raw === undefined) return emptyMetaData();
  try {
    return decodeObjectUpdate({ meta: raw }).meta;
  } catch (e) {
    // decodeObjectUpdate words its errors for the REST API; keep only Go's complaint.
    if (e instanceof EdgesyncError) throw new DecodeError(e.message.replace(/^Invalid JSON for update\. Error: /, ''));
    throw e;
  }
}

/** Reads a control message (the payload of a message that `isDataMessage` refused). */
export function decodeControl(payload: Buffer | string): ControlDecoded {
  const text = typeof payload === 'string' ? payload : payload.toString('utf8');
  let parsed: unknown;
  try {
    parsed = parseJson(text);
  } catch (e) {
    return { kind: 'invalid', error: new ControlDecodeError(`not JSON (${e instanceof Error ? e.message : String(e)})`) };
  }
  try {
    const top = decodeFields(parsed, TOP_SCHEMA, 'messagePayload');
    const version = top.version === undefined ? {} : decodeFields(top.version, { Major: 'any', Minor: 'any' }, 'SyncServiceVersion');
    const major = uint32(version.Major, 'messagePayload.version.Major');
    const minor = uint32(version.Minor, 'messagePayload.version.Minor');
    const retry = (top.retry as number | undefined) ?? 0;
    if (retry > INT32_MAX || retry < -INT32_MAX - 1) throw new DecodeError(`json: cannot unmarshal number ${retry} into Go struct field messagePayload.retry of type int32`);
    const destination = { ...emptyDestination(), ...(top.destination === undefined ? {} : decodeFields(top.destination, DESTINATION_SCHEMA, 'Destination')) };
    const meta = decodeMeta(top.meta);
    // [ref mqttCommunication parseMessage] the version check comes after a successful Unmarshal.
    if (major !== PROTOCOL_VERSION.major || minor !== PROTOCOL_VERSION.minor) {
      return { kind: 'dropped', reason: 'unsupported-version', detail: `version ${major}.${minor}, not ${PROTOCOL_VERSION.major}.${PROTOCOL_VERSION.minor}` };
    }
    const command = (top.command as string | undefined) ?? '';
    if (!isControlCommand(command)) return { kind: 'dropped', reason: 'unknown-command', detail: `command ${JSON.stringify(command)}` };
    return {
      kind: 'message',
      message: {
        command,
        meta,
        offset: (top.offset as bigint | undefined) ?? 0n,
        destination,
        persistent: (top.persistent as boolean | undefined) ?? false,
        feedbackCode: (top['feedback-code'] as number | undefined) ?? 0,
        feedbackFromOrigin: (top['feedback-from-origin'] as boolean | undefined) ?? false,
        retry,
        reason: (top.reason as string | undefined) ?? '',
      },
    };
  } catch (e) {
    if (e instanceof DecodeError) return { kind: 'invalid', error: new ControlDecodeError(e.message) };
    return { kind: 'invalid', error: new ControlDecodeError(e instanceof Error ? e.message : String(e)) };
  }
}
