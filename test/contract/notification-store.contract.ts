/**
 * What every NotificationStore must do, as a jest suite that each implementation runs against
 * itself (sqlite-notification-store.test.ts). Each test gets a fresh, empty store.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import type { Notification, NotificationKey, NotificationStore } from '../../lib/store/index.js';

export interface NotificationStoreContractOptions {
  /** How to dispose of a store made by `make`. */
  teardown: (store: NotificationStore) => Promise<void>;
  /**
   * For persistent stores: close `store`'s storage and open it again. The suite then also
   * checks that records survive a restart.
   */
  reopen?: (store: NotificationStore) => Promise<NotificationStore>;
}

function keyOf(orgID: string, objectType: string, objectID: string, peerType: string, peerID: string): NotificationKey {
  return { orgID, objectType, objectID, peerType, peerID };
}

function recordOf(key: NotificationKey, fields: Partial<Notification> = {}): Notification {
  return {
    ...key,
    status: 'update', instanceID: 100n, dataID: 100n, deliveryStatus: 'delivering', message: '',
    resendAt: 0, attempts: 0, offset: 0, lastUpdate: 1_700_000_000_000,
    ...fields,
  };
}

/** Every field away from its zero value, unicode keys included. */
function fullyPopulated(): Notification {
  return recordOf(keyOf('組織', 'Ünïcødé model', 'm/1 x', 'camera', 'κάμερα-2'), {
    status: 'receiverError', instanceID: 1_796_424_756_755_170_134n, dataID: 1_796_424_756_755_170_133n,
    deliveryStatus: 'error', message: 'feedback 2: « disk full » & <escaped>',
    resendAt: 1_700_000_060_000, attempts: 7, offset: 5 * 1024 * 1024 * 1024, lastUpdate: 1_700_000_000_999,
  });
}

const peers = (records: Notification[]): string[] => records.map((n) => `${n.peerType}/${n.peerID}`);
const objects = (records: Notification[]): string[] => records.map((n) => `${n.orgID}/${n.objectType}/${n.objectID}`);
const get = (store: NotificationStore, k: NotificationKey): Promise<Notification | null> =>
  store.getNotification(k.orgID, k.objectType, k.objectID, k.peerType, k.peerID);

/** Registers the suite `NotificationStore contract: <name>`. `make` returns a fresh, empty store. */
export function notificationStoreContract(name: string, make: () => Promise<NotificationStore>, options: NotificationStoreContractOptions): void {
  describe(`NotificationStore contract: ${name}`, () => {
    let store: NotificationStore;

    beforeEach(async () => {
      store = await make();
    });

    afterEach(async () => {
      await options.teardown(store);
    });

    describe('records', () => {
      const k = keyOf('org1', 'model', 'm1', 'gateway', 'node-1');

      it('returns null for a record that was never stored', async () => {
        expect(await get(store, k)).toBeNull();
      });

      it('gives back every field as stored', async () => {
        const n = fullyPopulated();
        await store.putNotification(n);
        expect(await get(store, n)).toEqual(n);
      });

      it('keeps one record per (object, peer): a second put replaces every field', async () => {
        await store.putNotification(fullyPopulated());
        await store.putNotification(recordOf(k));
        const replacement = recordOf(k, { status: 'updated', instanceID: 200n, dataID: 150n, deliveryStatus: 'delivered', message: 'm', attempts: 1 });
        await store.putNotification(replacement);
        expect(await get(store, k)).toEqual(replacement);
        expect(await store.listForObject('org1', 'model', 'm1')).toEqual([replacement]);
      });

      it('keys on every part of the key, case-sensitively', async () => {
        const variants = [k, { ...k, orgID: 'ORG1' }, { ...k, objectType: 'Model' }, { ...k, objectID: 'm2' }, { ...k, peerType: 'camera' }, { ...k, peerID: 'node-2' }];
        for (const [i, v] of variants.entries()) await store.putNotification(recordOf(v, { attempts: i }));
        for (const [i, v] of variants.entries()) expect((await get(store, v))?.attempts).toBe(i);
      });

      it('deletes one record, reporting whether there was one', async () => {
        await store.putNotification(recordOf(k));
        await store.putNotification(recordOf({ ...k, peerID: 'node-2' }));
        expect(await store.deleteNotification(k)).toBe(true);
        expect(await store.deleteNotification(k)).toBe(false);
        expect(await get(store, k)).toBeNull();
        expect(await get(store, { ...k, peerID: 'node-2' })).not.toBeNull();
      });
    });

    describe('compare-and-set', () => {
      const k = keyOf('org1', 'model', 'm1', 'gateway', 'node-1');
      const stored = recordOf(k, { status: 'updatePending', instanceID: 100n, dataID: 90n, attempts: 2 });

      beforeEach(async () => {
        await store.putNotification(stored);
      });

      it('applies the patch when status and instanceID still match, leaving other fields alone', async () => {
        const patch = { status: 'updated', deliveryStatus: 'delivering', offset: 4096, lastUpdate: 1_700_000_000_500 } as const;
        expect(await store.updateNotificationIf(k, { status: 'updatePending', instanceID: 100n }, patch)).toBe(true);
        expect(await get(store, k)).toEqual({ ...stored, ...patch });
      });

      it('can set every non-key field at once', async () => {
        const { orgID: _o, objectType: _t, objectID: _i, peerType: _pt, peerID: _p, ...patch } = fullyPopulated();
        expect(await store.updateNotificationIf(k, { instanceID: 100n }, patch)).toBe(true);
        expect(await get(store, k)).toEqual({ ...patch, ...k });
      });

      it('can set numbers to 0 and the message to empty (zero values are values, not "absent")', async () => {
        await store.putNotification({ ...stored, resendAt: 5, attempts: 3, offset: 7, message: 'x' });
        expect(await store.updateNotificationIf(k, {}, { resendAt: 0, attempts: 0, offset: 0, message: '' })).toBe(true);
        expect(await get(store, k)).toEqual({ ...stored, attempts: 0 });
      });

      it('compares only what is given: status alone, instanceID alone, or nothing', async () => {
        expect(await store.updateNotificationIf(k, { status: 'updatePending' }, { attempts: 3 })).toBe(true);
        expect(await store.updateNotificationIf(k, { instanceID: 100n }, { attempts: 4 })).toBe(true);
        expect(await store.updateNotificationIf(k, {}, { attempts: 5 })).toBe(true);
        expect((await get(store, k))?.attempts).toBe(5);
      });

      it('changes nothing for a stale instanceID', async () => {
        expect(await store.updateNotificationIf(k, { status: 'updatePending', instanceID: 99n }, { status: 'updated' })).toBe(false);
        expect(await store.updateNotificationIf(k, { instanceID: 101n }, { status: 'updated' })).toBe(false);
        expect(await get(store, k)).toEqual(stored);
      });

      it('changes nothing when the status has moved on', async () => {
        expect(await store.updateNotificationIf(k, { status: 'update', instanceID: 100n }, { status: 'updated' })).toBe(false);
        expect(await get(store, k)).toEqual(stored);
      });

      it('lets concurrent copies of one message apply once: the first move changes the status the others expect', async () => {
        const ack = (): Promise<boolean> => store.updateNotificationIf(k, { status: 'updatePending', instanceID: 100n }, { status: 'updated' });
        expect((await Promise.all([ack(), ack(), ack()])).filter((applied) => applied)).toHaveLength(1);
        expect((await get(store, k))?.status).toBe('updated');
      });

      it('changes nothing and creates nothing when the record does not exist', async () => {
        const absent = { ...k, peerID: 'absent' };
        expect(await store.updateNotificationIf(absent, {}, { status: 'updated' })).toBe(false);
        expect(await get(store, absent)).toBeNull();
        expect(await get(store, k)).toEqual(stored);
      });

      it('never moves a record to another key', async () => {
        const sneaky = { ...k, instanceID: 100n };
        expect(await store.updateNotificationIf(sneaky, { instanceID: 100n }, { attempts: 9 })).toBe(true);
        expect(await store.listForObject('org1', 'model', 'm1')).toEqual([{ ...stored, attempts: 9 }]);
      });
    });

    describe('per object and per peer', () => {
      beforeEach(async () => {
        for (const [org, type, id, peerType, peerID] of [
          ['org1', 'model', 'm1', 'gateway', 'n2'],
          ['org1', 'model', 'm1', 'camera', 'n9'],
          ['org1', 'model', 'm1', 'gateway', 'n1'],
          ['org1', 'model', 'm2', 'gateway', 'n1'],
          ['org1', 'other', 'm1', 'gateway', 'n1'],
          ['org2', 'model', 'm1', 'gateway', 'n1'],
        ] as const) {
          await store.putNotification(recordOf(keyOf(org, type, id, peerType, peerID)));
        }
      });

      it('lists the records of one object ordered by peer type then peer id', async () => {
        expect(peers(await store.listForObject('org1', 'model', 'm1'))).toEqual(['camera/n9', 'gateway/n1', 'gateway/n2']);
        expect(peers(await store.listForObject('org2', 'model', 'm1'))).toEqual(['gateway/n1']);
        expect(await store.listForObject('org3', 'model', 'm1')).toEqual([]);
      });

      it('deletes the records of one object only', async () => {
        expect(await store.deleteForObject('org1', 'model', 'm1')).toBe(3);
        expect(await store.listForObject('org1', 'model', 'm1')).toEqual([]);
        expect(peers(await store.listForObject('org1', 'model', 'm2'))).toEqual(['gateway/n1']);
        expect(peers(await store.listForObject('org1', 'other', 'm1'))).toEqual(['gateway/n1']);
        expect(peers(await store.listForObject('org2', 'model', 'm1'))).toEqual(['gateway/n1']);
        expect(await store.deleteForObject('org1', 'model', 'm1')).toBe(0);
      });

      it('deletes the records of one peer in one org only', async () => {
        expect(await store.deleteForPeer('org1', 'gateway', 'n1')).toBe(3);
        expect(peers(await store.listForObject('org1', 'model', 'm1'))).toEqual(['camera/n9', 'gateway/n2']);
        expect(await store.listForObject('org1', 'model', 'm2')).toEqual([]);
        expect(peers(await store.listForObject('org2', 'model', 'm1'))).toEqual(['gateway/n1']);
        expect(await store.deleteForPeer('org1', 'gateway', 'n1')).toBe(0);
      });
    });

    describe('the poll query', () => {
      const peer = ['org1', 'gateway', 'n1'] as const;

      beforeEach(async () => {
        const mine = (type: string, id: string, fields: Partial<Notification>): Notification => recordOf(keyOf('org1', type, id, 'gateway', 'n1'), fields);
        await store.putNotification(mine('t', 'c', { status: 'updatePending', lastUpdate: 30 }));
        await store.putNotification(mine('t', 'a', { status: 'deletePending', lastUpdate: 10 }));
        await store.putNotification(mine('t', 'b', { status: 'updatePending', lastUpdate: 30 }));
        await store.putNotification(mine('s', 'z', { status: 'receivedpending', lastUpdate: 30 }));
        await store.putNotification(mine('t', 'd', { status: 'updated', lastUpdate: 1 }));
        await store.putNotification(mine('t', 'e', { status: 'update', lastUpdate: 2 }));
        // The same statuses for other peers and another org must never show.
        await store.putNotification(recordOf(keyOf('org1', 't', 'a', 'gateway', 'n2'), { status: 'updatePending', lastUpdate: 0 }));
        await store.putNotification(recordOf(keyOf('org1', 't', 'a', 'camera', 'n1'), { status: 'updatePending', lastUpdate: 0 }));
        await store.putNotification(recordOf(keyOf('org2', 't', 'a', 'gateway', 'n1'), { status: 'updatePending', lastUpdate: 0 }));
      });

      const pending = ['updatePending', 'deletePending', 'receivedpending', 'consumedPending', 'deletedPending'] as const;

      it('returns that peer\'s records in the given statuses, oldest first, ties by type then id', async () => {
        expect(objects(await store.listPendingForPeer(...peer, pending, 100))).toEqual(['org1/t/a', 'org1/s/z', 'org1/t/b', 'org1/t/c']);
      });

      it('returns whole records', async () => {
        expect(await store.listPendingForPeer(...peer, ['deletePending'], 100)).toEqual([
          recordOf(keyOf('org1', 't', 'a', 'gateway', 'n1'), { status: 'deletePending', lastUpdate: 10 }),
        ]);
      });

      it('honours the limit, keeping the oldest', async () => {
        expect(objects(await store.listPendingForPeer(...peer, pending, 2))).toEqual(['org1/t/a', 'org1/s/z']);
        expect(await store.listPendingForPeer(...peer, pending, 0)).toEqual([]);
      });

      it('matches only the listed statuses, and nothing for an empty list', async () => {
        expect(objects(await store.listPendingForPeer(...peer, ['update', 'updated'], 100))).toEqual(['org1/t/d', 'org1/t/e']);
        expect(await store.listPendingForPeer(...peer, [], 100)).toEqual([]);
        expect(await store.listPendingForPeer('org1', 'gateway', 'nobody', pending, 100)).toEqual([]);
      });

      it('rejects a negative or fractional limit', async () => {
        await expect(store.listPendingForPeer(...peer, pending, -1)).rejects.toThrow();
        await expect(store.listPendingForPeer(...peer, pending, 1.5)).rejects.toThrow();
      });
    });

    describe('the due query', () => {
      const now = 1_700_000_000_000;

      beforeEach(async () => {
        const at = (org: string, id: string, resendAt: number): Notification => recordOf(keyOf(org, 't', id, 'gateway', 'n1'), { resendAt });
        await store.putNotification(at('org1', 'unscheduled', 0));
        await store.putNotification(at('org1', 'future', now + 1));
        await store.putNotification(at('org1', 'exactly-now', now));
        await store.putNotification(at('org2', 'long-ago', 1));
        await store.putNotification(at('org1', 'earlier-b', now - 1000));
        await store.putNotification(at('org1', 'earlier-a', now - 1000));
      });

      it('returns, across orgs, records with 0 < resendAt <= now, earliest first, ties by key', async () => {
        expect(objects(await store.listDue(now, 100))).toEqual(['org2/t/long-ago', 'org1/t/earlier-a', 'org1/t/earlier-b', 'org1/t/exactly-now']);
      });

      it('honours the limit', async () => {
        expect(objects(await store.listDue(now, 1))).toEqual(['org2/t/long-ago']);
        expect(await store.listDue(now, 0)).toEqual([]);
      });

      it('returns nothing before the first resend time, and never an unscheduled record', async () => {
        expect(await store.listDue(0, 100)).toEqual([]);
        expect(objects(await store.listDue(Number.MAX_SAFE_INTEGER, 100))).not.toContain('org1/t/unscheduled');
      });

      it('drops a record once a compare-and-set unschedules it', async () => {
        const k = keyOf('org2', 't', 'long-ago', 'gateway', 'n1');
        expect(await store.updateNotificationIf(k, { status: 'update' }, { resendAt: 0 })).toBe(true);
        expect(objects(await store.listDue(now, 100))).not.toContain('org2/t/long-ago');
      });
    });

    describe('delivery status counts', () => {
      it('count the records of one object per delivery status, every status present', async () => {
        const put = (type: string, peerID: string, deliveryStatus: Notification['deliveryStatus']): Promise<void> =>
          store.putNotification(recordOf(keyOf('org1', type, 'm1', 'gateway', peerID), { deliveryStatus }));
        await put('model', 'n1', 'delivered');
        await put('model', 'n2', 'delivered');
        await put('model', 'n3', 'error');
        await put('model', 'n4', 'consumed');
        await put('other', 'n5', 'pending');
        expect(await store.countByDeliveryStatus('org1', 'model', 'm1')).toEqual({
          pending: 0, delivering: 0, delivered: 2, consumed: 1, deleted: 0, error: 1,
        });
        expect(await store.countByDeliveryStatus('org1', 'absent', 'm1')).toEqual({
          pending: 0, delivering: 0, delivered: 0, consumed: 0, deleted: 0, error: 0,
        });
      });
    });

    describe('counts across orgs (the metrics)', () => {
      it('groups every record by org, status and delivery status, leaving empty groups out', async () => {
        expect(await store.countNotifications()).toEqual([]);
        await store.putNotification(recordOf(keyOf('org1', 'model', 'm1', 'gw', 'n1')));
        await store.putNotification(recordOf(keyOf('org1', 'model', 'm2', 'gw', 'n1')));
        await store.putNotification(recordOf(keyOf('org1', 'model', 'm1', 'gw', 'n2'), { status: 'consumedByDest', deliveryStatus: 'consumed' }));
        await store.putNotification(recordOf(keyOf('org2', 'model', 'm1', 'gw', 'n1'), { status: 'error', deliveryStatus: 'error' }));
        const byKey = (a: { orgID: string; status: string }, b: { orgID: string; status: string }): number => `${a.orgID}/${a.status}`.localeCompare(`${b.orgID}/${b.status}`);
        expect((await store.countNotifications()).sort(byKey)).toEqual([
          { orgID: 'org1', status: 'consumedByDest', deliveryStatus: 'consumed', count: 1 },
          { orgID: 'org1', status: 'update', deliveryStatus: 'delivering', count: 2 },
          { orgID: 'org2', status: 'error', deliveryStatus: 'error', count: 1 },
        ]);
      });
    });

    if (options.reopen !== undefined) {
      const reopen = options.reopen;
      it('keeps records, and what compare-and-set wrote, across close and reopen', async () => {
        const n = fullyPopulated();
        const k = keyOf('org1', 'model', 'm1', 'gateway', 'n1');
        await store.putNotification(n);
        await store.putNotification(recordOf(k, { resendAt: 5 }));
        expect(await store.updateNotificationIf(k, { status: 'update' }, { status: 'updated', offset: 1024 })).toBe(true);
        store = await reopen(store);
        expect(await get(store, n)).toEqual(n);
        expect(await get(store, k)).toEqual(recordOf(k, { resendAt: 5, status: 'updated', offset: 1024 }));
        expect(objects(await store.listDue(10, 10))).toEqual(['org1/model/m1']);
      });
    }
  });
}
