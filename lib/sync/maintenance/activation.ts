/**
 * Activates the inactive objects whose `activationTime` has come: they are then sent as if
 * `PUT …/activate` had been called. An inactive object without an activation time waits for
 * that call. [ref sync-protocol §6 inactive/activationTime]
 */
import { isReceiverStatus, parseRfc3339 } from '../../model/index.js';
import type { Store } from '../../store/types.js';
import type { ObjectService } from '../object-service.js';
import type { MaintenanceJob } from './scheduler.js';

export interface ActivationJobDeps {
  store: Pick<Store, 'listTimedObjects'>;
  /** Its read-modify-write tells the sender, which queues the deliveries. */
  objects: Pick<ObjectService, 'modify'>;
}

export class ActivationJob implements MaintenanceJob {
  readonly name = 'activation';

  constructor(private readonly deps: ActivationJobDeps) {}

  async run(now: number): Promise<number> {
    let activated = 0;
    for (const obj of await this.deps.store.listTimedObjects()) {
      const m = obj.meta;
      if (isReceiverStatus(obj.status) || !m.inactive) continue;
      const at = parseRfc3339(m.activationTime);
      // Validated when stored; a time that does not parse (written by another tool) never fires.
      if (at === null || at > now) continue;
      const changed = await this.deps.objects.modify(m.destinationOrgID, m.objectType, m.objectID, (cur) =>
        // Only the instance that was read, still inactive with the same time: a republish meanwhile decides anew.
        cur !== null && cur.meta.instanceID === m.instanceID && cur.meta.inactive && cur.meta.activationTime === m.activationTime
          ? { ...cur, meta: { ...cur.meta, inactive: false } }
          : null,
      );
      if (changed !== null) activated++;
    }
    return activated;
  }
}
