import { fanOutSyncEvents, NO_SYNC_EVENTS, type DeliveryRef, type PeerRef, type SyncEvents } from '../../../lib/sync/sync-events.js';

const obj: DeliveryRef = { orgID: 'o', objectType: 't', objectID: 'i', instanceID: 1n };
const peer: PeerRef = { peerType: 'dt', peerID: 'd1' };

describe('fanOutSyncEvents', () => {
  it('is the no-op observer when nothing listens', () => {
    expect(fanOutSyncEvents([])).toBe(NO_SYNC_EVENTS);
    expect(fanOutSyncEvents([NO_SYNC_EVENTS])).toBe(NO_SYNC_EVENTS);
  });

  it('passes each event to every observer, class methods included', () => {
    const seen: string[] = [];
    class Counter implements SyncEvents {
      dataSent(_o: DeliveryRef, _p: PeerRef, _t: 'http' | 'mqtt', bytes: number): void {
        seen.push(`class ${bytes}`);
      }
    }
    const events = fanOutSyncEvents([new Counter(), { dataSent: (_o, _p, _t, bytes) => seen.push(`plain ${bytes}`) }]);
    events.dataSent?.(obj, peer, 'http', 7, 0, 7);
    events.deliveryStatus?.(obj, peer, 'delivered');
    expect(seen).toEqual(['class 7', 'plain 7']);
  });

  it('keeps delivering to the others when one observer throws, and reports it once', () => {
    const errors: string[] = [];
    let calls = 0;
    const events = fanOutSyncEvents(
      [
        {
          deliveryQueued: () => {
            throw new Error('broken observer');
          },
        },
        { deliveryQueued: () => void calls++ },
      ],
      (err, event) => errors.push(`${event}: ${(err as Error).message}`),
    );
    events.deliveryQueued?.(obj, peer);
    events.deliveryQueued?.(obj, peer);
    expect(calls).toBe(2);
    expect(errors).toEqual(['deliveryQueued: broken observer']);
  });
});
