/**
 * CSS → ESS sync over HTTP when things go wrong, on the real binaries: an ESS that was offline
 * while objects came and went, an object replaced again and again while it is being delivered,
 * and an ESS that sends the CSS forged, malformed or hostile SPI requests.
 * [ref sync-protocol §1 "ESS behaviour", §3 Normal update, Delete, Registration; rest-api §3.2, §6]
 */
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { readdir, stat } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { readAll, sha } from '../helpers/bytes.js';
import { raw, startNode, Teardown, type RunningProcess } from '../helpers/node-process.js';
import { addEssUser, essEnv, eventuallyWithin, ORG, portOf, startPair, type Pair, type PairOptions } from '../helpers/sync-pair.js';
import type { SyncServiceClient } from '../../sdk/index.js';
import { METADATA_INT64_KEYS, parseJson } from '../../lib/model/index.js';

jest.setTimeout(60_000);

/** Polling deadlines only: generous, so a loaded machine does not fail the test. */
const DEADLINE_MS = 40_000;
const eventually = eventuallyWithin(DEADLINE_MS);

/** Pino lines at error level (50) or above that a node printed. */
function errorLines(node: RunningProcess): string[] {
  // The log is on the node's output (else there would be nothing to look at).
  expect(node.output()).toContain('"msg":"listening"');
  return node
    .output()
    .split('\n')
    .filter((line) => {
      const m = /"level":(\d+)/.exec(line);
      return m?.[1] !== undefined && Number(m[1]) >= 50;
    });
}

/** The data blobs stored under a node's root (what it holds on disk, whatever it lists). */
async function blobSizes(root: string): Promise<number[]> {
  const sizes: number[] = [];
  for (const entry of await readdir(join(root, 'sync', 'data'), { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) sizes.push((await stat(join(entry.parentPath, entry.name))).size);
  }
  return sizes.sort((a, b) => a - b);
}

/** A CSS logging at info level with org1, and an ESS edge/n1 (password s1) registered with it, quick timers. */
const PAIR: PairOptions = { deadlineMs: DEADLINE_MS, secret: 's1', cssEnv: { LOG_LEVEL: 'info' } };

describe('an ESS that was offline while objects were published and deleted', () => {
  const t = new Teardown();
  let p: Pair;
  let restarted: RunningProcess;
  let onRestarted: SyncServiceClient;
  const ids = Array.from({ length: 100 }, (_, i) => `o${String(i).padStart(3, '0')}`);
  const deleted = ids.filter((_, i) => i % 10 === 3);
  const kept = ids.filter((id) => !deleted.includes(id));
  const data = new Map(ids.map((id) => [id, Buffer.concat([Buffer.from(`${id}:`), randomBytes(2048)])]));

  beforeAll(async () => {
    p = await startPair(t, PAIR);
  });
  afterAll(() => t.run());

  test('the ESS stops cleanly and stays registered', async () => {
    expect(await p.ess.stop()).toBe(0);
    expect((await p.onCss.getDestinations()).map((d) => `${d.destinationType}/${d.destinationID}`)).toEqual(['edge/n1']);
  });

  test('while it is down, 100 objects are published for its type and 10 of them deleted', async () => {
    for (const id of ids) await p.onCss.updateObject({ objectID: id, objectType: 'batch', destinationType: 'edge' }, data.get(id));
    for (const id of deleted) await p.onCss.deleteObject('batch', id);
    expect((await p.onCss.listAllObjects('batch')).map((o) => o.objectID).sort()).toEqual(kept);
    // Queued for the registered node, not delivered yet.
    expect(await p.onCss.getObjectDestinations('batch', kept[0]!)).toEqual([{ destinationType: 'edge', destinationID: 'n1', status: 'delivering', message: '' }]);
  });

  test('restarted on the same root, it ends with exactly the 90, data intact', async () => {
    restarted = await startNode({ mode: 'ess', root: p.ess.root, env: essEnv(portOf(p.css), PAIR) });
    t.add(() => restarted.stop());
    onRestarted = await restarted.client({ appKey: p.ess.admin!.appKey, appSecret: p.ess.admin!.secret });
    t.add(() => Promise.resolve(onRestarted.close()));
    const listed = await eventually(
      'the 90 complete on the ESS',
      () => onRestarted.listObjects('batch'),
      (l) => l.filter((m) => !m.deleted).length === kept.length,
    );
    expect(listed.map((m) => m.objectID).sort()).toEqual(kept);
    expect(listed.every((m) => !m.deleted)).toBe(true);
    for (const id of [kept[0]!, kept[44]!, kept[89]!]) {
      expect(await onRestarted.getObjectStatus('batch', id)).toBe('completelyReceived');
      expect(sha(await readAll(await onRestarted.fetchObjectData('batch', id)))).toBe(sha(data.get(id)!));
    }
  });

  test('none of the 10 deleted ever reaches the ESS, not even as a deletion to confirm', async () => {
    for (const id of deleted) expect(await onRestarted.getObjectStatus('batch', id)).toBeNull();
    expect((await onRestarted.listObjects('batch', { received: true })).filter((m) => deleted.includes(m.objectID))).toEqual([]);
  });

  test('the CSS reports the 90 delivered to n1, and nothing about the 10', async () => {
    const toward = await eventually(
      'delivery status toward n1',
      () => p.onCss.getDestinationObjects('edge', 'n1'),
      (l) => l.length === kept.length && l.every((o) => o.status === 'delivered'),
    );
    expect(toward.map((o) => o.objectID)).toEqual(kept);
    for (const id of kept) {
      expect(await p.onCss.getObjectDestinations('batch', id)).toEqual([{ destinationType: 'edge', destinationID: 'n1', status: 'delivered', message: '' }]);
    }
    // The deleted objects are gone from the CSS, with their delivery records: a node that never
    // got them is not told to delete them. [lib/sync/sender.ts retire]
    for (const id of deleted) {
      expect(await p.onCss.getObject('batch', id)).toBeNull();
      expect(await p.onCss.getObjectDestinations('batch', id)).toEqual([]);
    }
    expect(errorLines(p.css)).toEqual([]);
  });
});

describe('an object deleted on the CSS while the ESS that holds it is offline', () => {
  const t = new Teardown();
  let p: Pair;

  beforeAll(async () => {
    p = await startPair(t, PAIR);
  });
  afterAll(() => t.run());

  test('the CSS shows it as objdeleted, still delivered to n1, until n1 is back and acknowledges', async () => {
    await p.onCss.updateObject({ objectID: 'held', objectType: 'batch', destinationType: 'edge' }, 'kept until acked');
    const n1 = { destinationType: 'edge', destinationID: 'n1', message: '' };
    await eventually('held delivered', () => p.onCss.getObjectDestinations('batch', 'held'), (d) => d[0]?.status === 'delivered');
    expect(await p.ess.stop()).toBe(0);

    await p.onCss.deleteObject('batch', 'held');
    expect(await p.onCss.getObjectStatus('batch', 'held')).toBe('objdeleted');
    expect(await p.onCss.getObject('batch', 'held')).toMatchObject({ objectID: 'held', deleted: true });
    expect(await p.onCss.getObjectDestinations('batch', 'held')).toEqual([{ ...n1, status: 'delivered' }]);
    expect((await p.onCss.listAllObjects('batch')).map((o) => o.objectID)).toEqual(['held']);

    const restarted = await startNode({ mode: 'ess', root: p.ess.root, env: essEnv(portOf(p.css), PAIR) });
    t.add(() => restarted.stop());
    const onRestarted = await restarted.client({ appKey: p.ess.admin!.appKey, appSecret: p.ess.admin!.secret });
    t.add(() => Promise.resolve(onRestarted.close()));
    await eventually('held deleted on the ESS', () => onRestarted.getObjectStatus('batch', 'held'), (s) => s === 'objdeleted');
    await eventually('held gone from the CSS', () => p.onCss.getObjectStatus('batch', 'held'), (s) => s === null);
    expect(await p.onCss.getObjectDestinations('batch', 'held')).toEqual([]);
    expect(errorLines(p.css)).toEqual([]);
  });
});

describe('an object replaced five times while it is being delivered', () => {
  const t = new Teardown();
  let p: Pair;
  const SIZE = 32 * 1024 * 1024;
  let last: Buffer;

  beforeAll(async () => {
    p = await startPair(t, PAIR);
  });
  afterAll(() => t.run());

  test('the ESS ends with the last version only; the CSS shows it delivered', async () => {
    await p.onCss.updateObject({ objectID: 'big', objectType: 'model', destinationType: 'edge' });
    await p.onCss.updateObjectData('model', 'big', randomBytes(SIZE));
    // The first version is on its way: the ESS holds its metadata and is fetching the data.
    await eventually('the first version on the ESS', () => p.onEss.getObjectStatus('model', 'big'), (s) => s !== null);
    for (let i = 0; i < 5; i++) {
      last = randomBytes(SIZE);
      await p.onCss.updateObjectData('model', 'big', last);
    }
    const onCss = (await p.onCss.getObject('model', 'big'))!;
    await eventually(
      'the last version on the ESS',
      () => p.onEss.getObject('model', 'big'),
      (m) => m?.instanceID === onCss.instanceID,
    );
    await eventually('the last version complete', () => p.onEss.getObjectStatus('model', 'big'), (s) => s === 'completelyReceived');
    const held = (await p.onEss.getObject('model', 'big'))!;
    expect([held.instanceID, held.dataID, held.objectSize]).toEqual([onCss.instanceID, onCss.dataID, SIZE]);
    expect(sha(await readAll(await p.onEss.fetchObjectData('model', 'big')))).toBe(sha(last));
    expect((await p.onEss.listObjects('model')).map((m) => [m.objectID, m.instanceID])).toEqual([['big', onCss.instanceID]]);
    // No older version left behind on the ESS's disk: one blob, the last one (downloads of
    // older versions still running finish and are dropped).
    await eventually('one blob on the ESS', () => blobSizes(p.ess.root), (s) => s.length === 1);
    expect(await blobSizes(p.ess.root)).toEqual([SIZE]);
    await eventually(
      'O13 of big',
      () => p.onCss.getObjectDestinations('model', 'big'),
      (d) => d.length === 1 && d[0]?.status === 'delivered',
    );
    expect(await p.onCss.getObjectDestinations('model', 'big')).toEqual([{ destinationType: 'edge', destinationID: 'n1', status: 'delivered', message: '' }]);
    expect((await p.onCss.getDestinationObjects('edge', 'n1')).map((o) => [o.objectID, o.status])).toEqual([['big', 'delivered']]);
    expect(errorLines(p.css)).toEqual([]);
  });
});

describe('a malicious or broken ESS talking raw SPI to the CSS', () => {
  const t = new Teardown();
  let p: Pair;
  /** edge/n2: registered, played by raw requests. */
  const N2 = { user: `${ORG}/edge/n2`, pass: 's2' };
  const AS_N2 = { 'X-Sync-Service-Dest': `${ORG}/edge/n2` };
  let victim: { instanceID: bigint; dataID: bigint };
  let large: { instanceID: bigint; dataID: bigint };
  const LARGE_SIZE = 16 * 1024 * 1024;
  const VICTIM_DATA = 'victim data, 32 bytes long......';
  let before: { o13: unknown; towardN1: unknown; towardN2: unknown; victimPolledByN2: unknown };

  /** A SPI request as edge/n2, with its own identity unless `headers` say otherwise. */
  function spi(method: string, path: string, opts: { body?: string | Buffer; headers?: Record<string, string> } = {}): ReturnType<typeof raw> {
    return raw(p.css, method, `/spi/v1/${path}`, { auth: N2, headers: { ...AS_N2, ...opts.headers }, ...(opts.body !== undefined ? { body: opts.body } : {}) });
  }

  const victimPath = (shift = { instanceID: 0n, dataID: 0n }): string =>
    `objects/${ORG}/model/victim/${victim.instanceID + shift.instanceID}/${victim.dataID + shift.dataID}`;

  async function state(): Promise<typeof before> {
    return {
      o13: await p.onCss.getObjectDestinations('model', 'victim'),
      towardN1: await p.onCss.getDestinationObjects('edge', 'n1'),
      towardN2: await p.onCss.getDestinationObjects('edge', 'n2'),
      // Where n2's record of the victim stands: its update is polled until n2 acks it.
      victimPolledByN2: await victimPolledByN2(),
    };
  }

  async function victimPolledByN2(): Promise<[string, bigint][]> {
    const res = await spi('GET', 'objects/');
    const entries = res.status === 200 ? (parseJson(res.text, METADATA_INT64_KEYS) as { Type: string; MetaData: { objectID: string; instanceID: bigint } }[]) : [];
    return entries.filter((e) => e.MetaData.objectID === 'victim').map((e) => [e.Type, e.MetaData.instanceID]);
  }

  beforeAll(async () => {
    p = await startPair(t, PAIR);
    await addEssUser(p.css, { destinationID: 'n2', secret: N2.pass });
    await eventually('the CSS knows edge/n2', () => spi('PUT', `register-new/${ORG}/edge/n2?persistent-storage=true`), (r) => r.status === 204);
    await p.onCss.updateObject({ objectID: 'victim', objectType: 'model', destinationType: 'edge' }, VICTIM_DATA);
    await eventually('victim on n1', () => p.onEss.getObjectStatus('model', 'victim'), (s) => s === 'completelyReceived');
    await eventually(
      'O13 of victim',
      () => p.onCss.getObjectDestinations('model', 'victim'),
      (d) => d.find((x) => x.destinationID === 'n1')?.status === 'delivered',
    );
    // For n2 only, big enough that a download of it can be abandoned midway.
    await p.onCss.updateObject({ objectID: 'large', objectType: 'model', destinationType: 'edge', destinationID: 'n2' });
    await p.onCss.updateObjectData('model', 'large', randomBytes(LARGE_SIZE));
    const l = (await p.onCss.getObject('model', 'large'))!;
    large = { instanceID: l.instanceID, dataID: l.dataID };
    const m = (await p.onCss.getObject('model', 'victim'))!;
    victim = { instanceID: m.instanceID, dataID: m.dataID };
    before = await state();
    expect(before).toEqual({
      o13: [
        { destinationType: 'edge', destinationID: 'n1', status: 'delivered', message: '' },
        { destinationType: 'edge', destinationID: 'n2', status: 'delivering', message: '' },
      ],
      towardN1: [{ orgID: ORG, objectType: 'model', objectID: 'victim', status: 'delivered' }],
      towardN2: [
        { orgID: ORG, objectType: 'model', objectID: 'large', status: 'delivering' },
        { orgID: ORG, objectType: 'model', objectID: 'victim', status: 'delivering' },
      ],
      victimPolledByN2: [['update', victim.instanceID]],
    });
  });
  afterAll(() => t.run());

  test('another ESS’s, another org’s or a malformed X-Sync-Service-Dest is 403 Unauthorized', async () => {
    const claims = [`${ORG}/edge/n1`, 'org2/edge/n2', `${ORG}/edge`, `${ORG}/edge/n2/extra`, 'garbage', '', `${ORG}/edge/..`, `${ORG}//n2`, `${ORG}/edge/n2\u0000`];
    for (const claim of claims) {
      for (const [method, path] of [
        ['GET', 'objects/'],
        ['GET', `${victimPath()}/data`],
        ['PUT', `${victimPath()}/received`],
        ['PUT', `${victimPath()}/consumed`],
        ['PUT', `unregister/${ORG}/edge/n1`],
        ['PUT', `objects/${ORG}/resend`],
      ] as const) {
        const res = await spi(method, path, { headers: { 'X-Sync-Service-Dest': claim } }).catch((e: unknown) => ({ status: 0, text: String(e) }));
        // A NUL in a header does not even leave the client: nothing to ask of the CSS then.
        if (res.status === 0 && claim.includes('\u0000')) continue;
        expect([claim, method, path, res.status, res.text]).toEqual([claim, method, path, 403, 'Unauthorized']);
      }
    }
    // Registration paths name the ESS acting: its own identity, another node in the path.
    const other = await spi('PUT', `register/${ORG}/edge/n1`);
    expect([other.status, other.text]).toEqual([403, 'Unauthorized']);
  });

  test('bad Range headers on a data download: 400 when malformed, 416 when past the end', async () => {
    for (const range of ['bytes=abc', 'bytes=5-2', 'bytes=0-1,3-4', 'items=0-1', 'bytes=-5', 'bytes=', 'bytes=1-', 'bytes=99999999999999999999-1']) {
      const res = await spi('GET', `${victimPath()}/data`, { headers: { Range: range } });
      expect([range, res.status]).toEqual([range, 400]);
    }
    const past = await spi('GET', `${victimPath()}/data`, { headers: { Range: 'bytes=1000-2000' } });
    expect([past.status, past.headers.get('content-range')]).toEqual([416, `bytes */${VICTIM_DATA.length}`]);
  });

  test('garbage feedback bodies are 400', async () => {
    for (const body of ['not json', '{"Code":"two"}', '[1,2,3]', '{"Code":2', '\u0000\u0001\u0002', 'null']) {
      const res = await spi('PUT', `${victimPath()}/feedback`, { body });
      expect([body, res.status]).toEqual([body, 400]);
    }
  });

  test('garbage MetaData bodies on update, delete and deleted are 400, as the reference decodes them first', async () => {
    for (const action of ['update', 'delete', 'deleted']) {
      for (const body of ['not json', '{"objectID":', '\u0000\u0001']) {
        const res = await spi('PUT', `${victimPath()}/${action}`, { body });
        expect([action, body, res.status]).toEqual([action, body, 400]);
      }
    }
  });

  test('acks and downloads of unknown objects, unknown instances or a wrong dataID are refused (404/409)', async () => {
    const unknownObject = `objects/${ORG}/model/nosuch/${victim.instanceID}/${victim.dataID}`;
    for (const action of ['updated', 'received', 'consumed', 'ackDelete', 'deleted']) {
      expect([action, (await spi('PUT', `${unknownObject}/${action}`)).status]).toEqual([action, 409]);
      expect([action, (await spi('PUT', `${victimPath({ instanceID: 1n, dataID: 0n })}/${action}`)).status]).toEqual([action, 409]);
      expect([action, (await spi('PUT', `${victimPath({ instanceID: -1n, dataID: 0n })}/${action}`)).status]).toEqual([action, 409]);
    }
    const feedback = JSON.stringify({ Code: 2, RetryInterval: 0, Reason: 'forged' });
    expect((await spi('PUT', `${unknownObject}/feedback`, { body: feedback })).status).toBe(409);
    expect((await spi('PUT', `${victimPath({ instanceID: 1n, dataID: 0n })}/feedback`, { body: feedback })).status).toBe(409);
    expect((await spi('GET', `${unknownObject}/data`)).status).toBe(404);
    expect((await spi('GET', `${victimPath({ instanceID: 1n, dataID: 0n })}/data`)).status).toBe(409);
    expect((await spi('GET', `${victimPath({ instanceID: 0n, dataID: 1n })}/data`)).status).toBe(409);
  });

  test('an ack of the right instance with a wrong dataID is 409: it is about other data', async () => {
    for (const action of ['updated', 'received', 'consumed']) {
      const res = await spi('PUT', `${victimPath({ instanceID: 0n, dataID: 1n })}/${action}`);
      expect([action, res.status]).toEqual([action, 409]);
    }
    const res = await spi('PUT', `${victimPath({ instanceID: 0n, dataID: 1n })}/feedback`, { body: JSON.stringify({ Code: 2, RetryInterval: 0, Reason: 'forged' }) });
    expect(res.status).toBe(409);
  });

  test('path traversal and malformed segments are 400', async () => {
    const paths = [
      `objects/${ORG}/model/..%2F..%2Fetc%2Fpasswd/${victim.instanceID}/${victim.dataID}/data`,
      `objects/${ORG}/%2e%2e/victim/${victim.instanceID}/${victim.dataID}/data`,
      `objects/%2e%2e/model/victim/${victim.instanceID}/${victim.dataID}/received`,
      `objects/${ORG}/model/a%00b/${victim.instanceID}/${victim.dataID}/received`,
      `objects/${ORG}/model/http%3A%2F%2Fevil/${victim.instanceID}/${victim.dataID}/received`,
      `objects/${ORG}/model/victim/x/${victim.dataID}/received`,
      `objects/${ORG}/model/victim/${victim.instanceID}/-1/received`,
      `objects/${ORG}/model/victim/${victim.instanceID}/${victim.dataID}/explode`,
      `objects/${ORG}/model/victim/%E0%A4%A/${victim.dataID}/received`,
      `objects/${ORG}/model/victim/${victim.instanceID}/${victim.dataID}/received/more/segments`,
      `register/${ORG}/edge/%2e%2e`,
      `ping/${ORG}/edge/n2/extra`,
    ];
    for (const path of paths) {
      for (const method of path.endsWith('/data') ? ['GET'] : ['PUT']) {
        const res = await spi(method, path);
        expect([method, path, res.status]).toEqual([method, path, 400]);
      }
    }
  });

  test('a huge feedback body is refused with 413 as soon as it is too large, not once it is all sent', async () => {
    // 64 MiB announced, 1 MiB sent (far past the limit of a feedback body), then the answer
    // awaited: the CSS must not wait for the rest.
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${p.css.url}/spi/v1/${victimPath()}/feedback`, {
        method: 'PUT',
        headers: { authorization: `Basic ${Buffer.from(`${N2.user}:${N2.pass}`).toString('base64')}`, ...AS_N2, 'content-length': String(64 * 1024 * 1024) },
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
        req.destroy();
      });
      req.on('error', reject);
      req.write(Buffer.alloc(1024 * 1024, 0x41));
    });
    expect(status).toBe(413);
  });

  test('malformed query parameters of the poll and the registration are 400', async () => {
    for (const query of ['wait=abc', 'wait=0', 'wait=999', 'wait=-1']) {
      expect([query, (await spi('GET', `objects/?${query}`)).status]).toEqual([query, 400]);
    }
    for (const action of ['register', 'register-new', 'ping']) {
      for (const query of ['persistent-storage=maybe', 'persistent-storage=yes', 'persistent-storage=%00']) {
        expect([action, query, (await spi('PUT', `${action}/${ORG}/edge/n2?${query}`)).status]).toEqual([action, query, 400]);
      }
    }
  });

  test('a request body cut off midway and a download abandoned midway are no errors', async () => {
    const port = Number(new URL(p.css.url).port);
    const auth = Buffer.from(`${N2.user}:${N2.pass}`).toString('base64');
    await new Promise<void>((resolve, reject) => {
      const sock = connect(port, '127.0.0.1', () => {
        const head = [
          `PUT /spi/v1/${victimPath()}/feedback HTTP/1.1`,
          `Host: 127.0.0.1:${port}`,
          `Authorization: Basic ${auth}`,
          `X-Sync-Service-Dest: ${AS_N2['X-Sync-Service-Dest']}`,
          'Content-Type: application/json',
          'Content-Length: 1000',
          '',
          '{"Code":2,',
        ].join('\r\n');
        sock.end(head, () => resolve());
      });
      sock.on('error', reject);
    });
    const ac = new AbortController();
    const res = await fetch(`${p.css.url}/spi/v1/objects/${ORG}/model/large/${large.instanceID}/${large.dataID}/data`, {
      headers: { authorization: `Basic ${auth}`, ...AS_N2 },
      signal: ac.signal,
    });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    expect((await reader.read()).done).toBe(false);
    ac.abort();
    // The CSS notices both on its own; give it a moment before looking at its log.
    await new Promise((r) => setTimeout(r, 500));
    expect(errorLines(p.css)).toEqual([]);
  });

  test('the CSS logged no error, is up, and the attacks changed no record', async () => {
    expect(errorLines(p.css)).toEqual([]);
    expect((await raw(p.css, 'GET', '/api/v1/health')).status).toBe(200);
    expect(await state()).toEqual(before);
    // n2 can still do things right: its download of the victim works.
    const get = await spi('GET', `${victimPath()}/data`);
    expect([get.status, get.text]).toEqual([200, VICTIM_DATA]);
  });

  test('a legit object published afterwards is delivered to the well-behaved ESS', async () => {
    const DATA = randomBytes(256 * 1024);
    await p.onCss.updateObject({ objectID: 'after', objectType: 'model', destinationType: 'edge' }, DATA);
    await eventually('after on n1', () => p.onEss.getObjectStatus('model', 'after'), (s) => s === 'completelyReceived');
    expect(sha(await readAll(await p.onEss.fetchObjectData('model', 'after')))).toBe(sha(DATA));
    await eventually(
      'O13 of after',
      () => p.onCss.getObjectDestinations('model', 'after'),
      (d) => d.find((x) => x.destinationID === 'n1')?.status === 'delivered',
    );
    expect(await p.onCss.getObjectDestinations('model', 'victim')).toEqual(before.o13);
    expect(errorLines(p.css)).toEqual([]);
  });
});
