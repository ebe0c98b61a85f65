/**
 * Our CSS fed with the bytes a reference ESS and curl sent to a reference CSS
 * (test/fixtures/reference-traffic/): the same requests, the same headers (no Content-Type on
 * SPI PUTs, Basic `myorg/edge/node1` with an empty password), the same 19-digit ids, and the
 * answers the reference gave. Ids the reference CSS made itself are mapped to ours, since no
 * CSS can be made to pick another's ids; ids an ESS made are sent and expected byte-exact.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { METADATA_INT64_KEYS, parseJson } from '../../lib/model/index.js';
import { startManaged, Teardown, type RunningProcess } from '../helpers/node-process.js';
import { capturedExchange, capturedExchanges, replay, wholeBody, type CapturedExchange, type Replayed } from '../helpers/reference-traffic.js';

jest.setTimeout(60_000);

const t = new Teardown();
let css: RunningProcess;
/** Reference CSS ids → ours, filled in as our CSS assigns them. */
const ids = new Map<string, string>();

const mapIds = (s: string): string => s.replace(/\d{19}/g, (id) => ids.get(id) ?? id);
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  css = await startManaged(t, {
    mode: 'css',
    // As the capture's CSS: dummy auth, every org implicit, 64 KiB chunks. [traffic README]
    env: { AUTHENTICATION_HANDLER: 'dummy', LISTENING_ADDRESS: '127.0.0.1', MAX_DATA_CHUNK_SIZE: '65536' },
  });
});
afterAll(() => t.run());

function send(ex: CapturedExchange): Promise<Replayed> {
  return replay(css.url, ex, mapIds);
}

/** Our answer against the reference's: status, and the body with its ids mapped to ours. */
function expectAnswer(ours: Replayed, ref: CapturedExchange): void {
  const want = wholeBody(ref.res_body);
  expect({ status: ours.status, body: ours.body.toString('utf8') }).toEqual({
    status: ref.status,
    body: want === null ? '' : mapIds(want.toString('utf8')),
  });
  const type = ref.res_headers['Content-Type'];
  if (type !== undefined) expect(ours.headers['content-type']).toBe(type);
}

/** Learns our ids for the reference's from a poll or metadata answer of the same object. */
function learnIds(refBody: string, ourBody: string): void {
  const theirs = [...refBody.matchAll(/"(instanceID|dataID)": (\d{19})/g)];
  const mine = [...ourBody.matchAll(/"(instanceID|dataID)": (\d+)/g)];
  expect(mine.map((m) => m[1])).toEqual(theirs.map((m) => m[1]));
  theirs.forEach((m, i) => ids.set(m[2]!, mine[i]![2]!));
}

describe('a reference ESS registering (register.jsonl)', () => {
  test('register on a fresh CSS is 404, then register-new is 204, both with empty bodies', async () => {
    const [register, registerNew] = capturedExchanges('register.jsonl').filter((e) => e.dir === 'ess->css');
    expectAnswer(await send(register!), register!);
    expectAnswer(await send(registerNew!), registerNew!);
  });

  test('the ESS is listed as a destination as the reference lists it', async () => {
    const listing = capturedExchange('register.jsonl', 4);
    expectAnswer(await send(listing), listing);
  });
});

describe('an object for one node (publish-to-node.jsonl)', () => {
  const F = 'publish-to-node.jsonl';

  test('the app publishes metadata and 3072 bytes of data; status and metadata read as on the reference', async () => {
    expectAnswer(await send(capturedExchange(F, 1)), capturedExchange(F, 1));
    expectAnswer(await send(capturedExchange(F, 2)), capturedExchange(F, 2));
    expectAnswer(await send(capturedExchange(F, 3)), capturedExchange(F, 3));
    const meta = await send(capturedExchange(F, 4));
    learnIds(wholeBody(capturedExchange(F, 4).res_body)!.toString(), meta.body.toString());
    expectAnswer(meta, capturedExchange(F, 4));
  });

  test('the poll answers the update in the reference envelope, ids exact', async () => {
    const ours = await send(capturedExchange(F, 5));
    expectAnswer(ours, capturedExchange(F, 5));
    const [entry] = parseJson(ours.body.toString(), METADATA_INT64_KEYS) as { MetaData: { instanceID: bigint } }[];
    expect(entry?.MetaData.instanceID).toBe(BigInt(ids.get('1796426501048846235')!));
  });

  test('updated, the data GET (whole, chunked, the same bytes) and received, then an empty poll', async () => {
    expectAnswer(await send(capturedExchange(F, 6)), capturedExchange(F, 6));
    const data = await send(capturedExchange(F, 7));
    expect([data.status, data.headers['content-type'], data.body.length, sha(data.body)]).toEqual([
      200,
      'application/octet-stream',
      3072,
      '08804a3e4def048da2ad926230748c4bfaadb7cff86b5d02ec270580ded16176',
    ]);
    expectAnswer(await send(capturedExchange(F, 8)), capturedExchange(F, 8));
    expectAnswer(await send(capturedExchange(F, 9)), capturedExchange(F, 9));
  });

  test('consumed; the app then reads status, destinations and destination objects as on the reference', async () => {
    expectAnswer(await send(capturedExchange(F, 13)), capturedExchange(F, 13));
    for (const seq of [14, 15, 16]) expectAnswer(await send(capturedExchange(F, seq)), capturedExchange(F, seq));
  });
});

describe('an object published on the ESS (ess-to-css.jsonl)', () => {
  const F = 'ess-to-css.jsonl';

  test('update with the ESS ids, and the data sent whole and chunked, are taken (204)', async () => {
    expectAnswer(await send(capturedExchange(F, 3)), capturedExchange(F, 3));
    expectAnswer(await send(capturedExchange(F, 4)), capturedExchange(F, 4));
  });

  test('the app on the CSS lists it with the ESS ids exact and reads its data', async () => {
    expectAnswer(await send(capturedExchange(F, 5)), capturedExchange(F, 5));
    const data = await send(capturedExchange(F, 11));
    expect([data.status, sha(data.body)]).toEqual([200, '39f1e06dfce27489dd18d2160f4570accea32cff0292e281a913e0ba1daed9c8']);
  });

  test('consumed by the app: the next poll says consumed, the ESS acks, and the object is gone', async () => {
    expectAnswer(await send(capturedExchange(F, 12)), capturedExchange(F, 12));
    expectAnswer(await send(capturedExchange(F, 13)), capturedExchange(F, 13));
    expectAnswer(await send(capturedExchange(F, 14)), capturedExchange(F, 14));
    expectAnswer(await send(capturedExchange(F, 15)), capturedExchange(F, 15));
    expectAnswer(await send(capturedExchange(F, 20)), capturedExchange(F, 20));
  });
});

/**
 * Where we answer otherwise, on purpose: the same status with the reason in the body where the
 * reference sends none (a reference ESS reads only the status), and 404 instead of 204 to a data
 * GET of an unknown object (a reference ESS takes 404 as "not found" and 204 as a failed
 * transfer). README, compatibility notes.
 */
const DEVIATIONS: ReadonlyMap<number, { status: number; body: string }> = new Map([
  [8, { status: 424, body: 'Destination myorg/edge/ghost is not registered\n' }],
  [12, { status: 404, body: '' }],
  [14, { status: 404, body: '' }],
  [20, { status: 400, body: 'Instance ID (notanumber) must be a non-negative integer\n' }],
  [22, { status: 400, body: 'Unknown SPI action (ackbogus)\n' }],
  [32, { status: 424, body: 'Destination myorg/edge/ghost is not registered\n' }],
]);

describe('hand-made SPI requests (errors.jsonl)', () => {
  const requests = capturedExchanges('errors.jsonl').filter((e) => e.dir === 'curl->css');

  test.each(requests.filter((e) => !DEVIATIONS.has(e.seq)).map((e) => [`${e.seq}: ${e.method} ${e.path}`, e] as const))(
    '%s answers as the reference',
    async (_name, ex) => {
      expectAnswer(await send(ex), ex);
    },
  );

  test.each(requests.filter((e) => DEVIATIONS.has(e.seq)).map((e) => [`${e.seq}: ${e.method} ${e.path}`, e] as const))(
    '%s answers with the same status and our reason, or as documented',
    async (_name, ex) => {
      const ours = await send(ex);
      expect({ status: ours.status, body: ours.body.toString() }).toEqual(DEVIATIONS.get(ex.seq));
    },
  );
});

// After the hand-made requests, whose capture saw no other object pending.
describe('large objects published on the ESS, sent in 64 KiB chunks (large.jsonl, edge→cloud)', () => {
  const F = 'large.jsonl';
  /** The capture holds only the start of each chunk: the bytes are ours, the requests theirs. */
  function chunksOf(objectID: string): { update: CapturedExchange; chunks: CapturedExchange[] } {
    const mine = capturedExchanges(F).filter((e) => e.dir === 'ess->css' && e.path.includes(`/demo-e/${objectID}/`));
    return { update: mine.find((e) => e.path.endsWith('/update'))!, chunks: mine.filter((e) => e.path.endsWith('/data')) };
  }

  async function upload(objectID: string, size: number): Promise<Buffer> {
    const data = createHash('sha512').update(objectID).digest();
    const content = Buffer.alloc(size, 0);
    for (let i = 0; i < size; i++) content[i] = data[i % data.length]! ^ (i & 0xff);
    const { update, chunks } = chunksOf(objectID);
    expectAnswer(await send(update), update);
    for (const ex of chunks) {
      const [, start, end] = /^bytes (\d+)-(\d+)\//.exec(ex.req_headers['Content-Range']!)!.map(Number) as [number, number, number];
      // As sent: a full chunk even at the end, zero-padded past the range (observation 10).
      const body = Buffer.alloc((ex.req_body as { bytes: number }).bytes, 0);
      content.copy(body, 0, start, end + 1);
      const ours = await replay(css.url, ex, mapIds, body);
      expect([ex.req_headers['Content-Range'], ours.status]).toEqual([ex.req_headers['Content-Range'], 204]);
    }
    return content;
  }

  test('614477 bytes whose last chunk comes zero-padded to 65536: stored whole (the reference answers 500)', async () => {
    const content = await upload('big2', 614_477);
    const data = await send(capturedExchange(F, 42));
    expect([data.status, data.body.length, sha(data.body)]).toEqual([200, content.length, sha(content)]);
  });

  test('589824 bytes, exactly nine chunks: complete (the reference leaves it partiallyreceived)', async () => {
    const content = await upload('big3', 589_824);
    const data = await send(capturedExchange(F, 63));
    expect([data.status, data.body.length, sha(data.body)]).toEqual([200, content.length, sha(content)]);
  });
});
