/**
 * Wiring of the CSS's side of the sync: one engine (a session per ESS) and the transports that
 * carry it. Every transport gets the same engine; the HTTP SPI is mounted on the API's server,
 * an MQTT adapter takes `engine` from what this returns.
 */
import type { RequestHandler } from 'express';
import type { Config } from '../config/index.js';
import type { Logger } from '../log/logger.js';
import type { Authenticator } from '../security/index.js';
import type { NotificationStore } from '../store/notification-types.js';
import type { Store } from '../store/types.js';
import { CssEngine } from '../sync/css/ess-session.js';
import type { CssSyncEngine } from '../sync/css/types.js';
import type { DeletionsInProgress } from '../sync/deletions.js';
import type { EarlyData } from '../sync/early-data.js';
import type { ObjectService } from '../sync/object-service.js';
import type { PeerSignal } from '../sync/peer-signal.js';
import type { Sender } from '../sync/sender.js';
import { SenderAcks } from '../sync/sender-acks.js';
import type { UpstreamReceiver } from '../sync/upstream-receiver.js';
import type { SyncEvents } from '../sync/sync-events.js';
import { createSpiServer } from '../transport/http/spi-server.js';
import { storeAclLookup } from './acl-lookup.js';

export interface CssSync {
  /** The protocol, for every transport. */
  engine: CssSyncEngine;
  /** The HTTP SPI (`/spi/v1`), mounted by the API's app. */
  spi: RequestHandler;
}

export interface CssSyncDeps {
  config: Pick<Config, 'resendInterval' | 'removeESSRegistrationTime'>;
  store: Store;
  notifications: NotificationStore;
  objects: ObjectService;
  sender: Sender;
  upstream: UpstreamReceiver;
  deletions: DeletionsInProgress;
  peerSignal: PeerSignal;
  early: EarlyData | null;
  authenticator: Authenticator;
  isRunning: () => boolean;
  /** Aborted when the node stops. */
  shutdown: AbortSignal;
  logger: Logger;
  /** Told of deliveries and data moved (lib/sync/sync-events.ts). */
  events?: SyncEvents;
}

export function createCssSync(deps: CssSyncDeps): CssSync {
  const { store, notifications, objects, peerSignal, logger } = deps;
  const acks = new SenderAcks({
    store,
    notifications,
    objects,
    peerSignal,
    deletions: deps.deletions,
    resendIntervalMs: deps.config.resendInterval * 1000,
    log: logger.child({ component: 'sync' }),
    ...(deps.events !== undefined ? { events: deps.events } : {}),
  });
  const engine = new CssEngine({ store, notifications, sender: deps.sender, acks, objects, upstream: deps.upstream, peerSignal, log: logger.child({ component: 'sync' }), lastSeenThrottleMs: lastSeenThrottle(deps.config.removeESSRegistrationTime) });
  const spi = createSpiServer({
    engine,
    objects,
    ...(deps.early !== null ? { early: deps.early } : {}),
    authenticator: deps.authenticator,
    acls: storeAclLookup(store),
    isRunning: deps.isRunning,
    shutdown: deps.shutdown,
    log: logger.child({ component: 'spi' }),
    ...(deps.events !== undefined ? { events: deps.events } : {}),
  });
  return { engine, spi };
}

/**
 * How often an ESS's last contact is written: at most once a minute, and often enough that a
 * short REMOVE_ESS_REGISTRATION_TIME (tests) does not remove an ESS that keeps polling.
 */
function lastSeenThrottle(removeDays: number): number {
  return removeDays > 0 ? Math.min(60_000, (removeDays * 24 * 3600 * 1000) / 4) : 60_000;
}
