/**
 * Group commit for one SQLite connection. Every write of one event-loop turn runs in a shared
 * transaction, each in its own savepoint, and one COMMIT ends the turn. Each write's promise
 * settles only once its commit is durable: when a `sync` function is given (the store runs
 * synchronous=NORMAL and hands the WAL file's fsync here), that fsync runs on the thread pool,
 * off the event loop, and one fsync covers every commit made before it started. Concurrent
 * requests then share fsyncs instead of paying one each, and the event loop never waits for
 * the disk, without giving up "durable before acknowledged".
 *
 * Reads on the same connection see the open transaction's writes before its commit. That is
 * harmless: the commit follows in the same turn, and a failed commit fails every writer, whose
 * callers then report the failure.
 */
import type Database from 'better-sqlite3';
import { CoalescedSync } from '../coalesced-sync.js';

interface Waiter {
  resolve(): void;
  reject(err: unknown): void;
}

export class GroupCommit {
  /** Writers of the open transaction, settled by its commit; null while none is open. */
  private waiters: Waiter[] | null = null;
  /** The fsync after commits, shared by the commits that happen while one runs. */
  private readonly syncs: CoalescedSync | null;
  /**
   * better-sqlite3's transaction wrapper of the connection, made once: making one builds four
   * closures and their properties, 5 % of the CSS's busy time in a CPU profile of the
   * sync-http bench when it was made per write (throughput itself moved within the noise).
   */
  private savepoint: { db: Database.Database; run: <T>(work: (db: Database.Database) => T) => T } | null = null;

  /**
   * @param connection the open connection; asked on every write, so reopening is followed.
   * @param sync makes every commit so far durable (an fsync of the WAL); without it a COMMIT
   *   is taken as durable by itself (synchronous=FULL, or a throwaway in-memory database).
   * @param syncsInFlight fsyncs allowed to run at once (see CoalescedSync); default 1
   */
  constructor(
    private readonly connection: () => Database.Database,
    sync?: () => Promise<void>,
    syncsInFlight = 1,
  ) {
    this.syncs = sync !== undefined ? new CoalescedSync(sync, syncsInFlight) : null;
  }

  /**
   * Runs `work` now, in a savepoint of the turn's transaction: if it throws, only its own
   * changes are undone and the promise rejects at once. Otherwise the promise resolves to its
   * result once the transaction committed.
   */
  write<T>(work: (db: Database.Database) => T): Promise<T> {
    let result: T;
    let waiters: Waiter[];
    try {
      const db = this.connection();
      waiters = this.begin(db);
      result = this.inSavepoint(db, work);
    } catch (err) {
      // As thrown: a SqliteError keeps its `code` (and instanceof fails across jest realms).
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- what better-sqlite3 threw
      return Promise.reject(err);
    }
    return new Promise<T>((resolve, reject) => waiters.push({ resolve: () => resolve(result), reject }));
  }

  /**
   * Runs `work` in the turn's transaction like write(), but hands its result back at once,
   * before the commit: for a write nobody needs to be durable before going on (its effect only
   * matters together with a later write, which waits for a commit that includes this one).
   * @throws what `work` throws (its changes undone)
   */
  writeNow<T>(work: (db: Database.Database) => T): T {
    const db = this.connection();
    this.begin(db);
    return this.inSavepoint(db, work);
  }

  /** Runs `work` in a savepoint of the open transaction: if it throws, only its changes are undone. */
  private inSavepoint<T>(db: Database.Database, work: (db: Database.Database) => T): T {
    if (this.savepoint?.db !== db) {
      // Inside an open transaction better-sqlite3 runs a transaction function as SAVEPOINT … RELEASE.
      const tx = db.transaction((w: (d: Database.Database) => unknown) => w(db));
      this.savepoint = { db, run: <R>(w: (d: Database.Database) => R): R => tx(w) as R };
    }
    return this.savepoint.run(work);
  }

  /** The open transaction's writers, opening one (committed at the end of the turn) if needed. */
  private begin(db: Database.Database): Waiter[] {
    if (this.waiters !== null) return this.waiters;
    db.exec('BEGIN IMMEDIATE');
    const waiters: Waiter[] = [];
    this.waiters = waiters;
    setImmediate(() => this.commit(db));
    return waiters;
  }

  /**
   * Commits the open transaction now, before a close. Its writers settle once the fsync that
   * follows is done; await `drain()` for that.
   */
  flush(): void {
    if (this.waiters !== null) this.commit(this.connection());
  }

  /** Resolves once no write waits for its commit or fsync any more. */
  async drain(): Promise<void> {
    this.flush();
    await this.syncs?.idle();
  }

  private commit(db: Database.Database): void {
    const waiters = this.waiters;
    if (waiters === null) return;
    this.waiters = null;
    try {
      db.exec('COMMIT');
    } catch (err) {
      // The changes are lost: every writer of the turn hears so.
      try {
        if (db.inTransaction) db.exec('ROLLBACK');
      } catch {
        // The connection is broken; the writers' rejection below is what matters.
      }
      for (const w of waiters) w.reject(err);
      return;
    }
    if (this.syncs === null) {
      for (const w of waiters) w.resolve();
      return;
    }
    // Not known to be on disk until the fsync: a failed one fails the writers, as a failed COMMIT.
    this.syncs.run().then(
      () => waiters.forEach((w) => w.resolve()),
      (err: unknown) => waiters.forEach((w) => w.reject(err)),
    );
  }
}
