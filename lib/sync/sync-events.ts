/**
 * What the sync engine and its transports tell observers about deliveries: metrics, traces and
 * the live transfer view all listen here, so none of them is wired into the protocol code. Every
 * member is optional and called synchronously on the hot path: an observer must be cheap and must
 * never throw (the fan-out below guards against one that does). With no observer configured the
 * engine holds `NO_SYNC_EVENTS`, whose calls cost a property lookup.
 */
import type { DeliveryStatus } from '../model/index.js';

/** The object instance a delivery is about. */
export interface DeliveryRef {
  orgID: string;
  objectType: string;
  objectID: string;
  instanceID: bigint;
}

/** The other side of a delivery: a destination on the sender, the origin on the receiver (`Cloud/Cloud` for a CSS). */
export interface PeerRef {
  peerType: string;
  peerID: string;
}

export type TransportKind = 'http' | 'mqtt';

export interface SyncEvents {
  /** An app published or updated an object instance on this node (metadata committed; data may follow). */
  objectPublished?(obj: DeliveryRef, info: { destinations: number }): void;
  /** The sender queued the instance for one peer: the delivery to that peer starts. */
  deliveryQueued?(obj: DeliveryRef, peer: PeerRef): void;
  /**
   * Bytes of the instance's data left toward a peer: an HTTP range served, an MQTT chunk sent.
   * `offset` is where these bytes started, `total` the data size (null when unknown).
   */
  dataSent?(obj: DeliveryRef, peer: PeerRef, transport: TransportKind, bytes: number, offset: number, total: number | null): void;
  /** Bytes of an instance's data arrived from a peer, durably stored. */
  dataReceived?(obj: DeliveryRef, peer: PeerRef, transport: TransportKind, bytes: number, offset: number, total: number | null): void;
  /** The delivery to (or from) a peer moved to a new status; `message` carries an error's reason. */
  deliveryStatus?(obj: DeliveryRef, peer: PeerRef, status: DeliveryStatus, message?: string): void;
  /** Notifications sent again by the resend scheduler. */
  notificationsResent?(orgID: string, count: number): void;
}

/** No observer: what the engine holds when nothing listens. */
export const NO_SYNC_EVENTS: SyncEvents = Object.freeze({});

type EventName = keyof SyncEvents;
const EVENT_NAMES: readonly EventName[] = ['objectPublished', 'deliveryQueued', 'dataSent', 'dataReceived', 'deliveryStatus', 'notificationsResent'];

/**
 * One `SyncEvents` that passes every event to each of `observers`, in order. An observer that
 * throws is reported through `onError` (once per observer and event) and the others still run:
 * observing must never break a delivery.
 */
export function fanOutSyncEvents(observers: readonly SyncEvents[], onError: (err: unknown, event: EventName) => void = () => undefined): SyncEvents {
  const live = observers.filter((o) => o !== NO_SYNC_EVENTS);
  if (live.length === 0) return NO_SYNC_EVENTS;
  const out: SyncEvents & Partial<Record<EventName, (...args: unknown[]) => void>> = {};
  for (const name of EVENT_NAMES) {
    // By name, not Object.keys: a class's methods live on its prototype.
    const targets = live.filter((o) => typeof o[name] === 'function');
    if (targets.length === 0) continue;
    const reported = new Set<SyncEvents>();
    out[name] = (...args: unknown[]) => {
      for (const o of targets) {
        try {
          (o as Record<EventName, (...a: unknown[]) => void>)[name](...args);
        } catch (err) {
          if (!reported.has(o)) {
            reported.add(o);
            onError(err, name);
          }
        }
      }
    };
  }
  return out;
}
