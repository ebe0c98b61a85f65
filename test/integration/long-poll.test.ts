/**
 * The long-poll extension on the real CSS binary (ours; a reference ESS never sends `wait`):
 * an empty poll with `?wait=N` is held until the Sender queues something for the caller, and a
 * stop does not wait for held polls. The ESS is played by raw requests.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { BIN, raw, startManaged, Teardown, type RunningProcess } from '../helpers/node-process.js';
import type { SyncServiceClient } from '../../sdk/index.js';
import { parseJson } from '../../lib/model/index.js';

// Below the 60 s holds used here: a wake or an abort that does not happen fails the test.
jest.setTimeout(30_000);

const run = promisify(execFile);
const ORG = 'org1';
const N1 = { user: 'org1/edge/n1', pass: 's1' };
const AS_N1 = { 'X-Sync-Service-Dest': 'org1/edge/n1' };

const t = new Teardown();
let css: RunningProcess;
let client: SyncServiceClient;

interface PollEntry {
  Type: string;
  MetaData: { objectID: string };
}

function poll(query = ''): ReturnType<typeof raw> {
  return raw(css, 'GET', `/spi/v1/objects/${query}`, { auth: N1, headers: AS_N1 });
}

/** Acks an update so that the next polls do not serve it again. */
async function ack(objectID: string): Promise<void> {
  const entries = parseJson((await poll()).text) as { MetaData: { instanceID: bigint; dataID: bigint } }[];
  const m = entries[0]?.MetaData;
  if (m === undefined) throw new Error(`nothing to ack for ${objectID}`);
  expect((await raw(css, 'PUT', `/spi/v1/objects/${ORG}/model/${objectID}/${m.instanceID}/${m.dataID}/updated`, { auth: N1, headers: AS_N1 })).status).toBe(204);
}

beforeAll(async () => {
  css = await startManaged(t, { mode: 'css' });
  client = await css.client({ orgID: ORG });
  t.add(() => Promise.resolve(client.close()));
  await client.putOrganization({ orgID: ORG });
  await run(process.execPath, [BIN, 'users', 'add', N1.user, '--type', 'edgenode', '--org', ORG, '--username', 'edge/n1', '--secret', N1.pass, '--persistence-root-path', css.root]);
  // The running CSS picks the users file up on its own; until then the node gets 403.
  const deadline = Date.now() + 10_000;
  while ((await poll()).status === 403) {
    if (Date.now() > deadline) throw new Error('the CSS does not know the edge node after 10 s');
    await new Promise((r) => setTimeout(r, 200));
  }
  expect((await raw(css, 'PUT', '/spi/v1/register-new/org1/edge/n1?persistent-storage=true', { auth: N1, headers: AS_N1 })).status).toBe(204);
});

afterAll(() => t.run());

describe('long-poll: GET /spi/v1/objects/?wait=N', () => {
  test.each(['abc', '0', '61', '-1', '1.5', ''])('wait=%j is 400', async (v) => {
    expect((await poll(`?wait=${v}`)).status).toBe(400);
  });

  test('with nothing pending and nothing published, it answers 204 once the wait is over', async () => {
    expect((await poll('?wait=1')).status).toBe(204);
  });

  test('a held poll answers with the object published meanwhile', async () => {
    const held = poll('?wait=5');
    await client.updateObject({ objectID: 'lp1', objectType: 'model', destinationType: 'edge' }, 'hello');
    const res = await held;
    expect(res.status).toBe(200);
    expect((parseJson(res.text) as PollEntry[]).map((e) => [e.Type, e.MetaData.objectID])).toEqual([['update', 'lp1']]);
    await ack('lp1');
  });

  test('the publish wakes the poll: a 60 s hold ends long before its wait', async () => {
    const held = poll('?wait=60');
    // Let the CSS start holding, so that it is the wake, not the first listing, that answers.
    await new Promise((r) => setTimeout(r, 300));
    await client.updateObject({ objectID: 'lp2', objectType: 'model', destinationType: 'edge' }, 'hello');
    const res = await held;
    expect(res.status).toBe(200);
    expect((parseJson(res.text) as PollEntry[]).map((e) => e.MetaData.objectID)).toEqual(['lp2']);
    await ack('lp2');
  });

  test('without wait, an empty poll answers 204 at once, as the reference does', async () => {
    expect((await poll()).status).toBe(204);
  });

  test('with ?inline=N, small objects come with their data and its SHA-256, larger ones without', async () => {
    const small = Buffer.from('small configuration');
    await client.updateObject({ objectID: 'in1', objectType: 'model', destinationType: 'edge' }, small);
    await client.updateObject({ objectID: 'in2', objectType: 'model', destinationType: 'edge' }, Buffer.alloc(2000, 7));
    const res = await poll('?inline=1024');
    expect(res.status).toBe(200);
    const entries = parseJson(res.text) as (PollEntry & { Data?: string; DataSHA256?: string })[];
    const byID = new Map(entries.map((e) => [e.MetaData.objectID, e]));
    expect(byID.get('in1')?.Data).toBe(small.toString('base64'));
    expect(byID.get('in1')?.DataSHA256).toBe(createHash('sha256').update(small).digest('hex'));
    expect(byID.get('in2')).not.toHaveProperty('Data');
    // A poll without the parameter, what a reference ESS sends, never carries data.
    expect((parseJson((await poll()).text) as Record<string, unknown>[]).every((e) => !('Data' in e))).toBe(true);
    await ack('in1');
    await ack('in2');
  });

  test.each(['lots', '-5', '1.5'])('inline=%j is 400', async (v) => {
    expect((await poll(`?inline=${v}`)).status).toBe(400);
  });

  test('a stop ends held polls instead of waiting for them', async () => {
    const held = poll('?wait=60').then(
      (r) => r.status,
      () => 'connection closed',
    );
    await new Promise((r) => setTimeout(r, 300));
    expect(await css.stop()).toBe(0);
    expect([503, 'connection closed']).toContain(await held);
  });
});
