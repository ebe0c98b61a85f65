/**
 * How a node coordinates with the other instances on its store (DESIGN.md "Scale-out"): on
 * MongoDB a leader lease and a wake bus in the database, on SQLite (one process per file) the
 * single-process stand-ins that always lead and wake no one else. The wiring is the same for both.
 */
import type { Logger } from '../log/logger.js';
import type { LeaderLease, PeerWakeBus } from '../store/coordination-types.js';
import type { Store } from '../store/types.js';
import { MongoLeaderLease } from '../store/mongo/mongo-lease.js';
import { MongoStore } from '../store/mongo/mongo-store.js';
import { MongoWakeBus } from '../store/mongo/mongo-wake-bus.js';
import { NoPeerWakeBus, SoleLeaderLease, newInstanceId } from '../store/single-process-coordination.js';

export interface Coordination {
  /** Held by the one instance that runs the periodic jobs. */
  lease: LeaderLease;
  /** Carries long-poll wakes to the other instances. */
  wakes: PeerWakeBus;
  /** Whether other instances may share the store: only then do the lease and its changes mean something to a reader. */
  shared: boolean;
  /** Starts the bus, then contends for the lease. */
  start(): Promise<void>;
  /** Resigns the lease (another instance takes over at its next heartbeat), then stops the bus. */
  stop(): Promise<void>;
}

export function coordinationFor(store: Store, logger: Logger): Coordination {
  const log = logger.child({ component: 'coordination' });
  let lease: LeaderLease;
  let wakes: PeerWakeBus;
  const shared = store instanceof MongoStore;
  if (store instanceof MongoStore) {
    const db = store.database();
    // One id for both, so the lease holder and the wakes' sender read alike in the logs.
    const instanceId = newInstanceId();
    lease = new MongoLeaderLease({ db, instanceId, log });
    wakes = new MongoWakeBus({ db, instanceId, log });
  } else {
    lease = new SoleLeaderLease();
    wakes = new NoPeerWakeBus();
  }
  const off = shared
    ? lease.onChange((leading) =>
        log.info({ instanceId: lease.instanceId }, leading ? 'this instance leads the periodic jobs' : 'this instance no longer leads the periodic jobs'),
      )
    : () => undefined;
  return {
    lease,
    wakes,
    shared,
    start: async () => {
      await wakes.start();
      await lease.start();
      if (shared && !lease.isLeader()) log.info({ instanceId: lease.instanceId, holder: lease.holder() ?? undefined }, 'another instance leads the periodic jobs');
    },
    stop: async () => {
      await lease.stop();
      off();
      await wakes.stop();
    },
  };
}
