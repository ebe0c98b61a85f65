/**
 * CSS ⇄ ESS over HTTP on the real binaries: our ESS registers with our CSS, polls it, downloads
 * what is addressed to it, and acks each step; the app's consumed mark on the ESS shows on the
 * CSS, and a deletion on the CSS reaches the ESS. [ref sync-protocol §1 "ESS behaviour", §3]
 */
import { createHash, randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { BIN, startManaged, Teardown, type RunningProcess } from '../helpers/node-process.js';
import type { SyncServiceClient } from '../../sdk/index.js';

jest.setTimeout(60_000);

const run = promisify(execFile);
const ORG = 'org1';
const DATA = randomBytes(1024 * 1024);
/** Polling deadlines only: generous, so a loaded machine does not fail the test. */
const DEADLINE_MS = 30_000;

const t = new Teardown();
let css: RunningProcess;
let ess: RunningProcess;
let onCss: SyncServiceClient;
let onEss: SyncServiceClient;

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function eventually<T>(what: string, probe: () => Promise<T>, done: (v: T) => boolean): Promise<T> {
  const deadline = Date.now() + DEADLINE_MS;
  for (;;) {
    const v = await probe();
    if (done(v)) return v;
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(v)} after ${DEADLINE_MS} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function readAll(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c);
  return Buffer.concat(chunks);
}

async function o13(objectID: string): Promise<string[]> {
  return (await onCss.getObjectDestinations('model', objectID)).map((d) => `${d.destinationType}/${d.destinationID}:${d.status}`);
}

beforeAll(async () => {
  css = await startManaged(t, { mode: 'css' });
  onCss = await css.client({ orgID: ORG });
  t.add(() => Promise.resolve(onCss.close()));
  await onCss.putOrganization({ orgID: ORG });
  await run(process.execPath, [BIN, 'users', 'add', 'org1/edge/n1', '--type', 'edgenode', '--org', ORG, '--username', 'edge/n1', '--secret', 's', '--persistence-root-path', css.root]);
  const cssPort = new URL(css.url).port;
  ess = await startManaged(t, {
    mode: 'ess',
    env: {
      ORG_ID: ORG,
      DESTINATION_TYPE: 'edge',
      DESTINATION_ID: 'n1',
      HTTP_CSS_HOST: '127.0.0.1',
      HTTP_CSS_PORT: cssPort,
      HTTP_CSS_USER: 'org1/edge/n1',
      HTTP_CSS_PASSWORD: 's',
      HTTP_POLLING_INTERVAL: '1',
      RESEND_INTERVAL: '1',
    },
  });
  onEss = await ess.client();
  t.add(() => Promise.resolve(onEss.close()));
  // The ESS registers on its own (retrying until the CSS picked the new user up).
  await eventually('registration', () => onCss.getDestinations(), (d) => d.some((x) => x.destinationType === 'edge' && x.destinationID === 'n1'));
});

afterAll(() => t.run());

describe('an ESS syncing with a CSS over HTTP', () => {
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
    // The app confirms: the ESS drops it and tells the CSS, which then forgets the pair.
    await onEss.markObjectDeleted('model', 'gone');
    await eventually('gone from the ESS', () => onEss.getObjectStatus('model', 'gone'), (s) => s === null);
  });
});
