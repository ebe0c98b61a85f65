/**
 * The metrics' observer of the sync engine (lib/sync/sync-events.ts): counters of data and
 * objects moved, resends, and the durations of deliveries and data transfers. Called on the hot
 * path, so every method does a map lookup or two and a counter increment, nothing more.
 *
 * Label policy (docs/adr/0023-sync-events-and-metric-labels.md): at most per org, never per object, destination or node id. The
 * durations need per-delivery state (when it was queued, when its data began), kept in maps
 * bounded by `maxTracked`: past that the oldest entry is dropped and that delivery is not timed.
 */
import type { Counter, Histogram } from 'prom-client';
import type { DeliveryStatus } from '../model/index.js';
import type { DeliveryRef, PeerRef, SyncEvents, TransportKind } from '../sync/sync-events.js';

export interface EventInstruments {
  dataBytes: Counter<'transport' | 'direction' | 'org'>;
  objectsTransferred: Counter<'transport' | 'direction' | 'org'>;
  published: Counter<'org'>;
  queued: Counter<'org'>;
  statusChanges: Counter<'org' | 'delivery_status'>;
  resent: Counter<'org'>;
  deliveryDuration: Histogram<'org'>;
  transferDuration: Histogram<'transport' | 'direction'>;
}

/** Deliveries (and transfers) timed at once, at most; the oldest is forgotten beyond. */
export const MAX_TRACKED = 10_000;

type Direction = 'sent' | 'received';

/** One delivery of one instance to (or from) one peer: the key of the duration maps. */
function deliveryKey(obj: DeliveryRef, peer: PeerRef): string {
  return `${obj.orgID}\u0000${obj.objectType}\u0000${obj.objectID}\u0000${obj.instanceID}\u0000${peer.peerType}\u0000${peer.peerID}`;
}

/** A Map that forgets its oldest entry when full (insertion order is a Map's iteration order). */
class BoundedMap<V> {
  private readonly map = new Map<string, V>();
  constructor(private readonly max: number) {}
  get size(): number {
    return this.map.size;
  }
  get(key: string): V | undefined {
    return this.map.get(key);
  }
  set(key: string, value: V): void {
    if (!this.map.has(key) && this.map.size >= this.max) {
      const oldest = this.map.keys().next();
      if (oldest.done !== true) this.map.delete(oldest.value);
    }
    this.map.set(key, value);
  }
  delete(key: string): void {
    this.map.delete(key);
  }
}

export class MetricsEvents implements SyncEvents {
  /** When each delivery was queued (epoch ms), until it is delivered. */
  private readonly queuedAt: BoundedMap<number>;
  /** When the first piece of each transfer in several pieces arrived or left (epoch ms). */
  private readonly transferStart: BoundedMap<number>;

  constructor(
    private readonly m: EventInstruments,
    private readonly now: () => number = Date.now,
    maxTracked = MAX_TRACKED,
  ) {
    this.queuedAt = new BoundedMap(maxTracked);
    this.transferStart = new BoundedMap(maxTracked);
  }

  /** Deliveries and transfers being timed now (for tests: the maps stay bounded). */
  get tracked(): number {
    return this.queuedAt.size + this.transferStart.size;
  }

  objectPublished(obj: DeliveryRef): void {
    this.m.published.inc({ org: obj.orgID });
  }

  deliveryQueued(obj: DeliveryRef, peer: PeerRef): void {
    this.m.queued.inc({ org: obj.orgID });
    this.queuedAt.set(deliveryKey(obj, peer), this.now());
  }

  dataSent(obj: DeliveryRef, peer: PeerRef, transport: TransportKind, bytes: number, offset: number, total: number | null): void {
    this.data('sent', obj, peer, transport, bytes, offset, total);
  }

  dataReceived(obj: DeliveryRef, peer: PeerRef, transport: TransportKind, bytes: number, offset: number, total: number | null): void {
    this.data('received', obj, peer, transport, bytes, offset, total);
  }

  deliveryStatus(obj: DeliveryRef, peer: PeerRef, status: DeliveryStatus): void {
    this.m.statusChanges.inc({ org: obj.orgID, delivery_status: status });
    if (status !== 'delivered' && status !== 'consumed' && status !== 'deleted') return;
    const key = deliveryKey(obj, peer);
    const at = this.queuedAt.get(key);
    if (at === undefined) return;
    this.queuedAt.delete(key);
    // `consumed` without `delivered` first (a receiver that skips the ack) still ends the delivery.
    if (status !== 'deleted') this.m.deliveryDuration.observe({ org: obj.orgID }, (this.now() - at) / 1000);
  }

  notificationsResent(orgID: string, count: number): void {
    this.m.resent.inc({ org: orgID }, count);
  }

  /**
   * A piece of a transfer: counted, and timed from its first piece to its last. A transfer in
   * one piece (a small object) has no duration the events can tell, and is not observed.
   */
  private data(direction: Direction, obj: DeliveryRef, peer: PeerRef, transport: TransportKind, bytes: number, offset: number, total: number | null): void {
    const labels = { transport, direction, org: obj.orgID };
    this.m.dataBytes.inc(labels, bytes);
    const last = total === null || offset + bytes >= total;
    if (last) this.m.objectsTransferred.inc(labels);
    if (last && offset === 0) return;
    const key = `${direction}\u0000${deliveryKey(obj, peer)}`;
    const started = this.transferStart.get(key);
    if (!last) {
      if (started === undefined) this.transferStart.set(key, this.now());
      return;
    }
    if (started === undefined) return;
    this.transferStart.delete(key);
    this.m.transferDuration.observe({ transport, direction }, (this.now() - started) / 1000);
  }
}
