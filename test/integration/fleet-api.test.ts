/**
 * The fleet read model (`/api/v1/fleet/{orgID}…`, an edgesync extension) on a real CSS with a
 * real HTTP ESS: what an org's identities see, that no other org sees anything, paging, the
 * drill-downs, the ESS's smaller view and the server-sent event stream.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { BIN, raw, Teardown, type RunningProcess } from '../helpers/node-process.js';
import { eventually, ORG, startPair } from '../helpers/sync-pair.js';
import { FleetClient, type SyncServiceClient } from '../../sdk/index.js';
import { runTop, type TopIo } from '../../cmd/cli/top.js';

jest.setTimeout(60_000);

const run = promisify(execFile);

interface Page<T> {
  items: T[];
  next: string | null;
  total: number;
}
interface Delivery {
  destinationType: string;
  destinationID: string;
  status: string;
  progress?: { bytes: number; total: number | null };
}
interface FleetObject {
  objectType: string;
  objectID: string;
  instanceID: string;
  status: string;
  size: number;
  deliveries: Delivery[];
  deliveriesTotal: number;
  deliveryCounts: Record<string, number>;
}
interface FleetNode {
  kind: string;
  destinationType: string;
  destinationID: string;
  communication: string;
  lastContact: string | null;
  health: string;
}
interface Snapshot {
  orgID: string;
  nodeType: string;
  nodes: Page<FleetNode>;
  objects: Page<FleetObject>;
}

type Auth = { user: string; pass: string } | null;
const ALICE = { user: `${ORG}/alice`, pass: 'alice-pw' }; // admin of org1
const READER = { user: `${ORG}/reader`, pass: 'reader-pw' }; // user of org1, in no ACL
const BOB = { user: 'org2/bob', pass: 'bob-pw' }; // admin of org2

async function addUser(css: RunningProcess, appKey: string, type: string, secret: string): Promise<void> {
  const [org = '', username = ''] = appKey.split('/');
  await run(process.execPath, [BIN, 'users', 'add', appKey, '--type', type, '--org', org, '--username', username, '--secret', secret, '--persistence-root-path', css.root]);
}

/** runTop with its output captured, as org1's admin unless the args say otherwise. */
async function top(node: RunningProcess, args: string[], signal?: AbortSignal, onOutput?: (text: string) => void): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: TopIo = {
    stdout: {
      write: (s: string) => {
        out += s;
        onOutput?.(out);
      },
      columns: 160,
    },
    stderr: { write: (s: string) => (err += s) },
    env: { EDGESYNC_URL: node.url, EDGESYNC_USER: ALICE.user, EDGESYNC_PASSWORD: ALICE.pass },
    ...(signal !== undefined ? { signal } : {}),
  };
  const code = await runTop(args, io);
  return { code, out, err };
}

async function getJson<T>(node: RunningProcess, path: string, auth: Auth): Promise<T> {
  const res = await raw(node, 'GET', path, { auth });
  if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${res.text}`);
  return JSON.parse(res.text) as T;
}

describe('the fleet API', () => {
  const t = new Teardown();
  let css: RunningProcess;
  let ess: RunningProcess;
  let onCss: SyncServiceClient;

  beforeAll(async () => {
    ({ css, ess, onCss } = await startPair(t, { deadlineMs: 20_000, env: { LISTENING_TYPE: 'unsecure' } }));
    await addUser(css, ALICE.user, 'admin', ALICE.pass);
    await addUser(css, READER.user, 'user', READER.pass);
    await addUser(css, BOB.user, 'admin', BOB.pass);
    // The CSS picks new users up on its own; wait until it did.
    await eventually('the new users', () => raw(css, 'GET', `/api/v1/fleet/${ORG}`, { auth: BOB }), (r) => r.status === 403, 10_000);
    await eventually('the new users', () => raw(css, 'GET', `/api/v1/fleet/${ORG}`, { auth: READER }), (r) => r.status === 200, 10_000);
    await onCss.updateObject({ objectType: 'model', objectID: 'm1', destinationType: 'edge', destinationID: 'n1' }, 'model one');
    await onCss.updateObject({ objectType: 'model', objectID: 'pub', destinationType: 'edge', public: true, noData: true });
    for (const id of ['p1', 'p2', 'p3', 'p4', 'p5']) await onCss.updateObject({ objectType: 'paged', objectID: id, destinationType: 'nowhere', noData: true });
  });
  afterAll(() => t.run());

  test('an org admin sees its node, healthy over HTTP, and its object delivered to it', async () => {
    const snap = await eventually(
      'm1 delivered in the fleet view',
      () => getJson<Snapshot>(css, `/api/v1/fleet/${ORG}`, ALICE),
      (s) => s.objects.items.find((o) => o.objectID === 'm1')?.deliveries[0]?.status === 'delivered',
      20_000,
    );
    expect(snap).toMatchObject({ orgID: ORG, nodeType: 'CSS' });
    expect(snap.nodes.items).toEqual([expect.objectContaining({ kind: 'ESS', destinationType: 'edge', destinationID: 'n1', communication: 'http', health: 'ok' })]);
    expect(Date.now() - Date.parse(snap.nodes.items[0]?.lastContact ?? '')).toBeLessThan(120_000);
    const m1 = snap.objects.items.find((o) => o.objectID === 'm1');
    expect(m1).toMatchObject({ objectType: 'model', status: 'ready', size: 9, deliveriesTotal: 1, deliveryCounts: expect.objectContaining({ delivered: 1 }) });
    expect(m1?.instanceID).toMatch(/^\d+$/);
  });

  test("another org's admin gets 403 for the org, its routes and its stream, and sees its own org empty", async () => {
    for (const path of [`/api/v1/fleet/${ORG}`, `/api/v1/fleet/${ORG}/events`, `/api/v1/fleet/${ORG}/objects/model/m1`, `/api/v1/fleet/${ORG}/nodes/edge/n1`]) {
      expect([path, (await raw(css, 'GET', path, { auth: BOB })).status]).toEqual([path, 403]);
      expect([path, (await raw(css, 'GET', path, { auth: null })).status]).toEqual([path, 403]);
    }
    const own = await getJson<Snapshot>(css, '/api/v1/fleet/org2', BOB);
    expect(own.nodes).toEqual({ items: [], next: null, total: 0 });
    expect(own.objects).toEqual({ items: [], next: null, total: 0 });
  });

  test('a user of the org in no ACL sees the public objects only', async () => {
    const snap = await getJson<Snapshot>(css, `/api/v1/fleet/${ORG}`, READER);
    expect(snap.objects.items.map((o) => o.objectID)).toEqual(['pub']);
    expect((await raw(css, 'GET', `/api/v1/fleet/${ORG}/objects/model/m1`, { auth: READER })).status).toBe(403);
  });

  test('pages through objects with limit and the cursor of each page', async () => {
    const seen: string[] = [];
    let after = '';
    let pages = 0;
    do {
      const snap = await getJson<Snapshot>(css, `/api/v1/fleet/${ORG}?limit=2${after === '' ? '' : `&objectsAfter=${after}`}`, ALICE);
      expect(snap.objects.items.length).toBeLessThanOrEqual(2);
      expect(snap.objects.total).toBe(7);
      seen.push(...snap.objects.items.map((o) => `${o.objectType}/${o.objectID}`));
      after = snap.objects.next ?? '';
      pages++;
    } while (after !== '' && pages < 10);
    expect(seen).toEqual(['model/m1', 'model/pub', 'paged/p1', 'paged/p2', 'paged/p3', 'paged/p4', 'paged/p5']);
    expect(pages).toBe(4);
  });

  test('refuses a bad limit or cursor with 400 and the reason', async () => {
    const bad = await raw(css, 'GET', `/api/v1/fleet/${ORG}?limit=0`, { auth: ALICE });
    expect([bad.status, bad.text]).toEqual([400, expect.stringContaining('Invalid limit (0)')]);
    expect((await raw(css, 'GET', `/api/v1/fleet/${ORG}?limit=5000`, { auth: ALICE })).status).toBe(400);
    const cursor = await raw(css, 'GET', `/api/v1/fleet/${ORG}?objectsAfter=nonsense`, { auth: ALICE });
    expect([cursor.status, cursor.text]).toEqual([400, expect.stringContaining('Invalid objectsAfter')]);
    // The stream checks its query before it starts (the fuzz suite leaves the endless stream out).
    const stream = await raw(css, 'GET', `/api/v1/fleet/${ORG}/events?limit=-3`, { auth: ALICE });
    expect([stream.status, stream.text]).toEqual([400, expect.stringContaining('Invalid limit (-3)')]);
  });

  test("an object's page: its metadata with exact ids and every destination", async () => {
    const detail = await getJson<{ object: FleetObject; metadata: Record<string, unknown>; deliveries: Page<Delivery> }>(css, `/api/v1/fleet/${ORG}/objects/model/m1`, ALICE);
    expect(detail.metadata).toMatchObject({ objectType: 'model', objectID: 'm1', destinationType: 'edge', instanceID: detail.object.instanceID });
    expect(detail.deliveries.items).toEqual([expect.objectContaining({ destinationType: 'edge', destinationID: 'n1', status: 'delivered' })]);
    expect((await raw(css, 'GET', `/api/v1/fleet/${ORG}/objects/model/none`, { auth: ALICE })).status).toBe(404);
  });

  test("a node's page: the node and everything addressed to it, pending included", async () => {
    const detail = await getJson<{ node: FleetNode; objects: Page<Delivery & { objectType: string; objectID: string }> }>(css, `/api/v1/fleet/${ORG}/nodes/edge/n1`, ALICE);
    expect(detail.node).toMatchObject({ destinationType: 'edge', destinationID: 'n1', health: 'ok' });
    expect(detail.objects.items.map((o) => `${o.objectType}/${o.objectID}`)).toEqual(expect.arrayContaining(['model/m1', 'model/pub']));
    const missing = await raw(css, 'GET', `/api/v1/fleet/${ORG}/nodes/edge/n9`, { auth: ALICE });
    expect([missing.status, missing.text]).toEqual([404, expect.stringContaining('No node edge/n9')]);
  });

  test('the ESS shows its own objects and its CSS as its one node, and no other org', async () => {
    const snap = await getJson<Snapshot>(ess, `/api/v1/fleet/${ORG}`, { user: ess.admin!.appKey, pass: ess.admin!.secret });
    expect(snap.nodeType).toBe('ESS');
    expect(snap.nodes.items).toEqual([expect.objectContaining({ kind: 'CSS', destinationType: 'Cloud', destinationID: 'Cloud', communication: 'http', health: 'ok' })]);
    expect(snap.objects.items.map((o) => o.objectID)).toEqual(expect.arrayContaining(['m1']));
    expect((await raw(ess, 'GET', '/api/v1/fleet/org2')).status).toBe(404);
    expect((await raw(ess, 'GET', `/api/v1/fleet/${ORG}/nodes/Cloud/Cloud`)).status).toBe(404);
  });

  test('the event stream sends a snapshot at once, then again when an object appears', async () => {
    // The SDK's client (node:http). undici's fetch leaves a connection that never sends a request
    // behind when aborted, which holds the node's stop for its whole grace period.
    const fleet = new FleetClient({ url: css.url, appKey: ALICE.user, appSecret: ALICE.pass });
    const ctl = new AbortController();
    const seen: string[][] = [];
    try {
      for await (const snap of fleet.events(ORG, { limit: 20, signal: ctl.signal })) {
        expect(snap.orgID).toBe(ORG);
        seen.push(snap.objects.items.map((o) => o.objectID));
        if (seen.length === 1) await onCss.updateObject({ objectType: 'model', objectID: 'late', destinationType: 'nowhere', noData: true });
        if (snap.objects.items.some((o) => o.objectID === 'late')) ctl.abort();
      }
    } finally {
      fleet.close();
    }
    expect(seen[0]).not.toContain('late');
    expect(seen[seen.length - 1]).toContain('late');
  });

  describe('edgesync top', () => {
    test('--once prints one frame: the node and each object with its deliveries', async () => {
      const { code, out, err } = await top(css, ['--once']);
      expect([code, err]).toEqual([0, '']);
      expect(out).toMatch(/^edgesync top {2}CSS http:\/\/127\.0\.0\.1:\d+ {2}org org1/);
      expect(out).toMatch(/NODES 1: 1 ok, 0 late, 0 silent/);
      expect(out).toMatch(/^edge +n1 +ESS +http +\d+ s ago +ok$/m);
      expect(out).toMatch(/^model +m1 +ready +9 B +edge\/n1 +(delivered|consumed)/m);
    });

    test('--json prints the snapshot the API gives', async () => {
      const { code, out } = await top(css, ['--json', '--limit', '3']);
      expect(code).toBe(0);
      const snap = JSON.parse(out) as Snapshot;
      expect(snap).toMatchObject({ orgID: ORG, nodeType: 'CSS', objects: { total: 8 } });
      expect(snap.objects.items).toHaveLength(3);
    });

    test('the live view draws from the event stream and ends when told to', async () => {
      const ctl = new AbortController();
      const done = top(css, [], ctl.signal, (out) => {
        if (out.includes('m1')) ctl.abort();
      });
      const { code, out } = await done;
      expect(code).toBe(0);
      expect(out).toContain('(q: quit)');
    });

    test('says why it cannot show anything, with the CLI exit codes: refused (4), bad usage (2)', async () => {
      const denied = await top(css, ['--user', BOB.user, '--password', BOB.pass, '--org', ORG, '--once']);
      expect(denied.code).toBe(4);
      expect(denied.err).toMatch(/^edgesync top: GET \/api\/v1\/fleet\/org1\?limit=50 refused \(check the user, password and org\)/);
      const usage = await top(css, ['--limit', '0']);
      expect(usage.code).toBe(2);
      expect(usage.err).toContain('--limit must be an integer from 1 to 1000');
    });
  });
});
