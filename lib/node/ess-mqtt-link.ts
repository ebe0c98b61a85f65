/**
 * The ESS's link to its CSS over MQTT (COMMUNICATION_PROTOCOL=mqtt), built from the reference's
 * settings: BROKER_ADDRESS, BROKER_PORT, MQTT_USE_SSL, MQTT_CA_CERTIFICATE, MQTT_USER_NAME and
 * MQTT_PASSWORD; the client id `ESS-` and 19 digits as the reference's. [ref sync-protocol §2
 * "Transport settings", §7]
 */
import type { Config } from '../config/index.js';
import type { Logger } from '../log/logger.js';
import type { CssLinkHealth } from '../transport/http/css-link-health.js';
import { openMqttConnection } from '../transport/mqtt/mqtt-connection.js';
import { MqttCssLink } from '../transport/mqtt/mqtt-css-link.js';

/** MAX_INFLIGHT_CHUNKS until the config table names it: the window our ESS opens toward its CSS. */
const DEFAULT_MAX_INFLIGHT_CHUNKS = 4;
/**
 * One attempt at the first connection; the link tries again after RESEND_INTERVAL. Short, so
 * that a stop is not held up by an attempt in progress.
 */
const FIRST_CONNECT_ATTEMPT_MS = 10_000;

/** The broker as the ESS names it in its log lines and health report. */
export function brokerUrl(config: Config): string {
  const host = config.brokerAddress.includes(':') ? `[${config.brokerAddress}]` : config.brokerAddress;
  return `${config.mqttUseSSL ? 'mqtts' : 'mqtt'}://${host}:${config.brokerPort}`;
}

export function createMqttCssLink(config: Config, deps: { health: CssLinkHealth; logger: Logger }): MqttCssLink {
  const log = deps.logger.child({ component: 'css-link' });
  const tls = config.mqttUseSSL ? { ca: config.mqttCACertificate, baseDir: config.persistenceRootPath } : {};
  return new MqttCssLink({
    connect: (handlers) =>
      openMqttConnection({
        host: config.brokerAddress,
        port: config.brokerPort,
        protocol: config.mqttUseSSL ? 'mqtts' : 'mqtt',
        ...tls,
        ...(config.mqttUserName !== '' ? { username: config.mqttUserName, password: config.mqttPassword } : {}),
        clientIDPrefix: 'ESS',
        subscriptions: handlers.subscriptions,
        onConnect: handlers.onConnect,
        onMessage: handlers.onMessage,
        firstConnectTimeoutMs: FIRST_CONNECT_ATTEMPT_MS,
        log: deps.logger.child({ component: 'mqtt' }),
      }),
    address: brokerUrl(config),
    orgID: config.orgID,
    destinationType: config.destinationType,
    destinationID: config.destinationID,
    maxInflightChunks: DEFAULT_MAX_INFLIGHT_CHUNKS,
    // Our store is on disk: the CSS resends only what is open after a restart.
    persistent: true,
    // A registration unanswered for RESEND_INTERVAL (2–10 s) is sent again, as the reference
    // ESS sends `register` every RESEND_INTERVAL until it is registered.
    timeouts: { connectRetryMs: config.resendInterval * 1000, registerMs: Math.min(10_000, Math.max(2_000, config.resendInterval * 1000)) },
    health: deps.health,
    log,
  });
}
