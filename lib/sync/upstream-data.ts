/**
 * The `data` messages of upstream objects on the CSS: the bytes of the instance being received,
 * whole or in `Content-Range` chunks (appended through upload-chunks.ts, as for chunked API
 * uploads), checked against the metadata and the stated SHA-256; on the last byte the object
 * completes and `received` is queued for the ESS. [ref sync-protocol §1 "Upload of ESS → CSS objects"]
 */
import type { Readable } from 'node:stream';
import { BadRequestError, PayloadTooLargeError, isReceiverStatus, objectKey, type ByteRange, type MetaData, type SignatureCheck } from '../model/index.js';
import type { BlobStore, BlobWriteResult, Store, StoredObject } from '../store/types.js';
import { normalizeConsumers } from './consumer-counts.js';
import { ReceivedSignature, verifyReceivedData } from './data-check.js';
import { KeyedMutex } from './keyed-mutex.js';
import type { ObjectService } from './object-service.js';
import { abandonUpload, appendChunk } from './upload-chunks.js';
import type { UpstreamData, UpstreamOutcome, UpstreamPeer, UpstreamRef } from './upstream-messages.js';
import { COMPLETE, type UpstreamRecords } from './upstream-records.js';

export interface UpstreamDataDeps {
  store: Store;
  blobs: BlobStore;
  objects: Pick<ObjectService, 'get' | 'storeReceived'>;
  records: UpstreamRecords;
  /** Largest object data accepted, bytes; 0 = unlimited (EDGESYNC_MAX_DATA_SIZE). */
  maxDataSize: number;
  /** Epoch ms. */
  now: () => number;
}

export class UpstreamDataIntake {
  /** One chunk at a time per object in this process; across processes advanceUpload decides. */
  private readonly uploads = new KeyedMutex();

  constructor(private readonly deps: UpstreamDataDeps) {}

  /** See UpstreamReceiver.putData. */
  async putData(peer: UpstreamPeer, ref: UpstreamRef, source: Readable, data: UpstreamData): Promise<UpstreamOutcome> {
    const obj = await this.deps.objects.get(peer.orgID, ref.objectType, ref.objectID);
    const check = this.checkDataTarget(peer, ref, obj);
    if (check !== null || obj === null) {
      source.resume();
      return check ?? 'unknown';
    }
    const total = data.range?.total ?? data.size ?? obj.meta.objectSize;
    if (total !== obj.meta.objectSize) {
      throw new BadRequestError(`The data has ${total} bytes but the object's metadata says objectSize ${obj.meta.objectSize}`);
    }
    const max = this.deps.maxDataSize;
    if (max > 0 && total > max) throw new PayloadTooLargeError(max);
    if (data.range === undefined) {
      const written = await this.deps.blobs.write(source, { expectedSize: total, ...(data.signal ? { signal: data.signal } : {}) });
      return this.complete(peer, obj.meta, written, data.sha256);
    }
    const range = data.range;
    return this.uploads.run(objectKey(peer.orgID, ref.objectType, ref.objectID), () => this.acceptChunk(peer, obj.meta, range, source, data));
  }

  /** Why a data message cannot go to `obj` (null: it can). */
  private checkDataTarget(peer: UpstreamPeer, ref: UpstreamRef, obj: StoredObject | null): UpstreamOutcome | null {
    if (obj === null || !isReceiverStatus(obj.status) || obj.meta.originType !== peer.peerType || obj.meta.originID !== peer.peerID) return 'unknown';
    if (obj.meta.instanceID !== ref.instanceID || obj.status === 'objdeleted') return 'stale';
    if (ref.dataID !== undefined && ref.dataID !== obj.meta.dataID) return 'stale';
    // The last chunk's 204 was lost, or a metaOnly instance whose data the CSS already holds.
    if (COMPLETE.includes(obj.status)) return 'duplicate';
    return obj.status === 'partiallyreceived' ? null : 'ignored';
  }

  private async acceptChunk(peer: UpstreamPeer, meta: MetaData, range: ByteRange & { total: number }, source: Readable, data: UpstreamData): Promise<UpstreamOutcome> {
    const { orgID } = peer;
    const { objectType: type, objectID: id } = meta;
    // Re-read under the upload lock: the chunk before may just have completed the object.
    const check = this.checkDataTarget(peer, meta, await this.deps.objects.get(orgID, type, id));
    if (check !== null) {
      source.resume();
      return check;
    }
    const { store, blobs, now } = this.deps;
    const result = await appendChunk({ store, blobs, now }, { orgID, objectType: type, objectID: id, instanceID: meta.instanceID }, range, source, data.signal ? { signal: data.signal } : {});
    if (result.kind === 'retry') return 'duplicate';
    if (result.kind === 'partial') return 'applied';
    // The staging area is a blob now: its session is of no more use, however completing the object ends.
    await store.deleteUpload(orgID, type, id);
    return this.complete(peer, { ...meta, uploadChunkSize: result.chunkSize }, result.written, data.sha256);
  }

  /**
   * A signed object's data is verified before CSS apps may see it, as the reference CSS does.
   * The data may have come in chunks over several requests, so the blob is read once.
   */
  private async signatureCheck(meta: MetaData, written: BlobWriteResult): Promise<SignatureCheck | null> {
    const signature = new ReceivedSignature(meta);
    if (!signature.signed) return null;
    for await (const chunk of this.deps.blobs.read(written.blobId) as AsyncIterable<Buffer>) signature.update(chunk);
    return signature.check();
  }

  /** The whole data of `meta`'s instance is in a blob: the object completes, `received` is queued. */
  private async complete(peer: UpstreamPeer, meta: MetaData, written: BlobWriteResult, stated: string | undefined): Promise<UpstreamOutcome> {
    const verdict = verifyReceivedData(stated, written.sha256, await this.signatureCheck(meta, written));
    if (verdict.kind === 'mismatch') {
      await this.deps.blobs.delete(written.blobId);
      throw new BadRequestError(verdict.reason);
    }
    const stored = await this.deps.objects.storeReceived(peer.orgID, meta.objectType, meta.objectID, (obj) => {
      if (obj === null || obj.meta.instanceID !== meta.instanceID || obj.status !== 'partiallyreceived') return null;
      const consumers = normalizeConsumers(obj.meta.consumers);
      return {
        ...obj,
        meta: { ...obj.meta, objectSize: written.size, uploadChunkSize: meta.uploadChunkSize },
        status: 'completelyReceived',
        blobId: written.blobId,
        dataSha256: written.sha256,
        remainingConsumers: consumers,
        remainingReceivers: consumers,
      };
    });
    if (stored === null) {
      // Replaced or deleted meanwhile: this data belongs to no object.
      await this.deps.blobs.delete(written.blobId);
      return 'stale';
    }
    // A chunked attempt a whole PUT overtook leaves its staging area behind otherwise.
    await abandonUpload(this.deps, peer.orgID, meta.objectType, meta.objectID);
    await this.deps.records.put(this.deps.records.key(peer, meta), meta, 'receivedpending');
    return 'applied';
  }
}
