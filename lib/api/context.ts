/**
 * What every route handler receives: the parsed path, the caller and the app's dependencies.
 */
import type { Request, Response } from 'express';
import type { Authenticator, Identity } from '../security/identity.js';
import type { AclLookup } from '../security/access.js';
import type { OrgSecrets } from '../security/org-secrets.js';
import type { Store } from '../store/types.js';
import type { NotificationStore } from '../store/notification-types.js';
import type { ObjectService } from '../sync/object-service.js';
import type { WebhookDispatcher } from '../sync/webhooks/index.js';
import type { TransferProgressTracker } from '../sync/transfer-progress.js';
import type { Logger } from '../log/logger.js';
import type { HealthMonitor } from './health-monitor.js';

/** The node's metrics, as the API serves and feeds them (lib/telemetry/metrics.ts). */
export interface ApiMetrics {
  /** One answered request; `route` is a route template or `unmatched`. */
  observeRequest(route: string, method: string, status: number, seconds: number): void;
  /** The Prometheus text exposition. */
  scrape(): Promise<{ contentType: string; text: string }>;
}

export interface ApiDeps {
  objects: ObjectService;
  store: Store;
  /** Per-(object, destination) records: the delivery status O13 and the destinations routes report. */
  notifications: NotificationStore;
  authenticator: Authenticator;
  acls: AclLookup;
  logger: Logger;
  health: HealthMonitor;
  /** Largest JSON body (including inline base64 data) accepted, bytes. */
  maxRequestBodySize: number;
  /** The OpenAPI document served at /swagger for this node type. */
  openapi: Record<string, unknown>;
  /** False while starting or stopping: object routes then answer 503. */
  isRunning(): boolean;
  /** Called after `POST /api/v1/shutdown` has been answered. */
  requestShutdown(opts: { restart: boolean; quiesceSeconds: number }): void;
  /** On an ESS that syncs with a CSS: ask it to send everything again (`POST /api/v1/resend`). */
  requestResend?(): void;
  /** On a CSS: seals the per-org broker passwords before they are stored (org-secrets.ts). */
  orgSecrets?: OrgSecrets;
  /** Calls the webhooks and keeps their delivery log; absent in tests that need none. */
  webhooks?: Pick<WebhookDispatcher, 'deliveries' | 'checkTarget' | 'forgetOrg'>;
  /** The live transfer view the fleet routes read progress from; absent, they show stored offsets only. */
  transfers?: Pick<TransferProgressTracker, 'get' | 'onChange'>;
  /** Where the web dashboard's files are (`dashboard/` of the package); absent, /dashboard/ is not served. */
  dashboardDir?: string;
  /** Times every request and serves `GET /metrics`; absent = neither. */
  metrics?: ApiMetrics;
}

export interface RouteContext {
  req: Request;
  res: Response;
  deps: ApiDeps;
  /** Path parameters by name; `orgID` is filled from the node's org on the ESS. */
  params: Record<string, string>;
  identity: Identity;
}

export type RouteHandler = (ctx: RouteContext) => Promise<void>;
