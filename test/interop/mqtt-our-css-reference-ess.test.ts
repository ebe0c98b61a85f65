/**
 * Our CSS and the reference ESS syncing over MQTT through a real mosquitto, both real processes
 * on loopback, set up as the reference pair of the MQTT captures (traffic README "Provenance":
 * single-org CSS, 65536-byte chunks, a getdata window of 4). What an app sees on either side:
 * registration, an object to the node (3 KiB) and its consumption, a 614523-byte object in
 * chunks, objects published on the ESS (3 KiB whole, 614477 bytes in zero-padded chunks), and a
 * deletion. Runs when EDGESYNC_REFERENCE_BIN names the reference binary (docs/interop.md);
 * otherwise it is reported as skipped.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, jest, test } from '@jest/globals';
import { SyncServiceClient } from '../../sdk/index.js';
import { sha256Hex, sha256Of } from '../helpers/generated-data.js';
import { MOSQUITTO_MISSING, mosquittoAvailable, startMosquitto } from '../helpers/mosquitto.js';
import { startNode, Teardown, type RunningProcess } from '../helpers/node-process.js';
import { startReferenceOnMqtt, type ReferenceProcess } from '../helpers/reference-node.js';
import { eventually as eventuallyFor } from '../helpers/sync-pair.js';
import { describeWithReference } from './interop-scenarios.js';

jest.setTimeout(180_000);

const ORG = 'myorg';
const DEST_TYPE = 'edge';
const DEST_ID = 'node1';
const APP = { appKey: `admin@${ORG}`, appSecret: '' };
const DEADLINE_MS = 60_000;

describeWithReference('interop over MQTT (mosquitto): edgesync CSS + reference ESS', (bin) => {
  if (!mosquittoAvailable()) {
    test.skip(`skipped: ${MOSQUITTO_MISSING}`, () => undefined);
    return;
  }
  const t = new Teardown();
  let css: RunningProcess;
  let ess: ReferenceProcess;
  let onCss: SyncServiceClient;
  let onEss: SyncServiceClient;
  const logs = (): string => `--- edgesync CSS ---\n${css.output().slice(-6000)}\n--- reference ESS ---\n${ess.output().slice(-6000)}`;
  /** Polls until `done`; probe errors count as "not yet"; a timeout shows the tail of both logs. */
  const eventually = async <T>(what: string, probe: () => Promise<T>, done: (v: T) => boolean): Promise<void> => {
    type Seen = { ok: true; value: T } | { ok: false; error: string };
    const safe = (): Promise<Seen> => probe().then((value): Seen => ({ ok: true, value }), (e: unknown): Seen => ({ ok: false, error: String(e) }));
    await eventuallyFor(what, safe, (s) => s.ok && done(s.value), DEADLINE_MS, logs);
  };
  const delivery = async (type: string, id: string): Promise<string> =>
    (await onCss.getObjectDestinations(type, id)).map((d) => `${d.destinationType}/${d.destinationID}:${d.status}`).join();

  beforeAll(async () => {
    const broker = await startMosquitto();
    t.add(() => broker.stop());
    const mqtt = { COMMUNICATION_PROTOCOL: 'mqtt', BROKER_ADDRESS: '127.0.0.1', BROKER_PORT: String(broker.port), MQTT_USE_SSL: 'false', MAX_INFLIGHT_CHUNKS: '4', MAX_DATA_CHUNK_SIZE: '65536' };
    css = await startNode({
      mode: 'css',
      env: { ...mqtt, ORG_ID: ORG, AUTHENTICATION_HANDLER: 'dummy', LISTENING_ADDRESS: '127.0.0.1', RESEND_INTERVAL: '2', LOG_LEVEL: 'info' },
    });
    t.add(() => css.stop());
    ess = await startReferenceOnMqtt(bin, { mode: 'ess', env: { ...mqtt, ORG_ID: ORG, DESTINATION_TYPE: DEST_TYPE, DESTINATION_ID: DEST_ID } });
    t.add(() => ess.stop());
    onCss = await css.client({ orgID: ORG, ...APP });
    // An ESS's API names no org in its paths.
    onEss = new SyncServiceClient({ url: ess.url, ...APP });
    t.add(() => Promise.resolve(onEss.close()));
    t.add(() => Promise.resolve(onCss.close()));
  });
  afterAll(() => t.run());

  async function publishOnCss(id: string, data: Buffer): Promise<void> {
    await onCss.updateObject({ objectID: id, objectType: 'model', destinationType: DEST_TYPE, destinationID: DEST_ID, version: '1.0' });
    await onCss.updateObjectData('model', id, data);
  }

  async function arrivedOnEss(id: string, data: Buffer): Promise<void> {
    await eventually(`status of model/${id} on the ESS`, () => onEss.getObjectStatus('model', id), (s) => s === 'completelyReceived');
    expect(await sha256Of(await onEss.fetchObjectData('model', id))).toBe(sha256Hex(data));
  }

  test('the reference ESS registers over MQTT (register → registerAsNew → registerNew → regack)', async () => {
    await eventually(
      `registration of ${DEST_TYPE}/${DEST_ID}`,
      () => onCss.getDestinations(),
      (d) => d.some((x) => x.destinationType === DEST_TYPE && x.destinationID === DEST_ID && x.communication === 'mqtt'),
    );
  });

  test('an object with 3 KiB of data for edge/node1 arrives intact; the ESS app consumes it; the CSS shows delivered, then consumed', async () => {
    const data = randomBytes(3072);
    await publishOnCss('to-node', data);
    await arrivedOnEss('to-node', data);
    await eventually('delivery of to-node', () => delivery('model', 'to-node'), (d) => d === 'edge/node1:delivered');
    await onEss.markObjectConsumed('model', 'to-node');
    await eventually('delivery of to-node after consumed', () => delivery('model', 'to-node'), (d) => d === 'edge/node1:consumed');
  });

  test('a 614523-byte object (ten 65536-byte chunks, the last one short) arrives with the same SHA-256', async () => {
    const data = randomBytes(614_523);
    await publishOnCss('big1', data);
    await arrivedOnEss('big1', data);
    await eventually('delivery of big1', () => delivery('model', 'big1'), (d) => d === 'edge/node1:delivered');
  });

  test('an object published on the ESS arrives on the CSS; the CSS app consumes it and the ESS hears so', async () => {
    const data = randomBytes(3072);
    await onEss.updateObject({ objectID: 'up1', objectType: 'report', version: '1.0' });
    await onEss.updateObjectData('report', 'up1', data);
    await eventually('status of report/up1 on the CSS', () => onCss.getObjectStatus('report', 'up1'), (s) => s === 'completelyReceived');
    expect(await sha256Of(await onCss.fetchObjectData('report', 'up1'))).toBe(sha256Hex(data));
    const meta = await onCss.getObject('report', 'up1');
    expect([meta?.originType, meta?.originID, meta?.objectSize]).toEqual([DEST_TYPE, DEST_ID, 3072]);
    await onCss.markObjectConsumed('report', 'up1');
    await eventually('status of report/up1 on the ESS', () => onEss.getObjectStatus('report', 'up1'), (s) => s === 'consumedByDest');
    await eventually('report/up1 gone from the CSS', () => onCss.getObject('report', 'up1'), (m) => m === null);
  });

  test('a 614477-byte object published on the ESS comes in zero-padded chunks on sync-cmd-leader, and arrives intact', async () => {
    const data = randomBytes(614_477);
    await onEss.updateObject({ objectID: 'big2', objectType: 'report', version: '1.0' });
    await onEss.updateObjectData('report', 'big2', data);
    await eventually('status of report/big2 on the CSS', () => onCss.getObjectStatus('report', 'big2'), (s) => s === 'completelyReceived');
    expect(await sha256Of(await onCss.fetchObjectData('report', 'big2'))).toBe(sha256Hex(data));
  });

  test('a deletion on the CSS reaches the ESS; once its app confirms, both sides forget the object', async () => {
    const data = randomBytes(3072);
    await publishOnCss('doomed', data);
    await arrivedOnEss('doomed', data);
    await onCss.deleteObject('model', 'doomed');
    await eventually('deleted flag of doomed on the ESS', async () => (await onEss.getObject('model', 'doomed'))?.deleted, (d) => d === true);
    await onEss.markObjectDeleted('model', 'doomed');
    await eventually('doomed on the ESS', () => onEss.getObject('model', 'doomed'), (m) => m === null);
    await eventually('doomed on the CSS', () => onCss.getObject('model', 'doomed'), (m) => m === null);
  });

  test('the CSS health report shows the broker connection green', async () => {
    const h = (await onCss.health()) as unknown as { mqttHealth?: { mqttConnectionStatus: string; mqttESS: number } };
    expect(h.mqttHealth).toMatchObject({ mqttConnectionStatus: 'green', mqttESS: 1 });
  });
});
