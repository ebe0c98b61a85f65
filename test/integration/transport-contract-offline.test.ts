/**
 * Transport contract, an ESS that was away: whatever carries the sync (HTTP, MQTT through the
 * CSS's embedded broker, MQTT through mosquitto), an ESS stopped while objects are published and
 * deleted gets, once back, the ones that still exist and never the deleted ones; an object
 * deleted while its holder was away is deleted there once it is back. Real processes on loopback.
 * [ref sync-protocol §2 "After every reconnect the ESS re-sends register", §3 Delete]
 */
import { randomBytes } from 'node:crypto';
import { expect, jest, test } from '@jest/globals';
import { readAll, sha } from '../helpers/bytes.js';
import { eventuallyWithin } from '../helpers/sync-pair.js';
import { deliveries, describeTransports, netLog, withOneEss, type EssNode, type SyncNet, TRANSPORT_KINDS_WITH_MONGO } from '../helpers/transports.js';

jest.setTimeout(120_000);

/** Polling deadlines only: generous, so a loaded machine does not fail the test. */
const DEADLINE_MS = 45_000;
const eventually = eventuallyWithin(DEADLINE_MS);

describeTransports('an ESS that was offline while objects were published and deleted', (kind) => {
  let net: SyncNet;
  let n1: EssNode;
  withOneEss(kind, DEADLINE_MS, (s) => ({ net, n1 } = s));

  const log = (): string => netLog(net, n1)();

  test('back after two objects were published for it and one of them deleted, it gets the one, never the deleted one', async () => {
    expect(await n1.stop()).toBe(0);
    const kept = randomBytes(32 * 1024);
    await net.onCss.updateObject({ objectID: 'kept', objectType: 'batch', destinationType: 'edge' }, kept);
    await net.onCss.updateObject({ objectID: 'dropped', objectType: 'batch', destinationType: 'edge' }, randomBytes(32 * 1024));
    await net.onCss.deleteObject('batch', 'dropped');
    // Still registered while away: the CSS keeps the surviving object for it.
    expect((await net.onCss.getDestinations()).map((d) => `${d.destinationType}/${d.destinationID}`)).toEqual(['edge/n1']);
    expect(await deliveries(net, 'batch', 'kept')).toEqual(['edge/n1:delivering']);

    await n1.start();
    // Watched all along the catch-up: the deleted object must never show up, not even for a moment.
    const seenDropped = new Set<string>();
    await eventually(
      'kept on the ESS',
      async () => {
        const dropped = await n1.client.getObjectStatus('batch', 'dropped');
        if (dropped !== null) seenDropped.add(dropped);
        return n1.client.getObjectStatus('batch', 'kept');
      },
      (s) => s === 'completelyReceived',
      log,
    );
    expect(sha(await readAll(await n1.client.fetchObjectData('batch', 'kept')))).toBe(sha(kept));
    expect([...seenDropped]).toEqual([]);
    expect((await n1.client.listObjects('batch', { received: true })).map((m) => m.objectID)).toEqual(['kept']);
    await eventually('O13 of kept', () => deliveries(net, 'batch', 'kept'), (d) => d.join() === 'edge/n1:delivered', log);
    // The deleted one is gone from the CSS with its delivery record: nobody is told to delete what it never got.
    expect(await net.onCss.getObject('batch', 'dropped')).toBeNull();
    expect(await net.onCss.getObjectDestinations('batch', 'dropped')).toEqual([]);
    expect(await n1.client.getObjectStatus('batch', 'dropped')).toBeNull();
  });

  test('an object deleted on the CSS while the ESS that holds it was offline is deleted there once it is back', async () => {
    await net.onCss.updateObject({ objectID: 'held', objectType: 'batch', destinationType: 'edge' }, 'kept until acked');
    await eventually('O13 of held', () => deliveries(net, 'batch', 'held'), (d) => d.join() === 'edge/n1:delivered', log);
    expect(await n1.stop()).toBe(0);
    await net.onCss.deleteObject('batch', 'held');
    // The CSS waits for n1's acknowledgement before it forgets the object.
    expect(await net.onCss.getObjectStatus('batch', 'held')).toBe('objdeleted');
    await n1.start();
    await eventually('held deleted on the ESS', () => n1.client.getObjectStatus('batch', 'held'), (s) => s === 'objdeleted', log);
    await eventually('held gone from the CSS', () => net.onCss.getObjectStatus('batch', 'held'), (s) => s === null, log);
    expect(await net.onCss.getObjectDestinations('batch', 'held')).toEqual([]);
  });
}, TRANSPORT_KINDS_WITH_MONGO);
