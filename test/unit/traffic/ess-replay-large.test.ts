/**
 * Replay of the large cloud→edge captures (large.jsonl part 1, restart.jsonl) to OUR ESS. The
 * capture holds only the first 256 bytes of each data chunk, so the data is generated here with
 * the captured size and served as the reference CSS's handleGetData serves data; the poll
 * answers are the captured bytes. What is compared is the shape of our ESS's requests.
 *
 * DIVERGENCE (accepted by a reference CSS, documented): the reference ESS fetches an object
 * larger than its metadata's `chunkSize` (65536 in the capture) in sequential ranged GETs of
 * that size (obs. 9: 10 GETs for 614523 B, 320 for 20 MiB). Our ESS ignores `chunkSize` for
 * downloads: it takes the data in one GET without Range and streams it to disk; after a break it
 * resumes from its persisted offset N. A reference CSS answers a GET without Range with the whole
 * object (200), and a closed range with 206 and `Content-Range` (handleGetData), reading the range
 * into memory (ReadObjectData): so a resume asks `chunkSize` bytes at a time, as the reference
 * ESS does, until a CSS shows it is ours (it states the data's digest).
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { capturedExchanges, startReplayCss, type ReplayCss } from '../../helpers/reference-traffic.js';
import { scratchDirs } from '../../helpers/sync-fixtures.js';
import { CssScript, ESS_AUTH, ESS_DEST, generatedData, isPoll, lineOf, MODES, ORG, referenceDataAnswer, referenceLines, sha256, startReplayEss, until, type ReplayEss } from './ess-replay-harness.js';

const freshDir = scratchDirs('edgesync-ess-replay-large-');
const FIRST_REGISTRATION = capturedExchanges('register.jsonl', 'ess->css').filter((x) => !isPoll(x));
const DEFAULT = MODES[0]!.deps;

describe('our ESS fed the reference CSS\'s answers for large objects', () => {
  const running: { stop(): Promise<void> }[] = [];
  const css: ReplayCss[] = [];

  afterEach(async () => {
    for (const r of running.splice(0)) await r.stop();
    for (const c of css.splice(0)) await c.close();
  });

  const sent = (c: ReplayCss, line: string): boolean => c.requests.some((r) => lineOf(r) === line);
  const identityOk = (c: ReplayCss): void => {
    for (const r of c.requests) expect([r.headers['x-sync-service-dest'], r.headers.authorization]).toEqual([ESS_DEST, ESS_AUTH]);
    expect(c.unexpected.map((r) => lineOf(r))).toEqual([]);
  };

  it('large.jsonl cloud→edge: 614523 B with chunkSize 65536 → updated, the data (one GET), received', async () => {
    const F = 'large.jsonl';
    const base = '/spi/v1/objects/myorg/demo-e/big1/1796426501048846241/1796426501048846241';
    const data = generatedData(614523, 'big1');
    const script = new CssScript(F, FIRST_REGISTRATION, (req) => (req.method === 'GET' && req.path === `${base}/data` ? referenceDataAnswer(data, req.headers.range) : null));
    script.offer(4);
    const c = await startReplayCss(script.answer);
    css.push(c);
    const e: ReplayEss = await startReplayEss(freshDir(), c.url, DEFAULT);
    running.push(e);
    await until('received', () => sent(c, `PUT ${base}/received`));
    const obj = await e.stores.store.getObject(ORG, 'demo-e', 'big1');
    expect([obj?.status, obj?.meta.instanceID, obj?.meta.dataID, obj?.meta.chunkSize]).toEqual(['completelyReceived', 1796426501048846241n, 1796426501048846241n, 65536]);
    expect(obj?.dataSha256).toBe(sha256(data));
    // The reference ESS: 10 ranged GETs, `bytes=S-(S+65535)`, the last `bytes=589824-614522`.
    const reference = referenceLines(F, 1, 21).filter((l) => l.endsWith('/data'));
    expect(reference).toHaveLength(10);
    const gets = c.requests.filter((r) => r.method === 'GET' && r.path === `${base}/data`);
    expect(gets.map((r) => r.headers.range)).toEqual([undefined]);
    // The acks are the reference's, in its order (obs. 7).
    const acks = c.requests.filter((r) => r.method === 'PUT' && r.path.startsWith(base)).map((r) => lineOf(r));
    expect(acks).toEqual(referenceLines(F, 1, 21).filter((l) => l.startsWith('PUT ') && l.includes('/big1/') && !l.endsWith('/consumed')));
    identityOk(c);
  });

  it('restart.jsonl: killed during a 20 MiB download, restarted on its store → register (204), the rest in one ranged GET from the persisted offset, received', async () => {
    const F = 'restart.jsonl';
    const base = '/spi/v1/objects/myorg/demo-f/big/1796426501048846243/1796426501048846243';
    const data = generatedData(20971520, 'big');
    // The reference ESS was killed when it asked for its 129th chunk: 128 × 65536 bytes had come.
    const CUT = 128 * 65536;
    let restarted = false;
    const script = new CssScript(F, FIRST_REGISTRATION, (req) => {
      if (req.method !== 'GET' || req.path !== `${base}/data`) return null;
      if (restarted) return referenceDataAnswer(data, req.headers.range);
      // Before the kill: the first CUT bytes of the whole data, then nothing more.
      return { status: 200, headers: { 'Content-Type': 'application/octet-stream' }, stream: (res) => res.write(data.subarray(0, CUT)) };
    });
    script.offer(4);
    const c = await startReplayCss(script.answer);
    css.push(c);
    const dir = freshDir();
    const first = await startReplayEss(dir, c.url, DEFAULT);
    await until('8 MiB durable', async () => ((await first.stores.store.getUpload(ORG, 'demo-f', 'big'))?.received ?? 0) >= CUT);
    await first.stop();
    const before = c.requests.length;

    // The restart: the CSS knows this ESS, so `register` is answered 204 (restart.jsonl seq 137).
    restarted = true;
    const again = new CssScript(F, [], (req) => (req.method === 'GET' && req.path === `${base}/data` ? referenceDataAnswer(data, req.headers.range) : null));
    const c2 = await startReplayCss(again.answer);
    css.push(c2);
    const second = await startReplayEss(dir, c2.url, DEFAULT);
    running.push(second);
    await until('received', () => sent(c2, `PUT ${base}/received`));
    expect(c.requests.length).toBe(before);
    const obj = await second.stores.store.getObject(ORG, 'demo-f', 'big');
    expect([obj?.status, obj?.meta.instanceID, obj?.dataSha256]).toEqual(['completelyReceived', 1796426501048846243n, sha256(data)]);

    // As the reference ESS (obs. 11): `register` first, then the data at once, no poll and no
    // `updated` in between, then `received`. Unlike it, ours asks only for what it lacks, from
    // its persisted offset (a whole number of durable segments, at most what had come), in
    // ranges of the object's chunk size: a reference CSS reads a whole range into memory.
    // (A restarted process tries batched acks once more: one `PUT …/myorg/acks`, answered 400.)
    const batch = `PUT /spi/v1/objects/${ORG}/acks`;
    expect(c2.requests.filter((r) => lineOf(r) === batch).length).toBeLessThanOrEqual(1);
    const lines = c2.requests.filter((r) => !isPoll(r) && lineOf(r) !== batch).map((r) => lineOf(r));
    const gets = lines.slice(1, -1);
    expect([lines[0], lines.at(-1)]).toEqual(['PUT /spi/v1/register/myorg/edge/node1?persistent-storage=true', `PUT ${base}/received`]);
    expect(new Set(gets)).toEqual(new Set([`GET ${base}/data`]));
    const resume = c2.requests.find((r) => r.method === 'GET' && !isPoll(r))!;
    const firstPoll = c2.requests.findIndex((r) => isPoll(r));
    expect(firstPoll === -1 || firstPoll > c2.requests.indexOf(resume)).toBe(true);
    // Contiguous closed ranges of at most 65536 bytes (the metadata's chunkSize), to the end.
    const ranges = c2.requests
      .filter((r) => r.method === 'GET' && !isPoll(r))
      .map((r) => /^bytes=(\d+)-(\d+)$/.exec(r.headers.range ?? '')!.slice(1).map(Number) as [number, number]);
    const from = ranges[0]![0];
    expect(from).toBeGreaterThan(0);
    expect(from).toBeLessThanOrEqual(CUT);
    ranges.forEach(([s, e], i) => {
      expect(e - s + 1).toBeLessThanOrEqual(65536);
      if (i > 0) expect(s).toBe(ranges[i - 1]![1] + 1);
    });
    expect(ranges.at(-1)![1]).toBe(20971519);
    identityOk(c);
    identityOk(c2);
  });
});
