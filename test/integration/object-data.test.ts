/**
 * Object data on the real binary: GET and PUT …/data (rest-api §1.2 O16, O17), inline data in
 * the object PUT (§2 objectUpdate.data), byte ranges and chunked uploads.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { raw, startManaged, Teardown, type RunningProcess } from '../helpers/node-process.js';
import type { SyncServiceClient } from '../../sdk/index.js';

jest.setTimeout(60_000);

const ORG = 'org1';
const MiB = 1024 * 1024;

const t = new Teardown();
let css: RunningProcess;
let client: SyncServiceClient;

/** Deterministic bytes, different at every offset modulo 251, so a misplaced slice shows up. */
function pattern(size: number, seed = 0): Buffer {
  const data = Buffer.alloc(size);
  for (let i = 0; i < size; i++) data[i] = (i * 31 + seed + (i >> 8)) % 251;
  return data;
}

/** Printable text of `size` characters, for checks through raw() (which reads text). */
function text(size: number): string {
  return Array.from({ length: size }, (_, i) => String.fromCharCode(33 + ((i * 7) % 90))).join('');
}

/** A stream handing out `data` in pieces of `piece` bytes, unaligned with any chunk size. */
function piecewise(data: Buffer, piece: number): Readable {
  function* pieces(): Generator<Buffer> {
    for (let at = 0; at < data.length; at += piece) yield data.subarray(at, at + piece);
  }
  return Readable.from(pieces(), { objectMode: false });
}

/** The node's log lines at error level or above (pino JSON on its output). */
function errorLines(node: RunningProcess): string[] {
  return node
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{') && (JSON.parse(line) as { level: number }).level >= 50);
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

async function download(type: string, id: string, range?: { start: number; end: number }): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await client.fetchObjectData(type, id, range ? { range } : {})) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const dataPath = (type: string, id: string): string => `/api/v1/objects/${ORG}/${type}/${id}/data`;

/** One chunk of a Content-Range upload, through raw(). */
function putChunk(type: string, id: string, body: string, start: number, total: number): ReturnType<typeof raw> {
  const end = start + Buffer.byteLength(body) - 1;
  return raw(css, 'PUT', dataPath(type, id), { body, headers: { 'content-range': `bytes ${start}-${end}/${total}` } });
}

beforeAll(async () => {
  css = await startManaged(t, { mode: 'css' });
  client = await css.client({ orgID: ORG });
  t.add(() => Promise.resolve(client.close()));
  await client.putOrganization({ orgID: ORG });
});
afterAll(() => t.run());

describe('whole uploads (O17) and downloads (O16)', () => {
  test('data streamed with updateObjectData comes back intact, and only the data fields change', async () => {
    await client.updateObject({ objectID: 'w1', objectType: 'data', description: 'kept' });
    const before = (await client.getObject('data', 'w1'))!;
    const data = pattern(3 * MiB + 17);
    await client.updateObjectData('data', 'w1', piecewise(data, 70_001), { size: data.length });
    const back = await download('data', 'w1');
    expect(back.length).toBe(data.length);
    expect(sha256(back)).toBe(sha256(data));
    const meta = (await client.getObject('data', 'w1'))!;
    expect(meta).toMatchObject({ description: 'kept', objectSize: data.length, uploadChunkSize: 0, ownerID: before.ownerID });
    expect(meta.instanceID).toBeGreaterThan(before.instanceID);
    expect(meta.dataID).toBe(meta.instanceID);
    expect(await client.getObjectStatus('data', 'w1')).toBe('ready');
  });

  test('a stream of unknown length goes out chunked and is stored whole', async () => {
    await client.updateObject({ objectID: 'w2', objectType: 'data' });
    const data = pattern(500_000, 7);
    await client.updateObjectData('data', 'w2', piecewise(data, 65_536));
    expect(sha256(await download('data', 'w2'))).toBe(sha256(data));
    expect((await client.getObject('data', 'w2'))!.objectSize).toBe(data.length);
  });

  test('the answer is 204 with no body and no upload-owner header; the download is application/octet-stream', async () => {
    await client.updateObject({ objectID: 'w3', objectType: 'data' });
    const put = await raw(css, 'PUT', dataPath('data', 'w3'), { body: 'plain upload' });
    expect([put.status, put.text]).toEqual([204, '']);
    expect(put.headers.get('mms-upload-owner')).toBeNull();
    const get = await raw(css, 'GET', dataPath('data', 'w3'));
    expect([get.status, get.text]).toEqual([200, 'plain upload']);
    expect(get.headers.get('content-type')).toBe('application/octet-stream');
    expect(get.headers.get('content-length')).toBe('12');
    expect(get.headers.get('content-range')).toBeNull();
  });

  test('a new upload replaces the data and gives a new dataID', async () => {
    await client.updateObject({ objectID: 'w4', objectType: 'data' });
    await client.updateObjectData('data', 'w4', Buffer.from('first'));
    const first = (await client.getObject('data', 'w4'))!;
    await client.updateObjectData('data', 'w4', Buffer.from('second, longer'));
    const second = (await client.getObject('data', 'w4'))!;
    expect((await download('data', 'w4')).toString()).toBe('second, longer');
    expect(second.dataID).toBeGreaterThan(first.dataID);
    expect(second.objectSize).toBe(14);
  });

  test('a 0-byte upload (what `curl --data-binary @missing-file` sends) is empty data: 204, size 0, an empty 200, a new dataID', async () => {
    // As in the reference, empty data is data; the README uploads with `curl -T file`, which
    // fails on a missing file instead of sending nothing.
    await client.updateObject({ objectID: 'w5', objectType: 'data' });
    await client.updateObjectData('data', 'w5', Buffer.from('some data'));
    const before = (await client.getObject('data', 'w5'))!;
    const put = await raw(css, 'PUT', dataPath('data', 'w5'), { body: '' });
    expect([put.status, put.text]).toEqual([204, '']);
    const after = (await client.getObject('data', 'w5'))!;
    expect(after.objectSize).toBe(0);
    expect(after.dataID).toBeGreaterThan(before.dataID);
    expect(await client.getObjectStatus('data', 'w5')).toBe('ready');
    const get = await raw(css, 'GET', dataPath('data', 'w5'));
    expect([get.status, get.text, get.headers.get('content-length')]).toEqual([200, '', '0']);
  });

  test('64 MiB streamed up and down through the SDK arrives intact', async () => {
    await client.updateObject({ objectID: 'big', objectType: 'data' });
    const base = pattern(MiB, 3);
    const sent = createHash('sha256');
    function* source(): Generator<Buffer> {
      for (let i = 0; i < 64; i++) {
        const block = Buffer.from(base);
        block.writeUInt32BE(i, 0);
        block.writeUInt32BE(i, MiB / 2);
        sent.update(block);
        yield block;
      }
    }
    await client.updateObjectData('data', 'big', Readable.from(source(), { objectMode: false }), { size: 64 * MiB });
    const received = createHash('sha256');
    let size = 0;
    for await (const chunk of await client.fetchObjectData('data', 'big')) {
      received.update(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
    expect(size).toBe(64 * MiB);
    expect(received.digest('hex')).toBe(sent.digest('hex'));
    expect((await client.getObject('data', 'big'))!.objectSize).toBe(64 * MiB);
  });
});

describe('inline data in the object PUT (objectUpdate.data, base64)', () => {
  test('makes the object ready with that data', async () => {
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const res = await raw(css, 'PUT', `/api/v1/objects/${ORG}/inline/i1`, {
      body: JSON.stringify({ meta: { objectID: 'i1', objectType: 'inline' }, data: bytes.toString('base64') }),
    });
    expect(res.status).toBe(204);
    expect(await client.getObjectStatus('inline', 'i1')).toBe('ready');
    const meta = (await client.getObject('inline', 'i1'))!;
    expect(meta.objectSize).toBe(256);
    expect(meta.dataID).toBe(meta.instanceID);
    expect((await download('inline', 'i1')).equals(bytes)).toBe(true);
  });

  test('the SDK sends a string as its UTF-8 bytes', async () => {
    await client.updateObject({ objectID: 'i2', objectType: 'inline' }, 'grüße');
    expect((await download('inline', 'i2')).toString('utf8')).toBe('grüße');
  });

  test('"" is present and empty: ready, size 0, and the data GET is an empty 200', async () => {
    const res = await raw(css, 'PUT', `/api/v1/objects/${ORG}/inline/i3`, { body: JSON.stringify({ meta: { objectID: 'i3', objectType: 'inline' }, data: '' }) });
    expect(res.status).toBe(204);
    expect(await client.getObjectStatus('inline', 'i3')).toBe('ready');
    expect((await client.getObject('inline', 'i3'))!.objectSize).toBe(0);
    const get = await raw(css, 'GET', dataPath('inline', 'i3'));
    expect([get.status, get.text]).toEqual([200, '']);
  });

  test('absent or null data means no data: notReady, and the data GET is 404', async () => {
    for (const [id, body] of [
      ['i4', { meta: { objectID: 'i4', objectType: 'inline' } }],
      ['i5', { meta: { objectID: 'i5', objectType: 'inline' }, data: null }],
    ] as const) {
      expect((await raw(css, 'PUT', `/api/v1/objects/${ORG}/inline/${id}`, { body: JSON.stringify(body) })).status).toBe(204);
      expect(await client.getObjectStatus('inline', id)).toBe('notReady');
      expect((await raw(css, 'GET', dataPath('inline', id))).status).toBe(404);
    }
  });
});

describe('Range downloads (O16)', () => {
  const TEXT = text(1000);
  beforeAll(() => client.updateObject({ objectID: 'r1', objectType: 'range' }, TEXT));

  test('bytes=S-E answers 206 with the exact Content-Range and only those bytes', async () => {
    const res = await raw(css, 'GET', dataPath('range', 'r1'), { headers: { range: 'bytes=100-199' } });
    expect(res.status).toBe(206);
    expect(res.headers.get('content-range')).toBe('bytes 100-199/1000');
    expect(res.headers.get('content-length')).toBe('100');
    expect(res.text).toBe(TEXT.slice(100, 200));
    const one = await raw(css, 'GET', dataPath('range', 'r1'), { headers: { range: 'bytes=0-0' } });
    expect([one.status, one.headers.get('content-range'), one.text]).toEqual([206, 'bytes 0-0/1000', TEXT[0]]);
  });

  test('an end past the data is clamped to the last byte', async () => {
    const res = await raw(css, 'GET', dataPath('range', 'r1'), { headers: { range: 'bytes=900-5000' } });
    expect(res.status).toBe(206);
    expect(res.headers.get('content-range')).toBe('bytes 900-999/1000');
    expect(res.text).toBe(TEXT.slice(900));
  });

  test('a range covering the whole object is a plain 200 without Content-Range', async () => {
    for (const range of ['bytes=0-999', 'bytes=0-4000']) {
      const res = await raw(css, 'GET', dataPath('range', 'r1'), { headers: { range } });
      expect([range, res.status, res.headers.get('content-range'), res.text.length]).toEqual([range, 200, null, 1000]);
    }
  });

  test('the SDK fetches a range as the same bytes', async () => {
    expect((await download('range', 'r1', { start: 250, end: 749 })).toString()).toBe(TEXT.slice(250, 750));
  });
});

describe('chunked uploads (Content-Range, O17)', () => {
  test('updateObjectDataChunked uploads in chunks with progress, and the data arrives intact', async () => {
    await client.updateObject({ objectID: 'c1', objectType: 'chunks' });
    const data = pattern(2 * MiB + 123, 11);
    const progress: [number, number | undefined][] = [];
    await client.updateObjectDataChunked('chunks', 'c1', piecewise(data, 50_000), {
      chunkSize: 256 * 1024,
      size: data.length,
      onProgress: (bytes, total) => progress.push([bytes, total]),
    });
    expect(progress.at(-1)).toEqual([data.length, data.length]);
    expect(progress.every(([b], i) => i === 0 || b >= progress[i - 1]![0])).toBe(true);
    expect(sha256(await download('chunks', 'c1'))).toBe(sha256(data));
    expect(await client.getObject('chunks', 'c1')).toMatchObject({ objectSize: data.length, uploadChunkSize: 256 * 1024 });
    expect(await client.getObjectStatus('chunks', 'c1')).toBe('ready');
  });

  test('a file path can be uploaded in chunks too', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'edgesync-data-'));
    try {
      const data = pattern(300_000, 5);
      const file = join(dir, 'payload.bin');
      await writeFile(file, data);
      await client.updateObject({ objectID: 'c2', objectType: 'chunks' });
      await client.updateObjectDataChunked('chunks', 'c2', file, { chunkSize: 100_000 });
      expect(sha256(await download('chunks', 'c2'))).toBe(sha256(data));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('every chunk answer is 204 with the MMS-Upload-Owner header', async () => {
    await client.updateObject({ objectID: 'c3', objectType: 'chunks' });
    const first = await putChunk('chunks', 'c3', 'abcde', 0, 10);
    const last = await putChunk('chunks', 'c3', 'fghij', 5, 10);
    for (const res of [first, last]) {
      expect([res.status, res.text]).toEqual([204, '']);
      expect(res.headers.get('mms-upload-owner')).toMatch(/.+/);
    }
    expect((await download('chunks', 'c3')).toString()).toBe('abcdefghij');
  });

  test('the data changes only when the last chunk arrives; until then the old data is served', async () => {
    await client.updateObject({ objectID: 'c4', objectType: 'chunks' }, 'old data');
    const old = (await client.getObject('chunks', 'c4'))!;
    expect((await putChunk('chunks', 'c4', 'NEW-', 0, 12)).status).toBe(204);
    expect((await putChunk('chunks', 'c4', 'DATA', 4, 12)).status).toBe(204);
    expect((await download('chunks', 'c4')).toString()).toBe('old data');
    expect(await client.getObject('chunks', 'c4')).toEqual(old);
    expect(await client.getObjectStatus('chunks', 'c4')).toBe('ready');
    expect((await putChunk('chunks', 'c4', '-123', 8, 12)).status).toBe(204);
    expect((await download('chunks', 'c4')).toString()).toBe('NEW-DATA-123');
    expect((await client.getObject('chunks', 'c4'))!.objectSize).toBe(12);
  });

  test('a retried chunk that was already received is accepted (204) and changes nothing', async () => {
    await client.updateObject({ objectID: 'c5', objectType: 'chunks' });
    expect((await putChunk('chunks', 'c5', 'ABCD', 0, 10)).status).toBe(204);
    expect((await putChunk('chunks', 'c5', 'EFG', 4, 10)).status).toBe(204);
    // The retry carries other bytes: had it been written, they would show in the result.
    expect((await putChunk('chunks', 'c5', 'abcd', 0, 10)).status).toBe(204);
    expect((await putChunk('chunks', 'c5', 'efg', 4, 10)).status).toBe(204);
    expect((await putChunk('chunks', 'c5', 'HIJ', 7, 10)).status).toBe(204);
    expect((await download('chunks', 'c5')).toString()).toBe('ABCDEFGHIJ');
    const done = await client.getObject('chunks', 'c5');
    // The answer to the last chunk may be lost: its retry succeeds too, and changes nothing.
    expect((await putChunk('chunks', 'c5', 'hij', 7, 10)).status).toBe(204);
    expect((await download('chunks', 'c5')).toString()).toBe('ABCDEFGHIJ');
    expect(await client.getObject('chunks', 'c5')).toEqual(done);
  });

  test('an empty source is sent as one plain upload of size 0', async () => {
    await client.updateObject({ objectID: 'c6', objectType: 'chunks' });
    await client.updateObjectDataChunked('chunks', 'c6', Readable.from([]), { chunkSize: 1024, size: 0 });
    expect(await client.getObjectStatus('chunks', 'c6')).toBe('ready');
    expect((await client.getObject('chunks', 'c6'))!.objectSize).toBe(0);
  });
});

describe('when there is no data to serve or accept', () => {
  test('a noData object refuses a data PUT with 400 and has no data to GET', async () => {
    await client.updateObject({ objectID: 'n1', objectType: 'nodata', noData: true });
    const put = await raw(css, 'PUT', dataPath('nodata', 'n1'), { body: 'bytes' });
    expect([put.status, put.text]).toEqual([400, "Can't update data, the NoData flag is set to true\n"]);
    await expect(client.updateObjectData('nodata', 'n1', Buffer.from('bytes'))).rejects.toMatchObject({ name: 'BadRequestError' });
    expect((await raw(css, 'GET', dataPath('nodata', 'n1'))).status).toBe(404);
  });

  test('a data GET before any data is 404 (SDK: NotFoundError)', async () => {
    await client.updateObject({ objectID: 'n2', objectType: 'nodata' });
    expect((await raw(css, 'GET', dataPath('nodata', 'n2'))).status).toBe(404);
    await expect(client.fetchObjectData('nodata', 'n2')).rejects.toMatchObject({ name: 'NotFoundError', status: 404 });
  });

  test('data GET and PUT of a missing object are 404', async () => {
    expect((await raw(css, 'GET', dataPath('nodata', 'missing'))).status).toBe(404);
    expect((await raw(css, 'PUT', dataPath('nodata', 'missing'), { body: 'bytes' })).status).toBe(404);
    expect(await client.getObject('nodata', 'missing')).toBeNull();
  });
});

describe('afterwards', () => {
  test('nothing above was taken for a server failure: nothing was logged at error level', () => {
    expect(errorLines(css)).toEqual([]);
  });
});
