/**
 * The ESS's downloads (lib/sync/ess/download.ts) from a link whose data states its SHA-256 only
 * as it arrives, as over MQTT (our CSS's data messages carry it): the digest read once the data
 * came is checked as one stated up front is, for a small object (whole) and a large one
 * (resumable). The ESS side is real: SqliteStore, FileBlobStore, ObjectService, Receiver.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { emptyMetaData, type ByteRange, type MetaData } from '../../../../lib/model/index.js';
import { FileBlobStore, SqliteStore } from '../../../../lib/store/index.js';
import { ObjectService } from '../../../../lib/sync/object-service.js';
import { Receiver } from '../../../../lib/sync/receiver.js';
import type { Feedback } from '../../../../lib/sync/sender-acks.js';
import type { CssLink, FetchedData } from '../../../../lib/sync/ess/css-link.js';
import { downloadData } from '../../../../lib/sync/ess/download.js';

const root = mkdtempSync(join(tmpdir(), 'edgesync-late-digest-'));
let count = 0;
afterAll(() => rmSync(root, { recursive: true, force: true }));

const ORG = 'org1';
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** A link serving `data` in 64 KiB parts; its digest (`stated`) becomes known when the stream ends. */
function lateDigestLink(data: Buffer, stated: string, feedback: Feedback[]): Pick<CssLink, 'fetchData' | 'feedback'> {
  return {
    fetchData(_ref, _meta, range: ByteRange | undefined): Promise<FetchedData> {
      const start = range?.start ?? 0;
      const end = range?.end ?? data.length - 1;
      let known: string | undefined;
      const parts: Buffer[] = [];
      for (let at = start; at <= end; at += 65_536) parts.push(data.subarray(at, Math.min(at + 65_536, end + 1)));
      const stream = Readable.from(parts, { objectMode: false });
      stream.once('end', () => (known = stated));
      return Promise.resolve({
        stream,
        start,
        total: data.length,
        get sha256(): string | undefined {
          return known;
        },
      });
    },
    feedback(_ref, fb: Feedback): Promise<void> {
      feedback.push(fb);
      return Promise.resolve();
    },
  };
}

describe('downloads whose SHA-256 comes with the data (MQTT)', () => {
  let store: SqliteStore;
  let blobs: FileBlobStore;
  let objects: ObjectService;
  let receiver: Receiver;
  const stop = new AbortController();
  const log = { info: () => undefined, warn: () => undefined, debug: () => undefined };

  beforeEach(async () => {
    const dir = join(root, String(++count));
    mkdirSync(dir);
    store = new SqliteStore({ path: join(dir, 'db') });
    await store.init();
    blobs = new FileBlobStore({ root: join(dir, 'data') });
    await blobs.init();
    objects = new ObjectService({ store, blobs, node: { nodeType: 'ESS', orgID: ORG, destinationType: 'edge', destinationID: 'n1' }, maxDataChunkSize: 1024, maxDataSize: 0 });
    receiver = new Receiver({ notifications: store.notifications(), objects, orgID: ORG, downloads: { sessions: store, blobs } });
  });
  afterEach(async () => {
    await store.close();
  });

  const metaOf = (id: string, size: number): MetaData => ({ ...emptyMetaData(), destinationOrgID: ORG, objectType: 'model', objectID: id, destinationType: 'edge', instanceID: 10n, dataID: 10n, objectSize: size, consumers: 1 });

  async function run(id: string, data: Buffer, stated: string): Promise<{ status: string | undefined; feedback: Feedback[] }> {
    const meta = metaOf(id, data.length);
    await receiver.applyUpdate(meta);
    const feedback: Feedback[] = [];
    await downloadData({ link: lateDigestLink(data, stated, feedback), log, receiver, blobs, resendIntervalMs: 1000, signal: stop.signal, segmentBytes: 256 * 1024 }, meta);
    return { status: (await store.getObject(ORG, 'model', id))?.status, feedback };
  }

  for (const [what, size] of [
    ['a small object, downloaded whole', 100_000],
    ['a large object, downloaded resumably', 3 * 1024 * 1024 + 7],
  ] as const) {
    it(`${what}: completes with the digest stated, and is refused with another`, async () => {
      const data = Buffer.alloc(size);
      for (let i = 0; i < size; i++) data[i] = (i * 31 + 7) % 251;
      const good = await run(`good-${size}`, data, sha(data));
      expect(good.status).toBe('completelyReceived');
      expect(good.feedback).toEqual([]);
      const bad = await run(`bad-${size}`, data, '0'.repeat(64));
      expect(bad.status).not.toBe('completelyReceived');
      expect(bad.feedback).toEqual([expect.objectContaining({ code: 1, reason: expect.stringMatching(/SHA-256 mismatch/) })]);
    });
  }
});
