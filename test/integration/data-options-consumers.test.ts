/**
 * Consumers and the app's marks on the ESS, end to end over every transport (the MQTT ones were
 * not covered): an object expecting two consumers is consumed on the CSS only after the second
 * `consumed`; an unlimited one (-1) never; `received` hides the object from the plain listing
 * (O4) but not from `received=true`; marks in a status that does not allow them are a 400.
 * [ref rest-api §1.2 O7–O9, §2 consumers]
 */
import { expect, jest, test } from '@jest/globals';
import { eventuallyWithin } from '../helpers/sync-pair.js';
import { deliveries, describeTransports, netLog, withOneEss, type EssNode, type SyncNet } from '../helpers/transports.js';

jest.setTimeout(120_000);

const DEADLINE_MS = 45_000;
const eventually = eventuallyWithin(DEADLINE_MS);

describeTransports('consumers and marks between a CSS and an ESS', (kind) => {
  let net: SyncNet;
  let n1: EssNode;
  withOneEss(kind, DEADLINE_MS, (s) => ({ net, n1 } = s));

  const log = (): string => netLog(net, n1)();
  const arrived = async (id: string): Promise<void> => {
    await eventually(`${id} on the ESS`, () => n1.client.getObjectStatus('model', id), (s) => s === 'completelyReceived', log);
    await eventually(`O13 of ${id}`, () => deliveries(net, 'model', id), (d) => d.join() === 'edge/n1:delivered', log);
  };

  test('two consumers: the first consumed mark keeps the object; the second reaches the CSS', async () => {
    await net.onCss.updateObject({ objectID: 'two', objectType: 'model', destinationType: 'edge', consumers: 2 }, 'data');
    await arrived('two');
    await n1.client.markObjectConsumed('model', 'two');
    expect(await n1.client.getObjectStatus('model', 'two')).toBe('completelyReceived');
    // Long enough for a wrongly sent `consumed` to have reached the CSS.
    await new Promise((r) => setTimeout(r, 2500));
    expect(await deliveries(net, 'model', 'two')).toEqual(['edge/n1:delivered']);
    await n1.client.markObjectConsumed('model', 'two');
    await eventually('O13 of two', () => deliveries(net, 'model', 'two'), (d) => d.join() === 'edge/n1:consumed', log);
    // Consumed and acked: the ESS no longer holds it; another mark is refused.
    await eventually('two gone from the ESS', () => n1.client.getObjectStatus('model', 'two'), (s) => s === null || s === 'objconsumed', log);
  });

  test('unlimited consumers (-1): consumed marks never use the object up', async () => {
    await net.onCss.updateObject({ objectID: 'many', objectType: 'model', destinationType: 'edge', consumers: -1 }, 'data');
    await arrived('many');
    for (let i = 0; i < 3; i++) await n1.client.markObjectConsumed('model', 'many');
    expect(await n1.client.getObjectStatus('model', 'many')).toBe('completelyReceived');
    await new Promise((r) => setTimeout(r, 2500));
    expect(await deliveries(net, 'model', 'many')).toEqual(['edge/n1:delivered']);
  });

  test('received: the object leaves the plain listing, stays in received=true, and can still be consumed', async () => {
    await net.onCss.updateObject({ objectID: 'seen', objectType: 'model', destinationType: 'edge' }, 'data');
    await arrived('seen');
    await n1.client.markObjectReceived('model', 'seen');
    expect(await n1.client.getObjectStatus('model', 'seen')).toBe('objreceived');
    expect((await n1.client.listObjects('model')).map((m) => m.objectID)).not.toContain('seen');
    expect((await n1.client.listObjects('model', { received: true })).map((m) => m.objectID)).toContain('seen');
    await n1.client.markObjectConsumed('model', 'seen');
    await eventually('O13 of seen', () => deliveries(net, 'model', 'seen'), (d) => d.join() === 'edge/n1:consumed', log);
  });

  test('marks in the wrong status: 400 with the reference’s reasons', async () => {
    await net.onCss.updateObject({ objectID: 'live', objectType: 'model', destinationType: 'edge' }, 'data');
    await arrived('live');
    await expect(n1.client.markObjectDeleted('model', 'live')).rejects.toThrow('Invalid attempt to confirm deletion of object in status completelyReceived');
    await expect(n1.client.markObjectConsumed('model', 'nothing-here')).rejects.toThrow('Failed to find object to mark as consumed');
  });
});
