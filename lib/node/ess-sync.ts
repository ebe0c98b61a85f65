/**
 * Wiring of the ESS's side of the sync: the Receiver and the OriginSender, worked by the agent
 * (lib/sync/ess/agent.ts) through a link to the CSS (createCssLink: HTTP or MQTT).
 * Created before the ObjectService (which reports app marks to it) and started once the
 * service exists.
 */
import { readFile } from 'node:fs/promises';
import type { Config } from '../config/index.js';
import type { Logger } from '../log/logger.js';
import { PresetAuthenticator, type Authenticator } from '../security/index.js';
import type { NotificationStore } from '../store/notification-types.js';
import type { BlobStore, Store, StoredObject } from '../store/types.js';
import type { ObjectListener, ObjectService, ReceiverListener } from '../sync/object-service.js';
import type { DeletionsInProgress } from '../sync/deletions.js';
import { OriginSender } from '../sync/origin-sender.js';
import { Receiver } from '../sync/receiver.js';
import { DestinationFiles } from '../sync/destination-files.js';
import { parseDataDirs } from '../store/data-files.js';
import { EssAgent } from '../sync/ess/agent.js';
import type { CssLink } from '../sync/ess/css-link.js';
import { CssLinkHealth, cssHealthThresholds, type LinkLiveness } from '../transport/http/css-link-health.js';
import { HttpCssLink } from '../transport/http/http-css-link.js';
import { MAX_INLINE_BYTES } from '../transport/http/spi-inline-data.js';
import { brokerUrl, createMqttCssLink } from './ess-mqtt-link.js';
import type { SyncEvents } from '../sync/sync-events.js';

/** The longest the ESS asks its CSS to hold an empty poll, seconds. */
const LONG_POLL_MAX_S = 30;

export interface EssSync {
  /** Hand to the ObjectService: app marks on received objects reach the Receiver. */
  listener: ReceiverListener;
  /** Hand to the ObjectService: what apps publish or delete here is owed to the CSS. */
  objectListener: ObjectListener;
  start(objects: ObjectService): Promise<void>;
  stop(): Promise<void>;
  /** `POST /api/v1/resend`: ask the CSS for everything again. */
  requestResend(): void;
  /** How the link to the CSS fares, for the health report. */
  health: CssLinkHealth;
  /** Whether a link that stays open (MQTT) is up now, for the metrics; null over HTTP or before start. */
  linkUp(): boolean | null;
}

/** Whether this node is an ESS that syncs with a CSS: over HTTP (given its host and port) or MQTT. */
export function syncsWithCss(config: Config): boolean {
  if (config.nodeType !== 'ESS') return false;
  if (config.communicationProtocol === 'mqtt') return true;
  return config.communicationProtocol === 'http' && config.httpCSSHost !== '' && config.httpCSSPort !== 0;
}

const overMqtt = (config: Config): boolean => config.communicationProtocol === 'mqtt';

/**
 * What the ESS presents to its CSS: the users file's `cssCredentials`, else HTTP_CSS_USER /
 * HTTP_CSS_PASSWORD, else `org/type/id` without a password, which a reference CSS with the
 * dummy authenticator accepts. [ref sync-protocol §1 Authentication]
 */
function credentials(config: Config, authenticator: Authenticator): { user: string; password: string } {
  const fromFile = authenticator instanceof PresetAuthenticator ? authenticator.cssCredentials : undefined;
  if (fromFile !== undefined) return { user: fromFile.key, password: fromFile.secret };
  if (config.httpCSSUser !== '') return { user: config.httpCSSUser, password: config.httpCSSPassword };
  return { user: `${config.orgID}/${config.destinationType}/${config.destinationID}`, password: '' };
}

/** HTTP_CSS_CA_CERTIFICATE is PEM text or a file path; '' = the system CAs. */
async function caOf(config: Config): Promise<string | undefined> {
  const v = config.httpCSSCACertificate;
  if (v === '') return undefined;
  return v.includes('-----BEGIN') ? v : readFile(v, 'utf8');
}

/** The CSS's base URL over HTTP (HTTP_CSS_HOST, HTTP_CSS_PORT, HTTP_CSS_USE_SSL). */
function httpBaseUrl(config: Config): string {
  const scheme = config.httpCSSUseSSL ? 'https' : 'http';
  const host = config.httpCSSHost.includes(':') ? `[${config.httpCSSHost}]` : config.httpCSSHost;
  return `${scheme}://${host}:${config.httpCSSPort}`;
}

/** Where this ESS reaches its CSS, for log lines and the health report: its URL, or the broker's. */
function cssAddress(config: Config): string {
  return overMqtt(config) ? brokerUrl(config) : httpBaseUrl(config);
}

/**
 * The link to the CSS the configuration asks for: the one place that knows the transport.
 * Everything else of the ESS's sync is the same for both.
 */
async function createCssLink(config: Config, deps: { authenticator: Authenticator; health: CssLinkHealth; logger: Logger }): Promise<{ link: CssLink; live: LinkLiveness | null }> {
  if (overMqtt(config)) {
    const link = createMqttCssLink(config, deps);
    return { link, live: () => link.live() };
  }
  const ca = await caOf(config);
  const link = new HttpCssLink({
    baseUrl: httpBaseUrl(config),
    health: deps.health,
    ...(ca !== undefined ? { ca } : {}),
    ...credentials(config, deps.authenticator),
    orgID: config.orgID,
    destinationType: config.destinationType,
    destinationID: config.destinationID,
    // Extensions are off toward a reference CSS in compatibility mode; otherwise a CSS
    // without batched acks is detected and answered one ack at a time.
    batchAcks: !config.compatibilityMode,
    inlineDataLimit: config.compatibilityMode ? 0 : MAX_INLINE_BYTES,
    earlyData: !config.compatibilityMode,
    log: deps.logger.child({ component: 'css-link' }),
  });
  return { link, live: null };
}

export function createEssSync(deps: {
  config: Config;
  store: Store;
  notifications: NotificationStore;
  blobs: BlobStore;
  deletions: DeletionsInProgress;
  authenticator: Authenticator;
  logger: Logger;
  /** Told of deliveries and data moved (lib/sync/sync-events.ts). */
  events?: SyncEvents;
}): EssSync {
  const events = deps.events !== undefined ? { events: deps.events } : {};
  const { config } = deps;
  // HTTP: a hold of up to three polling intervals, capped well below the 120 s control timeout.
  // MQTT: the CSS pushes, and a poll only waits here for what arrives, in any mode.
  const longPollSeconds = overMqtt(config) ? LONG_POLL_MAX_S : config.compatibilityMode ? 0 : Math.min(LONG_POLL_MAX_S, config.httpPollingInterval * 3);
  // An MQTT link stays open: it says itself whether it is up (connected and registered).
  let live: LinkLiveness | null = null;
  const health = new CssLinkHealth({
    css: cssAddress(config),
    ...cssHealthThresholds({ pollingIntervalMs: config.httpPollingInterval * 1000, resendIntervalMs: config.resendInterval * 1000, longPollSeconds: overMqtt(config) ? 0 : longPollSeconds }),
    live: () => live?.() ?? null,
  });
  let receiver: Receiver | null = null;
  let agent: EssAgent | null = null;
  let origin: OriginSender | null = null;
  // The app's marks arrive under the object's lock: record them, and let the loop send.
  const listener: ReceiverListener = {
    onReceivedObjectMarked: async (obj: StoredObject) => {
      await receiver?.onReceivedObjectMarked(obj);
      agent?.wake();
    },
    onDeletionConfirmed: async (obj: StoredObject) => {
      await receiver?.onDeletionConfirmed(obj);
      agent?.wake();
    },
  };
  // Published objects arrive under their lock: record what is owed, and let the loop send it.
  // Changes made before start() are picked up by its reconcile().
  const objectListener: ObjectListener = {
    onObjectPublished: async (obj: StoredObject, addressed?: (destinations: number) => void) => {
      await origin?.onObjectPublished(obj, addressed);
      agent?.wake();
    },
    onObjectDeleted: async (obj: StoredObject) => {
      await origin?.onObjectDeleted(obj);
      agent?.wake();
    },
  };
  return {
    listener,
    objectListener,
    health,
    linkUp: () => {
      const now = live?.() ?? null;
      return now === null ? null : now.up;
    },
    async start(objects: ObjectService): Promise<void> {
      const sender = new OriginSender({ store: deps.store, notifications: deps.notifications, objects, orgID: config.orgID, deletions: deps.deletions, ...events });
      origin = sender;
      await sender.reconcile();
      // Download progress lives in upload sessions, so a broken download resumes, even after a restart.
      receiver = new Receiver({
        notifications: deps.notifications,
        objects,
        orgID: config.orgID,
        downloads: { sessions: deps.store, blobs: deps.blobs },
        dataFiles: new DestinationFiles({
          blobs: deps.blobs,
          where: { field: 'destinationDataUri', key: 'DESTINATION_DATA_DIRS', dirs: parseDataDirs(config.destinationDataDirs) },
          log: deps.logger.child({ component: 'sync' }),
        }),
        // The lines of an object's story name this ESS as the destination, as the CSS's do.
        log: deps.logger.child({ component: 'sync', destination: `${config.destinationType}/${config.destinationID}` }),
        ...events,
      });
      const created = await createCssLink(config, { authenticator: deps.authenticator, health, logger: deps.logger });
      const link = created.link;
      live = created.live;
      agent = new EssAgent({
        link,
        health,
        self: { orgID: config.orgID, destinationType: config.destinationType, destinationID: config.destinationID },
        receiver,
        origin: sender,
        uploadChunkSize: config.maxDataChunkSize,
        blobs: deps.blobs,
        pollingIntervalMs: config.httpPollingInterval * 1000,
        resendIntervalMs: config.resendInterval * 1000,
        pingIntervalMs: config.essPingInterval * 3_600_000,
        longPollSeconds,
        log: deps.logger.child({ component: 'ess-agent' }),
        ...events,
        transport: overMqtt(config) ? 'mqtt' : 'http',
      });
      agent.start();
    },
    requestResend(): void {
      agent?.requestResend();
    },
    async stop(): Promise<void> {
      await agent?.stop();
    },
  };
}
