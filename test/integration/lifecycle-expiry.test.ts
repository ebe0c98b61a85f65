/**
 * Expiry, end to end on real processes, over every transport: an object whose `expiration`
 * passes is removed on the CSS within one STORAGE_MAINTENANCE_INTERVAL tick, and its removal
 * reaches every ESS that holds it as a deletion, as an explicit delete does (the reference leaves
 * the ESS copies behind). The ESS's own API refuses `expiration`, as the reference's does.
 * [ref sync-protocol §6 expiration, rest-api §2]
 */
import { afterAll, beforeAll, expect, jest, test } from '@jest/globals';
import { SyncServiceError } from '../../sdk/index.js';
import { Teardown } from '../helpers/node-process.js';
import { eventuallyWithin } from '../helpers/sync-pair.js';
import { deliveries, describeTransports, netLog, startSyncNet, type EssNode, type SyncNet } from '../helpers/transports.js';

jest.setTimeout(120_000);

const DEADLINE_MS = 45_000;
const eventually = eventuallyWithin(DEADLINE_MS);
/** STORAGE_MAINTENANCE_INTERVAL of the CSS, seconds. */
const TICK_S = 1;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** An RFC 3339 time for instant `ms` written in UTC-05:00: as a string it sorts before the same instant in Z. */
function minusFiveHours(ms: number): string {
  return new Date(ms - 5 * 3600_000).toISOString().replace('Z', '-05:00');
}

describeTransports('expiry of objects', (kind) => {
  const t = new Teardown();
  let net: SyncNet;
  let n1: EssNode;
  let n2: EssNode;

  beforeAll(async () => {
    net = await startSyncNet(t, kind, { deadlineMs: DEADLINE_MS, cssEnv: { STORAGE_MAINTENANCE_INTERVAL: String(TICK_S) } });
    n1 = await net.addEss({ id: 'n1' });
    n2 = await net.addEss({ id: 'n2' });
  });
  afterAll(() => t.run());

  const log = (): string => netLog(net, n1, n2)();

  test('an expired object is removed on the CSS and its removal reaches every ESS that holds it', async () => {
    const expiresAt = Date.now() + 8_000;
    await net.onCss.updateObject({ objectID: 'brief', objectType: 'exp', destinationType: 'edge', expiration: minusFiveHours(expiresAt) }, 'brief data');
    for (const n of [n1, n2]) await eventually(`brief on ${n.id}`, () => n.client.getObjectStatus('exp', 'brief'), (s) => s === 'completelyReceived', log);
    // Still there shortly before its time.
    await sleep(Math.max(0, expiresAt - Date.now() - 1_500));
    expect(await net.onCss.getObjectStatus('exp', 'brief')).toBe('ready');

    for (const n of [n1, n2]) {
      await eventually(`deleted on ${n.id}`, () => n.client.listObjects('exp'), (l) => l.some((m) => m.objectID === 'brief' && m.deleted), log);
    }
    expect(Date.now()).toBeGreaterThanOrEqual(expiresAt);
    // Both acknowledged the deletion: the CSS forgets the object and its records.
    await eventually('gone from the CSS', () => net.onCss.getObjectStatus('exp', 'brief'), (s) => s === null, log);
    expect(await net.onCss.getObjectDestinations('exp', 'brief')).toEqual([]);
    await n1.client.markObjectDeleted('exp', 'brief');
    await eventually('gone from n1', () => n1.client.getObjectStatus('exp', 'brief'), (s) => s === null, log);
  });

  test('an object replaced by a version without expiration stays', async () => {
    const expiresAt = Date.now() + 3_000;
    await net.onCss.updateObject({ objectID: 'kept', objectType: 'exp', destinationType: 'edge', expiration: new Date(expiresAt).toISOString() }, 'v1');
    await net.onCss.updateObject({ objectID: 'kept', objectType: 'exp', destinationType: 'edge', version: '2' }, 'v2');
    await eventually('v2 on n1', () => n1.client.getObject('exp', 'kept'), (m) => m?.version === '2', log);
    await sleep(Math.max(0, expiresAt - Date.now()) + 3 * TICK_S * 1000);
    expect(await net.onCss.getObjectStatus('exp', 'kept')).toBe('ready');
    expect((await n1.client.getObject('exp', 'kept'))?.deleted).toBe(false);
    await eventually('delivered to both', () => deliveries(net, 'exp', 'kept'), (d) => d.join() === 'edge/n1:delivered,edge/n2:delivered', log);
  });

  test('the ESS refuses an object with an expiration (400), and stores nothing', async () => {
    const err = await n1.client
      .updateObject({ objectID: 'local', objectType: 'exp', expiration: new Date(Date.now() + 3600_000).toISOString() }, 'x')
      .then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(SyncServiceError);
    expect((err as SyncServiceError).status).toBe(400);
    expect((err as SyncServiceError).body).toContain('Object expiration is disabled on ESS');
    expect(await n1.client.getObjectStatus('exp', 'local')).toBeNull();
  });
});
