/**
 * Early data (our extension, lib/sync/early-data.ts), on the real binaries: the ESS downloads
 * the data of an object while the CSS is still receiving its upload, and the object completes
 * with those bytes once the upload is committed; an upload that breaks off leaves the ESS
 * nothing. What the ESS took early is seen in its staging area, while the upload waits.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { readAll } from '../helpers/bytes.js';
import { Teardown } from '../helpers/node-process.js';
import { eventuallyWithin, startPair, type Pair } from '../helpers/sync-pair.js';

jest.setTimeout(60_000);

const MiB = 1024 * 1024;
const DEADLINE_MS = 40_000;
const eventually = eventuallyWithin(DEADLINE_MS);
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Bytes in the ESS's staging areas (downloads in progress). */
async function staged(root: string): Promise<number> {
  const dir = join(root, 'sync', 'data', 'staging');
  let total = 0;
  for (const name of await readdir(dir)) {
    // An area the ESS committed or dropped between the listing and this look holds nothing staged.
    const size = await stat(join(dir, name)).then(
      (s) => s.size,
      (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return 0;
        throw err;
      },
    );
    total += size;
  }
  return total;
}

describe('early data: an ESS takes the data of an upload while the CSS receives it', () => {
  const t = new Teardown();
  let p: Pair;

  beforeAll(async () => {
    p = await startPair(t, { deadlineMs: DEADLINE_MS, secret: 's1' });
  });
  afterAll(() => t.run());

  // Without a Content-Length the body goes chunked, as a Go client sends a file.
  test.each([
    ['with its Content-Length', 'big', true],
    ['without a Content-Length', 'unsized', false],
  ])('the ESS holds part of an upload %s while it waits for the rest, then has the object intact', async (_how, id, sized) => {
    const data = randomBytes(24 * MiB);
    await p.onCss.updateObject({ objectID: id, objectType: 'model', destinationType: 'edge' });
    const body = new PassThrough();
    const upload = p.onCss.updateObjectData('model', id, body, sized ? { size: data.length } : {});
    body.write(data.subarray(0, 12 * MiB));
    // The upload is half done and waits: the ESS is downloading it already.
    await eventually('bytes staged on the ESS', () => staged(p.ess.root), (n) => n >= 8 * MiB);
    body.end(data.subarray(12 * MiB));
    await upload;
    await eventually(`${id} on the ESS`, () => p.onEss.getObjectStatus('model', id), (s) => s === 'completelyReceived');
    expect(sha(await readAll(await p.onEss.fetchObjectData('model', id)))).toBe(sha(data));
    await eventually('staging emptied', () => staged(p.ess.root), (n) => n === 0);
    await eventually('delivered', () => p.onCss.getObjectDestinations('model', id), (d) => d[0]?.status === 'delivered');
  });

  test('an upload that breaks off leaves the ESS nothing of it; the next one arrives intact', async () => {
    await p.onCss.updateObject({ objectID: 'cut', objectType: 'model', destinationType: 'edge' });
    const body = new PassThrough();
    const ac = new AbortController();
    const upload = p.onCss.updateObjectData('model', 'cut', body, { size: 16 * MiB, signal: ac.signal });
    body.write(randomBytes(6 * MiB));
    await eventually('bytes staged on the ESS', () => staged(p.ess.root), (n) => n > 0);
    ac.abort();
    await expect(upload).rejects.toThrow();
    await eventually('early bytes dropped', () => staged(p.ess.root), (n) => n === 0);
    expect(await p.onEss.getObjectStatus('model', 'cut')).toBeNull();

    const data = randomBytes(5 * MiB);
    await p.onCss.updateObjectData('model', 'cut', data);
    await eventually('cut on the ESS', () => p.onEss.getObjectStatus('model', 'cut'), (s) => s === 'completelyReceived');
    expect(sha(await readAll(await p.onEss.fetchObjectData('model', 'cut')))).toBe(sha(data));
  });
});
