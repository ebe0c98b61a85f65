/**
 * Removes the sender-side objects whose `expiration` has passed, as a delete through the API
 * would: every destination that may hold a copy is sent a deletion. Divergence: the reference
 * removes the object on the CSS only and leaves the ESS copies behind. Received copies are not
 * expired here: their sender's deletion removes them. [ref sync-protocol §6 expiration]
 */
import { isReceiverStatus, parseRfc3339 } from '../../model/index.js';
import type { Store } from '../../store/types.js';
import type { ObjectService } from '../object-service.js';
import type { MaintenanceJob } from './scheduler.js';

export interface ExpiryJobDeps {
  store: Pick<Store, 'listTimedObjects' | 'getObject'>;
  objects: Pick<ObjectService, 'delete'>;
}

export class ExpiryJob implements MaintenanceJob {
  readonly name = 'expiry';

  constructor(private readonly deps: ExpiryJobDeps) {}

  async run(now: number): Promise<number> {
    const { store, objects } = this.deps;
    let removed = 0;
    for (const obj of await store.listTimedObjects()) {
      const m = obj.meta;
      if (isReceiverStatus(obj.status) || m.expiration === '') continue;
      const at = parseRfc3339(m.expiration);
      if (at === null || at > now) continue;
      // Re-read: an object published again meanwhile may no longer expire.
      const cur = await store.getObject(m.destinationOrgID, m.objectType, m.objectID);
      if (cur === null || cur.meta.instanceID !== m.instanceID) continue;
      try {
        await objects.delete(m.destinationOrgID, m.objectType, m.objectID);
        removed++;
      } catch (e) {
        // Deleted by someone else (another instance's pass, the user) in between: the goal is reached.
        if ((await store.getObject(m.destinationOrgID, m.objectType, m.objectID))?.meta.instanceID === m.instanceID) throw e;
      }
    }
    return removed;
  }
}
