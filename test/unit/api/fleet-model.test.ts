import { BadRequestError } from '../../../lib/model/index.js';
import {
  decodeCursor,
  encodeCursor,
  fleetDelivery,
  fleetNode,
  fleetObject,
  healthFromContact,
  paginate,
  parseLimit,
} from '../../../lib/api/routes/fleet-model.js';
import type { Notification } from '../../../lib/store/notification-types.js';
import type { StoredObject } from '../../../lib/store/types.js';
import type { TransferProgress } from '../../../lib/sync/transfer-progress.js';

const NOW = Date.parse('2026-12-05T12:00:00Z');
const MIN = 60_000;

function record(peerID: string, deliveryStatus: Notification['deliveryStatus'], extra: Partial<Notification> = {}): Notification {
  return {
    orgID: 'o', objectType: 't', objectID: 'i', peerType: 'edge', peerID,
    status: 'update', instanceID: 7n, dataID: 7n, deliveryStatus, message: '', resendAt: 0, attempts: 0, offset: 0, lastUpdate: NOW,
    ...extra,
  };
}

function live(peerID: string, bytes: number, instanceID = 7n): TransferProgress {
  return { orgID: 'o', objectType: 't', objectID: 'i', instanceID, peerType: 'edge', peerID, direction: 'sent', transport: 'http', bytes, total: 100, updatedAt: NOW };
}

describe('the fleet read model', () => {
  describe('a node\'s health from its last contact', () => {
    it.each([
      ['http', 2 * MIN, 'ok'],
      ['http', 5 * MIN, 'late'],
      ['http', 10 * MIN, 'silent'],
      ['mqtt', 60 * MIN, 'ok'],
      ['mqtt', 120 * MIN, 'late'],
      ['mqtt', 300 * MIN, 'silent'],
    ] as const)('%s, heard from %d ms ago: %s', (communication, age, verdict) => {
      expect(healthFromContact(communication, NOW - age, NOW)).toBe(verdict);
    });

    it('calls a node never heard from silent, with no last contact', () => {
      const n = fleetNode({ destinationOrgID: 'o', destinationType: 'edge', destinationID: 'n1', communication: 'http', codeVersion: '1', lastPing: 0 }, NOW);
      expect(n).toMatchObject({ kind: 'ESS', lastContact: null, health: 'silent' });
    });
  });

  describe('paging', () => {
    const items = ['b/2', 'a/1', 'b/1', 'c/1', 'a/2'].map((k) => k.split('/') as [string, string]);
    const key = (i: [string, string]): [string, string] => i;

    it('orders by (type, id) and hands a cursor that continues after the last item', () => {
      const first = paginate(items, key, 2, null);
      expect(first.items).toEqual([['a', '1'], ['a', '2']]);
      expect(first.total).toBe(5);
      const second = paginate(items, key, 2, decodeCursor(first.next ?? '', 'after'));
      expect(second.items).toEqual([['b', '1'], ['b', '2']]);
      const third = paginate(items, key, 2, decodeCursor(second.next ?? '', 'after'));
      expect(third).toEqual({ items: [['c', '1']], next: null, total: 5 });
    });

    it('keeps a cursor right when the item it names is gone', () => {
      const after = paginate(items.filter(([t, i]) => !(t === 'a' && i === '2')), key, 10, ['a', '2']);
      expect(after.items[0]).toEqual(['b', '1']);
    });

    it('round-trips cursors with any characters, and refuses one it did not make', () => {
      expect(decodeCursor(encodeCursor('ty/pe', 'id?&=\u00e9'), 'after')).toEqual(['ty/pe', 'id?&=\u00e9']);
      expect(decodeCursor(undefined, 'after')).toBeNull();
      expect(() => decodeCursor('garbage', 'after')).toThrow(BadRequestError);
      expect(() => decodeCursor(Buffer.from('{"a":1}').toString('base64url'), 'after')).toThrow('Invalid after');
    });

    it('takes a limit from 1 to 1000, 100 by default', () => {
      expect(parseLimit(undefined)).toBe(100);
      expect(parseLimit('1000')).toBe(1000);
      for (const bad of ['0', '1001', '-1', '1.5', 'ten']) expect(() => parseLimit(bad)).toThrow(`Invalid limit (${bad})`);
    });
  });

  describe('deliveries', () => {
    it('shows live progress of the same instance, never of an older one', () => {
      expect(fleetDelivery(record('n1', 'delivering'), () => live('n1', 40)).progress).toEqual({ bytes: 40, total: 100 });
      expect(fleetDelivery(record('n1', 'delivering'), () => live('n1', 40, 6n)).progress).toBeUndefined();
    });

    it('falls back to the stored offset of a delivery under way when nothing is live', () => {
      expect(fleetDelivery(record('n1', 'delivering', { offset: 30 }), () => undefined).progress).toEqual({ bytes: 30, total: null });
      expect(fleetDelivery(record('n1', 'delivered', { offset: 30 }), () => undefined).progress).toBeUndefined();
    });

    it('counts every destination of an object by status but lists only the first few', () => {
      const obj = { meta: { objectType: 't', objectID: 'i', instanceID: 2n ** 62n, objectSize: 5, deleted: false, public: false }, status: 'ready', lastUpdate: NOW } as unknown as StoredObject;
      const records = [record('a', 'delivered'), record('b', 'delivered'), record('c', 'error', { message: 'disk full' })];
      const o = fleetObject(obj, records, () => undefined, 2);
      expect(o.instanceID).toBe('4611686018427387904');
      expect(o.deliveryCounts).toEqual({ pending: 0, delivering: 0, delivered: 2, consumed: 0, deleted: 0, error: 1 });
      expect(o.deliveries.map((d) => d.destinationID)).toEqual(['a', 'b']);
      expect(o.deliveriesTotal).toBe(3);
    });
  });
});
