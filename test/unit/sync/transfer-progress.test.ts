import { fanOutSyncEvents, type DeliveryRef, type PeerRef } from '../../../lib/sync/sync-events.js';
import { TransferProgressTracker } from '../../../lib/sync/transfer-progress.js';

const obj: DeliveryRef = { orgID: 'o', objectType: 't', objectID: 'i', instanceID: 1n };
const node1: PeerRef = { peerType: 'dt', peerID: 'd1' };
const node2: PeerRef = { peerType: 'dt', peerID: 'd2' };

function clock(): { now: () => number; advance(ms: number): void } {
  let t = 1_000_000;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

describe('TransferProgressTracker', () => {
  it('counts the bytes sent toward each destination of an object, with the total', () => {
    const p = new TransferProgressTracker();
    p.dataSent(obj, node1, 'http', 100, 0, 1000);
    p.dataSent(obj, node1, 'http', 100, 100, 1000);
    p.dataSent(obj, node2, 'mqtt', 50, 0, 1000);
    expect(p.get('o', 't', 'i', 'dt', 'd1')).toMatchObject({ bytes: 200, total: 1000, direction: 'sent', transport: 'http' });
    expect(p.forObject('o', 't', 'i').map((e) => [e.peerID, e.bytes])).toEqual([
      ['d1', 200],
      ['d2', 50],
    ]);
  });

  it('never moves back when an earlier range is served again, and restarts for a new instance', () => {
    const p = new TransferProgressTracker();
    p.dataSent(obj, node1, 'http', 500, 0, 1000);
    p.dataSent(obj, node1, 'http', 100, 0, 1000);
    expect(p.get('o', 't', 'i', 'dt', 'd1')?.bytes).toBe(500);
    p.dataSent({ ...obj, instanceID: 2n }, node1, 'http', 100, 0, 2000);
    expect(p.get('o', 't', 'i', 'dt', 'd1')).toMatchObject({ bytes: 100, total: 2000, instanceID: 2n });
  });

  it('counts bytes received on the receiving side', () => {
    const p = new TransferProgressTracker();
    p.dataReceived(obj, { peerType: 'Cloud', peerID: 'Cloud' }, 'http', 64, 0, null);
    expect(p.get('o', 't', 'i', 'Cloud', 'Cloud')).toMatchObject({ bytes: 64, total: null, direction: 'received' });
  });

  it.each(['delivered', 'consumed', 'error', 'deleted'] as const)('forgets a transfer once its delivery is %s', (status) => {
    const p = new TransferProgressTracker();
    p.dataSent(obj, node1, 'http', 10, 0, 20);
    p.deliveryStatus(obj, node1, status);
    expect(p.get('o', 't', 'i', 'dt', 'd1')).toBeUndefined();
    expect(p.size).toBe(0);
  });

  it('keeps a transfer that is still delivering', () => {
    const p = new TransferProgressTracker();
    p.dataSent(obj, node1, 'http', 10, 0, 20);
    p.deliveryStatus(obj, node1, 'delivering');
    expect(p.get('o', 't', 'i', 'dt', 'd1')?.bytes).toBe(10);
  });

  it('drops a transfer idle for longer than idleMs', () => {
    const c = clock();
    const p = new TransferProgressTracker({ idleMs: 1000, now: c.now });
    p.dataSent(obj, node1, 'http', 10, 0, 20);
    c.advance(999);
    expect(p.get('o', 't', 'i', 'dt', 'd1')).toBeDefined();
    c.advance(2);
    expect(p.get('o', 't', 'i', 'dt', 'd1')).toBeUndefined();
    expect(p.forObject('o', 't', 'i')).toEqual([]);
  });

  it('holds at most maxEntries, dropping the least recently updated', () => {
    const p = new TransferProgressTracker({ maxEntries: 2 });
    p.dataSent(obj, { peerType: 'dt', peerID: 'a' }, 'http', 1, 0, 9);
    p.dataSent(obj, { peerType: 'dt', peerID: 'b' }, 'http', 1, 0, 9);
    p.dataSent(obj, { peerType: 'dt', peerID: 'a' }, 'http', 1, 1, 9);
    p.dataSent(obj, { peerType: 'dt', peerID: 'c' }, 'http', 1, 0, 9);
    expect(p.size).toBe(2);
    expect(p.forObject('o', 't', 'i').map((e) => e.peerID).sort()).toEqual(['a', 'c']);
  });

  it('lists the running transfers of one org only, newest first', () => {
    const p = new TransferProgressTracker();
    p.dataSent(obj, node1, 'http', 1, 0, 9);
    p.dataSent({ ...obj, orgID: 'other' }, node1, 'http', 1, 0, 9);
    p.dataSent(obj, node2, 'http', 1, 0, 9);
    expect(p.active('o', 10).map((e) => e.peerID)).toEqual(['d2', 'd1']);
    expect(p.active('o', 1)).toHaveLength(1);
  });

  it('tells its listeners that something moved, and stops when told to', () => {
    const p = new TransferProgressTracker();
    let heard = 0;
    const off = p.onChange(() => void heard++);
    p.dataSent(obj, node1, 'http', 1, 0, 9);
    p.deliveryStatus(obj, node1, 'delivered');
    off();
    p.dataSent(obj, node1, 'http', 1, 0, 9);
    expect(heard).toBe(2);
  });

  it('receives the events through the fan-out, its methods living on the prototype', () => {
    const p = new TransferProgressTracker();
    fanOutSyncEvents([p]).dataSent?.(obj, node1, 'mqtt', 3, 0, 3);
    expect(p.get('o', 't', 'i', 'dt', 'd1')?.bytes).toBe(3);
  });
});
