/**
 * Webhooks across the sync, over HTTP and MQTT (embedded broker, mosquitto): the hook an ESS
 * app registers on its node fires when an object of its type arrives there (complete, data
 * included), for noData, link and metaOnly objects too, and when the CSS's deletion reaches the ESS;
 * the hook a CSS app registers fires when an object an ESS published arrives on the CSS. A real
 * HTTP server on loopback plays the apps' hooks. Real processes on loopback.
 */
import { afterAll, beforeAll, expect, jest, test } from '@jest/globals';
import { Teardown } from '../helpers/node-process.js';
import { eventuallyWithin } from '../helpers/sync-pair.js';
import { describeTransports, netLog, startSyncNet, type EssNode, type SyncNet } from '../helpers/transports.js';
import { startHookDouble, type HookCall, type HookDouble } from '../helpers/webhook-app-double.js';

jest.setTimeout(120_000);

const DEADLINE_MS = 45_000;
const eventually = eventuallyWithin(DEADLINE_MS);

describeTransports('webhooks fire where objects arrive', (kind) => {
  const t = new Teardown();
  let net: SyncNet;
  let n1: EssNode;
  let hook: HookDouble;

  const callsFor = (objectID: string): Promise<HookCall[]> => Promise.resolve(hook.calls.filter((c) => c.meta.objectID === objectID));
  const log = (): string => `${netLog(net, n1)()}\nhook calls: ${JSON.stringify(hook.calls.map((c) => [c.event, c.meta.objectID, c.meta.instanceID]))}`;

  beforeAll(async () => {
    hook = await startHookDouble();
    t.add(() => hook.close());
    net = await startSyncNet(t, kind, { deadlineMs: DEADLINE_MS });
    n1 = await net.addEss({ id: 'n1' });
    // The ESS app's hook on its node (localhost, as apps do with the reference); a CSS app's on the CSS.
    await n1.client.registerWebhook('model', `${hook.url.replace('127.0.0.1', 'localhost')}/ess`);
    await net.onCss.registerWebhook('report', `${hook.url}/css`);
  });
  afterAll(() => t.run());

  test('an object published on the CSS calls the ESS hook once it is complete on the ESS', async () => {
    await net.onCss.updateObject({ objectID: 'doc', objectType: 'model', destinationType: 'edge', version: '1' }, Buffer.alloc(200 * 1024, 7));
    const [call] = await eventually('the ESS hook', () => callsFor('doc'), (c) => c.length === 1, log);
    const onCss = (await net.onCss.getObject('model', 'doc'))!;
    expect([call!.path, call!.event, call!.contentType]).toEqual(['/hook/ess', 'available', 'Application/JSON']);
    expect(call!.meta).toMatchObject({ objectID: 'doc', instanceID: Number(onCss.instanceID), objectSize: 200 * 1024 });
    // Called after the commit: the app can read the data the moment it hears of it.
    expect(await n1.client.getObjectStatus('model', 'doc')).toBe('completelyReceived');
  });

  test('noData and link objects and metaOnly updates call the ESS hook too', async () => {
    await net.onCss.updateObject({ objectID: 'flag', objectType: 'model', destinationType: 'edge', noData: true });
    await eventually('the noData call', () => callsFor('flag'), (c) => c.length === 1, log);
    await net.onCss.updateObject({ objectID: 'ln', objectType: 'model', destinationType: 'edge', link: 'https://files.example.com/ln.bin' });
    const [link] = await eventually('the link call', () => callsFor('ln'), (c) => c.length === 1, log);
    expect(link!.meta.link).toBe('https://files.example.com/ln.bin');
    await net.onCss.updateObject({ objectID: 'doc', objectType: 'model', destinationType: 'edge', version: '2', metaOnly: true });
    const calls = await eventually('the metaOnly call', () => callsFor('doc'), (c) => c.length === 2, log);
    expect(calls[1]!.meta).toMatchObject({ version: '2', metaOnly: true });
  });

  test('a deletion on the CSS calls the ESS hook with deleted: true when it reaches the ESS', async () => {
    await net.onCss.deleteObject('model', 'flag');
    const calls = await eventually('the deletion call', () => callsFor('flag'), (c) => c.length === 2, log);
    expect([calls[1]!.event, calls[1]!.meta.deleted]).toEqual(['deleted', true]);
    const deliveries = (await n1.client.getWebhookLog('model')).deliveries;
    expect(deliveries.filter((d) => d.objectID === 'flag').map((d) => [d.event, d.state])).toEqual([
      ['deleted', 'delivered'],
      ['available', 'delivered'],
    ]);
  });

  test('an object an ESS publishes calls the CSS hook when it arrives on the CSS', async () => {
    await n1.client.updateObject({ objectID: 'r1', objectType: 'report' }, 'measurements');
    const [call] = await eventually('the CSS hook', () => callsFor('r1'), (c) => c.length === 1, log);
    expect([call!.path, call!.event]).toEqual(['/hook/css', 'available']);
    expect(call!.meta).toMatchObject({ objectType: 'report', originType: 'edge', originID: 'n1' });
    expect(await net.onCss.getObjectStatus('report', 'r1')).toBe('completelyReceived');
  });
});
