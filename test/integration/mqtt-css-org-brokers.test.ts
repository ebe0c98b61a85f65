/**
 * A multi-org CSS over MQTT with an org on a broker of its own: the org's settings
 * (PUT /api/v1/organizations/{org}: address, user, password) make the CSS dial that broker with
 * that login (the password sealed at rest, opened to dial); the org's ESS nodes register and are
 * served there, the others on the shared broker; the shared broker cannot speak for that org.
 * Real CSS process, two real mosquitto brokers. [ref sync-protocol §2 "one MQTT client per org"]
 */
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { emptyMetaData } from '../../lib/model/index.js';
import { encodeControl } from '../../lib/transport/mqtt/control-codec.js';
import type { SyncServiceClient } from '../../sdk/index.js';
import { MOSQUITTO_MISSING, mosquittoAvailable, startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { ScriptedEss } from '../helpers/mqtt-test-clients.js';
import { startManaged, Teardown, type RunningProcess } from '../helpers/node-process.js';
import { eventuallyWithin } from '../helpers/sync-pair.js';

jest.setTimeout(90_000);

const eventually = eventuallyWithin(30_000);

function register(org: string, command: 'register' | 'registerNew' = 'register'): Buffer {
  return encodeControl({ command, persistent: true, destination: { destinationOrgID: org, destinationType: 'edge', destinationID: 'node1', communication: 'mqtt', codeVersion: '1.0' } });
}

async function registerNode(ess: ScriptedEss, org: string): Promise<void> {
  await ess.send(register(org));
  await ess.until(() => ess.controls().some((c) => c.command === 'registerAsNew'));
  await ess.send(register(org, 'registerNew'));
  await ess.until(() => ess.controls().some((c) => c.command === 'regack'));
}

interface MqttHealthView {
  mqttConnectionStatus: string;
  organizations?: Array<{ orgID: string; broker: string; connected: boolean }>;
}

const run = mosquittoAvailable() ? describe : describe.skip;
if (!mosquittoAvailable()) test.skip(`CSS with per-org brokers: ${MOSQUITTO_MISSING}`, () => undefined);

run('a multi-org CSS with an org on a broker of its own', () => {
  const t = new Teardown();
  let shared: Mosquitto;
  let own: Mosquitto;
  let css: RunningProcess;
  let admin: SyncServiceClient;

  beforeAll(async () => {
    shared = await startMosquitto();
    t.add(() => shared.stop());
    own = await startMosquitto({ users: [{ user: 'orgb-css', password: 'orgb-secret' }, { user: 'orgb-node1', password: 'n1' }] });
    t.add(() => own.stop());
    css = await startManaged(t, {
      mode: 'css',
      env: { COMMUNICATION_PROTOCOL: 'mqtt', BROKER_ADDRESS: '127.0.0.1', BROKER_PORT: String(shared.port), MQTT_USE_SSL: 'false', RESEND_INTERVAL: '1' },
    });
    admin = await css.client();
    await admin.putOrganization({ orgID: 'orgb', address: `tcp://127.0.0.1:${own.port}`, user: 'orgb-css', password: 'orgb-secret' });
  });
  afterAll(() => t.run());

  test("the CSS dials the org's broker with the org's login, and says so in its health", async () => {
    const h = await eventually(
      'orgb connected',
      async () => ((await admin.health()) as unknown as { mqttHealth: MqttHealthView }).mqttHealth,
      (m) => m.organizations?.[0]?.connected === true,
    );
    expect(h).toMatchObject({ mqttConnectionStatus: 'green', organizations: [{ orgID: 'orgb', broker: `mqtt://127.0.0.1:${own.port}`, connected: true }] });
  });

  test("the org's ESS registers on the org's broker and gets what is published for it there", async () => {
    const node = await ScriptedEss.connect(own.url, 'edge', 'node1', { username: 'orgb-node1', password: 'n1' });
    t.add(() => node.close());
    await registerNode(node, 'orgb');
    const onOrg = await css.client({ orgID: 'orgb' });
    expect((await onOrg.getDestinations()).map((d) => [d.destinationOrgID, d.destinationID, d.communication])).toEqual([['orgb', 'node1', 'mqtt']]);
    await onOrg.updateObject({ objectID: 'o1', objectType: 't', destinationType: 'edge', destinationID: 'node1', version: '1', noData: true });
    await node.until(() => node.controls().some((c) => c.command === 'update' && c.meta.objectID === 'o1'));
  });

  test("another org's ESS is served on the shared broker, and the shared broker cannot speak for the org with its own", async () => {
    const other = await ScriptedEss.connect(shared.url, 'edge', 'node1');
    t.add(() => other.close());
    await registerNode(other, 'orga');
    // The same node name, claiming the org that has its own broker: refused, no answer at all.
    const before = other.received.length;
    await other.send(register('orgb'));
    await other.send(encodeControl({ command: 'received', meta: { ...emptyMetaData(), destinationOrgID: 'orgb', objectType: 't', objectID: 'o1', destinationType: 'edge', destinationID: 'node1' } }));
    await new Promise((r) => setTimeout(r, 1000));
    expect(other.received.slice(before).filter((r) => r.kind === 'control' && r.message.command !== 'update')).toEqual([]);
    const onOrg = await css.client({ orgID: 'orgb' });
    expect((await onOrg.getObjectDestinations('t', 'o1')).map((d) => d.status)).not.toContain('delivered');
  });

  test('the org dropped from its broker settings goes back to the shared broker', async () => {
    await admin.putOrganization({ orgID: 'orgb', address: '' });
    await eventually('no org broker', async () => ((await admin.health()) as unknown as { mqttHealth: MqttHealthView }).mqttHealth, (m) => m.organizations === undefined);
    const moved = await ScriptedEss.connect(shared.url, 'edge', 'node1');
    t.add(() => moved.close());
    await moved.send(register('orgb'));
    await moved.until(() => moved.controls().some((c) => c.command === 'regack'));
  });
});
