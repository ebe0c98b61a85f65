import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { SyncServiceClient } from '../../../sdk/index.js';
import type { MetaData } from '../../../sdk/index.js';
import { json, metaData, RecordingServer } from './recording-server.js';
import type { Reply } from './recording-server.js';

describe('watch', () => {
  let server: RecordingServer;
  let client: SyncServiceClient;
  beforeAll(async () => {
    server = await RecordingServer.start();
    client = new SyncServiceClient({ url: server.url, appKey: 'k', appSecret: 's' });
  });
  afterAll(async () => {
    client.close();
    await server.close();
  });
  beforeEach(() => {
    server.requests.length = 0;
  });

  /** Answers the listing polls with `polls` in turn (404 = empty), then aborts on the poll after the last. */
  function script(polls: (MetaData[] | 404)[], controller: AbortController): void {
    let poll = 0;
    server.respond = (req): Reply => {
      if (req.method !== 'GET') return { status: 204 };
      const listing = polls[poll++];
      if (listing === undefined) {
        controller.abort();
        return { status: 404 };
      }
      return listing === 404 ? { status: 404 } : json(listing);
    };
  }

  const key = (m: MetaData): string => `${m.objectID}#${m.instanceID}${m.deleted ? ' deleted' : ''}`;

  it('yields each new instanceID once and ends when the signal aborts', async () => {
    const a1 = metaData({ objectID: 'a', instanceID: 1n });
    const b1 = metaData({ objectID: 'b', instanceID: 1n });
    const b2 = metaData({ objectID: 'b', instanceID: 2n });
    const controller = new AbortController();
    script([[a1, b1], [a1, b1], 404, [a1, b2], [b2], [b2, { ...b2, deleted: true }]], controller);
    const seen: string[] = [];
    for await (const meta of client.watch('type', { intervalMs: 1, signal: controller.signal })) seen.push(key(meta));
    expect(seen).toEqual(['a#1', 'b#1', 'b#2', 'b#2 deleted']);
    expect(server.lines.every((l) => l === 'GET /api/v1/objects/type')).toBe(true);
    expect(server.requests).toHaveLength(7);
  });

  it('marks each yielded object received after the loop body when asked', async () => {
    const a1 = metaData({ objectID: 'a', instanceID: 1n, objectType: 'type' });
    const c1 = metaData({ objectID: 'c', instanceID: 4n, objectType: 'type' });
    const controller = new AbortController();
    script([[a1], [a1, c1]], controller);
    const marksBeforeBody: number[] = [];
    for await (const _meta of client.watch('type', { intervalMs: 1, signal: controller.signal, markReceived: true, received: true })) {
      marksBeforeBody.push(server.requests.filter((r) => r.method === 'PUT').length);
    }
    expect(marksBeforeBody).toEqual([0, 1]);
    expect(server.lines).toEqual([
      'GET /api/v1/objects/type?received=true',
      'PUT /api/v1/objects/type/a/received',
      'GET /api/v1/objects/type?received=true',
      'PUT /api/v1/objects/type/c/received',
      'GET /api/v1/objects/type?received=true',
    ]);
  });

  it('with markReceived, leaves alone an object the loop body consumed or confirmed deleted, and never marks a deletion received', async () => {
    // The SDK README's loop: consume each object, confirm each deletion. The server refuses to
    // mark an object received once it is consumed or deleted, so the watcher must not try.
    const a1 = metaData({ objectID: 'a', instanceID: 1n, objectType: 'type' });
    const b1 = metaData({ objectID: 'b', instanceID: 2n, objectType: 'type' });
    const c1 = metaData({ objectID: 'c', instanceID: 3n, objectType: 'type' });
    const controller = new AbortController();
    script([[a1, b1, c1], [{ ...a1, deleted: true }]], controller);
    for await (const meta of client.watch('type', { intervalMs: 1, signal: controller.signal, markReceived: true })) {
      if (meta.deleted) await client.markObjectDeleted(meta.objectType, meta.objectID);
      else if (meta.objectID === 'a') await client.markObjectConsumed(meta.objectType, meta.objectID);
      // b: handled without a mark of its own, so the watcher marks it received.
      else if (meta.objectID === 'c') await client.markObjectConsumed('othertype', 'c');
    }
    expect(server.lines).toEqual([
      'GET /api/v1/objects/type',
      'PUT /api/v1/objects/type/a/consumed',
      'PUT /api/v1/objects/type/b/received',
      'PUT /api/v1/objects/othertype/c/consumed',
      'PUT /api/v1/objects/type/c/received',
      'GET /api/v1/objects/type',
      'PUT /api/v1/objects/type/a/deleted',
      'GET /api/v1/objects/type',
    ]);
  });

  it('a deletion is not marked received even when the loop body does nothing with it', async () => {
    const a1 = metaData({ objectID: 'a', instanceID: 1n, objectType: 'type' });
    const controller = new AbortController();
    script([[{ ...a1, deleted: true }]], controller);
    const seen: string[] = [];
    for await (const meta of client.watch('type', { intervalMs: 1, signal: controller.signal, markReceived: true })) seen.push(key(meta));
    expect(seen).toEqual(['a#1 deleted']);
    expect(server.lines).toEqual(['GET /api/v1/objects/type', 'GET /api/v1/objects/type']);
  });

  it('ends at once on an already aborted signal', async () => {
    const controller = new AbortController();
    controller.abort();
    const seen: MetaData[] = [];
    for await (const meta of client.watch('type', { intervalMs: 1, signal: controller.signal })) seen.push(meta);
    expect(seen).toEqual([]);
    expect(server.requests).toHaveLength(0);
  });

  it('ends cleanly when aborted during a poll that never answers', async () => {
    const controller = new AbortController();
    server.respond = () => {
      controller.abort();
      return new Promise<Reply>(() => undefined);
    };
    const seen: MetaData[] = [];
    for await (const meta of client.watch('type', { intervalMs: 1, signal: controller.signal })) seen.push(meta);
    expect(seen).toEqual([]);
  });

  it('throws a failed poll without onError, and reports it and goes on with onError', async () => {
    server.respond = () => ({ status: 403, body: 'Unauthorized' });
    const iterator = client.watch('type', { intervalMs: 1 })[Symbol.asyncIterator]();
    await expect(iterator.next()).rejects.toMatchObject({ status: 403 });

    const controller = new AbortController();
    const errors: unknown[] = [];
    let poll = 0;
    server.respond = () => {
      poll += 1;
      if (poll === 1) return { status: 500, body: 'boom\n' };
      if (poll === 2) return json([metaData({ objectID: 'z' })]);
      controller.abort();
      return { status: 404 };
    };
    const seen: string[] = [];
    for await (const meta of client.watch('type', { intervalMs: 1, signal: controller.signal, onError: (e) => errors.push(e) })) seen.push(meta.objectID);
    expect(seen).toEqual(['z']);
    expect(errors).toEqual([expect.objectContaining({ status: 500, body: 'boom\n' })]);
  });
});
