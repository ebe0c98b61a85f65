/**
 * The embedded Store: one SQLite file through better-sqlite3. Calls are synchronous and short
 * (indexed point reads and writes), so they run on the event loop; the async signatures are the
 * seam shared with MongoDB.
 */
import type { FileHandle } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { InternalError, METADATA_INT64_KEYS, UnavailableError, msToNanos, parseJson, stringifyJson, type MetaData, type ObjectStatus } from '../../model/index.js';
import type {
  AclType,
  DeletedOrganization,
  Destination,
  DestinationsSeenCount,
  ObjectDeletion,
  ObjectFilter,
  ObjectStatusCount,
  Organization,
  Store,
  StoredAclEntry,
  StoredObject,
  UploadSession,
  Webhook,
} from '../types.js';
import { migrate } from './migrations.js';
import { GroupCommit } from './group-commit.js';
import { SqliteSmallBlobs } from './sqlite-small-blobs.js';
import { SqliteNotificationStore } from './sqlite-notification-store.js';
import { SqliteAcls } from './sqlite-acls.js';

/** How long a statement waits for another connection's lock before failing with SQLITE_BUSY. */
const BUSY_TIMEOUT_MS = 5000;
const INSTANCE_ID_KEY = 'last_instance_id';

interface ObjectRow {
  meta: string;
  status: string;
  blob_id: string | null;
  data_sha256: string | null;
  remaining_consumers: number;
  remaining_receivers: number;
  policy_received: number;
  last_update: number;
}

interface DeletionRow {
  meta: string;
  policy_received: number;
  deleted_at: number;
}

interface ObjectKey {
  org: string;
  type: string;
  id: string;
}

// The column keeps the upper-case spelling its CHECK constraint (schema version 1) allows; the
// API speaks the reference's lower case, so it is upper()ed on write and lower()ed on read.
const DESTINATION_COLUMNS = `org AS destinationOrgID, dest_type AS destinationType, dest_id AS destinationID, lower(communication) AS communication,
  code_version AS codeVersion, last_ping AS lastPing`;

interface UploadRow {
  org: string;
  object_type: string;
  object_id: string;
  staging_id: string;
  total: number;
  received: number;
  chunk_size: number;
  /** Written as a bigint, read as text (CAST in the SELECT). */
  instance_id: bigint | string;
  last_update: number;
}

const OBJECT_COLUMNS = 'meta, status, blob_id, data_sha256, remaining_consumers, remaining_receivers, policy_received, last_update';
const OBJECT_ORDER = 'ORDER BY object_type, object_id';
const DELETION_COLUMNS = 'meta, policy_received, deleted_at';

/** Every statement, prepared once at init (preparing parses SQL; running a prepared one does not). */
function prepareStatements(db: Database.Database) {
  return {
    ping: db.prepare<[], number>('SELECT 1').pluck(),
    // As text: the instance counter is a nanosecond int64, beyond what a JS number holds.
    getCounter: db.prepare<[string], string>('SELECT CAST(value AS TEXT) FROM meta WHERE key = ?').pluck(),
    setCounter: db.prepare<[string, bigint]>('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),

    getObject: db.prepare<ObjectKey, ObjectRow>(`SELECT ${OBJECT_COLUMNS} FROM objects WHERE org = @org AND object_type = @type AND object_id = @id`),
    putObject: db.prepare<Record<string, string | number | bigint | null>>(
      `INSERT OR REPLACE INTO objects (org, object_type, object_id, ${OBJECT_COLUMNS}, instance_id)
       VALUES (@org, @type, @id, @meta, @status, @blob_id, @data_sha256, @remaining_consumers, @remaining_receivers,
               @policy_received, @last_update, @instance_id)`,
    ),
    deleteObject: db.prepare<ObjectKey>('DELETE FROM objects WHERE org = @org AND object_type = @type AND object_id = @id'),
    // One statement per filter shape keeps each one plannable on an index; the status list is
    // bound as one JSON array so that its length does not change the SQL text.
    listByOrg: db.prepare<[string], ObjectRow>(`SELECT ${OBJECT_COLUMNS} FROM objects WHERE org = ? ${OBJECT_ORDER}`),
    listByType: db.prepare<[string, string], ObjectRow>(`SELECT ${OBJECT_COLUMNS} FROM objects WHERE org = ? AND object_type = ? ${OBJECT_ORDER}`),
    listByStatus: db.prepare<[string, string], ObjectRow>(
      `SELECT ${OBJECT_COLUMNS} FROM objects WHERE org = ? AND status IN (SELECT value FROM json_each(?)) ${OBJECT_ORDER}`,
    ),
    listByTypeAndStatus: db.prepare<[string, string, string], ObjectRow>(
      `SELECT ${OBJECT_COLUMNS} FROM objects WHERE org = ? AND object_type = ? AND status IN (SELECT value FROM json_each(?)) ${OBJECT_ORDER}`,
    ),
    countObjects: db.prepare<[], number>('SELECT count(*) FROM objects').pluck(),
    // Served by the (org, status) index alone.
    countObjectsByStatus: db.prepare<[], ObjectStatusCount>('SELECT org AS orgID, status, count(*) AS count FROM objects GROUP BY org, status'),
    // One row per (org, threshold): the thresholds as one JSON array, so that their number
    // does not change the SQL text.
    countDestinationsSeen: db.prepare<[string], { orgID: string; k: number; total: number; n: number }>(
      'SELECT org AS orgID, t.key AS k, count(*) AS total, sum(last_ping >= t.value) AS n FROM destinations, json_each(?) t GROUP BY org, t.key ORDER BY org, t.key',
    ),
    referencedIds: db.prepare<[], string>('SELECT blob_id FROM objects WHERE blob_id IS NOT NULL UNION SELECT staging_id FROM uploads').pluck(),

    putDeletion: db.prepare<Record<string, string | number>>(
      `INSERT OR REPLACE INTO deleted_objects (org, object_type, object_id, meta, policy_received, deleted_at)
       VALUES (@org, @type, @id, @meta, @policy_received, @deleted_at)`,
    ),
    getDeletion: db.prepare<ObjectKey, DeletionRow>(
      `SELECT ${DELETION_COLUMNS} FROM deleted_objects WHERE org = @org AND object_type = @type AND object_id = @id`,
    ),
    listDeletionsByOrg: db.prepare<[string], DeletionRow>(`SELECT ${DELETION_COLUMNS} FROM deleted_objects WHERE org = ? ${OBJECT_ORDER}`),
    listDeletionsByType: db.prepare<[string, string], DeletionRow>(
      `SELECT ${DELETION_COLUMNS} FROM deleted_objects WHERE org = ? AND object_type = ? ${OBJECT_ORDER}`,
    ),
    removeDeletion: db.prepare<ObjectKey>('DELETE FROM deleted_objects WHERE org = @org AND object_type = @type AND object_id = @id'),

    addWebhook: db.prepare<[string, string, string, string]>('INSERT OR IGNORE INTO webhooks (org, object_type, url, url_folded) VALUES (?, ?, ?, ?)'),
    removeWebhook: db.prepare<[string, string, string]>('DELETE FROM webhooks WHERE org = ? AND object_type = ? AND url_folded = ?'),
    // rowid order is registration order, the order the reference calls hooks in.
    listWebhooks: db.prepare<[string, string], Webhook>(
      'SELECT org AS orgID, object_type AS objectType, url FROM webhooks WHERE org = ? AND object_type = ? ORDER BY rowid',
    ),

    putOrg: db.prepare<Organization>(
      'INSERT OR REPLACE INTO organizations (org, address, user, password, last_update) VALUES (@orgID, @address, @user, @password, @lastUpdate)',
    ),
    getOrg: db.prepare<[string], Organization>(
      'SELECT org AS orgID, address, user, password, last_update AS lastUpdate FROM organizations WHERE org = ?',
    ),
    listOrgs: db.prepare<[], Organization>('SELECT org AS orgID, address, user, password, last_update AS lastUpdate FROM organizations ORDER BY org'),
    // UNION sorts and removes duplicates; each part reads the leading column of a primary key.
    listOrgsInUse: db.prepare<[], string>('SELECT org FROM organizations UNION SELECT org FROM destinations UNION SELECT org FROM objects').pluck(),
    orgBlobIds: db.prepare<[string], string>('SELECT blob_id FROM objects WHERE org = ? AND blob_id IS NOT NULL').pluck(),
    orgStagingIds: db.prepare<[string], string>('SELECT staging_id FROM uploads WHERE org = ?').pluck(),
    // Every table keyed by org; meta and small_blobs are not (the org's small blobs go with its blob ids).
    deleteOrgRows: ['organizations', 'objects', 'deleted_objects', 'webhooks', 'destinations', 'uploads', 'notifications', 'acl_entries'].map((table) =>
      db.prepare<[string]>(`DELETE FROM ${table} WHERE org = ?`),
    ),

    putDestination: db.prepare<Destination>(
      `INSERT OR REPLACE INTO destinations (org, dest_type, dest_id, communication, code_version, last_ping)
       VALUES (@destinationOrgID, @destinationType, @destinationID, upper(@communication), @codeVersion, @lastPing)`,
    ),
    listDestinations: db.prepare<[string], Destination>(
      `SELECT ${DESTINATION_COLUMNS} FROM destinations WHERE org = ? ORDER BY dest_type, dest_id`,
    ),
    getDestination: db.prepare<[string, string, string], Destination>(
      `SELECT ${DESTINATION_COLUMNS} FROM destinations WHERE org = ? AND dest_type = ? AND dest_id = ?`,
    ),
    // A scan: at most one per maintenance tick, and no migration is needed to serve it.
    listTimed: db.prepare<[], ObjectRow>(
      `SELECT ${OBJECT_COLUMNS} FROM objects
       WHERE coalesce(json_extract(meta, '$.expiration'), '') <> ''
          OR (json_extract(meta, '$.inactive') = 1 AND coalesce(json_extract(meta, '$.activationTime'), '') <> '')`,
    ),
    touchDestination: db.prepare<[number, string, string, string]>(
      'UPDATE destinations SET last_ping = max(last_ping, ?) WHERE org = ? AND dest_type = ? AND dest_id = ?',
    ),
    deleteDestination: db.prepare<[string, string, string]>('DELETE FROM destinations WHERE org = ? AND dest_type = ? AND dest_id = ?'),

    getUpload: db.prepare<ObjectKey, UploadRow>(
      `SELECT org, object_type, object_id, staging_id, total, received, chunk_size, CAST(instance_id AS TEXT) AS instance_id, last_update
       FROM uploads WHERE org = @org AND object_type = @type AND object_id = @id`,
    ),
    putUpload: db.prepare<UploadRow>(
      `INSERT OR REPLACE INTO uploads (org, object_type, object_id, staging_id, total, received, chunk_size, instance_id, last_update)
       VALUES (@org, @object_type, @object_id, @staging_id, @total, @received, @chunk_size, @instance_id, @last_update)`,
    ),
    advanceUpload: db.prepare<[number, number, string, string, string, number]>(
      'UPDATE uploads SET received = ?, last_update = ? WHERE org = ? AND object_type = ? AND object_id = ? AND received = ?',
    ),
    deleteUpload: db.prepare<ObjectKey>('DELETE FROM uploads WHERE org = @org AND object_type = @type AND object_id = @id'),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

function parseStoredMeta(text: string): MetaData {
  return parseJson(text, METADATA_INT64_KEYS) as MetaData;
}

function toStoredObject(row: ObjectRow): StoredObject {
  return {
    meta: parseStoredMeta(row.meta),
    status: row.status as ObjectStatus,
    blobId: row.blob_id,
    dataSha256: row.data_sha256,
    remainingConsumers: row.remaining_consumers,
    remainingReceivers: row.remaining_receivers,
    policyReceived: row.policy_received !== 0,
    lastUpdate: row.last_update,
  };
}

function toDeletion(row: DeletionRow): ObjectDeletion {
  return { meta: parseStoredMeta(row.meta), policyReceived: row.policy_received !== 0, deletedAt: row.deleted_at };
}

function toUploadSession(row: UploadRow): UploadSession {
  return {
    orgID: row.org,
    objectType: row.object_type,
    objectID: row.object_id,
    stagingId: row.staging_id,
    total: row.total,
    received: row.received,
    chunkSize: row.chunk_size,
    instanceID: BigInt(row.instance_id),
    lastUpdate: row.last_update,
  };
}

/**
 * Runs synchronous database work and reports its outcome as a promise, so that a thrown
 * SqliteError becomes a rejection like any other store failure.
 */
function settle<T>(work: () => T): Promise<T> {
  return new Promise<T>((resolve) => {
    resolve(work());
  });
}

/** Store on one SQLite file (or `:memory:`); the single-process CSS and every ESS use it. */
export class SqliteStore implements Store {
  private readonly path: string;
  /** The open connection and its statements; null before init() and after close(). */
  private opened: { db: Database.Database; s: Statements } | null = null;
  /** Writes of one event-loop turn share a commit (and its fsync); see group-commit.ts. */
  private readonly commits = new GroupCommit(
    () => this.open().db,
    () => (this.inMemory ? Promise.resolve() : this.syncWal()),
    // A commit made while an fsync runs starts its own at once: 845 → 899 objects/s on
    // average over four alternating runs of the sync-http bench (docs/benchmarks.md).
    2,
  );
  /** The WAL file, opened once by the first sync; a promise, so that syncs racing to open it share one handle. */
  private wal: Promise<FileHandle> | null = null;

  /** ACLs in this file (sqlite-acls.ts), on this connection and group commit. */
  private readonly acls = new SqliteAcls(
    () => this.open().db,
    (work) => this.write(work),
  );

  /** @param opts.path the database file, created when missing; `:memory:` for a throwaway store. */
  constructor(opts: { path: string }) {
    this.path = opts.path;
  }

  /** Opens the file, sets the connection pragmas and applies pending migrations. */
  init(): Promise<void> {
    return settle(() => {
      if (this.opened !== null) return;
      let db: Database.Database | null = null;
      try {
        db = new Database(this.path);
        db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
        // WAL lets readers (health, listings) run while a write commits.
        db.pragma('journal_mode = WAL');
        // We tell clients (204) and peers ("received", chunk acks) that a write is done once it
        // committed, and they then forget their copy or move on, so a commit must survive power
        // loss. FULL would fsync the WAL inside every COMMIT, on the event loop. NORMAL leaves
        // that fsync to us: group-commit.ts runs it on the thread pool after the commit, one for
        // all the commits before it, and only then acknowledges the writes. Same guarantee,
        // the event loop never waits for the disk. A throwaway in-memory store has no WAL.
        db.pragma(this.inMemory ? 'synchronous = FULL' : 'synchronous = NORMAL');
        db.pragma('foreign_keys = ON');
        migrate(db);
        this.opened = { db, s: prepareStatements(db) };
      } catch (e) {
        db?.close();
        throw this.naming(e);
      }
    });
  }

  /** SQLite's own messages ("file is not a database", "unable to open database file") name no file. */
  private naming(e: unknown): unknown {
    // By name, not instanceof: the addon's error class may come from another realm (jest).
    const err = e as { name?: unknown; message?: unknown; code?: unknown } | null;
    if (err?.name !== 'SqliteError') return e;
    return Object.assign(new Error(`cannot open the database ${this.path}: ${String(err.message)}`, { cause: e }), { code: err.code });
  }

  async close(): Promise<void> {
    if (this.opened === null) return;
    // Every acknowledged write first reaches the disk.
    await this.commits.drain();
    const wal = this.wal;
    this.wal = null;
    await (await wal)?.close();
    this.opened?.db.close();
    this.opened = null;
  }

  private get inMemory(): boolean {
    return this.path === ':memory:' || this.path === '';
  }

  /**
   * Makes every commit so far durable: an fdatasync of the WAL file. The file is opened on the
   * first sync (a commit has created it by then), its directory entry made durable once.
   */
  private async syncWal(): Promise<void> {
    // A failed open is tried again by the next sync, as before the handle existed.
    this.wal ??= this.openWal().catch((err: unknown) => {
      this.wal = null;
      throw err;
    });
    await (await this.wal).datasync();
  }

  private async openWal(): Promise<FileHandle> {
    const walPath = `${this.path}-wal`;
    const wal = await open(walPath, 'r+');
    const dir = await open(dirname(walPath), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
    return wal;
  }

  ping(): Promise<void> {
    return settle(() => {
      this.open().s.ping.get();
    });
  }

  /**
   * Microseconds since the epoch, bumped past the last id handed out when the clock has not
   * moved (or went back): strictly increasing across restarts because the last id is persisted
   * in the same transaction. Stays below 2^53 until the year 2255.
   *
   * Handed out without waiting for its commit: an id only has to be unique and increasing.
   * The object that gets it is stored in the same commit or a later one, so if the counter's
   * update were lost the object would be too; and ids follow the clock, so a lost one is not
   * handed out again unless the clock goes back past it. One fsync wait less per publish.
   */
  nextInstanceId(): Promise<bigint> {
    return settle(() => {
      const { s } = this.open();
      return this.commits.writeNow(() => {
        const last = BigInt(s.getCounter.get(INSTANCE_ID_KEY) ?? 0);
        // Nanoseconds, as the reference: an id of ours never reads as older than a reference
        // peer's id for the same object.
        const now = msToNanos(Date.now());
        const next = now > last ? now : last + 1n;
        s.setCounter.run(INSTANCE_ID_KEY, next);
        return next;
      });
    });
  }

  getObject(org: string, objectType: string, objectID: string): Promise<StoredObject | null> {
    return settle(() => {
      const row = this.open().s.getObject.get({ org, type: objectType, id: objectID });
      return row === undefined ? null : toStoredObject(row);
    });
  }

  /** The key is taken from the metadata: (destinationOrgID, objectType, objectID). */
  putObject(obj: StoredObject): Promise<void> {
    return this.write(() => {
      this.open().s.putObject.run({
        org: obj.meta.destinationOrgID,
        type: obj.meta.objectType,
        id: obj.meta.objectID,
        meta: stringifyJson(obj.meta),
        status: obj.status,
        blob_id: obj.blobId,
        data_sha256: obj.dataSha256,
        remaining_consumers: obj.remainingConsumers,
        remaining_receivers: obj.remainingReceivers,
        policy_received: obj.policyReceived ? 1 : 0,
        last_update: obj.lastUpdate,
        instance_id: obj.meta.instanceID,
      });
    });
  }

  deleteObject(org: string, objectType: string, objectID: string): Promise<StoredObject | null> {
    // A write runs in its own savepoint (group-commit.ts): the read and the delete are one change.
    return this.write(() => {
      const { s } = this.open();
      const key = { org, type: objectType, id: objectID };
      const row = s.getObject.get(key);
      if (row === undefined) return null;
      s.deleteObject.run(key);
      return toStoredObject(row);
    });
  }

  listTimedObjects(): Promise<StoredObject[]> {
    return settle(() => this.open().s.listTimed.all().map(toStoredObject));
  }

  /** An empty `statuses` list matches nothing (it is a filter with no allowed status). */
  listObjects(filter: ObjectFilter): Promise<StoredObject[]> {
    return settle(() => {
      const { s } = this.open();
      const { org, objectType, statuses } = filter;
      if (statuses?.length === 0) return [];
      const wanted = statuses === undefined ? undefined : JSON.stringify(statuses);
      let rows: ObjectRow[];
      if (objectType === undefined) rows = wanted === undefined ? s.listByOrg.all(org) : s.listByStatus.all(org, wanted);
      else rows = wanted === undefined ? s.listByType.all(org, objectType) : s.listByTypeAndStatus.all(org, objectType, wanted);
      return rows.map(toStoredObject);
    });
  }

  countObjects(): Promise<number> {
    return settle(() => this.open().s.countObjects.get() ?? 0);
  }

  countObjectsByStatus(): Promise<ObjectStatusCount[]> {
    return settle(() => this.open().s.countObjectsByStatus.all());
  }

  countDestinationsSeen(since: readonly number[]): Promise<DestinationsSeenCount[]> {
    return settle(() => {
      const byOrg = new Map<string, DestinationsSeenCount>();
      // With no threshold one is still joined, so that every org yields its total.
      for (const r of this.open().s.countDestinationsSeen.all(JSON.stringify(since.length > 0 ? since : [0]))) {
        let org = byOrg.get(r.orgID);
        if (org === undefined) byOrg.set(r.orgID, (org = { orgID: r.orgID, total: r.total, seen: [] }));
        if (since.length > 0) org.seen[r.k] = r.n;
      }
      return [...byOrg.values()];
    });
  }

  /** Object blob ids and upload staging ids: a staging area is live as long as its upload row is. */
  referencedBlobIds(): Promise<Set<string>> {
    return settle(() => new Set(this.open().s.referencedIds.all()));
  }

  putDeletion(deletion: ObjectDeletion): Promise<void> {
    const m = deletion.meta;
    return this.write(() => {
      this.open().s.putDeletion.run({
        org: m.destinationOrgID,
        type: m.objectType,
        id: m.objectID,
        meta: stringifyJson(m),
        policy_received: deletion.policyReceived ? 1 : 0,
        deleted_at: deletion.deletedAt,
      });
    });
  }

  getDeletion(org: string, objectType: string, objectID: string): Promise<ObjectDeletion | null> {
    return settle(() => {
      const row = this.open().s.getDeletion.get({ org, type: objectType, id: objectID });
      return row === undefined ? null : toDeletion(row);
    });
  }

  listDeletions(org: string, objectType?: string): Promise<ObjectDeletion[]> {
    return settle(() => {
      const { s } = this.open();
      const rows = objectType === undefined ? s.listDeletionsByOrg.all(org) : s.listDeletionsByType.all(org, objectType);
      return rows.map(toDeletion);
    });
  }

  removeDeletion(org: string, objectType: string, objectID: string): Promise<void> {
    return this.write(() => {
      this.open().s.removeDeletion.run({ org, type: objectType, id: objectID });
    });
  }

  /** Registering the same URL twice keeps one entry. */
  addWebhook(hook: Webhook): Promise<void> {
    return this.write(() => {
      this.open().s.addWebhook.run(hook.orgID, hook.objectType, hook.url, foldUrl(hook.url));
    });
  }

  removeWebhook(hook: Webhook): Promise<void> {
    return this.write(() => {
      this.open().s.removeWebhook.run(hook.orgID, hook.objectType, foldUrl(hook.url));
    });
  }

  listWebhooks(orgID: string, objectType: string): Promise<Webhook[]> {
    return settle(() => this.open().s.listWebhooks.all(orgID, objectType));
  }

  putOrganization(org: Organization): Promise<void> {
    return this.write(() => {
      this.open().s.putOrg.run(org);
    });
  }

  getOrganization(orgID: string): Promise<Organization | null> {
    return settle(() => this.open().s.getOrg.get(orgID) ?? null);
  }

  listOrganizations(): Promise<Organization[]> {
    return settle(() => this.open().s.listOrgs.all());
  }

  listOrgsInUse(): Promise<string[]> {
    return settle(() => this.open().s.listOrgsInUse.all());
  }

  /** One transaction: the org's rows of every table keyed by org go together. */
  deleteOrganization(orgID: string): Promise<DeletedOrganization> {
    return this.write(() => {
      const { s } = this.open();
      const blobIds = s.orgBlobIds.all(orgID);
      const stagingIds = s.orgStagingIds.all(orgID);
      for (const del of s.deleteOrgRows) del.run(orgID);
      this.acls.invalidate();
      return { blobIds, stagingIds };
    }).catch((err: unknown) => {
      // A failed commit takes the rows back: what was read meanwhile is not the truth.
      this.acls.invalidate();
      throw err;
    });
  }

  addAclEntries(aclType: AclType, org: string, key: string, entries: readonly StoredAclEntry[]): Promise<void> {
    return this.acls.addAclEntries(aclType, org, key, entries);
  }

  removeAclEntries(aclType: AclType, org: string, key: string, users: readonly Pick<StoredAclEntry, 'username' | 'aclUserType'>[]): Promise<void> {
    return this.acls.removeAclEntries(aclType, org, key, users);
  }

  getAcl(aclType: AclType, org: string, key: string): Promise<StoredAclEntry[]> {
    return this.acls.getAcl(aclType, org, key);
  }

  listAclKeys(aclType: AclType, org: string): Promise<string[]> {
    return this.acls.listAclKeys(aclType, org);
  }

  /** Inserts or replaces the registration with the same (org, type, id). */
  putDestination(dest: Destination): Promise<void> {
    return this.write(() => {
      this.open().s.putDestination.run(dest);
    });
  }

  /** Ordered by (destinationType, destinationID). */
  listDestinations(orgID: string): Promise<Destination[]> {
    return settle(() => this.open().s.listDestinations.all(orgID));
  }

  getDestination(orgID: string, destinationType: string, destinationID: string): Promise<Destination | null> {
    return settle(() => this.open().s.getDestination.get(orgID, destinationType, destinationID) ?? null);
  }

  touchDestination(orgID: string, destinationType: string, destinationID: string, at: number): Promise<boolean> {
    return this.write(() => this.open().s.touchDestination.run(at, orgID, destinationType, destinationID).changes === 1);
  }

  deleteDestination(orgID: string, destinationType: string, destinationID: string): Promise<boolean> {
    return this.write(() => this.open().s.deleteDestination.run(orgID, destinationType, destinationID).changes === 1);
  }

  getUpload(org: string, objectType: string, objectID: string): Promise<UploadSession | null> {
    return settle(() => {
      const row = this.open().s.getUpload.get({ org, type: objectType, id: objectID });
      return row === undefined ? null : toUploadSession(row);
    });
  }

  /** Inserts or replaces the session of the same object. */
  putUpload(session: UploadSession): Promise<void> {
    return this.write(() => {
      this.open().s.putUpload.run({
        org: session.orgID,
        object_type: session.objectType,
        object_id: session.objectID,
        staging_id: session.stagingId,
        total: session.total,
        received: session.received,
        chunk_size: session.chunkSize,
        instance_id: session.instanceID,
        last_update: session.lastUpdate,
      });
    });
  }

  /**
   * The compare-and-set is the `received = ?` condition of the UPDATE itself, so it holds
   * against every other connection to the file; `lastUpdate` becomes the current time.
   * @throws InternalError when `received` is behind `expectedReceived` (a caller bug).
   */
  advanceUpload(org: string, objectType: string, objectID: string, expectedReceived: number, received: number): Promise<boolean> {
    return this.write(() => {
      if (received < expectedReceived) {
        throw new InternalError(`An upload cannot move back from ${expectedReceived} to ${received} bytes`);
      }
      const result = this.open().s.advanceUpload.run(received, Date.now(), org, objectType, objectID, expectedReceived);
      return result.changes === 1;
    });
  }

  deleteUpload(org: string, objectType: string, objectID: string): Promise<void> {
    return this.write(() => {
      this.open().s.deleteUpload.run({ org, type: objectType, id: objectID });
    });
  }

  /** The notification records in this file, on this connection; keep it (it caches statements), it follows close/init. */
  notifications(): SqliteNotificationStore {
    return new SqliteNotificationStore(() => this.open().db, (work) => this.write(work));
  }

  /** Small blobs in this file, committed with the store's other writes; see tiered-blob-store.ts. */
  smallBlobs(): SqliteSmallBlobs {
    return new SqliteSmallBlobs(
      () => this.open().db,
      (work) => this.write(work),
      (work) => this.commits.writeNow(work),
    );
  }

  /** A write: runs now, resolves once durable (group commit). */
  private write<T>(work: () => T): Promise<T> {
    return this.commits.write(work);
  }

  private open(): { db: Database.Database; s: Statements } {
    // Only while the node starts or stops: a request that raced the stop gets a 503, as any
    // request does once the node stops taking them.
    if (this.opened === null) throw new UnavailableError('SqliteStore used before init() or after close()');
    return this.opened;
  }
}

/** Webhook URLs compare case-insensitively (Unicode-aware, unlike SQLite's ASCII-only lower()). */
function foldUrl(url: string): string {
  return url.toLowerCase();
}
