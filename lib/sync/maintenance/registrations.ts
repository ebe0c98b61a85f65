/**
 * Forgets the ESS nodes that have not been heard from (registration, ping, poll or message) for
 * REMOVE_ESS_REGISTRATION_TIME, with every record queued for them, as an unregister does. An
 * ESS that comes back later is told it is unknown and registers as new, receiving everything
 * addressed to it afresh. The deletions that waited for its acknowledgement are settled by the
 * trim job. CSS only. [ref common/config.go RemoveESSRegistrationTime]
 */
import type { NotificationStore } from '../../store/notification-types.js';
import type { Store } from '../../store/types.js';
import type { MaintenanceJob } from './scheduler.js';

export interface RegistrationJobDeps {
  store: Pick<Store, 'listOrgsInUse' | 'listDestinations' | 'getDestination' | 'deleteDestination'>;
  notifications: Pick<NotificationStore, 'deleteForPeer'>;
  /** Silence longer than this removes a registration; > 0. */
  removeAfterMs: number;
  log?: { info(obj: object, msg: string): void };
}

export class RegistrationJob implements MaintenanceJob {
  readonly name = 'registration-removal';

  constructor(private readonly deps: RegistrationJobDeps) {}

  async run(now: number): Promise<number> {
    const { store, notifications, removeAfterMs } = this.deps;
    const cutoff = now - removeAfterMs;
    let removed = 0;
    for (const org of await store.listOrgsInUse()) {
      for (const d of await store.listDestinations(org)) {
        if (d.lastPing >= cutoff) continue;
        // Re-read: a ping since the listing keeps it.
        const cur = await store.getDestination(org, d.destinationType, d.destinationID);
        if (cur === null || cur.lastPing >= cutoff) continue;
        // The destination first: from then on the ESS's messages are refused, so none re-creates a record being dropped.
        if (!(await store.deleteDestination(org, d.destinationType, d.destinationID))) continue;
        await notifications.deleteForPeer(org, d.destinationType, d.destinationID);
        this.deps.log?.info({ org, destination: `${d.destinationType}/${d.destinationID}`, lastContact: new Date(cur.lastPing).toISOString() }, 'removed an ESS registration inactive too long');
        removed++;
      }
    }
    return removed;
  }
}
