/**
 * The CSS's answers to `getdata` (lib/transport/mqtt/css-chunk-server.ts), over a double of the
 * sync engine: each answer is the data message of the chunk asked for, of the size the request
 * states (within the broker's limit); the chunks of a transfer asked in order are read from one
 * opening of the data, anything else opens it again.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from '@jest/globals';
import { NotFoundError, type DestinationRef, type MetaData, emptyMetaData } from '../../../../lib/model/index.js';
import { chunkBytes, CssChunkServer } from '../../../../lib/transport/mqtt/css-chunk-server.js';
import { dataMessageOverhead, decodeData, type DataMessage } from '../../../../lib/transport/mqtt/data-codec.js';
import { CssEngineDouble } from '../../../helpers/ess-session-double.js';

const PEER: DestinationRef = { orgID: 'myorg', destType: 'edge', destID: 'node1' };

function metaOf(size: number, chunkSize: number, instanceID = 7n): MetaData {
  return { ...emptyMetaData(), objectType: 'big', objectID: 'o1', destinationOrgID: 'myorg', objectSize: size, chunkSize, instanceID };
}

function decoded(payload: Buffer): DataMessage {
  const d = decodeData(payload);
  if (d.kind !== 'message') throw new Error(`not a data message: ${d.kind}`);
  return d.message;
}

function setup(opts: { maxPayload?: number; reopenMs?: number; now?: () => number } = {}) {
  const engine = new CssEngineDouble();
  const data = randomBytes(10_000);
  engine.script.data.set('big/o1', data);
  const stop = new AbortController();
  const server = new CssChunkServer({
    maxPayload: () => opts.maxPayload ?? 1024 * 1024,
    maxDataChunkSize: 4096,
    signal: stop.signal,
    readers: { reopenMs: opts.reopenMs ?? 60_000, ...(opts.now ? { now: opts.now } : {}) },
  });
  const session = engine.session(PEER);
  const opened = (): number => engine.callsOf('openData').length;
  return { engine, data, server, session, stop, opened };
}

describe('the CSS answering getdata over MQTT', () => {
  it('answers a transfer asked in order with its chunks, opening the data once', async () => {
    const { data, server, session, opened, stop } = setup();
    const meta = metaOf(data.length, 3000);
    const got: DataMessage[] = [];
    for (const offset of [0, 3000, 6000, 9000]) got.push(decoded(await server.message(session, PEER, meta, offset)));
    expect(got.map((m) => [Number(m.offset), m.data.length])).toEqual([
      [0, 3000],
      [3000, 3000],
      [6000, 3000],
      [9000, 1000],
    ]);
    expect(Buffer.concat(got.map((m) => m.data)).equals(data)).toBe(true);
    expect(got.every((m) => m.orgID === 'myorg' && m.objectType === 'big' && m.objectID === 'o1' && m.instanceID === 7n)).toBe(true);
    expect(opened()).toBe(1);
    // The rest of the object was opened: the metadata said more than one chunk was left.
    expect(server.openTransfers).toBe(0);
    stop.abort();
  });

  it('serves the chunk size the request states, within what the broker carries', async () => {
    const { data, server, session, stop } = setup({ maxPayload: 1000 });
    const small = decoded(await server.message(session, PEER, metaOf(data.length, 500), 0));
    expect(small.data.length).toBe(500);
    const capped = decoded(await server.message(session, PEER, metaOf(data.length, 5000, 8n), 0));
    expect(capped.data.length).toBe(1000 - dataMessageOverhead('myorg', 'big', 'o1', true));
    // No chunk size stated: MAX_DATA_CHUNK_SIZE, within the limit.
    const stated = decoded(await server.message(session, PEER, metaOf(data.length, 0, 9n), 0));
    expect(stated.data.length).toBe(1000 - dataMessageOverhead('myorg', 'big', 'o1', true));
    stop.abort();
  });

  it('cuts a chunk at the end of the object as the request states it: what the dispatch counted for it is all it holds', async () => {
    const { data, server, session, stop } = setup();
    // A receiver that says the object has 1500 bytes gets no more than that, whatever is stored.
    const cut = decoded(await server.message(session, PEER, metaOf(1500, 4000), 0));
    expect(cut.data.length).toBe(1500);
    expect(cut.data.equals(data.subarray(0, 1500))).toBe(true);
    expect(chunkBytes(metaOf(1500, 4000), 0, 1 << 20, 4096)).toBe(1500);
    expect(chunkBytes(metaOf(1500, 4000), 1000, 1 << 20, 4096)).toBe(500);
    expect(chunkBytes(metaOf(0, 0), 0, 1 << 20, 4096)).toBe(4096);
    expect(chunkBytes(metaOf(20_000, 0), 0, 1000, 4096)).toBe(1000);
    stop.abort();
  });

  it('opens the data again for a chunk asked out of order (a lost one asked again), then goes on', async () => {
    const { data, server, session, opened, stop } = setup();
    const meta = metaOf(data.length, 2000);
    await server.message(session, PEER, meta, 0);
    await server.message(session, PEER, meta, 2000);
    const again = decoded(await server.message(session, PEER, meta, 0));
    expect(again.data.equals(data.subarray(0, 2000))).toBe(true);
    expect(opened()).toBe(2);
    const next = decoded(await server.message(session, PEER, meta, 2000));
    expect(next.data.equals(data.subarray(2000, 4000))).toBe(true);
    expect(opened()).toBe(2);
    stop.abort();
  });

  it('asks the engine again once the open data is older than reopenMs (a deleted object stops being served)', async () => {
    let now = 0;
    const { data, engine, server, session, opened, stop } = setup({ reopenMs: 1000, now: () => now });
    const meta = metaOf(data.length, 2000);
    await server.message(session, PEER, meta, 0);
    now = 1000;
    engine.script.data.delete('big/o1');
    await expect(server.message(session, PEER, meta, 2000)).rejects.toBeInstanceOf(NotFoundError);
    expect(opened()).toBe(2);
    stop.abort();
  });

  it('keeps transfers of other instances and other ESS nodes apart', async () => {
    const { data, server, session, engine, opened, stop } = setup();
    const other = engine.session({ ...PEER, destID: 'node2' });
    await server.message(session, PEER, metaOf(data.length, 2000), 0);
    await server.message(other, { ...PEER, destID: 'node2' }, metaOf(data.length, 2000), 0);
    await server.message(session, PEER, metaOf(data.length, 2000, 8n), 2000);
    expect(opened()).toBe(3);
    stop.abort();
  });

  it('answers an object of no bytes with one empty chunk', async () => {
    const { engine, server, session, stop } = setup();
    engine.script.data.set('big/o1', Buffer.alloc(0));
    const empty = decoded(await server.message(session, PEER, metaOf(0, 4096), 0));
    expect(empty.data.length).toBe(0);
    expect(Number(empty.offset)).toBe(0);
    stop.abort();
  });

  it("states the data's SHA-256 in every chunk when the store knows it", async () => {
    const { data, engine, server, session, stop } = setup();
    const digest = createHash('sha256').update(data).digest('hex');
    engine.script.openData = (_peer, _ref, range) => {
      const start = range?.start ?? 0;
      const end = Math.min(range?.end ?? data.length - 1, data.length - 1);
      return { stream: Readable.from([data.subarray(start, end + 1)]), start, end, total: data.length, sha256: digest, whole: range === undefined };
    };
    const meta = metaOf(data.length, 6000);
    const first = decoded(await server.message(session, PEER, meta, 0));
    const last = decoded(await server.message(session, PEER, meta, 6000));
    expect([first.sha256, last.sha256]).toEqual([digest, digest]);
    stop.abort();
  });
});
