/**
 * Transport contract, addressing: whatever carries the sync (HTTP, MQTT through the CSS's
 * embedded broker, MQTT through mosquitto), an object published on the CSS reaches exactly the
 * nodes it is addressed to (one node, a type, a list, everyone), nodes that register later
 * included, with their data intact; the CSS reports each delivery. Real processes on loopback.
 * [ref sync-protocol §2, §6 Addressing; DESIGN "the same scenario suite runs over http, mqtt-embedded and mqtt-mosquitto"]
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, jest, test } from '@jest/globals';
import { readAll, sha } from '../helpers/bytes.js';
import { Teardown } from '../helpers/node-process.js';
import { eventuallyWithin } from '../helpers/sync-pair.js';
import { deliveries, describeTransports, netLog, startSyncNet, type EssNode, type SyncNet, TRANSPORT_KINDS_WITH_MONGO, wireOf } from '../helpers/transports.js';

jest.setTimeout(120_000);

/** Polling deadlines only: generous, so a loaded machine does not fail the test. */
const DEADLINE_MS = 45_000;
const eventually = eventuallyWithin(DEADLINE_MS);

describeTransports('objects published on the CSS reach the nodes they are addressed to', (kind) => {
  const t = new Teardown();
  let net: SyncNet;
  /** edge/n1, edge/n2 and other/x1, all registered before anything is published. */
  let n1: EssNode;
  let n2: EssNode;
  let x1: EssNode;

  beforeAll(async () => {
    net = await startSyncNet(t, kind, { deadlineMs: DEADLINE_MS });
    [n1, n2, x1] = [await net.addEss({ id: 'n1' }), await net.addEss({ id: 'n2' }), await net.addEss({ id: 'x1', type: 'other' })];
  });
  afterAll(() => t.run());

  /** Waits until `ess` holds the object completely, and checks its bytes. */
  async function arrives(ess: EssNode, objectID: string, data: Buffer): Promise<void> {
    await eventually(`${objectID} on ${ess.type}/${ess.id}`, () => ess.client.getObjectStatus('model', objectID), (s) => s === 'completelyReceived', netLog(net, ess));
    expect(sha(await readAll(await ess.client.fetchObjectData('model', objectID)))).toBe(sha(data));
  }

  test(`every node registers with the CSS over ${kind.startsWith('mqtt') ? 'MQTT' : 'HTTP'}`, async () => {
    const listed = (await net.onCss.getDestinations()).map((d) => `${d.destinationType}/${d.destinationID}:${d.communication}`).sort();
    const via = wireOf(kind) === 'http' ? 'http' : 'mqtt';
    expect(listed).toEqual([`edge/n1:${via}`, `edge/n2:${via}`, `other/x1:${via}`]);
  });

  test('an object addressed to one node reaches that node and no other', async () => {
    const data = randomBytes(4096);
    await net.onCss.updateObject({ objectID: 'to-n2', objectType: 'model', destinationType: 'edge', destinationID: 'n2' }, data);
    await arrives(n2, 'to-n2', data);
    await eventually('O13 of to-n2', () => deliveries(net, 'model', 'to-n2'), (d) => d.join() === 'edge/n2:delivered');
    expect(await n1.client.getObjectStatus('model', 'to-n2')).toBeNull();
    expect(await x1.client.getObjectStatus('model', 'to-n2')).toBeNull();
  });

  test('an object addressed to a node type reaches every registered node of that type and no other', async () => {
    const data = randomBytes(4096);
    await net.onCss.updateObject({ objectID: 'to-edge', objectType: 'model', destinationType: 'edge' }, data);
    await arrives(n1, 'to-edge', data);
    await arrives(n2, 'to-edge', data);
    await eventually('O13 of to-edge', () => deliveries(net, 'model', 'to-edge'), (d) => d.join() === 'edge/n1:delivered,edge/n2:delivered');
    expect(await x1.client.getObjectStatus('model', 'to-edge')).toBeNull();
  });

  test('an object addressed to a list of nodes reaches exactly the listed ones, whatever their types', async () => {
    const data = randomBytes(4096);
    await net.onCss.updateObject({ objectID: 'to-list', objectType: 'model', destinationsList: ['edge:n1', 'other:x1'] }, data);
    await arrives(n1, 'to-list', data);
    await arrives(x1, 'to-list', data);
    await eventually('O13 of to-list', () => deliveries(net, 'model', 'to-list'), (d) => d.join() === 'edge/n1:delivered,other/x1:delivered');
    expect(await n2.client.getObjectStatus('model', 'to-list')).toBeNull();
  });

  test('an object addressed to no type (broadcast) reaches every registered node of the org', async () => {
    const data = randomBytes(4096);
    await net.onCss.updateObject({ objectID: 'to-all', objectType: 'model' }, data);
    for (const ess of [n1, n2, x1]) await arrives(ess, 'to-all', data);
    await eventually('O13 of to-all', () => deliveries(net, 'model', 'to-all'), (d) => d.join() === 'edge/n1:delivered,edge/n2:delivered,other/x1:delivered');
  });

  test('a node that registers after objects were published for its type, for everyone and for it by name receives them all', async () => {
    const byType = randomBytes(2048);
    const byName = randomBytes(2048);
    const toAll = randomBytes(2048);
    await net.onCss.updateObject({ objectID: 'late-type', objectType: 'model', destinationType: 'edge' }, byType);
    await net.onCss.updateObject({ objectID: 'late-name', objectType: 'model', destinationType: 'edge', destinationID: 'n4' }, byName);
    await net.onCss.updateObject({ objectID: 'late-all', objectType: 'model' }, toAll);
    // Named before it exists: the CSS keeps it for n4.
    expect(await deliveries(net, 'model', 'late-name')).toEqual(['edge/n4:pending']);
    const n4 = await net.addEss({ id: 'n4' });
    await arrives(n4, 'late-type', byType);
    await arrives(n4, 'late-name', byName);
    await arrives(n4, 'late-all', toAll);
    await eventually('O13 of late-name', () => deliveries(net, 'model', 'late-name'), (d) => d.join() === 'edge/n4:delivered');
    await eventually('O13 of late-type', () => deliveries(net, 'model', 'late-type'), (d) => d.join() === 'edge/n1:delivered,edge/n2:delivered,edge/n4:delivered');
    // What was meant for others before it came stays theirs.
    expect(await n4.client.getObjectStatus('model', 'to-n2')).toBeNull();
    expect(await n4.client.getObjectStatus('model', 'to-list')).toBeNull();
  });
}, TRANSPORT_KINDS_WITH_MONGO);
