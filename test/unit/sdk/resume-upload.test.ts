import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BadRequestError, SyncServiceClient } from '../../../sdk/index.js';
import { resumeOffsetFromRefusal } from '../../../sdk/chunked-upload.js';
import { RecordingServer } from './recording-server.js';

function pattern(size: number): Buffer {
  const data = Buffer.alloc(size);
  for (let i = 0; i < size; i++) data[i] = (i * 31 + (i >> 8)) & 0xff;
  return data;
}

describe('resuming a chunked upload', () => {
  let server: RecordingServer;
  let client: SyncServiceClient;
  let dir: string;
  let file: string;
  const data = pattern(4_500);
  beforeAll(async () => {
    server = await RecordingServer.start();
    client = new SyncServiceClient({ url: server.url, appKey: 'a', appSecret: 's', orgID: 'org1' });
    dir = await mkdtemp(join(tmpdir(), 'edgesync-resume-'));
    file = join(dir, 'payload.bin');
    await writeFile(file, data);
  });
  afterAll(async () => {
    client.close();
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    server.requests.length = 0;
    server.respond = () => ({ status: 204 });
  });

  it('sends only the chunks from startAt on, the bytes of the file at those offsets', async () => {
    const acknowledged: number[] = [];
    await client.updateObjectDataChunked('t', 'i', file, { chunkSize: 1_000, startAt: 2_000, onChunk: (at) => acknowledged.push(at) });
    expect(server.requests.map((r) => r.headers['content-range'])).toEqual(['bytes 2000-2999/4500', 'bytes 3000-3999/4500', 'bytes 4000-4499/4500']);
    expect(Buffer.concat(server.requests.map((r) => r.body)).equals(data.subarray(2_000))).toBe(true);
    expect(acknowledged).toEqual([3_000, 4_000, 4_500]);
  });

  it('reports progress from startAt, not from zero', async () => {
    const progress: number[] = [];
    await client.updateObjectDataChunked('t', 'i', file, { chunkSize: 1_000, startAt: 3_000, onProgress: (b) => progress.push(b) });
    expect(progress[0]).toBeGreaterThan(3_000);
    expect(progress.at(-1)).toBe(4_500);
  });

  it('goes on where the server says when its upload stands elsewhere than startAt', async () => {
    server.respond = (req) =>
      req.headers['content-range'] === 'bytes 3000-3999/4500' && server.requests.length === 1
        ? { status: 400, body: 'Content-Range starts at 3000, leaving a gap: the upload expects offset 1000\n' }
        : { status: 204 };
    await client.updateObjectDataChunked('t', 'i', file, { chunkSize: 1_000, startAt: 3_000 });
    const ranges = server.requests.map((r) => r.headers['content-range']);
    expect(ranges).toEqual(['bytes 3000-3999/4500', 'bytes 1000-1999/4500', 'bytes 2000-2999/4500', 'bytes 3000-3999/4500', 'bytes 4000-4499/4500']);
    expect(Buffer.concat(server.requests.slice(1).map((r) => r.body)).equals(data.subarray(1_000))).toBe(true);
  });

  it('starts over when the server holds no upload of the object', async () => {
    let refused = false;
    server.respond = () => {
      if (refused) return { status: 204 };
      refused = true;
      return { status: 400, body: 'No upload in progress for this object: the first chunk must start at offset 0, not 2000\n' };
    };
    await client.updateObjectDataChunked('t', 'i', file, { chunkSize: 2_000, startAt: 2_000 });
    expect(server.requests.map((r) => r.headers['content-range'])).toEqual(['bytes 2000-3999/4500', 'bytes 0-1999/4500', 'bytes 2000-3999/4500', 'bytes 4000-4499/4500']);
  });

  it('does not retry any other refusal', async () => {
    server.respond = () => ({ status: 400, body: "Can't update data, the NoData flag is set to true\n" });
    await expect(client.updateObjectDataChunked('t', 'i', file, { chunkSize: 1_000, startAt: 1_000 })).rejects.toBeInstanceOf(BadRequestError);
    expect(server.requests).toHaveLength(1);
  });

  it('refuses a startAt outside the data', async () => {
    await expect(client.updateObjectDataChunked('t', 'i', file, { chunkSize: 1_000, startAt: 5_000 })).rejects.toThrow(RangeError);
  });

  it("reads the server's resume point from its refusals only", () => {
    expect(resumeOffsetFromRefusal(400, 'Content-Range starts at 9, leaving a gap: the upload expects offset 4\n')).toBe(4);
    expect(resumeOffsetFromRefusal(400, 'Content-Range total 9 does not match the upload in progress (10 bytes)')).toBe(0);
    expect(resumeOffsetFromRefusal(400, 'Content-Range 0-3 overlaps bytes already received (up to 5)')).toBeUndefined();
    expect(resumeOffsetFromRefusal(404, 'the upload expects offset 4')).toBeUndefined();
  });
});
