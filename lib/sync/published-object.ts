/**
 * What a PUT of an object through the API stores: the metadata the caller sent, completed with
 * the node's rules (instance/data ids, origin, owner, chunk size, consumer counts) and the data
 * the object holds after it. Pure: the ObjectService draws the instance ID, writes the data and
 * commits the result. [ref rest-api §1.2 O2, §2.1]
 */
import type { BlobWriteResult, StoredObject } from '../store/types.js';
import { BadRequestError, msToNanos, type MetaData } from '../model/index.js';
import { normalizeConsumers } from './consumer-counts.js';
import type { Caller, NodeIdentity } from './object-service.js';

export interface PublishContext {
  node: NodeIdentity;
  caller: Caller;
  /** The instance ID drawn for this change. */
  instanceID: bigint;
  /** Copied into every object's `chunkSize`. [ref sync-protocol §7 MaxDataChunkSize] */
  maxDataChunkSize: number;
  /** Epoch ms of the change. */
  now: number;
}

/**
 * The object to store for `input`, replacing `existing`; `written` is the inline data already
 * in a blob, if any.
 * @throws BadRequestError for a metaOnly update that adds or removes a destination policy
 */
export function publishedObject(existing: StoredObject | null, input: MetaData, written: BlobWriteResult | null, ctx: PublishContext): StoredObject {
  const { node, caller, instanceID } = ctx;
  const meta: MetaData = { ...input };
  meta.instanceID = instanceID;
  meta.chunkSize = ctx.maxDataChunkSize;
  meta.consumers = normalizeConsumers(meta.consumers);
  meta.deleted = false;
  if (meta.originID === '' || meta.originType === '') {
    meta.originType = node.destinationType;
    meta.originID = node.destinationID;
  }
  meta.ownerID = node.nodeType === 'CSS' ? `${caller.orgID}/${caller.userID}` : `${node.orgID}/${node.destinationID}`;
  if (meta.destinationPolicy !== null) meta.destinationPolicy = { ...meta.destinationPolicy, timestamp: msToNanos(ctx.now) };

  let blobId: string | null = null;
  let sha: string | null = null;
  let status: StoredObject['status'] = 'notReady';
  meta.objectSize = 0;
  meta.dataID = 0n;
  meta.uploadChunkSize = 0;
  if (meta.noData) {
    meta.link = '';
    meta.sourceDataUri = '';
    meta.publicKey = '';
    meta.signature = '';
    status = 'ready';
  } else if (meta.metaOnly) {
    if (existing !== null && (existing.meta.destinationPolicy === null) !== (meta.destinationPolicy === null)) {
      throw new BadRequestError("Can't add or remove a destination policy with a metaOnly update");
    }
    if (existing !== null && existing.blobId !== null) {
      blobId = existing.blobId;
      sha = existing.dataSha256;
      meta.objectSize = existing.meta.objectSize;
      meta.dataID = existing.meta.dataID;
      meta.uploadChunkSize = existing.meta.uploadChunkSize;
      meta.hashAlgorithm = existing.meta.hashAlgorithm;
      meta.publicKey = existing.meta.publicKey;
      meta.signature = existing.meta.signature;
      status = 'ready';
    }
  } else if (written !== null) {
    blobId = written.blobId;
    sha = written.sha256;
    meta.objectSize = written.size;
    meta.dataID = instanceID;
    status = 'ready';
  }
  if (meta.link !== '') status = 'ready';
  return {
    meta,
    status,
    blobId,
    dataSha256: sha,
    remainingConsumers: meta.consumers,
    remainingReceivers: meta.consumers,
    policyReceived: false,
    lastUpdate: ctx.now,
  };
}
