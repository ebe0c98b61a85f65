/**
 * Our ESS binary with COMMUNICATION_PROTOCOL=mqtt, on a real mosquitto, with a CSS played by hand
 * (test/helpers/scripted-css.ts, a TEST DOUBLE): it registers as the reference ESS does, its
 * health report shows the broker link (green while connected and registered, yellow at once
 * when the broker goes away), and after the broker comes back it registers again, as the
 * reference ESS does after every reconnect. [ref sync-protocol §2 "Transport settings"]
 */
import { afterAll, describe, expect, jest, test } from '@jest/globals';
import { MOSQUITTO_MISSING, mosquittoAvailable, startMosquitto } from '../helpers/mosquitto.js';
import { startManaged, Teardown } from '../helpers/node-process.js';
import { ScriptedCss } from '../helpers/scripted-css.js';
import { eventuallyWithin } from '../helpers/sync-pair.js';

jest.setTimeout(60_000);

const available = mosquittoAvailable();
if (!available) console.warn(`Skipped: ESS over MQTT (${MOSQUITTO_MISSING})`);
const suite = available ? describe : describe.skip;

const t = new Teardown();
afterAll(() => t.run());
const eventually = eventuallyWithin(20_000);

suite('an ESS over MQTT', () => {
  test('registers with the CSS, shows the broker link in its health, and registers again after the broker comes back', async () => {
    const broker = await startMosquitto();
    t.add(() => broker.stop());
    let css = await ScriptedCss.start(broker.url, 'edge', 'n1');
    t.add(() => css.close());
    const ess = await startManaged(t, {
      mode: 'ess',
      env: {
        ORG_ID: 'org1',
        DESTINATION_TYPE: 'edge',
        DESTINATION_ID: 'n1',
        COMMUNICATION_PROTOCOL: 'mqtt',
        BROKER_ADDRESS: '127.0.0.1',
        BROKER_PORT: String(broker.port),
        MQTT_USE_SSL: 'false',
        RESEND_INTERVAL: '1',
      },
    });
    const onEss = await ess.client();
    t.add(() => Promise.resolve(onEss.close()));

    const register = await css.nextCommand('register', 15_000);
    expect(register.control.destination).toEqual({ destinationOrgID: 'org1', destinationType: 'edge', destinationID: 'n1', communication: 'mqtt', codeVersion: '1.0' });
    expect(register.control.persistent).toBe(true);
    // Unanswered, it is sent again; answered, the ESS is registered.
    await css.nextCommand('register', 15_000);
    await css.send({ command: 'regack' });
    const green = await eventually('green', () => onEss.health(), (h) => h.cssHealth?.registered === true && h.cssHealth.cssStatus === 'green', ess.output);
    expect(green.cssHealth).toMatchObject({ css: broker.url, cssConnectionStatus: 'connected' });

    await broker.kill();
    const yellow = await eventually('yellow', () => onEss.health(), (h) => h.cssHealth?.cssConnectionStatus === 'unreachable', ess.output);
    expect(yellow.cssHealth).toMatchObject({ cssStatus: 'yellow', reason: expect.stringMatching(/connection to the MQTT broker/) });

    await broker.restart();
    css = await ScriptedCss.start(broker.url, 'edge', 'n1');
    t.add(() => css.close());
    await css.nextCommand('register', 15_000);
    await css.send({ command: 'regack' });
    await eventually('green again', () => onEss.health(), (h) => h.cssHealth?.registered === true && h.cssHealth.cssStatus === 'green', ess.output);
  });
});
