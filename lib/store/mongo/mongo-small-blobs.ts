/**
 * SmallBlobStore in a MongoDB collection: the small tier of a TieredBlobStore whose large tier
 * is a MongoBlobStore, as SQLite rows are beside files. A small blob is one document, so it is
 * written and read in one round trip instead of a files document plus a chunk.
 */
import type { Binary, Collection, Db } from 'mongodb';
import type { SmallBlobStore } from '../types.js';
import { bytesOf } from './mongo-blob-chunks.js';

interface SmallBlobDoc {
  _id: string;
  data: Binary | Buffer;
}

export interface MongoSmallBlobsOptions {
  /** The database, or how to get it (e.g. `() => mongoStore.database()`). */
  db: Db | (() => Db);
  /** Default `blob_small`. */
  collection?: string;
}

export class MongoSmallBlobs implements SmallBlobStore {
  private readonly db: () => Db;
  private readonly name: string;

  constructor(opts: MongoSmallBlobsOptions) {
    const { db } = opts;
    this.db = typeof db === 'function' ? db : () => db;
    this.name = opts.collection ?? 'blob_small';
  }

  /**
   * Resolves once the server acknowledged the insert (the driver's write concern): durable
   * before the row that refers to it is written, which SmallBlobStore.put does not even ask.
   */
  async put(id: string, data: Buffer): Promise<void> {
    await this.blobs().insertOne({ _id: id, data });
  }

  async get(id: string): Promise<Buffer | null> {
    const doc = await this.blobs().findOne({ _id: id });
    return doc === null ? null : bytesOf(doc.data);
  }

  async delete(id: string): Promise<void> {
    await this.blobs().deleteOne({ _id: id });
  }

  async list(): Promise<string[]> {
    const docs = await this.blobs().find({}, { projection: { _id: 1 } }).toArray();
    return docs.map((d) => d._id);
  }

  private blobs(): Collection<SmallBlobDoc> {
    return this.db().collection<SmallBlobDoc>(this.name);
  }
}
