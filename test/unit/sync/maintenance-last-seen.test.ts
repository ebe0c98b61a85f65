/**
 * The last contact of an ESS, which REMOVE_ESS_REGISTRATION_TIME measures: the CSS engine moves
 * it forward when the ESS polls (at most once per throttle period), not when the CSS pushes on
 * its own, and never re-creates a registration the maintenance removed.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { FailedDependencyError } from '../../../lib/model/index.js';
import type { SqliteStore } from '../../../lib/store/index.js';
import { CssEngine } from '../../../lib/sync/css/ess-session.js';
import { ORG, openStores, scratchDirs } from '../../helpers/sync-fixtures.js';

const dirs = scratchDirs('edgesync-last-seen-');
const T0 = 1_800_000_000_000;
const PEER = { orgID: ORG, destType: 'edge', destID: 'n1' };

describe('an ESS’s last contact', () => {
  let store: SqliteStore;
  let engine: CssEngine;
  let now: number;

  beforeEach(async () => {
    const stores = await openStores(dirs());
    store = stores.store;
    now = T0;
    // Only the registration and the queue are reached by these calls.
    const unused = {} as never;
    engine = new CssEngine({ store, notifications: stores.notifications, sender: unused, acks: unused, objects: unused, upstream: unused, now: () => now, lastSeenThrottleMs: 1_000 });
    await store.putDestination({ destinationOrgID: ORG, destinationType: 'edge', destinationID: 'n1', communication: 'http', codeVersion: '1.0', lastPing: T0 });
  });
  afterEach(() => store.close());

  const lastPing = async (): Promise<number | undefined> => (await store.getDestination(ORG, 'edge', 'n1'))?.lastPing;

  it('moves forward with a poll, at most once per throttle period', async () => {
    now = T0 + 500;
    await engine.session(PEER).pending();
    expect(await lastPing()).toBe(T0);
    now = T0 + 1_500;
    await engine.session(PEER).pending();
    expect(await lastPing()).toBe(T0 + 1_500);
  });

  it('does not move with a push round of the CSS', async () => {
    now = T0 + 60_000;
    await engine.session(PEER).pending(10, { markServed: false, pushed: true });
    expect(await lastPing()).toBe(T0);
  });

  it('does not bring back a registration removed while a session remembered it', async () => {
    const session = engine.session(PEER);
    await session.pending();
    await store.deleteDestination(ORG, 'edge', 'n1');
    now = T0 + 5_000;
    await expect(session.pending()).rejects.toBeInstanceOf(FailedDependencyError);
    expect(await store.getDestination(ORG, 'edge', 'n1')).toBeNull();
  });
});
