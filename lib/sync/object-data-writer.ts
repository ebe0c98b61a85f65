/**
 * The data path of sender-side objects through the API: a whole stream or a chunked upload
 * (upload session + staging area, see upload-chunks.ts) becomes a blob, then the object's data
 * in one metadata commit. Nothing changes unless every byte arrived. [ref rest-api §1.2 O17]
 */
import { pipeline, type Readable } from 'node:stream';
import type { BlobStore, BlobWriteResult, GrowingData, Store, StoredObject } from '../store/types.js';
import {
  BadRequestError,
  NotFoundError,
  SignatureVerifier,
  isReceiverStatus,
  isSigned,
  objectKey,
  parseDataSignature,
  signatureTap,
  type MetaData,
  type SignatureCheck,
} from '../model/index.js';
import type { EarlyData } from './early-data.js';
import type { KeyedMutex } from './keyed-mutex.js';
import type { ObjectChangeListener, ObjectListener } from './object-listeners.js';
import { abandonUpload, appendChunk, type ContentRange } from './upload-chunks.js';
import type { SyncEvents } from './sync-events.js';

export interface DataWriterDeps {
  store: Store;
  blobs: BlobStore;
  /** Told of the object once its new data is committed. */
  listener?: ObjectListener;
  /** Told of the committed row, not waited for (the webhooks). */
  changes?: ObjectChangeListener;
  /** Largest object data accepted, bytes; 0 = unlimited. */
  maxDataSize: number;
  /** Offers a whole-data upload to the ESS nodes while it arrives (the CSS; early-data.ts). */
  early?: Pick<EarlyData, 'begin' | 'end'>;
  /** Told of each instance an app publishes (metadata, or new data). */
  events?: SyncEvents;
}

/**
 * Tells the listener of a new instance an app published, and the observers with it: they hear
 * of the publication before its deliveries (the listener names the peers it addresses first),
 * or after the listener when it named none.
 */
export async function publish(deps: Pick<DataWriterDeps, 'listener' | 'events'>, obj: StoredObject): Promise<void> {
  const events = deps.events;
  if (events?.objectPublished === undefined) {
    await deps.listener?.onObjectPublished(obj);
    return;
  }
  const m = obj.meta;
  let told = false;
  const tell = (destinations: number): void => {
    if (told) return;
    told = true;
    events.objectPublished?.({ orgID: m.destinationOrgID, objectType: m.objectType, objectID: m.objectID, instanceID: m.instanceID }, { destinations });
  };
  await deps.listener?.onObjectPublished(obj, tell);
  tell(0);
}

/** @throws BadRequestError when `size` exceeds `max` (0 = unlimited) */
export function checkDataSize(max: number, size: number): void {
  if (max > 0 && size > max) throw new BadRequestError(`Object data of ${size} bytes exceeds the configured maximum of ${max} bytes`);
}

/**
 * Whether the object's current data is a finished chunked upload of `total` bytes, with no
 * metadata change since: a late last chunk of that size is then a retry, not a new upload.
 */
function completedByChunks(obj: StoredObject, total: number): boolean {
  const m = obj.meta;
  return obj.status === 'ready' && obj.blobId !== null && m.uploadChunkSize > 0 && m.objectSize === total && m.dataID === m.instanceID;
}

/** A verifier for the object's data signature, or null when the object is not signed. */
export function signatureVerifier(meta: MetaData): SignatureVerifier | null {
  if (!isSigned(meta)) return null;
  const statement = parseDataSignature(meta);
  return statement === null ? null : new SignatureVerifier(statement);
}

/** The answer to data whose signature failed: the caller sent data, key or signature that do not match. */
export function verificationFailedError(check: Extract<SignatureCheck, { ok: false }>): BadRequestError {
  return new BadRequestError(`Failed to verify and store data, Error: ${check.reason}`);
}

const sameSignature = (a: MetaData, b: MetaData): boolean => a.hashAlgorithm === b.hashAlgorithm && a.publicKey === b.publicKey && a.signature === b.signature;

/** Writes object data for the ObjectService, under the same per-object locks. */
export class ObjectDataWriter {
  constructor(
    private readonly deps: DataWriterDeps,
    private readonly locks: KeyedMutex,
    private readonly now: () => Date,
  ) {}

  /** Releases a blob that no object refers to any more. */
  private async releaseBlob(blobId: string | null): Promise<void> {
    if (blobId !== null) await this.deps.blobs.delete(blobId);
  }

  /** Loads an object that a data write may target. [ref rest-api §1.2 O17] */
  private async writableObject(org: string, type: string, id: string): Promise<StoredObject> {
    const obj = await this.deps.store.getObject(org, type, id);
    if (obj === null) throw new NotFoundError();
    if (isReceiverStatus(obj.status)) throw new BadRequestError("Can't update data of the receiving side");
    if (obj.meta.noData) throw new BadRequestError("Can't update data, the NoData flag is set to true");
    return obj;
  }

  /**
   * Data that failed its signature: an object that had no data yet shows `verificationFailed`
   * (and is not delivered); one that had data keeps it, untouched. [ref rest-api §2.1]
   */
  private async verificationFailed(org: string, type: string, id: string, verified: MetaData, check: Extract<SignatureCheck, { ok: false }>): Promise<never> {
    await this.locks.run(objectKey(org, type, id), async () => {
      const obj = await this.deps.store.getObject(org, type, id);
      if (obj === null || obj.blobId !== null || obj.meta.instanceID !== verified.instanceID || isReceiverStatus(obj.status)) return;
      await this.deps.store.putObject({ ...obj, status: 'verificationFailed', lastUpdate: this.now().getTime() });
    });
    throw verificationFailedError(check);
  }

  /** Commits a complete blob as the object's data; the object may have changed meanwhile. */
  private async commitData(org: string, type: string, id: string, written: BlobWriteResult, uploadChunkSize: number, verified: MetaData | null): Promise<void> {
    const replaced = await this.locks.run(objectKey(org, type, id), async () => {
      const obj = await this.writableObject(org, type, id);
      // The data was verified against the signature of the object when it began: a new one since
      // (a metadata PUT meanwhile) has not been checked.
      if ((verified !== null || isSigned(obj.meta)) && (verified === null || !sameSignature(verified, obj.meta))) {
        throw new BadRequestError("The object's data signature changed during the upload; upload the data again");
      }
      const instanceID = await this.deps.store.nextInstanceId();
      const meta: MetaData = { ...obj.meta, instanceID, dataID: instanceID, objectSize: written.size, uploadChunkSize };
      const stored: StoredObject = { ...obj, meta, status: 'ready', blobId: written.blobId, dataSha256: written.sha256, lastUpdate: this.now().getTime() };
      await this.deps.store.putObject(stored);
      await publish(this.deps, stored);
      this.deps.changes?.onObjectStored(obj, stored);
      return obj.blobId;
    });
    await this.releaseBlob(replaced);
  }

  /** See ObjectService.putData. */
  async putData(org: string, type: string, id: string, source: Readable, opts: { size?: number; signal?: AbortSignal }): Promise<void> {
    const obj = await this.writableObject(org, type, id);
    const max = this.deps.maxDataSize;
    if (opts.size !== undefined) checkDataSize(max, opts.size);
    const verifier = signatureVerifier(obj.meta);
    // An object without data shows `verifying` while its signed data streams in; one with data
    // keeps serving it (and its status) until the new data verified. [ref rest-api §2.1]
    const verifying = verifier !== null && obj.blobId === null && (await this.swapStatus(org, obj, obj.status, 'verifying'));
    // A failure of either end destroys both: the tap must not outlive a broken source.
    const input = verifier === null ? source : pipeline(source, signatureTap(verifier), () => undefined);
    try {
      await this.writeData(org, type, id, obj, input, verifier, opts);
    } catch (e) {
      // Cut short, or refused (then it is `verificationFailed` already and stays so).
      if (verifying) await this.swapStatus(org, obj, 'verifying', obj.status);
      throw e;
    }
  }

  /**
   * Sets the status of a data-less object from `from` to `to`, unless it changed meanwhile.
   * @returns whether it did
   */
  private swapStatus(orgID: string, obj: StoredObject, from: StoredObject['status'], to: StoredObject['status']): Promise<boolean> {
    const { objectType, objectID, instanceID } = obj.meta;
    return this.locks.run(objectKey(orgID, objectType, objectID), async () => {
      const now = await this.deps.store.getObject(orgID, objectType, objectID);
      if (now === null || now.blobId !== null || now.meta.instanceID !== instanceID || now.status !== from) return false;
      await this.deps.store.putObject({ ...now, status: to, lastUpdate: this.now().getTime() });
      return true;
    });
  }

  private async writeData(
    org: string,
    type: string,
    id: string,
    obj: StoredObject,
    input: Readable,
    verifier: SignatureVerifier | null,
    opts: { size?: number; signal?: AbortSignal },
  ): Promise<void> {
    const max = this.deps.maxDataSize;
    const { early } = this.deps;
    let growing: GrowingData | null = null;
    try {
      const written = await this.deps.blobs.write(input, {
        ...(opts.signal ? { signal: opts.signal } : {}),
        ...(opts.size !== undefined ? { expectedSize: opts.size } : {}),
        ...(max > 0 ? { maxBytes: max } : {}),
        ...(early !== undefined
          ? {
              onGrowing: (data: GrowingData) => {
                growing = data;
                early.begin(obj.meta, data);
              },
            }
          : {}),
      });
      const check = verifier?.verify() ?? null;
      if (check !== null && !check.ok) {
        await this.releaseBlob(written.blobId);
        await this.verificationFailed(org, type, id, obj.meta, check);
      }
      try {
        await this.commitData(org, type, id, written, 0, verifier !== null ? obj.meta : null);
        await abandonUpload(this.deps, org, type, id);
      } catch (e) {
        await this.releaseBlob(written.blobId);
        throw e;
      }
    } finally {
      if (growing !== null) early?.end(obj.meta, growing);
    }
  }

  /** See ObjectService.putDataChunk. */
  putDataChunk(org: string, type: string, id: string, range: ContentRange, source: Readable, signal?: AbortSignal): Promise<boolean> {
    // One chunk at a time per object in this process: two writers in one staging file would
    // interleave their bytes before the compare-and-set could tell them apart.
    return this.locks.run(`upload:${objectKey(org, type, id)}`, () => this.acceptChunk(org, type, id, range, source, signal));
  }

  private async verifyBlob(blobId: string, verifier: SignatureVerifier, signal?: AbortSignal): Promise<SignatureCheck> {
    for await (const chunk of this.deps.blobs.read(blobId, signal ? { signal } : {}) as AsyncIterable<Buffer>) verifier.update(chunk);
    return verifier.verify();
  }

  private async acceptChunk(org: string, type: string, id: string, range: ContentRange, source: Readable, signal?: AbortSignal): Promise<boolean> {
    checkDataSize(this.deps.maxDataSize, range.total);
    const obj = await this.writableObject(org, type, id);
    const { store, blobs } = this.deps;
    const noUpload = (session: { total: number } | null): string | null => {
      // A retry of the last chunk of the upload that already completed (its answer was lost).
      if (session === null && range.end + 1 === range.total && completedByChunks(obj, range.total)) return null;
      return session !== null && session.total !== range.total
        ? `Content-Range total ${range.total} does not match the upload in progress (${session.total} bytes)`
        : `No upload in progress for this object: the first chunk must start at offset 0, not ${range.start}`;
    };
    const target = { orgID: org, objectType: type, objectID: id, instanceID: obj.meta.instanceID };
    const result = await appendChunk({ store, blobs, now: () => this.now().getTime() }, target, range, source, { noUpload, ...(signal ? { signal } : {}) });
    if (result.kind !== 'complete') return false;
    const verifier = signatureVerifier(obj.meta);
    if (verifier !== null) {
      // The chunks came in separate requests, maybe to other processes, so the hash state could
      // not follow them: the assembled data is read once, as the reference's verify queue does.
      const check = await this.verifyBlob(result.written.blobId, verifier, signal);
      if (!check.ok) {
        await this.releaseBlob(result.written.blobId);
        await store.deleteUpload(org, type, id);
        await this.verificationFailed(org, type, id, obj.meta, check);
      }
    }
    try {
      await this.commitData(org, type, id, result.written, result.chunkSize, verifier !== null ? obj.meta : null);
      await store.deleteUpload(org, type, id);
    } catch (e) {
      await this.releaseBlob(result.written.blobId);
      throw e;
    }
    return true;
  }
}
