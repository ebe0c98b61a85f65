/**
 * How a CSS subscribes to the ESS events (lib/transport/mqtt/shared-subscriptions.ts), over a
 * double of the broker connection: shared in its group where the connection can, plainly (with
 * a WARN naming the cost) where the broker says it has no shared subscriptions or refuses one.
 * The same against real brokers: test/integration/mqtt-shared-subscriptions.test.ts.
 */
import { describe, expect, it } from '@jest/globals';
import { MqttOperationError, type MqttConnection } from '../../../../lib/transport/mqtt/mqtt-connection.js';
import { isShareName, sharedFilter, subscribeEvents } from '../../../../lib/transport/mqtt/shared-subscriptions.js';
import { CSS_EVENT_FILTER } from '../../../../lib/transport/mqtt/topics.js';

/** A connection double: records subscriptions, refuses `$share/…` ones when told to. */
function connection(opts: { version: 4 | 5; shares: boolean; refuseShared?: boolean }) {
  const subscribed: string[] = [];
  const conn = {
    protocolVersion: opts.version,
    sharedSubscriptions: opts.shares,
    status: () => ({ state: 'connected', broker: 'mqtt://broker:1883', clientID: 'CSS-1', connectedSince: 0, reconnects: 0, lastError: null }),
    subscribe: (filters: readonly string[]) => {
      if (opts.refuseShared === true && filters.some((f) => f.startsWith('$share/'))) return Promise.reject(new MqttOperationError(`The MQTT broker refused the subscription to ${filters.join(', ')}`));
      subscribed.push(...filters);
      return Promise.resolve();
    },
  } as unknown as MqttConnection;
  return { conn, subscribed };
}

function warnings() {
  const said: string[] = [];
  return { said, warn: (_obj: object, msg: string) => void said.push(msg) };
}

describe('a CSS subscribing to the ESS events', () => {
  it('subscribes in its group where the broker has shared subscriptions', async () => {
    const { conn, subscribed } = connection({ version: 5, shares: true });
    const log = warnings();
    expect(await subscribeEvents(conn, [CSS_EVENT_FILTER], 'css-east', log)).toBe('shared');
    expect(subscribed).toEqual([`$share/css-east/${CSS_EVENT_FILTER}`]);
    expect(log.said).toEqual([]);
  });

  it('subscribes plainly, with the WARN, when the broker refuses the shared subscription', async () => {
    const { conn, subscribed } = connection({ version: 5, shares: true, refuseShared: true });
    const log = warnings();
    expect(await subscribeEvents(conn, [CSS_EVENT_FILTER], 'css-east', log)).toBe('plain');
    expect(subscribed).toEqual([CSS_EVENT_FILTER]);
    expect(log.said.join('\n')).toMatch(/refused shared subscriptions.*several CSS processes on this broker would each take every ESS message/);
  });

  it('subscribes plainly, with the WARN, when the broker\'s CONNACK says it has no shared subscriptions', async () => {
    const { conn, subscribed } = connection({ version: 5, shares: false });
    const log = warnings();
    expect(await subscribeEvents(conn, [CSS_EVENT_FILTER], 'css-east', log)).toBe('plain');
    expect(subscribed).toEqual([CSS_EVENT_FILTER]);
    expect(log.said.join('\n')).toMatch(/has no shared subscriptions.*several CSS processes/);
  });

  it('subscribes plainly and says nothing when no group is set (MQTT_SHARED_GROUP empty, or the embedded broker)', async () => {
    const { conn, subscribed } = connection({ version: 4, shares: false });
    const log = warnings();
    expect(await subscribeEvents(conn, [CSS_EVENT_FILTER], '', log)).toBe('plain');
    expect(subscribed).toEqual([CSS_EVENT_FILTER]);
    expect(log.said).toEqual([]);
  });

  it('names a share `$share/{group}/{filter}`, the group one topic level without wildcards', () => {
    expect(sharedFilter('g1', CSS_EVENT_FILTER)).toBe(`$share/g1/${CSS_EVENT_FILTER}`);
    for (const bad of ['', 'a/b', 'a+', '#', 'a\u0000']) {
      expect(isShareName(bad)).toBe(false);
      expect(() => sharedFilter(bad, CSS_EVENT_FILTER)).toThrow(RangeError);
    }
  });
});
