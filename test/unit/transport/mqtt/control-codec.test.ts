/**
 * The MQTT control message [ref sync-protocol §2 "Message formats", traffic README obs. 14]:
 * every captured control payload decodes, and encoding what was decoded gives the captured
 * bytes back exactly, so a reference peer reads what we write as we read what it writes.
 */
import { describe, expect, it } from '@jest/globals';
import { emptyMetaData, type MetaData } from '../../../../lib/model/index.js';
import { ControlDecodeError, decodeControl, encodeControl, type ControlDecoded, type ControlMessage } from '../../../../lib/transport/mqtt/control-codec.js';
import { allMqttMessages } from '../../../helpers/mqtt-reference-traffic.js';

const controls = allMqttMessages().filter((m) => m.payload_text !== undefined);

function message(d: ControlDecoded): ControlMessage {
  if (d.kind !== 'message') throw new Error(`expected a message, got ${d.kind}: ${JSON.stringify(d.kind === 'invalid' ? d.error.message : d.detail)}`);
  return d.message;
}

function invalidReason(d: ControlDecoded): string {
  if (d.kind !== 'invalid') throw new Error(`expected invalid, got ${d.kind}`);
  expect(d.error).toBeInstanceOf(ControlDecodeError);
  return d.error.message;
}

const BIG = 1796426250129678848n;
const meta = (over: Partial<MetaData> = {}): MetaData => ({ ...emptyMetaData(), objectID: 'obj1', objectType: 'demo-b', destinationOrgID: 'myorg', ...over });

describe('MQTT control message codec', () => {
  it('holds the 50 control messages of the capture', () => {
    expect(controls.length).toBe(50);
  });

  it.each(controls.map((m) => [`${m.file} #${m.seq}`, m] as const))('decodes %s and encodes it back byte for byte', (_name, m) => {
    const text = m.payload_text!;
    expect(Buffer.byteLength(text)).toBe(m.bytes);
    const decoded = message(decodeControl(Buffer.from(text, 'utf8')));
    expect(encodeControl(decoded).toString('utf8')).toBe(text);
  });

  it('reads the captured fields: ids exact, offset, destination, persistent', () => {
    const [register] = controls;
    const reg = message(decodeControl(register!.payload_text!));
    expect(reg.command).toBe('register');
    expect(reg.persistent).toBe(true);
    expect(reg.destination).toEqual({ destinationOrgID: 'myorg', destinationType: 'edge', destinationID: 'node1', communication: 'mqtt', codeVersion: '1.0' });
    const update = message(decodeControl(controls.find((m) => m.file === 'mqtt-publish-to-node.jsonl' && m.seq === 1)!.payload_text!));
    expect(update.meta.instanceID).toBe(BIG);
    expect(update.meta.dataID).toBe(BIG);
    expect(update.meta.ownerID).toBe('myorg/admin');
    expect(update.offset).toBe(0n);
    const offsets = controls.filter((m) => m.file === 'mqtt-large.jsonl').map((m) => message(decodeControl(m.payload_text!))).filter((c) => c.command === 'getdata').map((c) => c.offset);
    expect(offsets.slice(0, 3)).toEqual([0n, 65536n, 131072n]);
  });

  it('leaves zero fields out as Go omitempty does, but always writes meta and destination', () => {
    const text = encodeControl({ command: 'regack' }).toString('utf8');
    expect(text).toBe(controls.find((m) => m.file === 'mqtt-register.jsonl' && m.seq === 4)!.payload_text);
    expect(text).not.toMatch(/"offset"|"persistent"|"feedback-code"|"retry"|"reason"/);
  });

  it('writes feedback fields with the reference names, in its order, and reads them back', () => {
    const bytes = encodeControl({ command: 'feedback', meta: meta(), feedbackCode: 507, feedbackFromOrigin: true, retry: 30, reason: 'disk <full> & more' });
    const text = bytes.toString('utf8');
    expect(text).toMatch(/"destination":\{[^}]*\},"feedback-code":507,"feedback-from-origin":true,"retry":30,"reason":"disk \\u003cfull\\u003e \\u0026 more"\}$/);
    expect(message(decodeControl(bytes))).toMatchObject({ command: 'feedback', feedbackCode: 507, feedbackFromOrigin: true, retry: 30, reason: 'disk <full> & more' });
  });

  it('carries ids and offsets beyond 2^53 exactly, both ways', () => {
    const ids = [2n ** 53n + 1n, 9223372036854775807n, -9223372036854775808n, BIG + 1n];
    for (const id of ids) {
      // -id - 1 maps the int64 maximum to the minimum and back.
      const dataID = -id - 1n;
      const bytes = encodeControl({ command: 'getdata', meta: meta({ instanceID: id, dataID }), offset: id });
      expect(bytes.toString('utf8')).toContain(`"instanceID":${id},"dataID":${dataID}`);
      expect(bytes.toString('utf8')).toContain(`"offset":${id},`);
      const back = message(decodeControl(bytes));
      expect([back.meta.instanceID, back.meta.dataID, back.offset]).toEqual([id, dataID, id]);
    }
  });

  it('matches keys case-insensitively and leaves absent or null fields at zero, as Go decodes', () => {
    const d = message(
      decodeControl('{"VERSION":{"major":1,"minor":0},"Command":"getdata","OFFSET":1796426250129678848,"meta":{"OBJECTID":"o","instanceid":5},"destination":null}'),
    );
    expect(d.command).toBe('getdata');
    expect(d.offset).toBe(BIG);
    expect(d.meta).toEqual({ ...emptyMetaData(), objectID: 'o', instanceID: 5n });
    expect(d.destination).toEqual({ destinationOrgID: '', destinationType: '', destinationID: '', communication: '', codeVersion: '' });
    expect(d).toMatchObject({ persistent: false, feedbackCode: 0, feedbackFromOrigin: false, retry: 0, reason: '' });
  });

  it('drops a message of another version, as the reference does, with a typed result', () => {
    for (const version of ['{"Major":1,"Minor":1}', '{"Major":2,"Minor":0}', '{}', 'null']) {
      const d = decodeControl(`{"version":${version},"command":"ping"}`);
      expect(d).toMatchObject({ kind: 'dropped', reason: 'unsupported-version' });
    }
    expect(decodeControl('{"command":"ping"}')).toMatchObject({ kind: 'dropped', reason: 'unsupported-version', detail: 'version 0.0, not 1.0' });
  });

  it('drops a command it does not know (data is binary, unregister is HTTP only)', () => {
    for (const command of ['data', 'unregister', 'Update', '']) {
      expect(decodeControl(`{"version":{"Major":1,"Minor":0},"command":${JSON.stringify(command)}}`)).toMatchObject({ kind: 'dropped', reason: 'unknown-command' });
    }
  });

  it('gives a typed error with the reason for garbage, truncated JSON and wrong types; it never throws', () => {
    const full = controls[0]!.payload_text!;
    expect(invalidReason(decodeControl(Buffer.from([0xff, 0xfe, 0x00, 0x01])))).toMatch(/^Invalid MQTT control message: not JSON/);
    expect(invalidReason(decodeControl(full.slice(0, full.length - 10)))).toMatch(/not JSON/);
    expect(invalidReason(decodeControl(''))).toMatch(/not JSON/);
    expect(invalidReason(decodeControl('[1,2]'))).toMatch(/cannot unmarshal array/);
    expect(invalidReason(decodeControl('{"version":{"Major":1,"Minor":0},"command":7}'))).toMatch(/messagePayload\.command of type string/);
    expect(invalidReason(decodeControl('{"version":{"Major":-1,"Minor":0},"command":"ping"}'))).toMatch(/uint32/);
    expect(invalidReason(decodeControl('{"version":{"Major":1,"Minor":0},"command":"getdata","offset":"12"}'))).toMatch(/offset of type int64/);
    expect(invalidReason(decodeControl('{"version":{"Major":1,"Minor":0},"command":"getdata","offset":99999999999999999999}'))).toMatch(/offset of type int64/);
    expect(invalidReason(decodeControl('{"version":{"Major":1,"Minor":0},"command":"feedback","retry":2147483648}'))).toMatch(/int32/);
    expect(invalidReason(decodeControl('{"version":{"Major":1,"Minor":0},"command":"update","meta":{"instanceID":"x"}}'))).toMatch(/MetaData\.instanceID of type int64/);
    expect(invalidReason(decodeControl('{"version":{"Major":1,"Minor":0},"command":"update","meta":{"destinationsList":[1]}}'))).toMatch(/string/);
    expect(invalidReason(decodeControl('{"version":{"Major":1,"Minor":0},"command":"register","destination":{"destinationID":3}}'))).toMatch(/Destination\.destinationID/);
    expect(invalidReason(decodeControl('{"version":{"Major":1,"Minor":0},"command":"ping"} trailing'))).toMatch(/not JSON/);
  });

  it('refuses to encode an offset beyond int64 or a retry beyond int32 (a caller bug), with RangeError', () => {
    expect(() => encodeControl({ command: 'getdata', offset: 2n ** 63n })).toThrow(RangeError);
    expect(() => encodeControl({ command: 'feedback', retry: 2 ** 31 + 5 })).toThrow(RangeError);
  });
});
