/**
 * REMOVE_ESS_REGISTRATION_TIME on real processes (HTTP): an ESS not heard from for that long is
 * removed with everything queued for it, while an ESS that keeps polling stays registered; the
 * removed one, back later, registers as new and receives what is addressed to it afresh. The time
 * is given in (fractional) days: 0.00005 days is 4.32 s. [ref common/config.go RemoveESSRegistrationTime]
 */
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { Teardown } from '../helpers/node-process.js';
import { eventuallyWithin } from '../helpers/sync-pair.js';
import { deliveries, netLog, startSyncNet, type EssNode, type SyncNet } from '../helpers/transports.js';

jest.setTimeout(120_000);

const DEADLINE_MS = 45_000;
const eventually = eventuallyWithin(DEADLINE_MS);
const REMOVE_AFTER_DAYS = 0.00005;
const REMOVE_AFTER_MS = REMOVE_AFTER_DAYS * 24 * 3600 * 1000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('removal of inactive ESS registrations [http]', () => {
  const t = new Teardown();
  let net: SyncNet;
  let n1: EssNode;
  let n2: EssNode;

  beforeAll(async () => {
    net = await startSyncNet(t, 'http', {
      deadlineMs: DEADLINE_MS,
      cssEnv: { REMOVE_ESS_REGISTRATION_TIME: String(REMOVE_AFTER_DAYS), STORAGE_MAINTENANCE_INTERVAL: '1', LOG_LEVEL: 'info' },
    });
    n1 = await net.addEss({ id: 'n1' });
    n2 = await net.addEss({ id: 'n2' });
  });
  afterAll(() => t.run());

  const log = (): string => netLog(net, n1, n2)();
  const registered = async (): Promise<string[]> => (await net.onCss.getDestinations()).map((d) => `${d.destinationType}/${d.destinationID}`).sort();
  const removalsOf = (id: string): number => net.css.output().split('\n').filter((l) => l.includes('removed an ESS registration') && l.includes(`edge/${id}`)).length;

  test('an ESS gone quiet is removed with its queued records; one that keeps polling stays', async () => {
    await net.onCss.updateObject({ objectID: 'before', objectType: 'reg', destinationType: 'edge' }, 'before');
    for (const n of [n1, n2]) await eventually(`before on ${n.id}`, () => n.client.getObjectStatus('reg', 'before'), (s) => s === 'completelyReceived', log);

    await n2.stop();
    await net.onCss.updateObject({ objectID: 'queued', objectType: 'reg', destinationType: 'edge' }, 'queued');
    await eventually('n2 removed', registered, (r) => r.join() === 'edge/n1', log);
    // Its records went with it: the objects list n1 alone.
    expect(await deliveries(net, 'reg', 'queued')).not.toContain('edge/n2:pending');
    expect((await deliveries(net, 'reg', 'before')).some((d) => d.startsWith('edge/n2'))).toBe(false);

    // n1 polls every second: it outlives twice the removal time without ever being removed.
    await sleep(2 * REMOVE_AFTER_MS);
    expect(await registered()).toEqual(['edge/n1']);
    expect(removalsOf('n1')).toBe(0);
    expect(removalsOf('n2')).toBe(1);
  });

  test('the removed ESS, back, registers as new and receives what is addressed to it', async () => {
    await n2.start();
    await eventually('n2 registered again', registered, (r) => r.join() === 'edge/n1,edge/n2', log);
    await eventually('queued on n2', () => n2.client.getObjectStatus('reg', 'queued'), (s) => s === 'completelyReceived', log);
    await eventually('both delivered', () => deliveries(net, 'reg', 'queued'), (d) => d.join() === 'edge/n1:delivered,edge/n2:delivered', log);
  });
});
