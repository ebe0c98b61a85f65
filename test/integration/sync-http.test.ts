/**
 * CSS ⇄ ESS over HTTP on the real binaries: our ESS registers with our CSS, polls it, downloads
 * what is addressed to it, and acks each step; the app's consumed mark on the ESS shows on the
 * CSS, and a deletion on the CSS reaches the ESS. [ref sync-protocol §1 "ESS behaviour", §3]
 */
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { blobFileOf, readAll, sha } from '../helpers/bytes.js';
import { Teardown, type RunningProcess } from '../helpers/node-process.js';
import { eventuallyWithin, startPair } from '../helpers/sync-pair.js';
import type { SyncServiceClient } from '../../sdk/index.js';
import { DEFAULT_INLINE_LIMIT } from '../../lib/store/index.js';

jest.setTimeout(60_000);

const DATA = randomBytes(1024 * 1024);
/** Polling deadlines only: generous, so a loaded machine does not fail the test. */
const DEADLINE_MS = 30_000;
const eventually = eventuallyWithin(DEADLINE_MS);

let css: RunningProcess;
let onCss: SyncServiceClient;
let onEss: SyncServiceClient;

async function o13(objectID: string): Promise<string[]> {
  return (await onCss.getObjectDestinations('model', objectID)).map((d) => `${d.destinationType}/${d.destinationID}:${d.status}`);
}

// The issue wants the main scenarios in both modes: our extensions (long-poll), and the
// reference protocol only (EDGESYNC_REFERENCE_PROTOCOL), what our ESS speaks to a reference CSS.
describe.each([
  ['with our extensions', false],
  ['in reference-protocol mode', true],
])('an ESS syncing with a CSS over HTTP, %s', (_mode, reference) => {
  const t = new Teardown();
  // The ESS long-polls unless `reference`.
  beforeAll(async () => {
    ({ css, onCss, onEss } = await startPair(t, { deadlineMs: DEADLINE_MS, reference }));
  });
  afterAll(() => t.run());

  test('an object addressed by type arrives complete and intact; O13 says delivered', async () => {
    await onCss.updateObject({ objectID: 'big', objectType: 'model', destinationType: 'edge' }, DATA);
    await onCss.updateObject({ objectID: 'elsewhere', objectType: 'model', destinationType: 'other' }, 'not for n1');
    await eventually('status on the ESS', () => onEss.getObjectStatus('model', 'big'), (s) => s === 'completelyReceived');
    const listed = await onEss.listObjects('model');
    expect(listed.map((m) => m.objectID)).toEqual(['big']);
    expect(listed[0]?.objectSize).toBe(DATA.length);
    const data = await readAll(await onEss.fetchObjectData('model', 'big'));
    expect(sha(data)).toBe(sha(DATA));
    await eventually('O13 of big', () => o13('big'), (d) => d.join() === 'edge/n1:delivered');
  });

  test('an object for another type never arrives', async () => {
    expect(await onEss.getObjectStatus('model', 'elsewhere')).toBeNull();
  });

  test('consumed on the ESS shows as consumed on the CSS', async () => {
    await onEss.markObjectConsumed('model', 'big');
    await eventually('O13 of big', () => o13('big'), (d) => d.join() === 'edge/n1:consumed');
  });

  test('a deletion on the CSS reaches the ESS as deleted: true', async () => {
    await onCss.updateObject({ objectID: 'gone', objectType: 'model', destinationType: 'edge' }, 'bye');
    await eventually('status of gone on the ESS', () => onEss.getObjectStatus('model', 'gone'), (s) => s === 'completelyReceived');
    await onCss.deleteObject('model', 'gone');
    const listed = await eventually(
      'deleted on the ESS',
      () => onEss.listObjects('model'),
      (l) => l.some((m) => m.objectID === 'gone' && m.deleted),
    );
    expect(listed.find((m) => m.objectID === 'gone')?.deleted).toBe(true);
    // The ESS acknowledged (ackDelete): the CSS's objdeleted phase ended with it.
    await eventually('gone from the CSS', () => onCss.getObjectStatus('model', 'gone'), (s) => s === null);
    expect(await onCss.getObjectDestinations('model', 'gone')).toEqual([]);
    // The app confirms: the ESS drops it and tells the CSS, which then forgets the pair.
    await onEss.markObjectDeleted('model', 'gone');
    await eventually('gone from the ESS', () => onEss.getObjectStatus('model', 'gone'), (s) => s === null);
  });

  test('a deletion reaches an ESS that no longer holds the object with its metadata, as the reference sends it', async () => {
    // The app consumed it, so the ESS has nothing of it left: what its app hears of the
    // deletion is what the CSS's poll answer says (the reference clients read it as an update).
    await onCss.updateObject({ objectID: 'told', objectType: 'model', destinationType: 'edge', version: '7', description: 'kept' }, 'bye');
    await eventually('status of told on the ESS', () => onEss.getObjectStatus('model', 'told'), (s) => s === 'completelyReceived');
    await onEss.markObjectConsumed('model', 'told');
    await eventually('O13 of told', () => o13('told'), (d) => d.join() === 'edge/n1:consumed');
    await onCss.deleteObject('model', 'told');
    const listed = await eventually(
      'deleted on the ESS',
      () => onEss.listObjects('model'),
      (l) => l.some((m) => m.objectID === 'told' && m.deleted),
    );
    const told = listed.find((m) => m.objectID === 'told');
    expect(told).toMatchObject({ deleted: true, version: '7', description: 'kept', originType: 'Cloud', consumers: 1 });
    await onEss.markObjectDeleted('model', 'told');
  });

  test('data corrupted at the CSS is refused with a SHA-256 error in O13, and retried until intact', async () => {
    // Over the inline limit, so that its bytes are a file the test can damage.
    const good = randomBytes(DEFAULT_INLINE_LIMIT + 4096);
    // Uploaded for another destination type first, so that the ESS cannot fetch it before
    // the bytes are damaged; a metaOnly update then addresses it to n1, data and digest kept.
    await onCss.updateObject({ objectID: 'bad', objectType: 'model', destinationType: 'other' }, good);
    const file = await blobFileOf(css.root, good);
    const bad = Buffer.from(good);
    bad[0] = (bad[0]! + 1) % 256;
    await writeFile(file, bad);
    await onCss.updateObject({ objectID: 'bad', objectType: 'model', destinationType: 'edge', metaOnly: true });
    const reason = `data SHA-256 mismatch: expected ${sha(good)}, got ${sha(bad)}`;
    await eventually(
      'O13 of bad',
      () => onCss.getObjectDestinations('model', 'bad'),
      (d) => d.length === 1 && d[0]?.status === 'error',
    );
    expect(await onCss.getObjectDestinations('model', 'bad')).toEqual([{ destinationType: 'edge', destinationID: 'n1', status: 'error', message: reason }]);
    expect(await onEss.getObjectStatus('model', 'bad')).toBe('partiallyreceived');
    // Repaired at the CSS: the ESS's next retry gets it, and the error clears.
    await writeFile(file, good);
    await eventually('status of bad on the ESS', () => onEss.getObjectStatus('model', 'bad'), (s) => s === 'completelyReceived');
    expect(sha(await readAll(await onEss.fetchObjectData('model', 'bad')))).toBe(sha(good));
    await eventually('O13 of bad', () => o13('bad'), (d) => d.join() === 'edge/n1:delivered');
  });
});
