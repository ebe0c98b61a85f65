import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { emptyMetaData } from '../../../lib/model/index.js';
import type { Notification, NotificationStore } from '../../../lib/store/notification-types.js';
import { SqliteStore } from '../../../lib/store/index.js';
import { MAX_RETRY_DELAY_MS, ResendScheduler, retryDelay } from '../../../lib/sync/resend-scheduler.js';

const root = mkdtempSync(join(tmpdir(), 'edgesync-resend-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const NOW = 1_700_000_000_000;
let n = 0;
let store: SqliteStore;
let notifications: NotificationStore;
let woken: string[];
let scheduler: ResendScheduler;

beforeEach(async () => {
  store = new SqliteStore({ path: join(root, `s-${++n}.db`) });
  await store.init();
  notifications = store.notifications();
  woken = [];
  scheduler = new ResendScheduler({
    notifications,
    store,
    peerSignal: { notify: (org, type, id) => woken.push(`${org}/${type}/${id}`) },
    intervalMs: 10_000,
    log: { warn: () => undefined },
    now: () => NOW,
  });
});
afterEach(async () => {
  await scheduler.stop();
  await store.close();
});

async function publish(objectID: string, instanceID: bigint): Promise<void> {
  const meta = { ...emptyMetaData(), destinationOrgID: 'o', objectType: 'model', objectID, instanceID, dataID: instanceID, noData: true };
  await store.putObject({ meta, status: 'ready', blobId: null, dataSha256: null, remainingConsumers: 1, remainingReceivers: 1, policyReceived: false, lastUpdate: NOW });
}

function errored(objectID: string, instanceID: bigint, resendAt: number): Notification {
  return {
    orgID: 'o',
    objectType: 'model',
    objectID,
    peerType: 'edge',
    peerID: 'n1',
    status: 'error',
    instanceID,
    dataID: instanceID,
    deliveryStatus: 'error',
    message: 'disk full',
    resendAt,
    attempts: 2,
    offset: 0,
    lastUpdate: NOW - 1000,
  };
}

const get = (objectID: string): Promise<Notification | null> => notifications.getNotification('o', 'model', objectID, 'edge', 'n1');

describe('retryDelay', () => {
  it('doubles from RESEND_INTERVAL with each failure, up to an hour', () => {
    expect([0, 1, 2, 3].map((a) => retryDelay(10_000, a))).toEqual([10_000, 20_000, 40_000, 80_000]);
    expect(retryDelay(10_000, 9)).toBe(MAX_RETRY_DELAY_MS);
    expect(retryDelay(10_000, 5000)).toBe(MAX_RETRY_DELAY_MS);
  });
});

describe('ResendScheduler', () => {
  it('offers a due error again as an update, keeps its failure count, and wakes the peer’s long-poll', async () => {
    await publish('m1', 7n);
    await notifications.putNotification(errored('m1', 7n, NOW));
    expect(await scheduler.tick()).toBe(1);
    expect(await get('m1')).toMatchObject({ status: 'update', deliveryStatus: 'delivering', resendAt: 0, attempts: 2, message: 'disk full' });
    expect(woken).toEqual(['o/edge/n1']);
    // Done: the next tick finds nothing.
    expect(await scheduler.tick()).toBe(0);
  });

  it('leaves an error that is not due yet', async () => {
    await publish('m1', 7n);
    await notifications.putNotification(errored('m1', 7n, NOW + 1));
    expect(await scheduler.tick()).toBe(0);
    expect(await get('m1')).toMatchObject({ status: 'error', resendAt: NOW + 1 });
  });

  it('does not retry an older instance or a removed object, and stops finding it', async () => {
    await publish('m1', 8n);
    await notifications.putNotification(errored('m1', 7n, NOW));
    await notifications.putNotification(errored('gone', 7n, NOW));
    expect(await scheduler.tick()).toBe(0);
    expect(await get('m1')).toMatchObject({ status: 'error', resendAt: 0 });
    expect(await get('gone')).toMatchObject({ status: 'error', resendAt: 0 });
    expect(woken).toEqual([]);
  });
});
