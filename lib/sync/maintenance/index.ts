/** The maintenance jobs of a node and their schedule (see scheduler.ts). */
import type { NotificationStore } from '../../store/notification-types.js';
import type { Store } from '../../store/types.js';
import type { DeletionsInProgress } from '../deletions.js';
import type { ObjectService } from '../object-service.js';
import { ActivationJob } from './activation.js';
import { ExpiryJob } from './expiry.js';
import { RegistrationJob } from './registrations.js';
import { MaintenanceScheduler, type MaintenanceSchedulerDeps, type ScheduledJob } from './scheduler.js';
import { TrimJob } from './trim.js';

export { ActivationJob, ExpiryJob, RegistrationJob, TrimJob, MaintenanceScheduler };
export type { MaintenanceJob, ScheduledJob } from './scheduler.js';

const DAY_MS = 24 * 3600 * 1000;

export interface MaintenanceSettings {
  nodeType: 'CSS' | 'ESS';
  /** OBJECT_ACTIVATION_INTERVAL, seconds. */
  objectActivationInterval: number;
  /** STORAGE_MAINTENANCE_INTERVAL, seconds: expiry, registrations, trimming. */
  storageMaintenanceInterval: number;
  /** REMOVE_ESS_REGISTRATION_TIME, days; 0 = never (and ignored on an ESS). */
  removeESSRegistrationTime: number;
}

export interface MaintenanceDeps {
  store: Store;
  notifications: NotificationStore;
  objects: Pick<ObjectService, 'modify' | 'delete'>;
  deletions: Pick<DeletionsInProgress, 'settle'>;
  log?: MaintenanceSchedulerDeps['log'];
  now?: () => number;
  /** Scaled out: passes run only on the instance that holds the leader lease. */
  leader?: MaintenanceSchedulerDeps['leader'];
}

/** The jobs a node runs with these settings. */
export function maintenanceJobs(settings: MaintenanceSettings, deps: MaintenanceDeps): ScheduledJob[] {
  const { store, notifications, objects, deletions } = deps;
  const storageMs = settings.storageMaintenanceInterval * 1000;
  const jobs: ScheduledJob[] = [
    { job: new ActivationJob({ store, objects }), intervalMs: settings.objectActivationInterval * 1000 },
    { job: new ExpiryJob({ store, objects }), intervalMs: storageMs },
    { job: new TrimJob({ store, deletions }), intervalMs: storageMs },
  ];
  if (settings.nodeType === 'CSS' && settings.removeESSRegistrationTime > 0) {
    const removeAfterMs = settings.removeESSRegistrationTime * DAY_MS;
    const since = (deps.now ?? Date.now)();
    jobs.push({ job: new RegistrationJob({ store, notifications, removeAfterMs, since, ...(deps.log ? { log: deps.log } : {}) }), intervalMs: storageMs });
  }
  return jobs;
}

export function createMaintenance(settings: MaintenanceSettings, deps: MaintenanceDeps): MaintenanceScheduler {
  return new MaintenanceScheduler({
    jobs: maintenanceJobs(settings, deps),
    ...(deps.log ? { log: deps.log } : {}),
    ...(deps.now ? { now: deps.now } : {}),
    ...(deps.leader ? { leader: deps.leader } : {}),
  });
}
