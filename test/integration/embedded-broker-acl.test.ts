/**
 * On a one-org CSS, the embedded broker lets a user of that org act for the nodes of the
 * destination types its destinations ACL names, as the SPI does for a claimed destination
 * [ref rest-api §4.6]: their `cmd/` topics to subscribe (one node or `+`), their `evt/` topics
 * to publish; nothing else. Real mqtt.js clients over loopback, the real preset authenticator.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { connectAsync, ErrorWithSubackPacket, type MqttClient } from 'mqtt';
import { PresetAuthenticator, type AclEntry, type AclLookup } from '../../lib/security/index.js';
import { startEmbeddedBroker, type EmbeddedBroker } from '../../lib/transport/mqtt/embedded-broker.js';
import { commandTopic, eventTopic } from '../../lib/transport/mqtt/topics.js';
import { Teardown, tempRoot } from '../helpers/node-process.js';

const t = new Teardown();
let broker: EmbeddedBroker;
const ALICE = { user: 'myorg/alice', pass: 'alice-secret' };
const BOB = { user: 'myorg/bob', pass: 'bob-secret' };

/** The org's destinations ACLs: alice may address `edge` nodes; nothing else is granted. */
const acls: AclLookup = {
  objectsAcl: () => Promise.resolve([]),
  destinationsAcl: (org, key): Promise<AclEntry[]> =>
    Promise.resolve(org === 'myorg' && key === 'edge' ? [{ username: 'alice', aclUserType: 'user', aclRole: 'na' }] : []),
};

beforeAll(async () => {
  const dir = await tempRoot(t, 'embedded-broker-acl');
  const presetFile = join(dir, 'preset-auth.json');
  await writeFile(
    presetFile,
    JSON.stringify({
      credentials: {
        [ALICE.user]: { secret: ALICE.pass, orgID: 'myorg', username: 'alice', type: 'user' },
        [BOB.user]: { secret: BOB.pass, orgID: 'myorg', username: 'bob', type: 'user' },
      },
    }),
  );
  const authenticator = await PresetAuthenticator.create({ usersFile: join(dir, 'users.json'), referencePresetFile: presetFile });
  broker = await startEmbeddedBroker({ host: '127.0.0.1', port: 0, authenticator, orgID: 'myorg', acls });
  t.add(() => broker.close());
});
afterAll(() => t.run());

async function client(who: { user: string; pass: string }): Promise<MqttClient> {
  const c = await connectAsync({ host: '127.0.0.1', port: broker.port, reconnectPeriod: 0, connectTimeout: 5_000, username: who.user, password: who.pass });
  t.add(() => c.endAsync(true));
  return c;
}

async function grantedQos(c: MqttClient, filter: string): Promise<number> {
  try {
    return (await c.subscribeAsync(filter, { qos: 1 }))[0]?.qos ?? -1;
  } catch (e) {
    if (e instanceof ErrorWithSubackPacket) {
      const g = e.packet.granted[0];
      return typeof g === 'number' ? g : ((g as { qos: number } | undefined)?.qos ?? -1);
    }
    throw e;
  }
}

function cutOff(c: MqttClient, topic: string): Promise<void> {
  const gone = new Promise<void>((r) => c.once('close', () => r()));
  c.publish(topic, 'x', { qos: 1 });
  return gone;
}

describe('an ACL\'d user on the embedded broker of a one-org CSS', () => {
  test('subscribes to the commands of the nodes of its ACL\'d type, one or all, and of no other', async () => {
    const alice = await client(ALICE);
    expect(await grantedQos(alice, commandTopic('edge', 'n1'))).toBe(1);
    expect(await grantedQos(alice, 'iot-2/type/edge/id/+/cmd/sync-cmd/fmt/bin')).toBe(1);
    for (const filter of [commandTopic('gw', 'g1'), 'iot-2/type/+/id/+/cmd/sync-cmd/fmt/bin', eventTopic('edge', 'n1'), '#', 'iot-2/type/edge/#']) {
      expect([filter, await grantedQos(alice, filter)]).toEqual([filter, 128]);
    }
  });

  test('publishes as a node of its ACL\'d type; as any other it is cut off', async () => {
    const alice = await client(ALICE);
    await alice.publishAsync(eventTopic('edge', 'n1'), 'up', { qos: 1 });
    await cutOff(await client(ALICE), eventTopic('gw', 'g1'));
    await cutOff(await client(ALICE), commandTopic('edge', 'n1'));
  });

  test('a user the ACLs do not name logs in but may use no topic', async () => {
    const bob = await client(BOB);
    expect(await grantedQos(bob, commandTopic('edge', 'n1'))).toBe(128);
    await cutOff(bob, eventTopic('edge', 'n1'));
  });
});
