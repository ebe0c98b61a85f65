/**
 * Transport contract, large objects and crashes: whatever carries the sync (HTTP, MQTT through
 * the CSS's embedded broker, MQTT through mosquitto), a 64 MiB object streams to the ESS intact,
 * and a transfer cut by a kill -9 of the ESS or of the CSS completes intact once the killed side
 * is back on its root and ports: the app sees the object once, the CSS says delivered, nothing
 * is left staged. Real processes on loopback.
 * [ref sync-protocol §1 "Resume", §2 Flow, §8 item 6; DESIGN "Data path"]
 */
import { expect, jest, test } from '@jest/globals';
import { generatedData } from '../helpers/generated-data.js';
import { arrivesIntact, describeTransports, netLog, publishThenAddress, withOneEss, whenStaged, type EssNode, type SyncNet } from '../helpers/transports.js';

jest.setTimeout(240_000);

const MiB = 1024 * 1024;
/** The large object of the end-to-end check. */
const LARGE = 64 * MiB;
/** The object a kill interrupts: large enough that a watcher polling every few ms sees it partly downloaded. */
const KILL_SIZE = 128 * MiB;
/** The kill comes once the ESS has staged more than this of it. */
const KILL_AT = 16 * MiB;
/** Polling deadlines only: generous, so a loaded machine does not fail the test. */
const DEADLINE_MS = 120_000;

describeTransports('large objects and crashes between a CSS and an ESS', (kind) => {
  let net: SyncNet;
  let n1: EssNode;
  withOneEss(kind, DEADLINE_MS, (s) => ({ net, n1 } = s));

  const log = (): string => netLog(net, n1)();

  test('a 64 MiB object streamed to the CSS reaches the ESS intact (SHA-256)', async () => {
    const data = generatedData(LARGE);
    await net.onCss.updateObject({ objectID: 'large', objectType: 'model', destinationType: 'edge' });
    await net.onCss.updateObjectData('model', 'large', data.stream(), { size: LARGE });
    await arrivesIntact(net, n1, 'large', LARGE, data.sha256, DEADLINE_MS);
  });

  test('the ESS killed -9 mid-download and restarted on its root ends with the object intact, once', async () => {
    const sha256 = await publishThenAddress(net, 'ess-killed', KILL_SIZE);
    expect(await whenStaged(n1, KILL_AT, KILL_SIZE, () => n1.kill(), DEADLINE_MS, log)).toBeGreaterThan(KILL_AT);
    await n1.start();
    await arrivesIntact(net, n1, 'ess-killed', KILL_SIZE, sha256, DEADLINE_MS);
  });

  test('the CSS killed -9 mid-transfer and restarted on its root and ports: the ESS ends with the object intact, once', async () => {
    const sha256 = await publishThenAddress(net, 'css-killed', KILL_SIZE);
    expect(await whenStaged(n1, KILL_AT, KILL_SIZE, () => net.killCss(), DEADLINE_MS, log)).toBeGreaterThan(KILL_AT);
    await net.startCss();
    await arrivesIntact(net, n1, 'css-killed', KILL_SIZE, sha256, DEADLINE_MS);
  });
});
