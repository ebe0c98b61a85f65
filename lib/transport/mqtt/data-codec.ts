/**
 * The MQTT binary data message: one chunk of an object's data. [ref sync-protocol §2 "Message
 * formats", traffic README obs. 15; ref notificationHandler buildDataMessage/parseDataMessage]
 *
 *   u32 magic 0x01010101 | u32 major 1 | u32 minor 0 | u32 field count 6
 *   then TLVs (u32 type | u32 length | bytes), in the reference's order:
 *   1 orgID, 2 objectType, 3 objectID, 4 offset (int64), 6 instanceID (int64), 5 data
 *
 * All integers big-endian. The reference writes its whole chunk buffer after the data TLV, so
 * every message it sends is zero-padded to the chunk size; its reader takes the TLV lengths and
 * ignores what follows the last field, so we send no padding (an unpadded message is read the
 * same) and ignore whatever trails on receipt. Unknown TLV types are skipped, as the reference
 * skips them.
 *
 * Our extension: a message may carry the SHA-256 of the object's whole data (TLV type
 * 0x45530001, 32 bytes, before the data), so that our ESS checks what it downloaded over MQTT as
 * it does over HTTP; a reference peer skips the field.
 */
import { EdgesyncError } from '../../model/index.js';
import { PROTOCOL_VERSION } from './control-codec.js';

export const DATA_MAGIC = 0x01010101;

const FIELD_COUNT = 6;
/** TLV types; DataSha256 is ours, far from the reference's small numbers. */
const Field = { OrgID: 1, ObjectType: 2, ObjectID: 3, Offset: 4, Data: 5, InstanceID: 6, DataSha256: 0x45530001 } as const;
const SHA256_BYTES = 32;
type FieldType = (typeof Field)[keyof typeof Field];
const HEADER_BYTES = 16;
const TLV_HEADER_BYTES = 8;
const INT64_BYTES = 8;
const UINT32_MAX = 2 ** 32 - 1;

/** One chunk of an object's data, with what names it. */
export interface DataMessage {
  orgID: string;
  objectType: string;
  objectID: string;
  /** Where the chunk starts in the object. Go int64. */
  offset: bigint;
  /** The object instance the chunk belongs to. Go int64. */
  instanceID: bigint;
  /**
   * The chunk (never a whole object: at most the chunk size). A decoded message's data is a
   * view into the payload, not a copy.
   */
  data: Buffer;
  /** Lower-case hex SHA-256 of the object's whole data, when the sender states it (our extension). */
  sha256?: string;
}

/** Why a payload that starts as a data message cannot be read as one. */
export class DataDecodeError extends EdgesyncError {
  constructor(reason: string) {
    super('bad_request', 400, `Invalid MQTT data message: ${reason}`);
  }
}

/** What `decodeData` makes of a payload; it never throws. */
export type DataDecoded =
  | { kind: 'message'; message: DataMessage }
  /** Another protocol version: the reference refuses it ("Wrong data version"). */
  | { kind: 'dropped'; reason: 'unsupported-version'; detail: string }
  | { kind: 'invalid'; error: DataDecodeError };

/** True when a payload is a data message rather than a control message: it starts `01 01 01 01`. [ref parseMessage] */
export function isDataMessage(payload: Buffer): boolean {
  return payload.length >= 4 && payload.readUInt32BE(0) === DATA_MAGIC;
}

/**
 * Bytes a data message adds around its data: to size chunks under a broker's packet limit. With
 * `withSha256`, the message states the data's SHA-256 (our extension): 40 bytes more.
 */
export function dataMessageOverhead(orgID: string, objectType: string, objectID: string, withSha256 = false): number {
  const strings = Buffer.byteLength(orgID) + Buffer.byteLength(objectType) + Buffer.byteLength(objectID);
  const digest = withSha256 ? TLV_HEADER_BYTES + SHA256_BYTES : 0;
  return HEADER_BYTES + FIELD_COUNT * TLV_HEADER_BYTES + strings + 2 * INT64_BYTES + digest;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

function int64(v: bigint, what: string): bigint {
  if (v < -(2n ** 63n) || v >= 2n ** 63n) throw new RangeError(`${what} ${v} is not an int64`);
  return v;
}

/**
 * The message's bytes, fields in the reference's order, without padding.
 * @throws RangeError for an offset or instanceID beyond int64 (a caller's bug)
 */
export function encodeData(msg: DataMessage): Buffer {
  const { message, data } = allocDataMessage(msg, msg.data.length);
  msg.data.copy(data);
  return message;
}

/**
 * A data message with room for `dataLength` bytes of data, everything but the data written: the
 * caller fills `data`, a view of the message's last `dataLength` bytes. A chunk is read straight
 * into the message that carries it, with no copy of its own.
 * @throws RangeError for an offset or instanceID beyond int64, or a chunk beyond 4 GiB (a caller's bug)
 */
export function allocDataMessage(fields: Omit<DataMessage, 'data'>, dataLength: number): { message: Buffer; data: Buffer } {
  const org = Buffer.from(fields.orgID, 'utf8');
  const type = Buffer.from(fields.objectType, 'utf8');
  const id = Buffer.from(fields.objectID, 'utf8');
  if (!Number.isSafeInteger(dataLength) || dataLength < 0 || dataLength > UINT32_MAX) throw new RangeError(`a chunk of ${dataLength} bytes does not fit a data message`);
  const digest = fields.sha256 !== undefined ? fields.sha256.toLowerCase() : undefined;
  if (digest !== undefined && !SHA256_HEX.test(digest)) throw new RangeError(`${fields.sha256 ?? ''} is not a hex SHA-256`);
  const out = Buffer.allocUnsafe(dataMessageOverhead(fields.orgID, fields.objectType, fields.objectID, digest !== undefined) + dataLength);
  let at = 0;
  const u32 = (v: number): void => {
    at = out.writeUInt32BE(v, at);
  };
  const tlv = (field: FieldType, value: Buffer): void => {
    u32(field);
    u32(value.length);
    at += value.copy(out, at);
  };
  const tlvInt64 = (field: FieldType, value: bigint): void => {
    u32(field);
    u32(INT64_BYTES);
    at = out.writeBigInt64BE(value, at);
  };
  u32(DATA_MAGIC);
  u32(PROTOCOL_VERSION.major);
  u32(PROTOCOL_VERSION.minor);
  u32(FIELD_COUNT + (digest !== undefined ? 1 : 0));
  tlv(Field.OrgID, org);
  tlv(Field.ObjectType, type);
  tlv(Field.ObjectID, id);
  tlvInt64(Field.Offset, int64(fields.offset, 'offset'));
  tlvInt64(Field.InstanceID, int64(fields.instanceID, 'instanceID'));
  if (digest !== undefined) tlv(Field.DataSha256, Buffer.from(digest, 'hex'));
  u32(Field.Data);
  u32(dataLength);
  return { message: out, data: out.subarray(at) };
}

/** Reads a data message; what trails the last field (the reference's padding) is ignored. */
export function decodeData(payload: Buffer): DataDecoded {
  const invalid = (reason: string): DataDecoded => ({ kind: 'invalid', error: new DataDecodeError(reason) });
  if (payload.length < HEADER_BYTES) return invalid(`${payload.length} bytes, shorter than the ${HEADER_BYTES}-byte header`);
  if (payload.readUInt32BE(0) !== DATA_MAGIC) return invalid('no magic number');
  const major = payload.readUInt32BE(4);
  const minor = payload.readUInt32BE(8);
  if (major !== PROTOCOL_VERSION.major || minor !== PROTOCOL_VERSION.minor) {
    return { kind: 'dropped', reason: 'unsupported-version', detail: `version ${major}.${minor}, not ${PROTOCOL_VERSION.major}.${PROTOCOL_VERSION.minor}` };
  }
  const count = payload.readUInt32BE(12);
  let at = HEADER_BYTES;
  let orgID = '';
  let objectType = '';
  let objectID = '';
  let offset = 0n;
  let instanceID = 0n;
  let data: Buffer | null = null;
  let sha256: string | undefined;
  // Each field takes at least its 8-byte header, so `count` cannot make this loop run long.
  for (let i = 0; i < count; i++) {
    if (at + TLV_HEADER_BYTES > payload.length) return invalid(`field ${i + 1} of ${count} is cut short`);
    const type = payload.readUInt32BE(at);
    const length = payload.readUInt32BE(at + 4);
    at += TLV_HEADER_BYTES;
    if (at + length > payload.length) return invalid(`field type ${type} claims ${length} bytes, ${payload.length - at} are left`);
    const value = payload.subarray(at, at + length);
    at += length;
    switch (type) {
      case Field.OrgID:
        orgID = value.toString('utf8');
        break;
      case Field.ObjectType:
        objectType = value.toString('utf8');
        break;
      case Field.ObjectID:
        objectID = value.toString('utf8');
        break;
      case Field.Offset:
      case Field.InstanceID:
        if (length !== INT64_BYTES) return invalid(`the ${type === Field.Offset ? 'offset' : 'instance ID'} field is ${length} bytes, not ${INT64_BYTES}`);
        if (type === Field.Offset) offset = value.readBigInt64BE(0);
        else instanceID = value.readBigInt64BE(0);
        break;
      case Field.Data:
        data = value;
        break;
      case Field.DataSha256:
        if (length !== SHA256_BYTES) return invalid(`the SHA-256 field is ${length} bytes, not ${SHA256_BYTES}`);
        sha256 = value.toString('hex');
        break;
      default:
        // [ref parseDataMessage] an unknown field is skipped: the format is extensible.
        break;
    }
  }
  // [ref parseDataMessage] the same three requirements: a type, an id, a data field.
  if (objectType === '' || objectID === '' || data === null) return invalid('the object type, object ID or data field is missing');
  return { kind: 'message', message: { orgID, objectType, objectID, offset, instanceID, data, ...(sha256 !== undefined ? { sha256 } : {}) } };
}
