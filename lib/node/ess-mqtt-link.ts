/**
 * The ESS's link to its CSS over MQTT (COMMUNICATION_PROTOCOL=mqtt), built from the reference's
 * settings: BROKER_ADDRESS, BROKER_PORT, MQTT_USE_SSL, MQTT_CA_CERTIFICATE, MQTT_SSL_CERT/KEY,
 * MQTT_ALLOW_INVALID_CERTIFICATES, MQTT_USER_NAME/MQTT_PASSWORD, MQTT_CLIENT_ID (by default
 * `ESS-` and 19 digits as the reference's) and MAX_INFLIGHT_CHUNKS. [ref sync-protocol §2
 * "Transport settings", §7]
 *
 * Unlike the reference, which exits when the broker cannot be reached within
 * MQTT_BROKER_CONNECT_TIMEOUT, the ESS keeps trying, as it keeps trying an unreachable CSS over
 * HTTP: its API serves meanwhile, and its health report says what is wrong.
 */
import type { Config } from '../config/index.js';
import type { Logger } from '../log/logger.js';
import type { CssLinkHealth } from '../transport/http/css-link-health.js';
import { openMqttConnection } from '../transport/mqtt/mqtt-connection.js';
import { MqttCssLink } from '../transport/mqtt/mqtt-css-link.js';

/**
 * The longest attempt at the first connection (MQTT_BROKER_CONNECT_TIMEOUT if shorter); the link
 * tries again after RESEND_INTERVAL. Short, so that a stop is not held up by an attempt.
 */
const FIRST_CONNECT_ATTEMPT_MS = 10_000;

/** The broker as the ESS names it in its log lines and health report. */
export function brokerUrl(config: Config): string {
  const host = config.brokerAddress.includes(':') ? `[${config.brokerAddress}]` : config.brokerAddress;
  return `${config.mqttUseSSL ? 'mqtts' : 'mqtt'}://${host}:${config.brokerPort}`;
}

export function createMqttCssLink(config: Config, deps: { health: CssLinkHealth; logger: Logger }): MqttCssLink {
  const log = deps.logger.child({ component: 'css-link' });
  const tls = config.mqttUseSSL
    ? {
        ca: config.mqttCACertificate,
        ...(config.mqttSSLCert !== '' ? { clientCert: config.mqttSSLCert, clientKey: config.mqttSSLKey } : {}),
        allowInvalidCertificates: config.mqttAllowInvalidCertificates,
        baseDir: config.persistenceRootPath,
      }
    : {};
  return new MqttCssLink({
    connect: (handlers) =>
      openMqttConnection({
        host: config.brokerAddress,
        port: config.brokerPort,
        protocol: config.mqttUseSSL ? 'mqtts' : 'mqtt',
        ...tls,
        ...(config.mqttUserName !== '' ? { username: config.mqttUserName, password: config.mqttPassword } : {}),
        clientIDPrefix: 'ESS',
        ...(config.mqttClientID !== '' ? { clientID: config.mqttClientID } : {}),
        subscriptions: handlers.subscriptions,
        onConnect: handlers.onConnect,
        onMessage: handlers.onMessage,
        firstConnectTimeoutMs: Math.min(FIRST_CONNECT_ATTEMPT_MS, config.mqttBrokerConnectTimeout * 1000),
        log: deps.logger.child({ component: 'mqtt' }),
      }),
    address: brokerUrl(config),
    orgID: config.orgID,
    destinationType: config.destinationType,
    destinationID: config.destinationID,
    maxInflightChunks: config.maxInflightChunks,
    // Our store is on disk: the CSS resends only what is open after a restart.
    persistent: true,
    // A registration unanswered for RESEND_INTERVAL (2–10 s) is sent again, as the reference
    // ESS sends `register` every RESEND_INTERVAL until it is registered.
    timeouts: { connectRetryMs: config.resendInterval * 1000, registerMs: Math.min(10_000, Math.max(2_000, config.resendInterval * 1000)) },
    health: deps.health,
    log,
  });
}
