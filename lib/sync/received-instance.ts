/**
 * How a receiver stores a new instance of an object it is sent, the same on both sides (the
 * ESS receiving from the CSS, the CSS receiving from an ESS): complete at once when it has no
 * data, is a link, or is metaOnly over the data of the same dataID already held (kept);
 * otherwise `partiallyreceived`, waiting for its data. [ref sync-protocol §3 Normal update step 2]
 */
import type { MetaData } from '../model/index.js';
import type { StoredObject } from '../store/types.js';
import { normalizeConsumers } from './consumer-counts.js';

export function receivedInstance(meta: MetaData, existing: StoredObject | null, now: number): StoredObject {
  const kept = meta.metaOnly && existing !== null && existing.blobId !== null && existing.meta.dataID === meta.dataID ? existing : null;
  const complete = meta.noData || meta.link !== '' || kept !== null;
  const consumers = normalizeConsumers(meta.consumers);
  return {
    meta,
    status: complete ? 'completelyReceived' : 'partiallyreceived',
    blobId: kept?.blobId ?? null,
    dataSha256: kept?.dataSha256 ?? null,
    remainingConsumers: consumers,
    remainingReceivers: consumers,
    policyReceived: false,
    lastUpdate: now,
  };
}
