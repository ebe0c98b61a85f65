/**
 * The ESS answering the CSS's `getdata` for the objects it published
 * (lib/transport/mqtt/ess-data-server.ts): each answer is the chunk asked for, of the size the
 * request states within what a message carries; the requests of one object are answered in order
 * from one opening of its data; what the ESS does not hold is answered with feedback code 5.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from '@jest/globals';
import { emptyMetaData, type ByteRange, type MetaData } from '../../../../lib/model/index.js';
import type { ControlInput, ControlMessage } from '../../../../lib/transport/mqtt/control-codec.js';
import { decodeData, type DataMessage } from '../../../../lib/transport/mqtt/data-codec.js';
import { EssDataServer } from '../../../../lib/transport/mqtt/ess-data-server.js';

const noop = (): void => undefined;

function getdata(meta: MetaData, offset: number): ControlMessage {
  return { command: 'getdata', meta, offset: BigInt(offset) } as ControlMessage;
}

function metaOf(id: string, size: number, chunkSize: number): MetaData {
  return { ...emptyMetaData(), objectType: 'up', objectID: id, destinationOrgID: 'myorg', objectSize: size, chunkSize, instanceID: 3n };
}

function server(data: Map<string, Buffer>) {
  const sent: { topic: string; message: DataMessage }[] = [];
  const controls: ControlInput[] = [];
  const opened: { id: string; range: ByteRange }[] = [];
  const s = new EssDataServer({
    orgID: 'myorg',
    destinationType: 'edge',
    destinationID: 'node1',
    publish: (topic, payload) => {
      const d = decodeData(payload);
      if (d.kind !== 'message') throw new Error('not a data message');
      sent.push({ topic, message: d.message });
      return Promise.resolve();
    },
    sendControl: (input) => {
      controls.push(input);
      return Promise.resolve();
    },
    maxPayload: () => 1024 * 1024,
    log: { debug: noop, warn: noop },
  });
  s.serve((ref, range) => {
    const bytes = data.get(ref.objectID);
    if (bytes === undefined) return Promise.resolve(null);
    opened.push({ id: ref.objectID, range });
    // In small parts, as a file is read.
    const parts: Buffer[] = [];
    for (let at = range.start; at <= range.end; at += 700) parts.push(bytes.subarray(at, Math.min(at + 700, range.end + 1)));
    return Promise.resolve(Readable.from(parts, { objectMode: false }));
  });
  const until = async (n: number): Promise<void> => {
    for (let i = 0; i < 200 && sent.length + controls.length < n; i++) await new Promise((r) => setImmediate(r));
  };
  return { s, sent, controls, opened, until };
}

describe('the ESS serving the data of its objects over MQTT', () => {
  it('answers the requests of one object in order from one opening of its data, on the leader topic', async () => {
    const data = randomBytes(10_000);
    const { s, sent, opened, until } = server(new Map([['o1', data]]));
    const meta = metaOf('o1', data.length, 3000);
    for (const offset of [0, 3000, 6000, 9000]) s.request(getdata(meta, offset));
    await until(4);
    expect(sent.map((m) => [Number(m.message.offset), m.message.data.length])).toEqual([
      [0, 3000],
      [3000, 3000],
      [6000, 3000],
      [9000, 1000],
    ]);
    expect(Buffer.concat(sent.map((m) => m.message.data)).equals(data)).toBe(true);
    expect(sent.every((m) => m.topic === 'iot-2/type/edge/id/node1/evt/sync-cmd-leader/fmt/bin')).toBe(true);
    expect(opened).toEqual([{ id: 'o1', range: { start: 0, end: 9999 } }]);
    s.close();
  });

  it('opens the data again for a request elsewhere (a chunk asked again)', async () => {
    const data = randomBytes(10_000);
    const { s, sent, opened, until } = server(new Map([['o1', data]]));
    const meta = metaOf('o1', data.length, 3000);
    for (const offset of [0, 3000, 0]) s.request(getdata(meta, offset));
    await until(3);
    expect(sent.map((m) => m.message.data.equals(data.subarray(Number(m.message.offset), Number(m.message.offset) + 3000)))).toEqual([true, true, true]);
    expect(opened.map((o) => o.range.start)).toEqual([0, 0]);
    s.close();
  });

  it('sends a whole small object on the usual topic, and feedback code 5 for an object it does not hold', async () => {
    const small = randomBytes(100);
    const { s, sent, controls, until } = server(new Map([['small', small]]));
    s.request(getdata(metaOf('small', small.length, 3000), 0));
    s.request(getdata(metaOf('gone', 5000, 3000), 0));
    await until(2);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.topic).toBe('iot-2/type/edge/id/node1/evt/sync-cmd/fmt/bin');
    expect(sent[0]!.message.data.equals(small)).toBe(true);
    expect(controls).toEqual([expect.objectContaining({ command: 'feedback', feedbackCode: 5, feedbackFromOrigin: true })]);
    s.close();
  });
});
