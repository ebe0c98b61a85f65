/**
 * Activation, end to end on real processes, over every transport: an object published
 * `inactive` reaches no ESS until it is activated, either by its `activationTime` (within one
 * OBJECT_ACTIVATION_INTERVAL tick after it; the time is an instant, written here with a +02:00
 * offset) or at once by `PUT …/activate`. [ref sync-protocol §6 inactive/activationTime]
 */
import { afterAll, beforeAll, expect, jest, test } from '@jest/globals';
import { Teardown } from '../helpers/node-process.js';
import { eventuallyWithin } from '../helpers/sync-pair.js';
import { deliveries, describeTransports, netLog, startSyncNet, type EssNode, type SyncNet } from '../helpers/transports.js';

jest.setTimeout(120_000);

const DEADLINE_MS = 45_000;
const eventually = eventuallyWithin(DEADLINE_MS);
/** OBJECT_ACTIVATION_INTERVAL of the CSS, seconds. */
const TICK_S = 1;

/** An RFC 3339 time for instant `ms` written in UTC+02:00: as a string it sorts after the same instant in Z. */
function plusTwoHours(ms: number): string {
  return new Date(ms + 2 * 3600_000).toISOString().replace('Z', '+02:00');
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describeTransports('activation of inactive objects', (kind) => {
  const t = new Teardown();
  let net: SyncNet;
  let n1: EssNode;

  beforeAll(async () => {
    net = await startSyncNet(t, kind, { deadlineMs: DEADLINE_MS, cssEnv: { OBJECT_ACTIVATION_INTERVAL: String(TICK_S) } });
    n1 = await net.addEss({ id: 'n1' });
  });
  afterAll(() => t.run());

  const log = (): string => netLog(net, n1)();

  test('an object with an activationTime reaches the ESS only after that instant, within one tick', async () => {
    const activateAt = Date.now() + 5_000;
    await net.onCss.updateObject({ objectID: 'timed', objectType: 'act', destinationType: 'edge', inactive: true, activationTime: plusTwoHours(activateAt) }, 'timed data');
    // Before the time: queued as `pending` on the CSS, nothing on the ESS.
    await eventually('pending on the CSS', () => deliveries(net, 'act', 'timed'), (d) => d.join() === 'edge/n1:pending', log);
    await sleep(Math.max(0, activateAt - Date.now() - 1_500));
    expect(await n1.client.getObjectStatus('act', 'timed')).toBeNull();
    expect((await net.onCss.getObject('act', 'timed'))?.inactive).toBe(true);

    await eventually('timed on the ESS', () => n1.client.getObjectStatus('act', 'timed'), (s) => s === 'completelyReceived', log);
    const arrived = Date.now();
    expect(arrived).toBeGreaterThanOrEqual(activateAt);
    // One tick, plus the delivery itself (a poll or a push) on a loaded machine.
    expect(arrived - activateAt).toBeLessThan(TICK_S * 1000 + 10_000);
    expect((await net.onCss.getObject('act', 'timed'))?.inactive).toBe(false);
    expect((await n1.client.getObject('act', 'timed'))?.inactive).toBe(false);
    await eventually('delivered', () => deliveries(net, 'act', 'timed'), (d) => d.join() === 'edge/n1:delivered', log);
  });

  test('an inactive object without an activationTime waits for PUT …/activate, which delivers it at once', async () => {
    await net.onCss.updateObject({ objectID: 'manual', objectType: 'act', destinationType: 'edge', inactive: true }, 'manual data');
    await eventually('pending on the CSS', () => deliveries(net, 'act', 'manual'), (d) => d.join() === 'edge/n1:pending', log);
    // Several activation ticks pass: nothing fires without a time.
    await sleep(3 * TICK_S * 1000);
    expect(await n1.client.getObjectStatus('act', 'manual')).toBeNull();

    await net.onCss.activateObject('act', 'manual');
    expect((await net.onCss.getObject('act', 'manual'))?.inactive).toBe(false);
    await eventually('manual on the ESS', () => n1.client.getObjectStatus('act', 'manual'), (s) => s === 'completelyReceived', log);
  });

  test('a republish that makes the object inactive again with a later time holds it back again', async () => {
    const later = Date.now() + 4_000;
    await net.onCss.updateObject({ objectID: 'manual', objectType: 'act', destinationType: 'edge', inactive: true, activationTime: new Date(later).toISOString(), version: '2' }, 'manual v2');
    await sleep(Math.max(0, later - Date.now() - 1_500));
    expect((await n1.client.getObject('act', 'manual'))?.version).not.toBe('2');
    await eventually('v2 on the ESS', () => n1.client.getObject('act', 'manual'), (m) => m?.version === '2', log);
    expect(Date.now()).toBeGreaterThanOrEqual(later);
  });
});
