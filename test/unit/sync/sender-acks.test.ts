import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import type { MetaData } from '../../../lib/model/index.js';
import { SqliteStore, type Notification, type NotificationStatus, type NotificationStore, type StoredObject } from '../../../lib/store/index.js';
import { SenderAcks } from '../../../lib/sync/sender-acks.js';
import { storedObject } from '../../helpers/stored-object.js';

const root = mkdtempSync(join(tmpdir(), 'edgesync-acks-'));
let fileCount = 0;
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

const ORG = 'org1';
const NOW = 1_700_000_000_000;
// Beyond 2^53, as the reference's ids: a double would round it.
const INSTANCE = 1796424756755170134n;

function objectOf(objectID: string, meta: Partial<MetaData> = {}): StoredObject {
  return storedObject(ORG, objectID, INSTANCE, meta);
}

function recordOf(objectID: string, peerID: string, status: NotificationStatus, fields: Partial<Notification> = {}): Notification {
  return {
    orgID: ORG,
    objectType: 'model',
    objectID,
    peerType: 'edge',
    peerID,
    status,
    instanceID: INSTANCE,
    dataID: INSTANCE,
    deliveryStatus: 'delivering',
    message: '',
    resendAt: 0,
    attempts: 0,
    offset: 0,
    lastUpdate: 1,
    ...fields,
  };
}

const key = (objectID: string, peerID = 'n1') => ({ orgID: ORG, objectType: 'model', objectID, peerType: 'edge', peerID });

describe('SenderAcks', () => {
  let store: SqliteStore;
  let notifications: NotificationStore;
  let acks: SenderAcks;
  let deleted: string[];

  beforeEach(async () => {
    store = new SqliteStore({ path: join(root, `acks-${++fileCount}.db`) });
    await store.init();
    notifications = store.notifications();
    deleted = [];
    const objects = {
      delete: async (org: string, type: string, id: string): Promise<void> => {
        deleted.push(id);
        await store.deleteObject(org, type, id);
      },
    };
    acks = new SenderAcks({ store, notifications, objects, now: () => NOW });
  });

  afterEach(async () => {
    await store.close();
  });

  const get = (objectID: string, peerID = 'n1') => notifications.getNotification(ORG, 'model', objectID, 'edge', peerID);

  it('walks updated → received → consumed, each once; repeats are duplicates', async () => {
    await store.putObject(objectOf('m1'));
    await notifications.putNotification(recordOf('m1', 'n1', 'updatePending'));
    expect(await acks.apply(key('m1'), INSTANCE, 'updated')).toBe('applied');
    expect(await get('m1')).toMatchObject({ status: 'updated', deliveryStatus: 'delivering', lastUpdate: NOW });
    expect(await acks.apply(key('m1'), INSTANCE, 'updated')).toBe('duplicate');
    expect(await acks.apply(key('m1'), INSTANCE, 'received')).toBe('applied');
    expect(await get('m1')).toMatchObject({ status: 'receivedByDest', deliveryStatus: 'delivered' });
    expect(await acks.apply(key('m1'), INSTANCE, 'consumed')).toBe('applied');
    expect(await get('m1')).toMatchObject({ status: 'consumedByDest', deliveryStatus: 'consumed' });
    expect(await acks.apply(key('m1'), INSTANCE, 'received')).toBe('duplicate');
    expect(await get('m1')).toMatchObject({ status: 'consumedByDest' });
    expect(deleted).toEqual([]);
  });

  it('changes nothing for a stale instance, an unknown pair, or a state that does not take the answer', async () => {
    const rec = recordOf('m1', 'n1', 'updatePending');
    await notifications.putNotification(rec);
    expect(await acks.apply(key('m1'), INSTANCE + 1n, 'updated')).toBe('stale');
    expect(await acks.apply(key('m1', 'n2'), INSTANCE, 'updated')).toBe('unknown');
    expect(await acks.apply(key('m1'), INSTANCE, 'ackDelete')).toBe('ignored');
    expect(await acks.apply(key('m1'), INSTANCE, 'deleted')).toBe('ignored');
    expect(await get('m1')).toEqual(rec);
  });

  it('an answer about the right instance but another dataID is stale and changes nothing', async () => {
    const rec = recordOf('m1', 'n1', 'getdata');
    await notifications.putNotification(rec);
    expect(await acks.apply(key('m1'), INSTANCE, 'received', undefined, INSTANCE - 1n)).toBe('stale');
    expect(await acks.apply(key('m1'), INSTANCE, 'feedback', { code: 2, retryInterval: 0, reason: 'forged' }, INSTANCE + 1n)).toBe('stale');
    expect(await get('m1')).toEqual(rec);
    expect(await acks.apply(key('m1'), INSTANCE, 'received', undefined, INSTANCE)).toBe('applied');
  });

  it('ackDelete marks the destination deleted; deleted drops the record', async () => {
    await notifications.putNotification(recordOf('m1', 'n1', 'deletePending', { deliveryStatus: 'delivered' }));
    expect(await acks.apply(key('m1'), INSTANCE, 'ackDelete')).toBe('applied');
    expect(await get('m1')).toMatchObject({ status: 'ackDelete', deliveryStatus: 'deleted' });
    expect(await acks.apply(key('m1'), INSTANCE, 'ackDelete')).toBe('duplicate');
    expect(await acks.apply(key('m1'), INSTANCE, 'deleted')).toBe('applied');
    expect(await get('m1')).toBeNull();
    expect(await acks.apply(key('m1'), INSTANCE, 'deleted')).toBe('unknown');
  });

  it('feedback: an error with its reason and retry time; code 5 forgets the pair', async () => {
    await notifications.putNotification(recordOf('m1', 'n1', 'getdata'));
    expect(await acks.apply(key('m1'), INSTANCE, 'feedback', { code: 2, retryInterval: 30, reason: 'disk full' })).toBe('applied');
    // The receiver named its retry interval: the resend timer offers it again then.
    expect(await get('m1')).toMatchObject({ status: 'error', deliveryStatus: 'error', message: 'disk full', resendAt: NOW + 30_000, attempts: 1 });
    expect(await acks.apply(key('m1'), INSTANCE, 'feedback', { code: 1, retryInterval: 0, reason: 'again' })).toBe('applied');
    // No interval named: RESEND_INTERVAL (10 s by default) doubled for the second failure.
    expect(await get('m1')).toMatchObject({ status: 'error', message: 'again', resendAt: NOW + 20_000, attempts: 2 });
    expect(await acks.apply(key('m1'), INSTANCE, 'feedback', { code: 5, retryInterval: 0, reason: 'unknown object' })).toBe('applied');
    expect(await get('m1')).toBeNull();
  });

  it('received after an error report: the receiver got the data on its own retry; delivered', async () => {
    await notifications.putNotification(recordOf('m1', 'n1', 'getdata'));
    expect(await acks.apply(key('m1'), INSTANCE, 'feedback', { code: 1, retryInterval: 1, reason: 'data SHA-256 mismatch' })).toBe('applied');
    expect(await acks.apply(key('m1'), INSTANCE, 'received')).toBe('applied');
    expect(await get('m1')).toMatchObject({ status: 'receivedByDest', deliveryStatus: 'delivered', message: '', resendAt: 0 });
  });

  it('removes an autodelete object once every destination consumed it, sending no delete', async () => {
    await store.putObject(objectOf('a1', { autodelete: true, destinationType: 'edge' }));
    await notifications.putNotification(recordOf('a1', 'n1', 'receivedByDest'));
    await notifications.putNotification(recordOf('a1', 'n2', 'updated'));
    expect(await acks.apply(key('a1', 'n1'), INSTANCE, 'consumed')).toBe('applied');
    expect(deleted).toEqual([]);
    expect(await acks.apply(key('a1', 'n2'), INSTANCE, 'consumed')).toBe('applied');
    expect(deleted).toEqual(['a1']);
    expect(await store.getObject(ORG, 'model', 'a1')).toBeNull();
    expect(await notifications.listForObject(ORG, 'model', 'a1')).toEqual([]);
  });

  it('resend requeues the open records of the peer at the current instance, as served (update); final ones stay', async () => {
    await store.putObject(objectOf('e1', { instanceID: INSTANCE + 7n, dataID: INSTANCE + 7n }));
    await store.putObject(objectOf('r1'));
    await store.putObject(objectOf('c1'));
    await notifications.putNotification(recordOf('e1', 'n1', 'error', { deliveryStatus: 'error', message: 'disk full' }));
    await notifications.putNotification(recordOf('r1', 'n1', 'receivedByDest', { deliveryStatus: 'delivered' }));
    await notifications.putNotification(recordOf('c1', 'n1', 'consumedByDest', { deliveryStatus: 'consumed' }));
    await notifications.putNotification(recordOf('d1', 'n1', 'delete', { deliveryStatus: 'delivered' }));
    await notifications.putNotification(recordOf('d2', 'n1', 'ackDelete', { deliveryStatus: 'deleted' }));
    await notifications.putNotification(recordOf('r1', 'n2', 'receivedByDest', { deliveryStatus: 'delivered' }));
    expect(await acks.resend(ORG, 'edge', 'n1')).toBe(3);
    expect(await get('e1')).toMatchObject({ status: 'update', deliveryStatus: 'delivering', message: '', instanceID: INSTANCE + 7n, dataID: INSTANCE + 7n });
    expect(await get('r1')).toMatchObject({ status: 'update', deliveryStatus: 'delivering' });
    expect(await get('c1')).toMatchObject({ status: 'consumedByDest' });
    expect(await get('d1')).toMatchObject({ status: 'deletePending', deliveryStatus: 'delivered', instanceID: INSTANCE });
    expect(await get('d2')).toMatchObject({ status: 'ackDelete' });
    expect(await get('r1', 'n2')).toMatchObject({ status: 'receivedByDest' });
  });
});
