/**
 * Wiring shared by the CSS and the ESS: storage, authentication, TLS, the API and its
 * listeners, and an orderly stop. css.ts and ess.ts choose what differs.
 */
import { readFileSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import type https from 'node:https';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { Config } from '../config/index.js';
import type { Logger } from '../log/logger.js';
import { createApp } from '../api/app.js';
import { HealthMonitor } from '../api/health-monitor.js';
import { openApiFor, type OpenApiDoc } from '../api/openapi.js';
import { FileBlobStore, SqliteStore, TieredBlobStore, type BlobStore, type NotificationStore, type Store } from '../store/index.js';
import {
  DummyAuthenticator,
  ExternalAuthenticator,
  LoginGate,
  PresetAuthenticator,
  assertDummyAllowed,
  ensureSelfSignedCertificate,
  ensureSyncAdmin,
  loadCertificateMaterial,
  prepareOrgSecrets,
  type Authenticator,
} from '../security/index.js';
import { ObjectService, type NodeIdentity } from '../sync/object-service.js';
import { parseDataDirs } from '../store/data-files.js';
import { PeerSignal } from '../sync/peer-signal.js';
import { DeletionsInProgress } from '../sync/deletions.js';
import { EarlyData } from '../sync/early-data.js';
import { Sender } from '../sync/sender.js';
import { ResendScheduler } from '../sync/resend-scheduler.js';
import { createMaintenance, type MaintenanceScheduler } from '../sync/maintenance/index.js';
import { fanOutSyncEvents, type SyncEvents } from '../sync/sync-events.js';
import { TransferProgressTracker } from '../sync/transfer-progress.js';
import { ORIGIN_OWED, ORIGIN_STATUSES, RECEIVER_OWED, SENDER_STATUSES, SERVED_STATUSES } from '../sync/notification-states.js';
import { NodeMetrics } from '../telemetry/metrics.js';
import { startMetricsListener, type MetricsListener } from '../telemetry/metrics-listener.js';
import { TargetPolicy, WebhookDispatcher, parseNetworks } from '../sync/webhooks/index.js';
import { createCssSync } from './css-sync.js';
import { startCssMqtt, type CssMqtt } from './css-mqtt.js';
import { createCssUpstream } from './css-upstream.js';
import { createEssSync, syncsWithCss, type EssSync } from './ess-sync.js';
import { packageRoot } from './package-root.js';
import { acquireDataLock } from './data-lock.js';
import { openMongoStorage } from './mongo-storage.js';
import { coordinationFor } from './coordination.js';
import { aclLookupFor } from './acl-lookup.js';
import { tracingEnabled } from '../telemetry/tracing-enabled.js';
import { cleartextExposure, startListeners, stopListeners, type Listener, type Tls } from './listeners.js';

export interface RunningNode {
  /** Where the API listens, e.g. `http://127.0.0.1:8080`. */
  urls: string[];
  /** Where ESS nodes reach the MQTT broker of a CSS that talks MQTT, e.g. `mqtt://127.0.0.1:1883`. */
  brokerUrls: string[];
  /** Sync-admin credentials created on this start (printed once), or null. */
  createdAdmin: { appKey: string; secret: string } | null;
  /** Where it stores, for the start banner: `SQLite <file>` or `MongoDB <database> at <address>`. */
  storage: string;
  /** The certificate the node serves (PEM), when it listens with TLS. */
  certificatePem: string | null;
  /** The unauthenticated metrics listener's URL (METRICS_PORT), or null when there is none. */
  metricsUrl: string | null;
  /** Resolves when the node has stopped, for whatever reason. */
  stopped: Promise<{ restart: boolean }>;
  stop(): Promise<void>;
}

/** Where things live under PERSISTENCE_ROOT_PATH. */
export function layout(root: string): { db: string; data: string; certs: string; users: string; referencePreset: string; dummyAuth: string; orgSecretsKey: string } {
  const sync = join(root, 'sync');
  return {
    db: join(sync, 'db', 'edgesync.db'),
    data: join(sync, 'data'),
    certs: join(sync, 'certs'),
    users: join(sync, 'users.json'),
    referencePreset: join(sync, 'preset-auth.json'),
    dummyAuth: join(sync, 'dummy-auth.json'),
    orgSecretsKey: join(sync, 'keys', 'org-secrets.key'),
  };
}

function loadOpenApi(node: 'CSS' | 'ESS'): OpenApiDoc {
  const text = readFileSync(join(packageRoot(), 'swagger', 'openapi.yaml'), 'utf8');
  return openApiFor(node, parseYaml(text) as OpenApiDoc);
}

async function openStorage(config: Config, log: Logger): Promise<{ store: Store; notifications: NotificationStore; blobs: BlobStore; description: string }> {
  // A CSS on MongoDB: every process of the CSS shares the database (mongo-storage.ts).
  if (config.storageProvider === 'mongo') return openMongoStorage(config, log);
  const paths = layout(config.persistenceRootPath);
  await mkdir(join(paths.db, '..'), { recursive: true });
  const store = new SqliteStore({ path: paths.db });
  await store.init();
  // Small data lives in the database, committed with the object rows; see tiered-blob-store.ts.
  const blobs = new TieredBlobStore({ files: new FileBlobStore({ root: paths.data }), small: store.smallBlobs() });
  await blobs.init();
  return { store, notifications: store.notifications(), blobs, description: `SQLite ${paths.db}` };
}

/**
 * Deletes blobs and staging areas nothing refers to: leftovers of a crash between two commits.
 * On a database other processes share (MongoDB), a blob another process has just written is
 * unreferenced until that process records it: such a one is deleted only if it is still
 * unreferenced after `settleMs`, long after any write in progress has been recorded.
 */
async function collectGarbage(store: Store, blobs: BlobStore, log: Logger, settleMs = 0, signal?: AbortSignal): Promise<void> {
  const unreferenced = async (): Promise<{ blobIds: string[]; stagingIds: string[] }> => {
    const referenced = await store.referencedBlobIds();
    return { blobIds: (await blobs.list()).filter((id) => !referenced.has(id)), stagingIds: (await blobs.listStaging()).filter((id) => !referenced.has(id)) };
  };
  let found = await unreferenced();
  if (settleMs > 0) {
    if (found.blobIds.length + found.stagingIds.length === 0) return;
    const settled = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(true), settleMs);
      timer.unref();
      signal?.addEventListener('abort', () => (clearTimeout(timer), resolve(false)), { once: true });
    });
    if (!settled) return;
    const again = await unreferenced();
    const still = new Set([...again.blobIds, ...again.stagingIds]);
    found = { blobIds: found.blobIds.filter((id) => still.has(id)), stagingIds: found.stagingIds.filter((id) => still.has(id)) };
  }
  for (const id of found.blobIds) await blobs.delete(id);
  for (const id of found.stagingIds) await blobs.deleteStaging(id);
  const removed = found.blobIds.length + found.stagingIds.length;
  if (removed > 0) log.info({ removed }, 'removed data blobs and upload staging areas that nothing refers to');
}

/** How long a blob must stay unreferenced on a shared database before start-up removes it. */
const SHARED_GC_SETTLE_MS = 10 * 60_000;

async function createAuthenticator(config: Config, log: Logger): Promise<{ authenticator: Authenticator; createdAdmin: RunningNode['createdAdmin'] }> {
  const paths = layout(config.persistenceRootPath);
  if (config.authenticationHandler === 'dummy') {
    assertDummyAllowed([config.listeningAddress]);
    log.warn('AUTHENTICATION_HANDLER=dummy accepts any password: for compatibility tests on loopback only');
    return { authenticator: await DummyAuthenticator.fromFile(paths.dummyAuth), createdAdmin: null };
  }
  if (config.authenticationHandler === 'external') {
    const ca = config.externalAuthCACertificate;
    const caPem = ca === '' ? undefined : ca.includes('-----BEGIN') ? ca : await readFile(ca, 'utf8');
    const authenticator = new ExternalAuthenticator({
      url: config.externalAuthUrl,
      ...(caPem !== undefined ? { caPem } : {}),
      cacheTtlMs: config.externalAuthCacheTtl * 1000,
      timeoutMs: config.externalAuthTimeout * 1000,
      log: log.child({ component: 'identity-service' }),
    });
    log.info({ url: authenticator.url }, 'logins are checked by the external identity service');
    return { authenticator, createdAdmin: null };
  }
  await mkdir(join(paths.users, '..'), { recursive: true });
  const createdAdmin = await ensureSyncAdmin(paths.users);
  const authenticator = await PresetAuthenticator.create({
    usersFile: paths.users,
    referencePresetFile: paths.referencePreset,
    onReloadError: (err: Error) => log.error({ err }, 'the users file changed but cannot be loaded; the previous users stay in force'),
  });
  if (authenticator.referenceCredentialCount > 0) {
    log.warn({ file: paths.referencePreset }, 'plaintext secrets read from the reference preset-auth.json; move them to users.json with `edgesync users add`');
  }
  return { authenticator, createdAdmin };
}

/**
 * One WARN line when a CSS serves plain HTTP (or plain MQTT) beyond loopback: Basic credentials
 * then cross the network readable by anyone on the way.
 */
function warnIfCleartextBeyondLoopback(config: Config, listeners: readonly Listener[], brokerUrls: readonly string[], log: Logger): void {
  if (config.nodeType !== 'CSS') return;
  const exposed = cleartextExposure(config, listeners, brokerUrls);
  if (exposed.length === 0) return;
  log.warn(
    { addresses: exposed, setting: 'LISTENING_TYPE' },
    `listening without TLS beyond loopback on ${exposed.join(', ')}: credentials travel in clear; set LISTENING_TYPE=secure (with SERVER_CERTIFICATE and SERVER_KEY), or LISTENING_ADDRESS=127.0.0.1 behind a TLS proxy`,
  );
}

async function tlsMaterial(config: Config, log: Logger): Promise<Tls | null> {
  const wantsTls = config.listeningType === 'secure' || config.listeningType === 'both' || config.listeningType === 'secure-unix';
  if (!wantsTls) return null;
  return nodeCertificate(config, log);
}

/** The node's certificate: SERVER_CERTIFICATE/SERVER_KEY, or one it makes itself (and keeps). */
async function nodeCertificate(config: Config, log: Logger): Promise<Tls> {
  if (config.serverCertificate !== '' && config.serverKey !== '') {
    const m = await loadCertificateMaterial(config.serverCertificate, config.serverKey);
    return { certPem: m.certPem, keyPem: m.keyPem };
  }
  const cert = await ensureSelfSignedCertificate({ dir: layout(config.persistenceRootPath).certs, commonName: 'localhost' });
  if (cert.generated) log.info({ certPath: cert.certPath, notAfter: cert.notAfter.toISOString() }, 'generated a self-signed certificate');
  return { certPem: cert.certPem, keyPem: cert.keyPem };
}

const RENEWAL_CHECK_MS = 12 * 3600 * 1000;

/**
 * A node that made its own certificate may run longer than the certificate lives: check twice
 * a day and swap a renewed one into the running TLS servers, without dropping connections.
 */
function scheduleCertificateRenewal(config: Config, listeners: readonly Listener[], log: Logger): NodeJS.Timeout | null {
  const selfSigned = config.serverCertificate === '' && listeners.some((l) => l.protocol === 'https');
  if (!selfSigned) return null;
  const timer = setInterval(() => {
    ensureSelfSignedCertificate({ dir: layout(config.persistenceRootPath).certs, commonName: 'localhost' }).then(
      (cert) => {
        if (!cert.generated) return;
        for (const l of listeners) if (l.protocol === 'https') (l.server as unknown as https.Server).setSecureContext({ cert: cert.certPem, key: cert.keyPem });
        log.info({ notAfter: cert.notAfter.toISOString() }, 'renewed the self-signed certificate');
      },
      (err: unknown) => log.error({ err }, 'could not renew the self-signed certificate'),
    );
  }, RENEWAL_CHECK_MS);
  timer.unref();
  return timer;
}

/** What an embedder (or a test) adds to a node beyond its configuration. */
export interface NodeExtras {
  /** More observers of the sync engine's events, after the node's own (metrics, traces, the live view). */
  syncObservers?: readonly SyncEvents[];
}

/** The node's metrics, counting on its store (lib/telemetry/metrics.ts). */
function metricsFor(config: Config, opened: { store: Store; notifications: NotificationStore }): NodeMetrics {
  const css = config.nodeType === 'CSS';
  return new NodeMetrics({
    nodeType: config.nodeType,
    store: opened.store,
    notifications: opened.notifications,
    // A CSS delivers to its ESS nodes (the Sender); an ESS to its CSS (the OriginSender).
    deliveryStatuses: css ? SENDER_STATUSES : ORIGIN_STATUSES,
    pendingStatuses: css ? SERVED_STATUSES : [...RECEIVER_OWED, ...ORIGIN_OWED],
  });
}

/** MQTT links for the metrics: the node's own (org ''; a CSS's broker connection, an ESS's link) and a CSS's org brokers. */
function mqttConnections(cssMqtt: CssMqtt | null, essSync: EssSync | null): { org: string; connected: boolean }[] | null {
  if (cssMqtt !== null) {
    const h = cssMqtt.health();
    return [{ org: '', connected: !h.disconnectedFromMQTTBroker }, ...(h.organizations ?? []).map((o) => ({ org: o.orgID, connected: o.connected }))];
  }
  const up = essSync?.linkUp() ?? null;
  return up === null ? null : [{ org: '', connected: up }];
}

export async function startNode(config: Config, identity: NodeIdentity, logger: Logger, extras: NodeExtras = {}): Promise<RunningNode> {
  const log = logger.child({ component: 'node', nodeType: config.nodeType });
  await mkdir(config.persistenceRootPath, { recursive: true });
  // One process per data directory; a second one stops here, naming the first (data-lock.ts).
  const lock = await acquireDataLock(config.persistenceRootPath, config.nodeType);
  if (lock.tookOverFrom !== null) log.info({ lockFile: lock.path, previousPid: lock.tookOverFrom }, 'took over the lock of a process that is gone');
  const opened = await openStorage(config, log).catch(async (e: unknown) => {
    await lock.release();
    throw e;
  });
  const { blobs, description: storage } = opened;
  // One registry per node (several nodes may share a process); the store's operations are timed through it.
  const metrics = metricsFor(config, opened);
  const store = metrics.measured(opened.store);
  const notifications = metrics.measured(opened.notifications);
  let metricsListener: MetricsListener | null = null;
  // The leader lease and the wake bus shared with the other instances on the store (coordination.ts).
  const coordination = coordinationFor(store, logger);
  let listeners: Listener[] = [];
  let running = false;
  let resolveStopped!: (v: { restart: boolean }) => void;
  const stopped = new Promise<{ restart: boolean }>((r) => (resolveStopped = r));
  let stopping: Promise<void> | null = null;
  let renewal: NodeJS.Timeout | null = null;
  let essSync: EssSync | null = null;
  let resends: ResendScheduler | null = null;
  let cssMqtt: CssMqtt | null = null;
  let maintenance: MaintenanceScheduler | null = null;
  let webhooks: WebhookDispatcher | null = null;
  // Aborted first thing on stop: long-polls answer at once instead of holding the stop for their wait.
  const shutdown = new AbortController();
  // Null without an OTLP endpoint: then no tracing observer and no hook exist (README "Traces").
  const tracing = tracingEnabled(config) ? (await import('../telemetry/tracing.js')).startTracing(config, logger) : null;

  const stop = (restart = false, graceMs = config.shutdownQuiesceTime * 1000): Promise<void> => {
    stopping ??= (async () => {
      running = false;
      shutdown.abort();
      if (renewal !== null) clearInterval(renewal);
      log.info('stopping');
      await maintenance?.stop();
      await cssMqtt?.stop();
      await essSync?.stop();
      await resends?.stop();
      await coordination.stop();
      webhooks?.stop();
      await metricsListener?.close();
      await stopListeners(listeners, graceMs);
      await tracing?.shutdown();
      await store.close();
      await lock.release();
      log.info('stopped');
      resolveStopped({ restart });
    })();
    return stopping;
  };

  try {
    if (config.storageProvider === 'mongo') {
      // In the background: the wait must not hold the start, and a stop ends it.
      collectGarbage(store, blobs, log, SHARED_GC_SETTLE_MS, shutdown.signal).catch((err: unknown) => log.warn({ err }, 'garbage collection of unreferenced blobs failed; the next start retries'));
    } else {
      await collectGarbage(store, blobs, log);
    }
    await coordination.start();
    const { authenticator: handler, createdAdmin } = await createAuthenticator(config, log);
    // Every login, REST, SPI or MQTT, goes through this one gate: throttle, passport, the handler.
    const authenticator = new LoginGate(handler, {
      throttle: { maxFailures: config.loginFailureLimit, windowMs: config.loginFailureWindow * 1000 },
      // Behind these balancers, X-Forwarded-For names the client the throttle counts.
      trustedProxies: config.trustedProxies,
      log: logger.child({ component: 'login' }),
    });
    const tls = await tlsMaterial(config, log);
    // The CSS seals the per-org broker passwords it stores (org-secrets.ts).
    const orgSecrets = identity.nodeType === 'CSS' ? await prepareOrgSecrets({ keyFile: layout(config.persistenceRootPath).orgSecretsKey, store, log }) : null;
    // Who hears of the engine's deliveries (lib/sync/sync-events.ts); an observer that throws is logged, never fatal.
    // The live transfer view the dashboard and `edgesync top` read (lib/sync/transfer-progress.ts).
    const transfers = new TransferProgressTracker();
    const observers: SyncEvents[] = [metrics.events, ...(tracing !== null ? [tracing.events] : []), transfers, ...(extras.syncObservers ?? [])];
    const events = fanOutSyncEvents(observers, (err, event) => log.warn({ err, event }, 'an observer of the sync events failed; it is skipped for this event from now on'));
    // The CSS sends to the ESS nodes that poll it; an http ESS polls its CSS and receives.
    const peerSignal = new PeerSignal(coordination.wakes);
    const deletions = new DeletionsInProgress({ store, notifications });
    const sender = identity.nodeType === 'CSS' ? new Sender({ store, notifications, peerSignal, deletions, events }) : null;
    // Uploads offered to the ESS nodes while they arrive (our extension; early-data.ts).
    const early = sender !== null ? new EarlyData({ store, peerSignal, log: logger.child({ component: 'early-data' }) }) : null;
    // The ESS's link reads its CSS credentials off the handler (the users file's cssCredentials).
    essSync = syncsWithCss(config) ? createEssSync({ config, store, notifications, blobs, deletions, authenticator: handler, logger, events }) : null;
    // The CSS also receives: objects its ESS nodes publish.
    const upstream = sender !== null ? createCssUpstream({ store, notifications, blobs, peerSignal, maxDataSize: config.maxDataSize }) : null;
    // Webhooks (sync/webhooks): an ESS calls what its apps register; a CSS checks the targets.
    webhooks = new WebhookDispatcher({
      store,
      policy: new TargetPolicy({ open: identity.nodeType === 'ESS', allowedNetworks: parseNetworks(config.webhookAllowedNetworks) }),
      log: logger.child({ component: 'webhooks' }),
      timeoutMs: config.webhookTimeout * 1000,
      maxAttempts: config.webhookMaxAttempts,
      retryDelayMs: config.webhookRetryDelay * 1000,
    });
    const objects = new ObjectService({
      store,
      changes: webhooks,
      blobs,
      node: identity,
      deletions,
      ...(early !== null ? { early } : {}),
      maxDataChunkSize: config.maxDataChunkSize,
      maxDataSize: config.maxDataSize,
      events,
      sourceData: { field: 'sourceDataUri', key: 'SOURCE_DATA_DIRS', dirs: parseDataDirs(config.sourceDataDirs) },
      ...(sender !== null ? { listener: sender } : essSync !== null ? { listener: essSync.objectListener } : {}),
      ...(essSync !== null ? { receiverListener: essSync.listener } : upstream !== null ? { receiverListener: upstream.listener } : {}),
    });
    const health = new HealthMonitor(
      config.nodeType,
      store,
      async () => (config.orgID !== '' ? [config.orgID] : store.listOrgsInUse()),
      essSync?.health,
      { report: () => cssMqtt?.health() },
      coordination.shared ? coordination.lease : undefined,
    );
    // The CSS's side of the sync (css-sync.ts): its engine serves every transport.
    const cssSync =
      sender !== null && upstream !== null
        ? createCssSync({
            config,
            store,
            notifications,
            objects,
            sender,
            upstream: upstream.attach(objects),
            deletions,
            peerSignal,
            early,
            authenticator,
            isRunning: () => running,
            shutdown: shutdown.signal,
            logger,
            events,
          })
        : null;
    const app = createApp(config.nodeType, {
      objects,
      store,
      notifications,
      authenticator,
      acls: aclLookupFor(identity.nodeType, store),
      logger: logger.child({ component: 'api' }),
      health,
      maxRequestBodySize: config.maxRequestBodySize,
      openapi: loadOpenApi(config.nodeType),
      dashboardDir: join(packageRoot(), 'dashboard'),
      transfers,
      isRunning: () => running,
      ...(essSync !== null ? { requestResend: () => essSync?.requestResend() } : {}),
      ...(orgSecrets !== null ? { orgSecrets } : {}),
      webhooks,
      metrics,
      requestShutdown: ({ restart, quiesceSeconds }) => {
        setTimeout(() => void stop(restart, quiesceSeconds * 1000), 1000).unref();
      },
    }, cssSync?.spi);
    listeners = await startListeners(config, app, tls);
    renewal = scheduleCertificateRenewal(config, listeners, log);
    running = true;
    await essSync?.start(objects);
    if (sender !== null) {
      resends = new ResendScheduler({ notifications, store, peerSignal, intervalMs: config.resendInterval * 1000, log, leader: coordination.lease, events });
      resends.start();
    }
    // Activation, expiry, registration removal, trimming (lib/sync/maintenance/).
    maintenance = createMaintenance(config, { store, notifications, objects, deletions, log: logger.child({ component: 'maintenance' }), leader: coordination.lease });
    maintenance.start();
    // The CSS's MQTT transport (css-mqtt.ts): the same engine as the SPI's, over a broker.
    if (cssSync !== null && config.communicationProtocol.includes('mqtt')) {
      cssMqtt = await startCssMqtt({
        config,
        engine: cssSync.engine,
        store,
        notifications,
        authenticator,
        acls: aclLookupFor('CSS', store),
        orgSecrets,
        tls: async () => tls ?? (await nodeCertificate(config, log)),
        logger,
        events,
        // Processes sharing the database share the ESS nodes of one broker; the leader pushes (ADR 21).
        ...(coordination.shared ? { leadership: coordination.lease } : {}),
      });
    }
    metrics.watch({
      longPollWaiters: () => peerSignal.waiting,
      mqttConnected: () => mqttConnections(cssMqtt, essSync),
      mqttClients: () => cssMqtt?.health().embeddedBrokerClients ?? null,
    });
    if (config.metricsPort !== 0) {
      metricsListener = await startMetricsListener(config.metricsListeningAddress, config.metricsPort, metrics, logger.child({ component: 'metrics' }));
      log.info({ url: metricsListener.url }, 'serving /metrics without authentication (METRICS_PORT)');
    }
    const urls = listeners.map((l) => l.url);
    const brokerUrls = cssMqtt?.urls ?? [];
    warnIfCleartextBeyondLoopback(config, listeners, brokerUrls, log);
    log.info({ urls, ...(brokerUrls.length > 0 ? { brokerUrls } : {}), org: config.orgID || undefined, destination: `${identity.destinationType}/${identity.destinationID}` }, 'listening');
    return { urls, brokerUrls, storage, createdAdmin, certificatePem: tls?.certPem ?? null, metricsUrl: metricsListener?.url ?? null, stopped, stop: () => stop() };
  } catch (e) {
    await maintenance?.stop();
    await metricsListener?.close();
    webhooks?.stop();
    await cssMqtt?.stop();
    await essSync?.stop();
    await stopListeners(listeners, 0);
    await coordination.stop();
    await tracing?.shutdown();
    await store.close();
    await lock.release();
    throw e;
  }
}
