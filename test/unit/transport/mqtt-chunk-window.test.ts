/**
 * The receiver's getdata window (lib/transport/mqtt/chunk-window.ts): which offsets it asks for
 * and when, and the bytes it makes of the chunks that come back, in whatever order and size.
 */
import { createHash, randomBytes } from 'node:crypto';
import { ChunkTimeoutError, ChunkWindow } from '../../../lib/transport/mqtt/chunk-window.js';

const CHUNK = 1000;

/** A window over `data` whose requests are recorded, not answered: the test answers them. */
function windowOver(
  data: Buffer,
  opts: { start?: number; end?: number; window?: number; windowBytes?: number; probe?: boolean; retryAfterMs?: number; maxTries?: number; signal?: AbortSignal; chunkSize?: number } = {},
) {
  const requests: number[] = [];
  const ended: boolean[] = [];
  const win = new ChunkWindow({
    start: opts.start ?? 0,
    end: opts.end ?? data.length - 1,
    chunkSize: opts.chunkSize ?? CHUNK,
    window: opts.window ?? 4,
    ...(opts.windowBytes !== undefined ? { windowBytes: opts.windowBytes } : {}),
    ...(opts.probe !== undefined ? { probe: opts.probe } : {}),
    retryAfterMs: opts.retryAfterMs ?? 60_000,
    maxTries: opts.maxTries ?? 3,
    signal: opts.signal ?? new AbortController().signal,
    request: (offset) => {
      requests.push(offset);
      return Promise.resolve();
    },
    onEnd: () => ended.push(true),
  });
  /** The sender's answer to a request: its chunk of `data` (at most `size` bytes). */
  const answer = (offset: number, size = opts.chunkSize ?? CHUNK): boolean => win.accept(offset, data.subarray(offset, Math.min(offset + size, data.length)));
  return { win, requests, ended, answer };
}

/** Reads a stream to the end. */
async function drain(win: ChunkWindow): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of win.stream) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

/** Lets the stream and its consumer run: a few turns of the event loop. */
const tick = async (): Promise<void> => {
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
};
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('the getdata window of an MQTT download', () => {
  it('asks for nothing until the stream is read, then for as many chunks as the window holds', async () => {
    const data = randomBytes(10 * CHUNK);
    const { win, requests } = windowOver(data, { window: 4 });
    await tick();
    expect(requests).toEqual([]);
    win.stream.resume();
    await tick();
    expect(requests).toEqual([0, 1000, 2000, 3000]);
    win.stream.destroy();
  });

  it('asks for the next chunk as each one is read: a sliding window, in order', async () => {
    const data = randomBytes(6 * CHUNK + 123);
    const { win, requests, answer } = windowOver(data, { window: 2 });
    const done = drain(win);
    await tick();
    expect(requests).toEqual([0, 1000]);
    answer(0);
    await tick();
    expect(requests).toEqual([0, 1000, 2000]);
    for (const offset of [1000, 2000, 3000, 4000, 5000, 6000]) {
      answer(offset);
      await tick();
    }
    expect(requests).toEqual([0, 1000, 2000, 3000, 4000, 5000, 6000]);
    expect(sha(await done)).toBe(sha(data));
  });

  it('puts chunks that arrive out of order back in order', async () => {
    const data = randomBytes(4 * CHUNK);
    const { win, answer } = windowOver(data, { window: 4 });
    const done = drain(win);
    await tick();
    for (const offset of [3000, 1000, 2000, 0]) answer(offset);
    expect((await done).equals(data)).toBe(true);
  });

  it('drops a chunk it did not ask for, and a repeat of one it has', async () => {
    const data = randomBytes(3 * CHUNK);
    const { win, answer } = windowOver(data, { window: 2 });
    const done = drain(win);
    await tick();
    expect(answer(2000)).toBe(false);
    expect(answer(0)).toBe(true);
    expect(answer(0)).toBe(false);
    await tick();
    answer(1000);
    await tick();
    answer(2000);
    expect((await done).equals(data)).toBe(true);
  });

  it('asks again for a chunk that does not come, and takes whichever answer comes first', async () => {
    const data = randomBytes(3 * CHUNK);
    const { win, requests, answer } = windowOver(data, { window: 3, retryAfterMs: 20 });
    const done = drain(win);
    await tick();
    answer(0);
    answer(2000);
    // The answer to 1000 is lost.
    await new Promise((r) => setTimeout(r, 60));
    expect(requests.filter((o) => o === 1000).length).toBeGreaterThanOrEqual(2);
    answer(1000);
    expect((await done).equals(data)).toBe(true);
  });

  it('fails the stream when a chunk never comes, after its tries', async () => {
    const data = randomBytes(2 * CHUNK);
    const { win, requests, answer, ended } = windowOver(data, { window: 2, retryAfterMs: 5, maxTries: 3 });
    const done = drain(win);
    await tick();
    answer(0);
    await expect(done).rejects.toBeInstanceOf(ChunkTimeoutError);
    expect(requests.filter((o) => o === 1000)).toHaveLength(3);
    expect(ended).toEqual([true]);
  });

  it('serves a range from the middle of a chunk: asks from the chunk boundary and cuts', async () => {
    const data = randomBytes(5 * CHUNK);
    const { win, requests, answer } = windowOver(data, { start: 1500, end: 3199 });
    const done = drain(win);
    await tick();
    expect(requests).toEqual([1000, 2000, 3000]);
    // The sender answers whole chunks; the last one is cut to the range.
    answer(1000);
    answer(2000);
    answer(3000);
    expect((await done).equals(data.subarray(1500, 3200))).toBe(true);
  });

  it('takes the smaller chunks of a sender with another chunk size, asking for the rest at once', async () => {
    const data = randomBytes(4 * CHUNK);
    const { win, requests, answer } = windowOver(data, { window: 2 });
    const done = drain(win);
    await tick();
    expect(requests).toEqual([0, 1000]);
    // This sender's chunks are 400 bytes.
    answer(0, 400);
    await tick();
    expect(requests).toContain(400);
    for (let i = 0; i < 40 && !win.stream.readableEnded; i++) {
      for (const offset of [...new Set(requests)]) answer(offset, 400);
      await tick();
    }
    expect((await done).equals(data)).toBe(true);
  });

  it('cuts a longer chunk to the piece it asked for', async () => {
    const data = randomBytes(3 * CHUNK);
    const { win, answer } = windowOver(data, { window: 3 });
    const done = drain(win);
    await tick();
    answer(0, 2500);
    answer(1000, 2000);
    answer(2000);
    expect((await done).equals(data)).toBe(true);
  });

  it('stops asking while the consumer does not read, and holds no more than the window', async () => {
    const data = randomBytes(20 * CHUNK);
    const { win, requests, answer } = windowOver(data, { window: 3 });
    win.stream.pause();
    // One read starts it; then nobody reads.
    win.stream.read(0);
    await tick();
    expect(requests).toEqual([0, 1000, 2000]);
    for (const offset of [0, 1000, 2000]) answer(offset);
    await tick();
    await tick();
    // The stream's buffer is full; what does not fit waits in the window: nothing new is asked for.
    expect(requests).toEqual([0, 1000, 2000]);
    expect(win.stream.readableLength).toBeLessThanOrEqual(2 * CHUNK);
    expect(win.stream.read()).not.toBeNull();
    await tick();
    // Reading makes room: the window slides on.
    expect(requests.length).toBeGreaterThan(3);
    win.stream.destroy();
  });

  it('ends at once on abort, with the abort reason, and stops its timers', async () => {
    const data = randomBytes(3 * CHUNK);
    const ac = new AbortController();
    const { win, ended } = windowOver(data, { signal: ac.signal, retryAfterMs: 10 });
    const done = drain(win);
    await tick();
    ac.abort(new Error('stopping'));
    await expect(done).rejects.toThrow('stopping');
    expect(ended).toEqual([true]);
  });

  it('takes a longer chunk whole when nothing was asked for past it, and asks at its size from there', async () => {
    const data = randomBytes(10 * CHUNK);
    const { win, requests, answer } = windowOver(data, { window: 1 });
    const done = drain(win);
    await tick();
    expect(requests).toEqual([0]);
    // This sender serves 2500 bytes whatever is asked for.
    answer(0, 2500);
    await tick();
    expect(requests).toEqual([0, 2500]);
    for (const offset of [2500, 5000, 7500]) {
      answer(offset, 2500);
      await tick();
    }
    expect(requests).toEqual([0, 2500, 5000, 7500]);
    expect((await done).equals(data)).toBe(true);
  });

  it('with probe, asks for one chunk until the first answer shows the size the sender serves', async () => {
    const data = randomBytes(40 * CHUNK);
    const { win, requests, answer } = windowOver(data, { window: 4, probe: true });
    const done = drain(win);
    await tick();
    expect(requests).toEqual([0]);
    // A reference CSS: its own 5000-byte chunks, whatever the request says.
    answer(0, 5000);
    await tick();
    expect(requests).toEqual([0, 5000, 10_000, 15_000, 20_000]);
    for (let i = 0; i < 20 && !win.stream.readableEnded; i++) {
      for (const offset of [...new Set(requests)]) answer(offset, 5000);
      await tick();
    }
    expect(sha(await done)).toBe(sha(data));
    // Every chunk asked for once: nothing was fetched twice.
    expect(new Set(requests).size).toBe(requests.length);
  });

  it('with probe, opens the window at the asked size when the sender serves that size', async () => {
    const data = randomBytes(10 * CHUNK);
    const { win, requests, answer } = windowOver(data, { window: 3, probe: true });
    win.stream.resume();
    await tick();
    expect(requests).toEqual([0]);
    answer(0);
    await tick();
    expect(requests).toEqual([0, 1000, 2000, 3000]);
    win.stream.destroy();
  });

  it('holds at most windowBytes of chunks, and at least one, whatever the window in chunks allows', async () => {
    const data = randomBytes(20 * CHUNK);
    const small = windowOver(data, { window: 8, windowBytes: 2500 });
    small.win.stream.resume();
    await tick();
    expect(small.requests).toEqual([0, 1000]);
    small.win.stream.destroy();

    const tiny = windowOver(data, { window: 8, windowBytes: 10 });
    tiny.win.stream.resume();
    await tick();
    expect(tiny.requests).toEqual([0]);
    tiny.win.stream.destroy();
  });

  it("keeps the data's SHA-256 the chunks state, from the first that states it", async () => {
    const data = randomBytes(2 * CHUNK);
    const { win } = windowOver(data, { window: 2 });
    const done = drain(win);
    await tick();
    expect(win.sha256).toBeUndefined();
    win.accept(1000, data.subarray(1000), 'aa'.repeat(32));
    win.accept(0, data.subarray(0, 1000), 'bb'.repeat(32));
    expect((await done).equals(data)).toBe(true);
    expect(win.sha256).toBe('aa'.repeat(32));
  });
});
