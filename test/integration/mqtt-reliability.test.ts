/**
 * MQTT when things go wrong, on the real binaries over the CSS's embedded broker and over
 * mosquitto (with an ACL per node): a broker restart in the middle of a 100 MiB transfer, MQTT
 * clients without credentials or with another node's trying to read or inject on a node's
 * topics, and a node's message whose payload claims to come from another node.
 * The reference trusts the payload's origin and leaves topics to the broker [ref sync-protocol
 * §2 "MQTT authenticity"]; we check the topic against the payload, and the embedded broker keeps
 * each node to its own topics.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, expect, jest, test } from '@jest/globals';
import { connectAsync, type IClientOptions, type MqttClient } from 'mqtt';
import { readAll, sha } from '../helpers/bytes.js';
import { Teardown } from '../helpers/node-process.js';
import { eventuallyWithin } from '../helpers/sync-pair.js';
import {
  arrivesIntact,
  deliveries,
  describeTransports,
  essSecret,
  essUser,
  netLog,
  publishThenAddress,
  startSyncNet,
  whenStaged,
  type EssNode,
  type SyncNet,
} from '../helpers/transports.js';
import type { MetaData } from '../../sdk/index.js';
import { stringifyJson } from '../../lib/model/index.js';

jest.setTimeout(240_000);

const MiB = 1024 * 1024;
/** The transfer a broker restart interrupts. */
const SIZE = 100 * MiB;
/** The restart comes once the ESS has staged more than this of it. */
const RESTART_AT = 16 * MiB;
/** Polling deadlines only: generous, so a loaded machine does not fail the test. */
const DEADLINE_MS = 120_000;
const eventually = eventuallyWithin(DEADLINE_MS);
/** How long a refused message is given to (wrongly) take effect before the test looks. */
const SETTLE_MS = 3_000;

/** The topics of node edge/{id} on a plain broker. [ref sync-protocol §2 Topics] */
const cmdTopic = (id: string): string => `iot-2/type/edge/id/${id}/cmd/sync-cmd/fmt/bin`;
const evtTopic = (id: string): string => `iot-2/type/edge/id/${id}/evt/sync-cmd/fmt/bin`;

/** A control message as an ESS sends it: version 1.0, the command, the object's metadata, an empty destination. */
function control(command: string, meta: MetaData): string {
  const destination = { destinationOrgID: '', destinationType: '', destinationID: '', communication: '', codeVersion: '' };
  return stringifyJson({ version: { Major: 1, Minor: 0 }, command, meta, destination });
}

describeTransports(
  'MQTT under a broker restart and hostile clients',
  (kind) => {
    const t = new Teardown();
    let net: SyncNet;
    let n1: EssNode;
    let n2: EssNode;
    const clients: MqttClient[] = [];

    beforeAll(async () => {
      net = await startSyncNet(t, kind, { deadlineMs: DEADLINE_MS, mosquittoAcl: true });
      n1 = await net.addEss({ id: 'n1' });
      n2 = await net.addEss({ id: 'n2' });
    });
    afterEach(async () => {
      for (const c of clients.splice(0)) await c.endAsync(true);
    });
    afterAll(() => t.run());

    const log = (): string => netLog(net, n1, n2)();

    /** An MQTT client of the broker the nodes use, that never reconnects on its own. */
    async function rogue(opts: IClientOptions): Promise<MqttClient> {
      const c = await connectAsync(`mqtt://127.0.0.1:${net.dialPort}`, { reconnectPeriod: 0, connectTimeout: 5_000, clientId: `rogue-${randomBytes(4).toString('hex')}`, ...opts });
      // A broker that refuses a subscription or a publish may close the connection: that is an answer, not a failure.
      c.on('error', () => undefined);
      clients.push(c);
      return c;
    }

    /** Publishes an object for `ess` and waits until it holds it and the CSS says delivered. */
    async function delivered(ess: EssNode, objectID: string): Promise<MetaData> {
      const data = randomBytes(1024);
      await net.onCss.updateObject({ objectID, objectType: 'model', destinationType: 'edge', destinationID: ess.id }, data);
      await eventually(`${objectID} on ${ess.id}`, () => ess.client.getObjectStatus('model', objectID), (s) => s === 'completelyReceived', log);
      expect(sha(await readAll(await ess.client.fetchObjectData('model', objectID)))).toBe(sha(data));
      await eventually(`O13 of ${objectID}`, () => deliveries(net, 'model', objectID), (d) => d.join() === `edge/${ess.id}:delivered`, log);
      const meta = await net.onCss.getObject('model', objectID);
      if (meta === null) throw new Error(`${objectID} is not on the CSS`);
      return meta;
    }

    test(`a 100 MiB transfer interrupted by a restart of the broker (${kind === 'mqtt-embedded' ? 'the CSS that runs it' : 'mosquitto'}) completes intact`, async () => {
      const sha256 = await publishThenAddress(net, 'through-restart', SIZE);
      const restart = kind === 'mqtt-embedded' ? () => net.restartCss('stop') : () => net.broker!.restart();
      expect(await whenStaged(n1, RESTART_AT, SIZE, restart, DEADLINE_MS, log)).toBeGreaterThan(RESTART_AT);
      await arrivesIntact(net, n1, 'through-restart', SIZE, sha256, DEADLINE_MS);
    });

    test('a client without credentials is refused by the broker', async () => {
      await expect(rogue({})).rejects.toThrow();
      await expect(rogue({ username: essUser('edge', 'n1'), password: 'not its secret' })).rejects.toThrow();
    });

    test('a client with another node’s credentials reads nothing of what is sent to a node', async () => {
      const spy = await rogue({ username: essUser('edge', 'n2'), password: essSecret('n2') });
      const heard: string[] = [];
      spy.on('message', (topic) => heard.push(topic));
      // Refused (a SUBACK failure or a closed connection) or granted and never fed: either way it hears nothing.
      await spy.subscribeAsync([cmdTopic('n1'), 'iot-2/type/edge/id/n1/#', 'iot-2/#'], { qos: 0 }).catch(() => undefined);
      await delivered(n1, 'for-n1-only');
      expect(heard.filter((topic) => !topic.includes('/id/n2/'))).toEqual([]);
    });

    test('a client with another node’s credentials cannot act on a node’s topic', async () => {
      const meta = await delivered(n1, 'victim');
      const before = await deliveries(net, 'model', 'victim');
      const forger = await rogue({ username: essUser('edge', 'n2'), password: essSecret('n2') });
      // What n1 would send once its app consumed the object, sent by n2 on n1's topic.
      const consumed = control('consumed', { ...meta, destinationType: 'edge', destinationID: 'n1' });
      await forger.publishAsync(evtTopic('n1'), consumed, { qos: 0 }).catch(() => undefined);
      await new Promise((r) => setTimeout(r, SETTLE_MS));
      expect(await deliveries(net, 'model', 'victim')).toEqual(before);
      expect(await n1.client.getObjectStatus('model', 'victim')).toBe('completelyReceived');
      // The same message with n1's own credentials counts (so the refusal above was about who sent it).
      const asN1 = await rogue({ username: essUser('edge', 'n1'), password: essSecret('n1') });
      await asN1.publishAsync(evtTopic('n1'), consumed, { qos: 0 });
      await eventually('O13 of victim', () => deliveries(net, 'model', 'victim'), (d) => d.join() === 'edge/n1:consumed', log);
    });

    test('a message on node n1’s topic whose payload claims to come from n2 is refused by the CSS: nothing changes for n2', async () => {
      const meta = await delivered(n2, 'for-n2');
      const claim = control('consumed', { ...meta, destinationType: 'edge', destinationID: 'n2' });
      const asN1 = await rogue({ username: essUser('edge', 'n1'), password: essSecret('n1') });
      await asN1.publishAsync(evtTopic('n1'), claim, { qos: 0 });
      await new Promise((r) => setTimeout(r, SETTLE_MS));
      expect(await deliveries(net, 'model', 'for-n2')).toEqual(['edge/n2:delivered']);
      // The same message from n2 on its own topic is the real thing: it counts (so the refusal above was about its origin).
      const asN2 = await rogue({ username: essUser('edge', 'n2'), password: essSecret('n2') });
      await asN2.publishAsync(evtTopic('n2'), claim, { qos: 0 });
      await eventually('O13 of for-n2', () => deliveries(net, 'model', 'for-n2'), (d) => d.join() === 'edge/n2:consumed', log);
    });

    test('the CSS is up and still delivers to both nodes', async () => {
      expect((await net.onCss.health()).general.nodeType).toBe('CSS');
      await delivered(n1, 'after-n1');
      await delivered(n2, 'after-n2');
    });
  },
  ['mqtt-embedded', 'mqtt-mosquitto'],
);
