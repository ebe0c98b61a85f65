/**
 * Wiring of the CSS's side of ESS-originated objects: the UpstreamReceiver, which the SPI
 * server feeds and which hears the app marks of the ObjectService. Created before the service
 * (which reports the marks to it) and attached once the service exists.
 */
import type { NotificationStore } from '../store/notification-types.js';
import type { BlobStore, Store, StoredObject } from '../store/types.js';
import type { ObjectService, ReceiverListener } from '../sync/object-service.js';
import type { PeerSignal } from '../sync/peer-signal.js';
import { UpstreamReceiver } from '../sync/upstream-receiver.js';

export interface CssUpstream {
  /** Hand to the ObjectService: CSS apps' marks on ESS-originated objects reach the receiver. */
  listener: ReceiverListener;
  /** The receiver, once the ObjectService it stores through exists. */
  attach(objects: ObjectService): UpstreamReceiver;
}

export function createCssUpstream(deps: { store: Store; notifications: NotificationStore; blobs: BlobStore; peerSignal: Pick<PeerSignal, 'notify'>; maxDataSize: number }): CssUpstream {
  let receiver: UpstreamReceiver | null = null;
  return {
    listener: {
      onReceivedObjectMarked: async (obj: StoredObject) => receiver?.onReceivedObjectMarked(obj),
      onDeletionConfirmed: async (obj: StoredObject) => receiver?.onDeletionConfirmed(obj),
      onReceivedObjectDeleted: async (obj: StoredObject) => receiver?.onReceivedObjectDeleted(obj),
    },
    attach(objects: ObjectService): UpstreamReceiver {
      receiver = new UpstreamReceiver({ ...deps, objects });
      return receiver;
    },
  };
}
