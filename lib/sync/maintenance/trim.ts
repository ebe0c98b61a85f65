/**
 * Drops the history nothing reads any more: a sender-side deletion is kept (as `objdeleted`)
 * only while some destination has yet to acknowledge it; once its records are gone, acked or
 * dropped with a removed registration, its row goes too. Reads already skip such a row; this
 * keeps the table from growing with deletions nobody looks at again.
 */
import type { Store } from '../../store/types.js';
import type { DeletionsInProgress } from '../deletions.js';
import type { MaintenanceJob } from './scheduler.js';

export interface TrimJobDeps {
  store: Pick<Store, 'listOrgsInUse' | 'listDeletions' | 'getDeletion'>;
  deletions: Pick<DeletionsInProgress, 'settle'>;
}

export class TrimJob implements MaintenanceJob {
  readonly name = 'trim-history';

  constructor(private readonly deps: TrimJobDeps) {}

  async run(): Promise<number> {
    const { store, deletions } = this.deps;
    let trimmed = 0;
    for (const org of await store.listOrgsInUse()) {
      for (const d of await store.listDeletions(org)) {
        const { objectType, objectID } = d.meta;
        await deletions.settle(org, objectType, objectID);
        if ((await store.getDeletion(org, objectType, objectID)) === null) trimmed++;
      }
    }
    return trimmed;
  }
}
