/**
 * The MQTT binary data message [ref sync-protocol §2 "Message formats", traffic README obs. 15].
 * The capture keeps only the first 512 bytes of each data message; each one is rebuilt at its
 * captured size (the captured bytes, then zeros: the rest of the data is unknown, the padding is
 * zeros anyway), so what is checked is the header, the fields and the ignored padding.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { DATA_MAGIC, DataDecodeError, allocDataMessage, dataMessageOverhead, decodeData, encodeData, isDataMessage, type DataDecoded, type DataMessage } from '../../../../lib/transport/mqtt/data-codec.js';
import { allMqttMessages, type CapturedMqttMessage } from '../../../helpers/mqtt-reference-traffic.js';

const captured = allMqttMessages().filter((m) => m.payload_hex !== undefined);

function message(d: DataDecoded): DataMessage {
  if (d.kind !== 'message') throw new Error(`expected a message, got ${d.kind}: ${d.kind === 'invalid' ? d.error.message : d.detail}`);
  return d.message;
}

function invalidReason(d: DataDecoded): string {
  if (d.kind !== 'invalid') throw new Error(`expected invalid, got ${d.kind}`);
  expect(d.error).toBeInstanceOf(DataDecodeError);
  return d.error.message;
}

/** The captured message at its full size: its first 512 bytes, then zeros. */
function rebuilt(m: CapturedMqttMessage): Buffer {
  const whole = Buffer.alloc(m.bytes);
  Buffer.from(m.payload_hex!, 'hex').copy(whole);
  return whole;
}

const field = (m: CapturedMqttMessage, name: string): CapturedMqttMessage['decoded'] extends infer D ? (D extends { tlv: (infer T)[] } ? T : never) : never =>
  m.decoded!.tlv.find((t) => t.name === name)!;

const chunk: DataMessage = { orgID: 'myorg', objectType: 'demo-b', objectID: 'obj1', offset: 65536n, instanceID: 1796426250129678848n, data: randomBytes(3072) };

describe('MQTT data message codec', () => {
  it('holds the 22 data messages of the capture, each padded by the reference to the 65536-byte chunk', () => {
    expect(captured.length).toBe(22);
    for (const m of captured) {
      const data = field(m, 'data');
      expect(m.bytes - m.decoded!.trailing_bytes_after_tlvs - data.len).toBe(m.bytes - 65536);
    }
  });

  it.each(captured.map((m) => [`${m.file} #${m.seq}`, m] as const))('decodes the header of %s to the captured fields', (_name, m) => {
    const payload = rebuilt(m);
    expect(isDataMessage(payload)).toBe(true);
    const d = message(decodeData(payload));
    expect(d.orgID).toBe(field(m, 'orgID').value);
    expect(d.objectType).toBe(field(m, 'objectType').value);
    expect(d.objectID).toBe(field(m, 'objectID').value);
    expect(d.offset).toBe(BigInt(field(m, 'offset').value as string));
    expect(d.instanceID).toBe(BigInt(field(m, 'instanceID').value as string));
    expect(d.data.length).toBe(field(m, 'data').len);
    // The reference's padding is not data.
    const overhead = dataMessageOverhead(d.orgID, d.objectType, d.objectID);
    expect(overhead + d.data.length + m.decoded!.trailing_bytes_after_tlvs).toBe(m.bytes);
    // What we send is the reference's message without its padding: the same header bytes.
    const ours = encodeData(d);
    expect(ours.length).toBe(overhead + d.data.length);
    // Buffer.equals: jest's deep equality walks 64 KiB byte by byte.
    expect(ours.equals(payload.subarray(0, ours.length))).toBe(true);
  });

  it('writes the reference layout: magic, version 1.0, 6 fields in the order 1 2 3 4 6 5, big-endian', () => {
    const bytes = encodeData({ ...chunk, data: Buffer.from('hi') });
    expect(bytes.toString('hex')).toBe(
      [
        '01010101', '00000001', '00000000', '00000006',
        '00000001', '00000005', Buffer.from('myorg').toString('hex'),
        '00000002', '00000006', Buffer.from('demo-b').toString('hex'),
        '00000003', '00000004', Buffer.from('obj1').toString('hex'),
        '00000004', '00000008', '0000000000010000',
        '00000006', '00000008', '18ee3028182aa200',
        '00000005', '00000002', '6869',
      ].join(''),
    );
    expect(bytes.readUInt32BE(0)).toBe(DATA_MAGIC);
  });

  it('round-trips a chunk, with ids and offsets beyond 2^53 and at the int64 limits', () => {
    for (const id of [2n ** 53n + 1n, 9223372036854775807n, -9223372036854775808n, 0n]) {
      const back = message(decodeData(encodeData({ ...chunk, offset: id, instanceID: -id - 1n })));
      expect(back).toEqual({ ...chunk, offset: id, instanceID: -id - 1n });
    }
    expect(message(decodeData(encodeData({ ...chunk, orgID: '', objectID: 'nœud/ü', data: Buffer.alloc(0) })))).toEqual({ ...chunk, orgID: '', objectID: 'nœud/ü', data: Buffer.alloc(0) });
  });

  it('ignores trailing padding and skips fields of unknown type', () => {
    const plain = encodeData(chunk);
    expect(message(decodeData(Buffer.concat([plain, Buffer.alloc(62464)])))).toEqual(chunk);
    // An extension field (type 99) before the data, and the count raised to 7.
    const extra = Buffer.alloc(8 + 3);
    extra.writeUInt32BE(99, 0);
    extra.writeUInt32BE(3, 4);
    const dataAt = plain.length - chunk.data.length - 8;
    const extended = Buffer.concat([plain.subarray(0, dataAt), extra, plain.subarray(dataAt)]);
    extended.writeUInt32BE(7, 12);
    expect(message(decodeData(extended))).toEqual(chunk);
  });

  it('tells a data message from a control message by its first four bytes', () => {
    expect(isDataMessage(Buffer.from('{"version":{"Major":1,"Minor":0}}'))).toBe(false);
    expect(isDataMessage(Buffer.from([1, 1, 1]))).toBe(false);
    expect(isDataMessage(Buffer.from([1, 1, 1, 1]))).toBe(true);
  });

  it('drops another version with a typed result', () => {
    const bytes = encodeData(chunk);
    bytes.writeUInt32BE(2, 4);
    expect(decodeData(bytes)).toEqual({ kind: 'dropped', reason: 'unsupported-version', detail: 'version 2.0, not 1.0' });
    bytes.writeUInt32BE(1, 4);
    bytes.writeUInt32BE(1, 8);
    expect(decodeData(bytes)).toMatchObject({ kind: 'dropped', reason: 'unsupported-version' });
  });

  it('gives a typed error, never a throw, for garbage and for every truncation of a message', () => {
    expect(invalidReason(decodeData(Buffer.from([1, 1, 1, 1, 0])))).toMatch(/shorter than the 16-byte header/);
    expect(invalidReason(decodeData(Buffer.from('not a data message at all')))).toMatch(/no magic number/);
    const bytes = encodeData({ ...chunk, data: Buffer.from('0123456789') });
    for (let n = 0; n < bytes.length; n++) {
      const d = decodeData(bytes.subarray(0, n));
      expect(d.kind).toBe('invalid');
    }
    for (let i = 0; i < 200; i++) {
      // A valid magic and version, then random bytes: field counts, lengths, types.
      const junk = randomBytes(12 + (i % 64));
      junk.writeUInt32BE(DATA_MAGIC, 0);
      junk.writeUInt32BE(1, 4);
      junk.writeUInt32BE(0, 8);
      expect(['invalid', 'dropped', 'message']).toContain(decodeData(junk).kind);
    }
  });

  it('refuses a field count that promises more than the message holds, an int64 of the wrong size and a missing field', () => {
    const bytes = encodeData(chunk);
    bytes.writeUInt32BE(0xffffffff, 12);
    expect(invalidReason(decodeData(bytes))).toMatch(/field 7 of 4294967295 is cut short/);
    const wrongSize = encodeData(chunk);
    const offsetLenAt = 16 + 8 + 5 + 8 + 6 + 8 + 4 + 4;
    expect(wrongSize.readUInt32BE(offsetLenAt - 4)).toBe(4);
    wrongSize.writeUInt32BE(4, offsetLenAt);
    expect(invalidReason(decodeData(wrongSize))).toMatch(/offset field is 4 bytes, not 8/);
    const noData = encodeData(chunk);
    noData.writeUInt32BE(5, 12);
    expect(invalidReason(decodeData(noData))).toMatch(/data field is missing/);
    expect(invalidReason(decodeData(encodeData({ ...chunk, objectID: '' })))).toMatch(/missing/);
  });

  it('refuses to encode ids beyond int64 (a caller bug), with RangeError', () => {
    expect(() => encodeData({ ...chunk, offset: 2n ** 63n })).toThrow(RangeError);
    expect(() => encodeData({ ...chunk, instanceID: -(2n ** 63n) - 1n })).toThrow(RangeError);
  });

  it('builds a message around room for its data: filled in place, the same bytes as encodeData', () => {
    const { message, data } = allocDataMessage({ orgID: chunk.orgID, objectType: chunk.objectType, objectID: chunk.objectID, offset: chunk.offset, instanceID: chunk.instanceID }, chunk.data.length);
    expect(data.length).toBe(chunk.data.length);
    // The room is the message's own last bytes: what is written there is in the message.
    expect(data.buffer).toBe(message.buffer);
    expect(data.byteOffset + data.length).toBe(message.byteOffset + message.length);
    chunk.data.copy(data);
    expect(message.equals(encodeData(chunk))).toBe(true);
    expect(message.length).toBe(dataMessageOverhead(chunk.orgID, chunk.objectType, chunk.objectID) + chunk.data.length);
  });

  it('refuses room for a chunk no message can carry, and a negative one', () => {
    const fields = { orgID: 'o', objectType: 't', objectID: 'i', offset: 0n, instanceID: 1n };
    expect(() => allocDataMessage(fields, 2 ** 32)).toThrow(RangeError);
    expect(() => allocDataMessage(fields, -1)).toThrow(RangeError);
  });

  it("carries the data's SHA-256 in a field of our own, which a reference reader skips", () => {
    const digest = 'ab'.repeat(32);
    const ours = encodeData({ ...chunk, sha256: digest.toUpperCase() });
    expect(ours.length).toBe(dataMessageOverhead(chunk.orgID, chunk.objectType, chunk.objectID, true) + chunk.data.length);
    const back = message(decodeData(ours));
    expect(back.sha256).toBe(digest);
    expect(back.data.equals(chunk.data)).toBe(true);
    // The reference's six fields as before, and ours: a field count of 7, the data last.
    expect(ours.readUInt32BE(12)).toBe(7);
    expect(ours.subarray(ours.length - chunk.data.length).equals(chunk.data)).toBe(true);
    // Without a digest, the reference's message exactly.
    expect(message(decodeData(encodeData(chunk))).sha256).toBeUndefined();
    expect(encodeData(chunk).readUInt32BE(12)).toBe(6);
  });

  it('refuses a SHA-256 field of the wrong size, and encoding a digest that is not one', () => {
    const ours = encodeData({ ...chunk, sha256: 'cd'.repeat(32) });
    // The field's length word follows its type (0x45530001), found after the int64 fields.
    const at = ours.indexOf(Buffer.from([0x45, 0x53, 0x00, 0x01]));
    const bad = Buffer.from(ours);
    bad.writeUInt32BE(16, at + 4);
    expect(invalidReason(decodeData(bad))).toMatch(/SHA-256 field is 16 bytes/);
    expect(() => encodeData({ ...chunk, sha256: 'not hex' })).toThrow(RangeError);
  });
});
