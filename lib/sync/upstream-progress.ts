/**
 * How far the CSS got with the data of the objects an ESS publishes, as persisted: the object's
 * status and its chunked upload session (upload-chunks.ts). A transport whose receiver drives the
 * transfer (MQTT: the CSS asks the ESS for each chunk) resumes from here after a restart, and
 * learns after an `update` whether any data is to be fetched at all (noData, a link, a metaOnly
 * update over data already held need none). Read-only. [ref sync-protocol §2 "Flow"; our
 * improvement: the reference restarts such transfers from offset 0]
 */
import type { DestinationRef, MetaData } from '../model/index.js';
import type { NotificationStore } from '../store/notification-types.js';
import type { Store } from '../store/types.js';
import { COMPLETE } from './upstream-records.js';

/** Where the data of one instance an ESS published stands. */
export type UpstreamState =
  /** Nothing to fetch: the data is here, or the instance has none of its own. */
  | { kind: 'complete' }
  /** Awaiting data; `received` bytes are durable here (the next offset to fetch). */
  | { kind: 'awaiting'; received: number }
  /** The CSS holds no such instance from this ESS (replaced, deleted, never received). */
  | { kind: 'none' };

export interface UpstreamProgress {
  of(peer: DestinationRef, ref: { objectType: string; objectID: string; instanceID: bigint }): Promise<UpstreamState>;
  /** The ESS's objects whose data is awaited, with the bytes already held. */
  awaiting(peer: DestinationRef): Promise<Array<{ meta: MetaData; received: number }>>;
}

/** Transfers listed per ESS at most (a restart resumes these; the ESS publishes the others again). */
const AWAITING_LIMIT = 1000;

export function upstreamProgress(deps: { store: Pick<Store, 'getObject' | 'getUpload'>; notifications: Pick<NotificationStore, 'listPendingForPeer'> }): UpstreamProgress {
  const { store, notifications } = deps;
  const state = async (peer: DestinationRef, ref: { objectType: string; objectID: string; instanceID: bigint }): Promise<{ state: UpstreamState; meta: MetaData | null }> => {
    const obj = await store.getObject(peer.orgID, ref.objectType, ref.objectID);
    if (obj === null || obj.meta.instanceID !== ref.instanceID || obj.meta.originType !== peer.destType || obj.meta.originID !== peer.destID) return { state: { kind: 'none' }, meta: null };
    if (COMPLETE.includes(obj.status)) return { state: { kind: 'complete' }, meta: obj.meta };
    if (obj.status !== 'partiallyreceived') return { state: { kind: 'none' }, meta: null };
    const upload = await store.getUpload(peer.orgID, ref.objectType, ref.objectID);
    const received = upload !== null && upload.instanceID === ref.instanceID && upload.total === obj.meta.objectSize ? upload.received : 0;
    return { state: { kind: 'awaiting', received }, meta: obj.meta };
  };
  return {
    of: async (peer, ref) => (await state(peer, ref)).state,
    async awaiting(peer) {
      // The record of an upstream object whose data is awaited is `handleUpdate` (upstream-records.ts statusFor).
      const records = await notifications.listPendingForPeer(peer.orgID, peer.destType, peer.destID, ['handleUpdate'], AWAITING_LIMIT);
      const out: Array<{ meta: MetaData; received: number }> = [];
      for (const rec of records) {
        const { state: s, meta } = await state(peer, rec);
        if (s.kind === 'awaiting' && meta !== null) out.push({ meta, received: s.received });
      }
      return out;
    },
  };
}
