/**
 * The reference CSS with its default chunk size (MAX_DATA_CHUNK_SIZE 5 MiB) and our ESS over MQTT
 * through a real mosquitto. Our ESS asks for 1 MiB chunks of a larger object; the reference CSS
 * serves its own 5 MiB whatever a `getdata` states, so the ESS must take its chunks whole and ask
 * for the next ones at their size (chunk-window.ts `probe`): the object arrives intact, and no
 * chunk is asked for twice. Runs when EDGESYNC_REFERENCE_BIN names the reference binary
 * (docs/interop.md); otherwise it is reported as skipped.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, jest, test } from '@jest/globals';
import mqttjs from 'mqtt';
import { decodeControl } from '../../lib/transport/mqtt/control-codec.js';
import { SyncServiceClient } from '../../sdk/index.js';
import { sha256Hex, sha256Of } from '../helpers/generated-data.js';
import { MOSQUITTO_MISSING, mosquittoAvailable, startMosquitto } from '../helpers/mosquitto.js';
import { startNode, Teardown, type RunningProcess } from '../helpers/node-process.js';
import { startReferenceOnMqtt, type ReferenceProcess } from '../helpers/reference-node.js';
import { eventually as eventuallyFor } from '../helpers/sync-pair.js';
import { describeWithReference } from './interop-scenarios.js';

jest.setTimeout(180_000);

const ORG = 'myorg';
const APP = { appKey: `admin@${ORG}`, appSecret: '' };
const DEADLINE_MS = 90_000;
const MiB = 1024 * 1024;

describeWithReference('interop over MQTT (mosquitto): the reference CSS serving its 5 MiB chunks to our ESS', (bin) => {
  if (!mosquittoAvailable()) {
    test.skip(`skipped: ${MOSQUITTO_MISSING}`, () => undefined);
    return;
  }
  const t = new Teardown();
  let css: ReferenceProcess;
  let ess: RunningProcess;
  let onCss: SyncServiceClient;
  let onEss: SyncServiceClient;
  /** The offsets of the ESS's `getdata` requests, heard on the broker. */
  const asked: number[] = [];
  const logs = (): string => `--- reference CSS ---\n${css.output().slice(-6000)}\n--- edgesync ESS ---\n${ess.output().slice(-6000)}`;
  const eventually = async <T>(what: string, probe: () => Promise<T>, done: (v: T) => boolean): Promise<void> => {
    type Seen = { ok: true; value: T } | { ok: false; error: string };
    const safe = (): Promise<Seen> => probe().then((value): Seen => ({ ok: true, value }), (e: unknown): Seen => ({ ok: false, error: String(e) }));
    await eventuallyFor(what, safe, (s) => s.ok && done(s.value), DEADLINE_MS, logs);
  };

  beforeAll(async () => {
    const broker = await startMosquitto();
    t.add(() => broker.stop());
    const observer = await mqttjs.connectAsync(broker.url);
    t.add(() => observer.endAsync());
    await observer.subscribeAsync('iot-2/type/edge/id/node1/evt/+/fmt/bin', { qos: 0 });
    observer.on('message', (_topic, payload) => {
      const d = decodeControl(payload);
      if (d.kind === 'message' && d.message.command === 'getdata' && d.message.meta.objectID === 'big') asked.push(Number(d.message.offset));
    });
    const mqtt = { COMMUNICATION_PROTOCOL: 'mqtt', BROKER_ADDRESS: '127.0.0.1', BROKER_PORT: String(broker.port), MQTT_USE_SSL: 'false' };
    // Both with their default chunk size (5 MiB) and window (the reference's 1, our 8).
    css = await startReferenceOnMqtt(bin, { mode: 'css', env: { ...mqtt, ORG_ID: ORG } });
    t.add(() => css.stop());
    ess = await startNode({
      mode: 'ess',
      env: { ...mqtt, ORG_ID: ORG, DESTINATION_TYPE: 'edge', DESTINATION_ID: 'node1', AUTHENTICATION_HANDLER: 'dummy', RESEND_INTERVAL: '1', LOG_LEVEL: 'info' },
    });
    t.add(() => ess.stop());
    onCss = new SyncServiceClient({ url: css.url, ...APP, orgID: ORG });
    onEss = await ess.client(APP);
    t.add(() => Promise.resolve(onEss.close()));
    t.add(() => Promise.resolve(onCss.close()));
    await eventually('registration of edge/node1', () => onCss.getDestinations(), (d) => d.some((x) => x.destinationID === 'node1' && x.communication === 'mqtt'));
  });
  afterAll(() => t.run());

  test('a 12 MiB object (two 5 MiB chunks and the rest, though the ESS asks for 1 MiB) arrives with the same SHA-256', async () => {
    const data = randomBytes(12 * MiB + 12_345);
    await onCss.updateObject({ objectID: 'big', objectType: 'model', destinationType: 'edge', destinationID: 'node1', version: '1.0' });
    await onCss.updateObjectData('model', 'big', data);
    await eventually('status of model/big on the ESS', () => onEss.getObjectStatus('model', 'big'), (s) => s === 'completelyReceived');
    expect(await sha256Of(await onEss.fetchObjectData('model', 'big'))).toBe(sha256Hex(data));
    // The first request alone, then the next at the size served: each chunk asked for once.
    expect(asked).toEqual([0, 5 * MiB, 10 * MiB]);
    await eventually('delivery of big', async () => (await onCss.getObjectDestinations('model', 'big')).map((d) => d.status).join(), (d) => d === 'delivered');
  });
});
