/** A sender-side StoredObject for unit tests of the sync engine, `ready` with no data. */
import { emptyMetaData, type MetaData } from '../../lib/model/index.js';
import type { StoredObject } from '../../lib/store/index.js';

export function storedObject(org: string, objectID: string, instanceID: bigint, meta: Partial<MetaData> = {}, fields: Partial<StoredObject> = {}): StoredObject {
  return {
    meta: { ...emptyMetaData(), destinationOrgID: org, objectType: 'model', objectID, instanceID, dataID: instanceID, ...meta },
    status: 'ready',
    blobId: null,
    dataSha256: null,
    remainingConsumers: 1,
    remainingReceivers: 1,
    policyReceived: false,
    lastUpdate: 1,
    ...fields,
  };
}
