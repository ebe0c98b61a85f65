/**
 * Versions end to end over every transport, on real processes: updates published in quick
 * succession end with the last one everywhere (data and metadata), and what the ESS hears again
 * after a restart (repeated updates, resent acks) never rolls it back nor fetches the data again.
 * The engine-level cases (older instances arriving late, repeats during a download) are
 * test/unit/sync/received-instance.test.ts. [ref sync-protocol §0, §3 step 2]
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, jest, test } from '@jest/globals';
import { readAll, sha } from '../helpers/bytes.js';
import { Teardown, type RunningProcess } from '../helpers/node-process.js';
import { eventuallyWithin, ORG } from '../helpers/sync-pair.js';
import { deliveries, describeTransports, netLog, startSyncNet, type EssNode, type SyncNet } from '../helpers/transports.js';

jest.setTimeout(120_000);

const DEADLINE_MS = 45_000;
const eventually = eventuallyWithin(DEADLINE_MS);

/** Data transfers of model/`objectID` the ESS logged (INFO `object received from the CSS`, transfer not `none`). */
function transfers(node: RunningProcess, objectID: string): number {
  return node
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { msg: string; object?: string; transfer?: string })
    .filter((l) => l.msg === 'object received from the CSS' && l.object === `${ORG}/model/${objectID}` && l.transfer !== 'none').length;
}

describeTransports('versions between a CSS and an ESS', (kind) => {
  const t = new Teardown();
  let net: SyncNet;
  let n1: EssNode;

  beforeAll(async () => {
    net = await startSyncNet(t, kind, { deadlineMs: DEADLINE_MS, essEnv: { LOG_LEVEL: 'info' } });
    n1 = await net.addEss({ id: 'n1' });
  });
  afterAll(() => t.run());

  const log = (): string => netLog(net, n1)();

  test('five updates in a row: the ESS ends with the last, and a restart neither rolls it back nor downloads again', async () => {
    const versions = [1, 2, 3, 4, 5].map((v) => ({ v: String(v), data: randomBytes(32 * 1024 + v) }));
    for (const { v, data } of versions) await net.onCss.updateObject({ objectID: 'fast', objectType: 'model', destinationType: 'edge', version: v }, data);
    const last = versions[4]!;
    const onCss = (await net.onCss.getObject('model', 'fast'))!;
    expect(onCss.version).toBe('5');
    await eventually('v5 complete on the ESS', () => n1.client.getObject('model', 'fast'), (m) => m?.instanceID === onCss.instanceID, log);
    await eventually('complete', () => n1.client.getObjectStatus('model', 'fast'), (s) => s === 'completelyReceived', log);
    expect(sha(await readAll(await n1.client.fetchObjectData('model', 'fast')))).toBe(sha(last.data));
    await eventually('O13 of fast', () => deliveries(net, 'model', 'fast'), (d) => d.join() === 'edge/n1:delivered', log);
    const before = transfers(n1.node, 'fast');

    await n1.stop();
    await n1.start();
    await eventually('the ESS back', () => n1.client.getObjectStatus('model', 'fast'), (s) => s === 'completelyReceived', log);
    // Give the restarted ESS time to hear whatever the CSS still resends.
    await new Promise((r) => setTimeout(r, 3000));
    const held = (await n1.client.getObject('model', 'fast'))!;
    expect([held.version, held.instanceID]).toEqual(['5', onCss.instanceID]);
    expect(sha(await readAll(await n1.client.fetchObjectData('model', 'fast')))).toBe(sha(last.data));
    expect((await n1.client.listObjects('model')).map((m) => m.version)).toEqual(['5']);
    expect(transfers(n1.node, 'fast')).toBe(0);
    expect(before).toBeGreaterThanOrEqual(1);
  });
});
