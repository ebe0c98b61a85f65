/**
 * CSS → ESS downloads resume from the last persisted offset, on the real binaries: the CSS
 * killed -9 mid-transfer and restarted on the same root and port, then the ESS killed -9
 * mid-transfer and restarted on its root. Each time the ESS's log shows the resume at an offset
 * past 0, the data arrives intact (SHA-256 of the whole, checked by the ESS against the CSS's
 * statement on the 206 answer too), the app sees the object once, and the CSS says delivered.
 * [ref sync-protocol §1 "Resume" (the reference restarts from 0), §8 item 6; DESIGN "Data path"]
 */
import { createHash } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { startNode, Teardown, type RunningProcess, type StartOptions } from '../helpers/node-process.js';
import { essEnv, eventuallyWithin, ORG, portOf, startPair, type PairOptions } from '../helpers/sync-pair.js';
import type { SyncServiceClient } from '../../sdk/index.js';

jest.setTimeout(180_000);

const MiB = 1024 * 1024;
/** Big enough that the transfer is still under way when the watcher sees 50 MB staged. */
const SIZE = 200 * MiB;
const KILL_AT = 50 * MiB;
/** Polling deadlines only: generous, so a loaded machine does not fail the test. */
const DEADLINE_MS = 90_000;

/** Deterministic pseudo-random bytes made as they are read (never held whole), and their digest. */
function generated(size: number, seed: number): { stream: Readable; sha256: string } {
  const block = Buffer.alloc(MiB);
  let x = seed;
  const fill = (n: number): Buffer => {
    for (let i = 0; i < n; i += 4) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      block.writeUInt32LE(x >>> 0, i);
    }
    return block.subarray(0, n);
  };
  // The digest is needed before the upload; generating twice is cheaper than holding 200 MB.
  const hash = createHash('sha256');
  for (let at = 0; at < size; at += block.length) hash.update(fill(Math.min(block.length, size - at)));
  x = seed;
  let sent = 0;
  const stream = new Readable({
    read() {
      if (sent >= size) {
        this.push(null);
        return;
      }
      const n = Math.min(block.length, size - sent);
      sent += n;
      this.push(Buffer.from(fill(n)));
    },
  });
  return { stream, sha256: hash.digest('hex') };
}

/** Polls until `done`; a timeout says what the last probe saw, and the tail of `log` if given. */
const eventually = eventuallyWithin(DEADLINE_MS);
/** The pair: an ESS whose retries after a failure come quickly (RESEND_INTERVAL 1), and that tells its resumes (at info level). */
const PAIR: PairOptions = { deadlineMs: DEADLINE_MS, resendInterval: 1, env: { LOG_LEVEL: 'info' } };

async function sha256Of(stream: AsyncIterable<Buffer>): Promise<string> {
  const hash = createHash('sha256');
  for await (const c of stream) hash.update(c);
  return hash.digest('hex');
}

/** Sizes of the files in the ESS's staging directory (downloads in progress). */
async function stagedSizes(essRoot: string): Promise<number[]> {
  const dir = join(essRoot, 'sync', 'data', 'staging');
  const sizes: number[] = [];
  for (const name of await readdir(dir).catch(() => [])) sizes.push(await stat(join(dir, name)).then((s) => s.size, () => 0));
  return sizes;
}

/**
 * Watches the ESS's staging directory closely (the transfer runs at disk speed on loopback)
 * and kills `victim` -9 as soon as a download holds more than KILL_AT bytes but not all.
 * @returns the staged size seen at the kill
 */
async function killMidTransfer(essRoot: string, victim: () => RunningProcess): Promise<number> {
  const deadline = Date.now() + DEADLINE_MS;
  for (;;) {
    const partial = (await stagedSizes(essRoot)).find((s) => s > KILL_AT && s < SIZE);
    if (partial !== undefined) {
      await victim().kill();
      return partial;
    }
    if (Date.now() > deadline) throw new Error(`no download passed ${KILL_AT} bytes in ${DEADLINE_MS} ms`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** The offsets the ESS said it resumed at, from its log. */
function resumedOffsets(output: string, objectID: string): number[] {
  return [...output.matchAll(new RegExp(`resuming download of model/${objectID} at offset (\\d+)`, 'g'))].map((m) => Number(m[1]));
}

describe('CSS → ESS downloads resume after a kill -9 of either side', () => {
  const t = new Teardown();
  let css: RunningProcess;
  let ess: RunningProcess;
  let onCss: SyncServiceClient;
  let cssOptions: StartOptions;
  let essOptions: StartOptions;
  // Printed on first start only; a restart on the same root keeps them.
  let cssAdmin: { appKey: string; secret: string };
  let essAdmin: { appKey: string; secret: string };

  async function essClient(): Promise<SyncServiceClient> {
    return ess.client({ appKey: essAdmin.appKey, appSecret: essAdmin.secret });
  }

  /** Puts `SIZE` bytes on the CSS for another destination type, then addresses them to n1. */
  async function publish(objectID: string, seed: number): Promise<string> {
    const { stream, sha256 } = generated(SIZE, seed);
    // Uploaded first where n1 does not look, so that n1's download starts with all the data there.
    await onCss.updateObject({ objectID, objectType: 'model', destinationType: 'other' });
    await onCss.updateObjectData('model', objectID, stream, { size: SIZE });
    await onCss.updateObject({ objectID, objectType: 'model', destinationType: 'edge', metaOnly: true });
    return sha256;
  }

  async function o13(objectID: string): Promise<string> {
    return (await onCss.getObjectDestinations('model', objectID)).map((d) => `${d.destinationType}/${d.destinationID}:${d.status}`).join();
  }

  beforeAll(async () => {
    ({ css, ess, onCss } = await startPair(t, PAIR));
    // The tests replace the CSS, its client and the ESS: the ones running at the end are stopped and closed.
    t.add(() => css.stop());
    t.add(() => ess.stop());
    t.add(() => Promise.resolve(onCss.close()));
    if (css.admin === null) throw new Error('the CSS printed no admin credentials');
    cssAdmin = css.admin;
    if (ess.admin === null) throw new Error('the ESS printed no admin credentials');
    essAdmin = ess.admin;
    // A restart must come back where the ESS dials: the same port, the same root.
    cssOptions = { mode: 'css', root: css.root, env: { UNSECURE_LISTENING_PORT: portOf(css) } };
    essOptions = { mode: 'ess', root: ess.root, env: essEnv(portOf(css), PAIR) };
  });

  afterAll(() => t.run());

  test('the CSS killed mid-transfer and restarted on the same root and port: the ESS resumes, the data is intact', async () => {
    const sha256 = await publish('css-killed', 1);
    const staged = await killMidTransfer(ess.root, () => css);
    expect(staged).toBeGreaterThan(KILL_AT);
    css = await startNode(cssOptions);
    onCss.close();
    onCss = await css.client({ orgID: ORG, appKey: cssAdmin.appKey, appSecret: cssAdmin.secret });
    const onEss = await essClient();
    try {
      await eventually('status on the ESS', () => onEss.getObjectStatus('model', 'css-killed'), (s) => s === 'completelyReceived', () => ess.output());
      const offsets = resumedOffsets(ess.output(), 'css-killed');
      expect(offsets.length).toBeGreaterThan(0);
      expect(Math.max(...offsets)).toBeGreaterThan(0);
      expect(await sha256Of(await onEss.fetchObjectData('model', 'css-killed'))).toBe(sha256);
      await eventually('O13 of css-killed', () => o13('css-killed'), (d) => d === 'edge/n1:delivered');
      // Nothing left staged once complete.
      expect(await stagedSizes(ess.root)).toEqual([]);
    } finally {
      onEss.close();
    }
  });

  test('the ESS killed mid-transfer and restarted on its root: it resumes, the data is intact, the app sees it once', async () => {
    const sha256 = await publish('ess-killed', 2);
    const staged = await killMidTransfer(ess.root, () => ess);
    expect(staged).toBeGreaterThan(KILL_AT);
    ess = await startNode(essOptions);
    const onEss = await essClient();
    try {
      await eventually('status on the ESS', () => onEss.getObjectStatus('model', 'ess-killed'), (s) => s === 'completelyReceived', () => ess.output());
      const offsets = resumedOffsets(ess.output(), 'ess-killed');
      if (offsets.length === 0) throw new Error(`no resume in the log:\n${ess.output().slice(-6000)}`);
      expect(offsets.length).toBeGreaterThan(0);
      expect(Math.min(...offsets)).toBeGreaterThan(0);
      expect(await sha256Of(await onEss.fetchObjectData('model', 'ess-killed'))).toBe(sha256);
      const listed = (await onEss.listObjects('model')).filter((m) => m.objectID === 'ess-killed');
      expect(listed.map((m) => [m.objectID, m.objectSize])).toEqual([['ess-killed', SIZE]]);
      await eventually('O13 of ess-killed', () => o13('ess-killed'), (d) => d === 'edge/n1:delivered');
      // One blob per object with data (nothing duplicated), nothing left staged.
      expect(await stagedSizes(ess.root)).toEqual([]);
      expect((await readdir(join(ess.root, 'sync', 'data', 'blobs'))).length).toBe(2);
    } finally {
      onEss.close();
    }
  });
});
