import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { BadRequestError, SyncServiceClient } from '../../../sdk/index.js';
import { RecordingServer } from './recording-server.js';

/** Deterministic bytes, so any misplaced slice shows up. */
function pattern(size: number): Buffer {
  const data = Buffer.alloc(size);
  for (let i = 0; i < size; i++) data[i] = (i * 31 + (i >> 8)) & 0xff;
  return data;
}

/** A stream that hands out `data` in pieces of `piece` bytes, unaligned with any chunk size. */
function piecewise(data: Buffer, piece: number): Readable {
  function* pieces(): Generator<Buffer> {
    for (let at = 0; at < data.length; at += piece) yield data.subarray(at, at + piece);
  }
  return Readable.from(pieces(), { objectMode: false });
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

describe('streaming', () => {
  let server: RecordingServer;
  let client: SyncServiceClient;
  beforeAll(async () => {
    server = await RecordingServer.start();
    client = new SyncServiceClient({ url: server.url, appKey: 'org1/admin', appSecret: 's3cr:et', orgID: 'org1' });
  });
  afterAll(async () => {
    client.close();
    await server.close();
  });
  beforeEach(() => {
    server.requests.length = 0;
    server.respond = () => ({ status: 204 });
  });

  it('sends Basic auth on every request', async () => {
    await client.deleteObject('t', 'i');
    await client.listObjects('t');
    const expected = `Basic ${Buffer.from('org1/admin:s3cr:et').toString('base64')}`;
    expect(server.requests.map((r) => r.headers.authorization)).toEqual([expected, expected]);
  });

  it('streams a data upload with its Content-Length when the size is known', async () => {
    const data = pattern(200_000);
    const progress: [number, number | undefined][] = [];
    await client.updateObjectData('t', 'i', piecewise(data, 7_001), { size: data.length, onProgress: (b, t) => progress.push([b, t]) });
    const [req] = server.requests;
    expect(req?.headers['content-length']).toBe(String(data.length));
    expect(req?.headers['transfer-encoding']).toBeUndefined();
    expect(req?.body.equals(data)).toBe(true);
    expect(progress.at(-1)).toEqual([data.length, data.length]);
    expect(progress.map(([b]) => b)).toEqual([...progress.map(([b]) => b)].sort((a, b) => a - b));
  });

  it('streams an upload of unknown size chunked', async () => {
    const data = pattern(50_000);
    await client.updateObjectData('t', 'i', piecewise(data, 4096));
    const [req] = server.requests;
    expect(req?.headers['transfer-encoding']).toBe('chunked');
    expect(req?.body.equals(data)).toBe(true);
  });

  it('reports progress of a Buffer upload up to its length', async () => {
    const data = pattern(150_000);
    let last = 0;
    await client.updateObjectData('t', 'i', data, { onProgress: (b) => (last = b) });
    expect(server.requests[0]?.headers['content-length']).toBe('150000');
    expect(last).toBe(data.length);
  });

  it('uploads a 10-chunk stream as exact, sequential Content-Range requests', async () => {
    const chunkSize = 1000;
    const data = pattern(9 * chunkSize + 123);
    const progress: number[] = [];
    await client.updateObjectDataChunked('t', 'i', piecewise(data, 777), {
      chunkSize,
      size: data.length,
      onProgress: (bytes, total) => {
        expect(total).toBe(data.length);
        progress.push(bytes);
      },
    });
    const ranges = Array.from({ length: 10 }, (_, n) => `bytes ${n * chunkSize}-${Math.min((n + 1) * chunkSize, data.length) - 1}/${data.length}`);
    expect(server.requests.map((r) => r.headers['content-range'])).toEqual(ranges);
    expect(ranges.at(-1)).toBe('bytes 9000-9122/9123');
    expect(server.requests.map((r) => r.headers['content-length'])).toEqual([...Array<string>(9).fill('1000'), '123']);
    expect(server.lines.every((l) => l === 'PUT /api/v1/objects/org1/t/i/data')).toBe(true);
    expect(Buffer.concat(server.requests.map((r) => r.body)).equals(data)).toBe(true);
    expect(progress.at(-1)).toBe(data.length);
  });

  it('uploads a file in chunks, reading its size from the file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'edgesync-sdk-'));
    try {
      const file = join(dir, 'payload.bin');
      const data = pattern(2_500);
      await writeFile(file, data);
      await client.updateObjectDataChunked('t', 'i', file, { chunkSize: 1_000 });
      expect(server.requests.map((r) => r.headers['content-range'])).toEqual(['bytes 0-999/2500', 'bytes 1000-1999/2500', 'bytes 2000-2499/2500']);
      expect(Buffer.concat(server.requests.map((r) => r.body)).equals(data)).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('stops a chunked upload at the first rejected chunk', async () => {
    server.respond = (req) => (req.headers['content-range']?.startsWith('bytes 1000-') === true ? { status: 400, body: 'Failed to parse Content-Range header\n' } : { status: 204 });
    const data = pattern(5_000);
    const failure = client.updateObjectDataChunked('t', 'i', piecewise(data, 300), { chunkSize: 1_000, size: data.length });
    await expect(failure).rejects.toBeInstanceOf(BadRequestError);
    expect(server.requests).toHaveLength(2);
  });

  it('fails a chunked upload whose stream is shorter than announced', async () => {
    await expect(client.updateObjectDataChunked('t', 'i', piecewise(pattern(1_500), 500), { chunkSize: 1_000, size: 3_000 })).rejects.toThrow(
      'the source ended after 1500 bytes, 3000 were announced',
    );
  });

  it('refuses a stream of unknown size for a chunked upload', async () => {
    await expect(client.updateObjectDataChunked('t', 'i', piecewise(pattern(10), 5), { chunkSize: 4 })).rejects.toThrow(TypeError);
    expect(server.requests).toHaveLength(0);
  });

  it('fetches a range with Range: bytes=S-E and streams the 206 body', async () => {
    const data = pattern(10_000);
    server.respond = () => ({
      status: 206,
      headers: { 'content-range': `bytes 100-4099/${data.length}`, 'content-length': '4000' },
      body: piecewise(data.subarray(100, 4100), 999),
    });
    const progress: [number, number | undefined][] = [];
    const stream = await client.fetchObjectData('t', 'i', { range: { start: 100, end: 4099 }, onProgress: (b, t) => progress.push([b, t]) });
    expect((await collect(stream)).equals(data.subarray(100, 4100))).toBe(true);
    expect(server.requests[0]?.headers.range).toBe('bytes=100-4099');
    expect(progress.at(-1)).toEqual([4000, 4000]);
  });

  it('fetches whole data without a Range header', async () => {
    const data = pattern(70_000);
    server.respond = () => ({ status: 200, headers: { 'content-type': 'application/octet-stream' }, body: piecewise(data, 8192) });
    const stream = await client.fetchObjectData('t', 'i');
    expect((await collect(stream)).equals(data)).toBe(true);
    expect(server.requests[0]?.headers.range).toBeUndefined();
  });

  it('rejects an inverted range before sending anything', async () => {
    await expect(client.fetchObjectData('t', 'i', { range: { start: 5, end: 4 } })).rejects.toThrow(RangeError);
    expect(server.requests).toHaveLength(0);
  });
});
