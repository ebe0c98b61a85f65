import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import type { MetaData } from '../../../lib/model/index.js';
import { SqliteStore, type Destination, type Notification, type NotificationStore, type StoredObject } from '../../../lib/store/index.js';
import { Sender } from '../../../lib/sync/sender.js';
import { storedObject } from '../../helpers/stored-object.js';

const root = mkdtempSync(join(tmpdir(), 'edgesync-sender-'));
let fileCount = 0;
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

const ORG = 'org1';
let instance = 1796424756755170100n;

function objectOf(objectID: string, meta: Partial<MetaData> = {}, fields: Partial<StoredObject> = {}): StoredObject {
  return storedObject(ORG, objectID, ++instance, meta, fields);
}

function destinationOf(destinationType: string, destinationID: string): Destination {
  return { destinationOrgID: ORG, destinationType, destinationID, communication: 'HTTP', codeVersion: '', lastPing: 1 };
}

/** The records of one object as (peer, status, deliveryStatus, instanceID) rows. */
function rows(records: Notification[]): [string, string, string, bigint][] {
  return records.map((r) => [`${r.peerType}:${r.peerID}`, r.status, r.deliveryStatus, r.instanceID]);
}

describe('Sender', () => {
  let store: SqliteStore;
  let notifications: NotificationStore;
  let sender: Sender;

  beforeEach(async () => {
    store = new SqliteStore({ path: join(root, `sender-${++fileCount}.db`) });
    await store.init();
    notifications = store.notifications();
    sender = new Sender({ store, notifications, now: () => 1_700_000_000_000 });
    for (const d of [destinationOf('edge', 'n1'), destinationOf('edge', 'n2'), destinationOf('other', 'o1')]) await store.putDestination(d);
  });

  afterEach(async () => {
    await store.close();
  });

  /** Stores the object and tells the sender, as ObjectService does. */
  async function publish(obj: StoredObject): Promise<StoredObject> {
    await store.putObject(obj);
    await sender.onObjectPublished(obj);
    return obj;
  }

  const recordsOf = async (objectID: string): Promise<Notification[]> => notifications.listForObject(ORG, 'model', objectID);

  it('queues an object addressed to a type for the registered nodes of that type only', async () => {
    const obj = await publish(objectOf('m1', { destinationType: 'edge' }));
    expect(rows(await recordsOf('m1'))).toEqual([
      ['edge:n1', 'updatePending', 'delivering', obj.meta.instanceID],
      ['edge:n2', 'updatePending', 'delivering', obj.meta.instanceID],
    ]);
    const rec = (await recordsOf('m1'))[0];
    expect(rec).toMatchObject({ dataID: obj.meta.dataID, message: '', resendAt: 0, attempts: 0, offset: 0, lastUpdate: 1_700_000_000_000 });
  });

  it('queues an object for every node of its list, a node not registered yet as pending', async () => {
    await publish(objectOf('m2', { destinationsList: ['edge:n2', 'edge:late'] }));
    expect(rows(await recordsOf('m2')).map(([peer, , delivery]) => [peer, delivery])).toEqual([
      ['edge:late', 'pending'],
      ['edge:n2', 'delivering'],
    ]);
  });

  it('keeps the destinations pending while the object is not ready or inactive', async () => {
    await publish(objectOf('m3', { destinationType: 'edge', destinationID: 'n1' }, { status: 'notReady' }));
    await publish(objectOf('m4', { destinationType: 'edge', destinationID: 'n1', inactive: true }));
    expect(rows(await recordsOf('m3')).map((r) => r[2])).toEqual(['pending']);
    expect(rows(await recordsOf('m4')).map((r) => r[2])).toEqual(['pending']);
  });

  it('gives a node registering later the type- and broadcast-addressed objects, and those naming it', async () => {
    const byType = await publish(objectOf('t1', { destinationType: 'edge' }));
    await publish(objectOf('b1', {}));
    await publish(objectOf('l1', { destinationsList: ['edge:late'] }));
    await publish(objectOf('x1', { destinationType: 'other' }));
    const late = destinationOf('edge', 'late');
    await store.putDestination(late);
    await sender.onDestinationRegistered(late, true);
    const mine = async (id: string): Promise<Notification | null> => notifications.getNotification(ORG, 'model', id, 'edge', 'late');
    // Registered as new: it may still hold objects from before, so a deletion must reach it.
    expect((await mine('t1'))).toMatchObject({ status: 'update', deliveryStatus: 'delivering', instanceID: byType.meta.instanceID });
    expect((await mine('b1'))?.deliveryStatus).toBe('delivering');
    expect((await mine('l1'))?.deliveryStatus).toBe('delivering');
    expect(await mine('x1')).toBeNull();
  });

  it('replaces the record of an older instance when the object is published again', async () => {
    const first = await publish(objectOf('m5', { destinationType: 'edge', destinationID: 'n1' }));
    const second = await publish(objectOf('m5', { destinationType: 'edge', destinationID: 'n1' }));
    expect(second.meta.instanceID).toBeGreaterThan(first.meta.instanceID);
    expect(rows(await recordsOf('m5'))).toEqual([['edge:n1', 'updatePending', 'delivering', second.meta.instanceID]]);
  });

  it('queues a new instance as `update` toward a node that may hold an earlier one', async () => {
    const first = await publish(objectOf('m9', { destinationType: 'edge', destinationID: 'n1' }));
    const key = { orgID: ORG, objectType: 'model', objectID: 'm9', peerType: 'edge', peerID: 'n1' };
    await notifications.updateNotificationIf(key, {}, { status: 'receivedByDest', deliveryStatus: 'delivered' });
    const second = await publish(objectOf('m9', { destinationType: 'edge', destinationID: 'n1' }));
    expect(second.meta.instanceID).toBeGreaterThan(first.meta.instanceID);
    expect(rows(await recordsOf('m9'))).toEqual([['edge:n1', 'update', 'delivering', second.meta.instanceID]]);
    // Deleted before the node polled the new instance: it still holds the old one, so it is told.
    await store.deleteObject(ORG, 'model', 'm9');
    await sender.onObjectDeleted(second);
    expect(rows(await recordsOf('m9'))).toEqual([['edge:n1', 'deletePending', 'delivering', second.meta.instanceID]]);
  });

  it('keeps the progress of a destination that stays when the object changes in place', async () => {
    const obj = await publish(objectOf('m6', { destinationsList: ['edge:n1'] }));
    const key = { orgID: ORG, objectType: 'model', objectID: 'm6', peerType: 'edge', peerID: 'n1' };
    await notifications.updateNotificationIf(key, {}, { status: 'receivedByDest', deliveryStatus: 'delivered' });
    await publish({ ...obj, meta: { ...obj.meta, destinationsList: ['edge:n1', 'edge:n2'] } });
    expect(rows(await recordsOf('m6'))).toEqual([
      ['edge:n1', 'receivedByDest', 'delivered', obj.meta.instanceID],
      ['edge:n2', 'updatePending', 'delivering', obj.meta.instanceID],
    ]);
  });

  /** What the SPI poll does when it serves a queued update to the node. */
  async function served(objectID: string, peerID: string): Promise<void> {
    const key = { orgID: ORG, objectType: 'model', objectID, peerType: 'edge', peerID };
    expect(await notifications.updateNotificationIf(key, { status: 'updatePending' }, { status: 'update' })).toBe(true);
  }

  it('sends a delete to a node dropped from the list that had the object, and forgets a pending one', async () => {
    const obj = await publish(objectOf('m7', { destinationsList: ['edge:n1', 'edge:late'] }));
    await served('m7', 'n1');
    await publish({ ...obj, meta: { ...obj.meta, destinationsList: ['edge:n2'] } });
    expect(rows(await recordsOf('m7')).map(([peer, status]) => [peer, status])).toEqual([
      ['edge:n1', 'deletePending'],
      ['edge:n2', 'updatePending'],
    ]);
  });

  it('on delete, marks nodes that were served deletePending (delivery status unchanged) and drops the others', async () => {
    const obj = await publish(objectOf('m8', { destinationsList: ['edge:n1', 'edge:n2', 'edge:late', 'other:o1'] }));
    await served('m8', 'n1');
    const key = { orgID: ORG, objectType: 'model', objectID: 'm8', peerType: 'edge', peerID: 'n2' };
    await notifications.updateNotificationIf(key, {}, { status: 'consumedByDest', deliveryStatus: 'consumed' });
    await store.deleteObject(ORG, 'model', 'm8');
    await sender.onObjectDeleted(obj);
    // other:o1 is registered but never polled the update (it was offline): nothing to tell it.
    expect(rows(await recordsOf('m8'))).toEqual([
      ['edge:n1', 'deletePending', 'delivering', obj.meta.instanceID],
      ['edge:n2', 'deletePending', 'consumed', obj.meta.instanceID],
    ]);
  });

  it('on delete, sends a delete to a node a poll served the update to while the deletion was under way', async () => {
    const obj = await publish(objectOf('m10', { destinationType: 'edge', destinationID: 'n1' }));
    // The poll marks the record served between the Sender's read and its close of the record.
    const racing: NotificationStore = Object.create(notifications) as NotificationStore;
    racing.updateNotificationIf = async (key, expected, patch) => {
      if (patch.status === 'ackDeleted') await served(key.objectID, key.peerID);
      return notifications.updateNotificationIf(key, expected, patch);
    };
    await store.deleteObject(ORG, 'model', 'm10');
    await new Sender({ store, notifications: racing }).onObjectDeleted(obj);
    expect(rows(await recordsOf('m10'))).toEqual([['edge:n1', 'deletePending', 'delivering', obj.meta.instanceID]]);
  });

  it('signals each peer it queues something servable for: updates, deletes, registrations; not pending ones', async () => {
    const woken: string[] = [];
    const signalled = new Sender({ store, notifications, peerSignal: { notify: (org, type, id) => void woken.push(`${org}/${type}/${id}`) } });
    const obj = objectOf('s1', { destinationsList: ['edge:n1', 'edge:late'] });
    await store.putObject(obj);
    await signalled.onObjectPublished(obj);
    expect(woken).toEqual(['org1/edge/n1']);
    await signalled.onObjectPublished(obj);
    expect(woken).toEqual(['org1/edge/n1']);
    const late = destinationOf('edge', 'late');
    await store.putDestination(late);
    await signalled.onDestinationRegistered(late, false);
    expect(woken).toEqual(['org1/edge/n1', 'org1/edge/late']);
    await served('s1', 'n1');
    await served('s1', 'late');
    await store.deleteObject(ORG, 'model', 's1');
    await signalled.onObjectDeleted(obj);
    expect(woken.slice(2).sort()).toEqual(['org1/edge/late', 'org1/edge/n1']);
  });

  it('ignores objects on the receiving side', async () => {
    await publish(objectOf('r1', { destinationType: 'edge' }, { status: 'completelyReceived' }));
    expect(await recordsOf('r1')).toEqual([]);
  });
});
