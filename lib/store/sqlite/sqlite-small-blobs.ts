/**
 * Small blobs in the SQLite file of a SqliteStore, on its connection and its group commit: a
 * put shares the commit and the WAL fsync of every other write of its event-loop turn.
 */
import type Database from 'better-sqlite3';
import type { SmallBlobStore } from '../types.js';

function prepareStatements(db: Database.Database) {
  return {
    put: db.prepare<[string, Buffer]>('INSERT INTO small_blobs (id, data) VALUES (?, ?)'),
    get: db.prepare<[string], Buffer>('SELECT data FROM small_blobs WHERE id = ?').pluck(),
    delete: db.prepare<[string]>('DELETE FROM small_blobs WHERE id = ?'),
    list: db.prepare<[], string>('SELECT id FROM small_blobs').pluck(),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

/** SmallBlobStore of a SqliteStore; get one from `SqliteStore.smallBlobs()`. */
export class SqliteSmallBlobs implements SmallBlobStore {
  /** Statements of the connection they were prepared on; re-prepared when the store reopens. */
  private prepared: { db: Database.Database; s: Statements } | null = null;

  /**
   * @param connection the store's open connection (throws when closed)
   * @param write the store's group commit: runs `work` now, resolves once it is durable
   * @param writeNow runs `work` now in the group commit's open transaction, without waiting
   */
  constructor(
    private readonly connection: () => Database.Database,
    private readonly write: <T>(work: () => T) => Promise<T>,
    private readonly writeNow: (work: () => void) => void,
  ) {}

  /**
   * Does not wait for the commit's fsync: see SmallBlobStore.put. The blob's id only matters
   * once a row refers to it, and that row's write waits for a commit that includes this one.
   */
  put(id: string, data: Buffer): Promise<void> {
    return new Promise((resolve) => {
      this.writeNow(() => {
        this.statements().put.run(id, data);
      });
      resolve();
    });
  }

  get(id: string): Promise<Buffer | null> {
    return new Promise((resolve) => resolve(this.statements().get.get(id) ?? null));
  }

  delete(id: string): Promise<void> {
    return this.write(() => {
      this.statements().delete.run(id);
    });
  }

  list(): Promise<string[]> {
    return new Promise((resolve) => resolve(this.statements().list.all()));
  }

  private statements(): Statements {
    const db = this.connection();
    if (this.prepared?.db !== db) this.prepared = { db, s: prepareStatements(db) };
    return this.prepared.s;
  }
}
