/**
 * MQTT 5 shared subscriptions, so that several CSS processes on one broker share the ESS nodes'
 * messages instead of each taking every one: a CSS subscribes to `$share/{group}/{filter}`, and
 * the broker hands each message on the filter to one member of the group. [MQTT-4.8.2]
 *
 * A CSS dials its broker at MQTT 5 and falls back to 3.1.1 when the broker refuses 5, and to a
 * plain subscription when the broker has no shared subscriptions (its CONNACK says so, or it
 * refuses the subscription): it still works, alone, and says that several CSS on this broker
 * would each take every message. An ESS (ours or the reference's, MQTT 3.1.1) publishes as ever:
 * the share is the subscriber's business. See docs/adr/0021-mqtt-scale-out.md.
 */
import type { Logger } from '../../log/logger.js';
import { MqttConnectError, MqttOperationError, PROTOCOL_REFUSALS, openMqttConnection, type MqttConnection, type MqttConnectionOptions } from './mqtt-connection.js';

/** How the CSS's events reach it: `shared` with the other CSS of its group, or `plain` (every CSS takes every message). */
export type SubscriptionMode = 'shared' | 'plain';

/**
 * Whether `group` can name a share: one topic level, no wildcard, not empty. [MQTT-4.8.2-1]
 * (lib/config/schema.ts checks MQTT_SHARED_GROUP by the same rule.)
 */
export function isShareName(group: string): boolean {
  return group !== '' && !/[/+#]/.test(group) && !group.includes('\u0000');
}

/** `$share/{group}/{filter}`. */
export function sharedFilter(group: string, filter: string): string {
  if (!isShareName(group)) throw new RangeError(`${JSON.stringify(group)} cannot name an MQTT shared subscription: it is empty or holds '/', '+' or '#'`);
  return `$share/${group}/${filter}`;
}

const FALLBACK_WARNING = 'several CSS processes on this broker would each take every ESS message (run one CSS on it, or use a broker with MQTT 5 shared subscriptions such as mosquitto 2)';

/**
 * Opens a connection at MQTT 5 when `group` asks for shared subscriptions (at 3.1.1 otherwise,
 * as the reference); at 3.1.1 again when the broker refuses MQTT 5.
 * @throws what openMqttConnection throws
 */
export async function openCssConnection(opts: MqttConnectionOptions, group: string, log: Pick<Logger, 'warn'>): Promise<MqttConnection> {
  if (group === '') return openMqttConnection({ ...opts, protocolVersion: 4 });
  try {
    return await openMqttConnection({ ...opts, protocolVersion: 5 });
  } catch (err) {
    if (!(err instanceof MqttConnectError) || err.reasonCode === undefined || !PROTOCOL_REFUSALS.has(err.reasonCode)) throw err;
    log.warn({ broker: `${opts.host}:${opts.port}`, reason: err.message }, `the MQTT broker refused MQTT 5: connected at 3.1.1 with plain subscriptions; ${FALLBACK_WARNING}`);
    return openMqttConnection({ ...opts, protocolVersion: 4 });
  }
}

/**
 * Subscribes to `filters` shared in `group` where the connection can, plainly otherwise (with a
 * WARN); `group` '' asks for plain subscriptions.
 * @throws MqttOperationError when even the plain subscription is refused
 */
export async function subscribeEvents(conn: MqttConnection, filters: readonly string[], group: string, log: Pick<Logger, 'warn'>): Promise<SubscriptionMode> {
  if (group === '') {
    await conn.subscribe(filters);
    return 'plain';
  }
  if (!conn.sharedSubscriptions) {
    if (conn.protocolVersion === 5) log.warn({ broker: conn.status().broker }, `the MQTT broker has no shared subscriptions: subscribed plainly; ${FALLBACK_WARNING}`);
    await conn.subscribe(filters);
    return 'plain';
  }
  const shared = filters.map((f) => sharedFilter(group, f));
  try {
    await conn.subscribe(shared);
    return 'shared';
  } catch (err) {
    if (!(err instanceof MqttOperationError)) throw err;
    log.warn({ broker: conn.status().broker, reason: err.message }, `the MQTT broker refused shared subscriptions: subscribed plainly; ${FALLBACK_WARNING}`);
  }
  await conn.subscribe(filters);
  return 'plain';
}
