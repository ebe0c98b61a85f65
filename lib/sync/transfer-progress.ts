/**
 * The live transfer view: bytes moved so far per (object instance, peer) while a transfer runs,
 * kept in memory from the sync events and read by the fleet API. The stored records know where
 * a delivery stands, not how far its bytes got between two persisted offsets; this fills that
 * gap for the dashboard and `edgesync top`. It is a view, never a source of truth: a restart
 * empties it, and the next chunk fills it again.
 */
import type { DeliveryStatus } from '../model/index.js';
import type { DeliveryRef, PeerRef, SyncEvents, TransportKind } from './sync-events.js';

/** How far one transfer got. */
export interface TransferProgress {
  orgID: string;
  objectType: string;
  objectID: string;
  instanceID: bigint;
  peerType: string;
  peerID: string;
  /** `sent` on the sender, `received` on the receiver. */
  direction: 'sent' | 'received';
  transport: TransportKind;
  /** Highest byte offset reached (bytes moved, when the transfer started at 0). */
  bytes: number;
  /** The data size, null when the transport did not say. */
  total: number | null;
  /** Epoch ms of the last chunk. */
  updatedAt: number;
}

export interface TransferProgressOptions {
  /** Entries kept at most; the least recently updated goes first. Bounds memory on a CSS of many nodes. */
  maxEntries?: number;
  /** An entry without a chunk for this long is dropped: its transfer stalled or ended unseen. */
  idleMs?: number;
  now?: () => number;
}

/** Statuses after which the bytes of a delivery no longer move. */
const SETTLED: readonly DeliveryStatus[] = ['delivered', 'consumed', 'deleted', 'error'];

function keyOf(org: string, type: string, id: string, peerType: string, peerID: string): string {
  // NUL cannot appear in a validated name, so the key is unambiguous.
  return [org, type, id, peerType, peerID].join('\u0000');
}

function objectPrefix(org: string, type: string, id: string): string {
  return [org, type, id, ''].join('\u0000');
}

/**
 * A `SyncEvents` observer; cheap on the hot path (a map update per chunk). Listeners added with
 * {@link onChange} hear that something moved, so that a live page can refresh without polling
 * the store.
 */
export class TransferProgressTracker implements SyncEvents {
  /** Insertion order is update order: a touched entry is deleted and set again. */
  private readonly entries = new Map<string, TransferProgress>();
  private readonly listeners = new Set<() => void>();
  private readonly maxEntries: number;
  private readonly idleMs: number;
  private readonly now: () => number;

  constructor(opts: TransferProgressOptions = {}) {
    this.maxEntries = opts.maxEntries ?? 10_000;
    this.idleMs = opts.idleMs ?? 120_000;
    this.now = opts.now ?? Date.now;
  }

  dataSent(obj: DeliveryRef, peer: PeerRef, transport: TransportKind, bytes: number, offset: number, total: number | null): void {
    this.record(obj, peer, 'sent', transport, offset + bytes, total);
  }

  dataReceived(obj: DeliveryRef, peer: PeerRef, transport: TransportKind, bytes: number, offset: number, total: number | null): void {
    this.record(obj, peer, 'received', transport, offset + bytes, total);
  }

  deliveryStatus(obj: DeliveryRef, peer: PeerRef, status: DeliveryStatus): void {
    if (SETTLED.includes(status)) this.entries.delete(keyOf(obj.orgID, obj.objectType, obj.objectID, peer.peerType, peer.peerID));
    this.changed();
  }

  deliveryQueued(): void {
    this.changed();
  }

  objectPublished(): void {
    this.changed();
  }

  /** The transfer toward (or from) one peer, if one is running for the current instance. */
  get(org: string, type: string, id: string, peerType: string, peerID: string): TransferProgress | undefined {
    const e = this.entries.get(keyOf(org, type, id, peerType, peerID));
    if (e === undefined) return undefined;
    if (this.now() - e.updatedAt > this.idleMs) {
      this.entries.delete(keyOf(org, type, id, peerType, peerID));
      return undefined;
    }
    return e;
  }

  /** Every running transfer of one object, any peer. */
  forObject(org: string, type: string, id: string): TransferProgress[] {
    const prefix = objectPrefix(org, type, id);
    const out: TransferProgress[] = [];
    for (const [k, e] of this.entries) if (k.startsWith(prefix) && this.now() - e.updatedAt <= this.idleMs) out.push(e);
    return out;
  }

  /** Running transfers of an org, most recently updated first, at most `limit`. */
  active(org: string, limit: number): TransferProgress[] {
    this.sweep();
    const out: TransferProgress[] = [];
    const all = [...this.entries.values()];
    for (let i = all.length - 1; i >= 0 && out.length < limit; i--) {
      const e = all[i];
      if (e !== undefined && e.orgID === org) out.push(e);
    }
    return out;
  }

  get size(): number {
    return this.entries.size;
  }

  /** @returns a function that removes the listener. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private record(obj: DeliveryRef, peer: PeerRef, direction: TransferProgress['direction'], transport: TransportKind, reached: number, total: number | null): void {
    const key = keyOf(obj.orgID, obj.objectType, obj.objectID, peer.peerType, peer.peerID);
    const prev = this.entries.get(key);
    // A newer instance restarts the count; a resent earlier range never moves it back.
    const bytes = prev !== undefined && prev.instanceID === obj.instanceID ? Math.max(prev.bytes, reached) : reached;
    this.entries.delete(key);
    this.entries.set(key, {
      orgID: obj.orgID,
      objectType: obj.objectType,
      objectID: obj.objectID,
      instanceID: obj.instanceID,
      peerType: peer.peerType,
      peerID: peer.peerID,
      direction,
      transport,
      bytes,
      total,
      updatedAt: this.now(),
    });
    if (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done !== true) this.entries.delete(oldest.value);
    }
    this.changed();
  }

  /** Drops idle entries; the map is in update order, so the idle ones are at its head. */
  private sweep(): void {
    const cutoff = this.now() - this.idleMs;
    for (const [k, e] of this.entries) {
      if (e.updatedAt >= cutoff) break;
      this.entries.delete(k);
    }
  }

  private changed(): void {
    for (const l of this.listeners) l();
  }
}
