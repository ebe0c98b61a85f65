/**
 * Transport contract, an object's life: whatever carries the sync (HTTP, MQTT through the CSS's
 * embedded broker, MQTT through mosquitto), a new version replaces the old one on the ESS, the
 * app's consumed mark on the ESS shows on the CSS, a deletion on the CSS reaches the ESS, and
 * objects published on the ESS reach the CSS (and their consumption and deletion travel back).
 * Real processes on loopback. [ref sync-protocol §1-§3]
 */
import { randomBytes } from 'node:crypto';
import { expect, jest, test } from '@jest/globals';
import { readAll, sha } from '../helpers/bytes.js';
import { eventuallyWithin } from '../helpers/sync-pair.js';
import { deliveries, describeTransports, netLog, TRANSPORT_KINDS_WITH_MONGO, withOneEss, type EssNode, type SyncNet } from '../helpers/transports.js';

jest.setTimeout(120_000);

/** Polling deadlines only: generous, so a loaded machine does not fail the test. */
const DEADLINE_MS = 45_000;
const eventually = eventuallyWithin(DEADLINE_MS);

describeTransports('an object’s life between a CSS and an ESS', (kind) => {
  let net: SyncNet;
  let n1: EssNode;
  withOneEss(kind, DEADLINE_MS, (s) => ({ net, n1 } = s));

  const log = (): string => netLog(net, n1)();

  test('a new version published on the CSS replaces the old one on the ESS, data and metadata', async () => {
    const v1 = randomBytes(64 * 1024);
    await net.onCss.updateObject({ objectID: 'doc', objectType: 'model', destinationType: 'edge', version: '1' }, v1);
    await eventually('v1 on the ESS', () => n1.client.getObject('model', 'doc'), (m) => m?.version === '1', log);
    await eventually('v1 complete', () => n1.client.getObjectStatus('model', 'doc'), (s) => s === 'completelyReceived', log);
    expect(sha(await readAll(await n1.client.fetchObjectData('model', 'doc')))).toBe(sha(v1));

    const v2 = randomBytes(96 * 1024);
    await net.onCss.updateObject({ objectID: 'doc', objectType: 'model', destinationType: 'edge', version: '2', description: 'second' }, v2);
    const onCss = (await net.onCss.getObject('model', 'doc'))!;
    await eventually('v2 on the ESS', () => n1.client.getObject('model', 'doc'), (m) => m?.instanceID === onCss.instanceID, log);
    await eventually('v2 complete', () => n1.client.getObjectStatus('model', 'doc'), (s) => s === 'completelyReceived', log);
    const held = (await n1.client.getObject('model', 'doc'))!;
    expect([held.version, held.description, held.objectSize, held.dataID]).toEqual(['2', 'second', v2.length, onCss.dataID]);
    expect(sha(await readAll(await n1.client.fetchObjectData('model', 'doc')))).toBe(sha(v2));
    // The app sees one object, the new one.
    expect((await n1.client.listObjects('model')).map((m) => [m.objectID, m.version])).toEqual([['doc', '2']]);
    await eventually('O13 of doc', () => deliveries(net, 'model', 'doc'), (d) => d.join() === 'edge/n1:delivered');
  });

  test('an object the ESS app marks consumed shows as consumed on the CSS', async () => {
    await n1.client.markObjectConsumed('model', 'doc');
    await eventually('O13 of doc', () => deliveries(net, 'model', 'doc'), (d) => d.join() === 'edge/n1:consumed', log);
  });

  test('an object deleted on the CSS is deleted on the ESS; once the ESS app confirms, neither side keeps it', async () => {
    await net.onCss.updateObject({ objectID: 'gone', objectType: 'model', destinationType: 'edge' }, 'short-lived');
    await eventually('gone on the ESS', () => n1.client.getObjectStatus('model', 'gone'), (s) => s === 'completelyReceived', log);
    await net.onCss.deleteObject('model', 'gone');
    await eventually('deleted on the ESS', () => n1.client.listObjects('model'), (l) => l.some((m) => m.objectID === 'gone' && m.deleted), log);
    // The ESS acknowledged the deletion: the CSS forgets the object and its delivery record.
    await eventually('gone from the CSS', () => net.onCss.getObjectStatus('model', 'gone'), (s) => s === null, log);
    expect(await net.onCss.getObjectDestinations('model', 'gone')).toEqual([]);
    await n1.client.markObjectDeleted('model', 'gone');
    await eventually('gone from the ESS', () => n1.client.getObjectStatus('model', 'gone'), (s) => s === null, log);
  });

  test('an object published on the ESS reaches the CSS with identical bytes, its origin the ESS', async () => {
    const data = randomBytes(300 * 1024);
    await n1.client.updateObject({ objectID: 'r1', objectType: 'report', version: '1.0' }, data);
    await eventually('r1 on the CSS', () => net.onCss.getObjectStatus('report', 'r1'), (s) => s === 'completelyReceived', log);
    const meta = await net.onCss.getObject('report', 'r1');
    expect([meta?.originType, meta?.originID, meta?.objectSize, meta?.version]).toEqual(['edge', 'n1', data.length, '1.0']);
    expect(sha(await readAll(await net.onCss.fetchObjectData('report', 'r1')))).toBe(sha(data));
  });

  test('an ESS object consumed by a CSS app is kept on the ESS as metadata only (consumedByDest)', async () => {
    await net.onCss.markObjectConsumed('report', 'r1');
    await eventually('r1 on the ESS', () => n1.client.getObjectStatus('report', 'r1'), (s) => s === 'consumedByDest', log);
    await expect(n1.client.fetchObjectData('report', 'r1')).rejects.toThrow();
    await eventually('r1 gone from the CSS', () => net.onCss.getObjectStatus('report', 'r1'), (s) => s === null, log);
  });

  test('an object deleted on the ESS shows as deleted on the CSS; once a CSS app confirms, neither side keeps it', async () => {
    await n1.client.updateObject({ objectID: 'd1', objectType: 'report' }, 'short-lived');
    await eventually('d1 on the CSS', () => net.onCss.getObjectStatus('report', 'd1'), (s) => s === 'completelyReceived', log);
    await n1.client.deleteObject('report', 'd1');
    await eventually('d1 deleted on the CSS', () => net.onCss.listObjects('report'), (l) => l.some((m) => m.objectID === 'd1' && m.deleted), log);
    await net.onCss.markObjectDeleted('report', 'd1');
    await eventually('d1 gone from the CSS', () => net.onCss.getObjectStatus('report', 'd1'), (s) => s === null, log);
    // The ESS drops its record once the CSS's acknowledgement of the deletion reaches it, a
    // message after the CSS forgot the object: over MQTT that can be a moment later.
    await eventually('d1 gone from the ESS', () => n1.client.getObjectStatus('report', 'd1'), (s) => s === null, log);
  });
}, TRANSPORT_KINDS_WITH_MONGO);
