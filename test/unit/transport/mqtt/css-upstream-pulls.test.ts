/**
 * The CSS pulling the data of an object an ESS published (lib/transport/mqtt/css-upstream-pulls.ts),
 * over a double of the engine: the chunk size a larger object is asked for in, the first request
 * alone until the ESS's answer shows the size it serves, and the bytes asked for ahead.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { ConflictError, emptyMetaData, type DestinationRef, type MetaData } from '../../../../lib/model/index.js';
import type { Logger } from '../../../../lib/log/logger.js';
import { UpstreamPulls } from '../../../../lib/transport/mqtt/css-upstream-pulls.js';
import { CssEngineDouble } from '../../../helpers/ess-session-double.js';

const PEER: DestinationRef = { orgID: 'myorg', destType: 'edge', destID: 'node1' };
const MiB = 1024 * 1024;

const noop = (): void => undefined;
const log = { trace: noop, debug: noop, info: noop, warn: noop, error: noop, fatal: noop, flush: noop, child: () => log } as unknown as Logger;

function metaOf(size: number, chunkSize: number): MetaData {
  return { ...emptyMetaData(), objectType: 'up', objectID: 'o1', destinationOrgID: 'myorg', objectSize: size, chunkSize, instanceID: 5n };
}

const tick = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};

/** Pulls with requests recorded, not answered: the test answers them as an ESS serving `serves` bytes per chunk. */
function pulls(window = 8) {
  const engine = new CssEngineDouble();
  const asked: { offset: number; chunkSize: number }[] = [];
  const p = new UpstreamPulls({
    engine,
    requestChunk: (_peer, meta, offset) => {
      asked.push({ offset, chunkSize: meta.chunkSize });
      return Promise.resolve();
    },
    refuse: () => Promise.resolve(),
    resumeOffset: () => Promise.resolve(0),
    window,
    retryMs: 60_000,
    log,
  });
  const answer = (data: Buffer, offset: number, serves: number): boolean => p.onData(PEER, 'up', 'o1', 5n, BigInt(offset), data.subarray(offset, offset + serves));
  const stored = (): Buffer => Buffer.concat(engine.callsOf('upstreamData').map((c) => c.bytes));
  return { p, asked, answer, stored };
}

describe('the CSS pulling an object from its ESS over MQTT', () => {
  it('asks for a larger object 1 MiB at a time, the size the getdata states, 2 MiB ahead at most', async () => {
    const data = randomBytes(6 * MiB);
    const { p, asked, answer, stored } = pulls(8);
    p.start(PEER, metaOf(data.length, 5 * MiB), 0);
    // The first request alone: the ESS may serve another size than asked for.
    expect(asked).toEqual([{ offset: 0, chunkSize: MiB }]);
    answer(data, 0, MiB);
    await tick();
    expect(asked.map((a) => a.offset)).toEqual([0, MiB, 2 * MiB]);
    for (let i = 0; i < 20 && stored().length < data.length; i++) {
      for (const { offset } of [...asked]) answer(data, offset, MiB);
      await tick();
    }
    expect(stored().equals(data)).toBe(true);
    expect(new Set(asked.map((a) => a.offset)).size).toBe(6);
    expect(asked.every((a) => a.chunkSize === MiB)).toBe(true);
    p.stop();
  });

  it('takes the first chunk whole from an ESS that serves its own size (a reference ESS), and asks at that size from there', async () => {
    const data = randomBytes(12 * MiB + 5);
    const { p, asked, answer, stored } = pulls(8);
    p.start(PEER, metaOf(data.length, 5 * MiB), 0);
    answer(data, 0, 5 * MiB);
    await tick();
    expect(asked.map((a) => a.offset)).toEqual([0, 5 * MiB]);
    answer(data, 5 * MiB, 5 * MiB);
    await tick();
    answer(data, 10 * MiB, 5 * MiB);
    await tick();
    expect(asked.map((a) => a.offset)).toEqual([0, 5 * MiB, 10 * MiB]);
    expect(stored().equals(data)).toBe(true);
    p.stop();
  });

  it("asks for a smaller object's chunks as its metadata states them, as the reference", async () => {
    const data = randomBytes(614_477);
    const { p, asked } = pulls(4);
    p.start(PEER, metaOf(data.length, 65_536), 0);
    await tick();
    expect(asked).toEqual([0, 1, 2, 3].map((i) => ({ offset: i * 65_536, chunkSize: 65_536 })));
    p.stop();
  });

  it('before asking again, reads the store: a chunk another CSS stored moves the transfer on, a completed object ends it', async () => {
    const engine = new CssEngineDouble();
    const asked: number[] = [];
    let persisted: number | null = 0;
    const p = new UpstreamPulls({
      engine,
      requestChunk: (_peer, _meta, offset) => {
        asked.push(offset);
        return Promise.resolve();
      },
      refuse: () => Promise.resolve(),
      resumeOffset: () => Promise.resolve(persisted),
      window: 1,
      chunkSize: 1000,
      windowBytes: 1000,
      retryMs: 10,
      log,
    });
    p.start(PEER, metaOf(3000, 1000), 0);
    expect(asked).toEqual([0]);
    // Chunk 0 went to another CSS, which stored it: the retry asks for chunk 1, not 0 again.
    persisted = 1000;
    for (let i = 0; i < 300 && !asked.includes(1000); i++) await new Promise((r) => setTimeout(r, 10));
    expect(asked.filter((o) => o === 0)).toHaveLength(1);
    expect(asked).toContain(1000);
    // The rest went elsewhere too, and the object completed: the transfer ends, nothing is asked again.
    persisted = null;
    for (let i = 0; i < 300 && p.size > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(p.size).toBe(0);
    expect(engine.callsOf('upstreamData')).toEqual([]);
    p.stop();
  });

  it('a chunk refused because another CSS stored that offset is no failure: the transfer follows the store, and ends quietly when the object completed there', async () => {
    const engine = new CssEngineDouble({
      upstreamData: () => {
        throw new ConflictError('Another chunk for this offset was accepted concurrently');
      },
    });
    const offsets: Array<number | null> = [1000, 2000, null];
    const refused: string[] = [];
    const asked: number[] = [];
    const p = new UpstreamPulls({
      engine,
      requestChunk: (_peer, _meta, offset) => {
        asked.push(offset);
        return Promise.resolve();
      },
      refuse: (_peer, _meta, reason) => {
        refused.push(reason);
        return Promise.resolve();
      },
      resumeOffset: () => Promise.resolve(offsets.length > 1 ? offsets.shift()! : offsets[0]!),
      window: 1,
      chunkSize: 1000,
      windowBytes: 1000,
      retryMs: 60_000,
      log,
    });
    const data = randomBytes(3000);
    p.start(PEER, metaOf(3000, 1000), 0);
    for (const offset of [0, 1000, 2000]) {
      p.onData(PEER, 'up', 'o1', 5n, BigInt(offset), data.subarray(offset, offset + 1000));
      await tick();
    }
    expect(asked).toEqual([0, 1000, 2000]);
    expect(p.size).toBe(0);
    expect(refused).toEqual([]);
  });
});

