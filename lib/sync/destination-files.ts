/**
 * An ESS writes the data of a received object that names a `destinationDataUri` to that file
 * too, for apps that read files rather than the API. The store keeps its own copy, so
 * `GET …/data`, resumes and the SHA-256 check work as for any object, and an app that changes
 * the file cannot corrupt what the ESS serves. A URI outside DESTINATION_DATA_DIRS, or a failed
 * write, leaves no file (the write is atomic) and is logged; the object is still received.
 * [ref core/dataURI StoreData, storage.go DeleteStoredData]
 */
import type { MetaData } from '../model/index.js';
import { destinationPath, removeDestinationFile, writeFileAtomically, type DataDirs } from '../store/data-files.js';
import type { BlobStore } from '../store/types.js';

export interface DestinationFilesDeps {
  blobs: Pick<BlobStore, 'read'>;
  /** DESTINATION_DATA_DIRS. */
  where: DataDirs;
  log?: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

export class DestinationFiles {
  constructor(private readonly deps: DestinationFilesDeps) {}

  /** Writes the data in `blobId` to `meta`'s destinationDataUri, when it names one. Never throws. */
  async export(meta: MetaData, blobId: string | null): Promise<void> {
    if (meta.destinationDataUri === '' || blobId === null) return;
    const fields = { objectType: meta.objectType, objectID: meta.objectID, destinationDataUri: meta.destinationDataUri };
    try {
      const target = await destinationPath(meta.destinationDataUri, this.deps.where);
      await writeFileAtomically(target, this.deps.blobs.read(blobId));
      this.deps.log?.info({ ...fields, size: meta.objectSize }, 'object data written to its destinationDataUri');
    } catch (err) {
      this.deps.log?.warn({ ...fields, reason: err instanceof Error ? err.message : String(err) }, 'object data not written to its destinationDataUri');
    }
  }

  /** Removes the file of a deleted object (the reference does too). Never throws. */
  async remove(meta: Pick<MetaData, 'destinationDataUri'>): Promise<void> {
    if (meta.destinationDataUri === '') return;
    await removeDestinationFile(meta.destinationDataUri, this.deps.where).catch(() => undefined);
  }
}
