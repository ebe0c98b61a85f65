import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import Database from 'better-sqlite3';
import { emptyMetaData, InternalError } from '../../lib/model/index.js';
import { SqliteStore, type Store } from '../../lib/store/index.js';
import { LATEST_SCHEMA_VERSION, MIGRATIONS } from '../../lib/store/sqlite/migrations.js';
import { storeContract } from './store.contract.js';
import { aclStoreContract } from './acl-store.contract.js';

const root = mkdtempSync(join(tmpdir(), 'edgesync-sqlite-'));
let fileCount = 0;
const paths = new WeakMap<Store, string>();

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

async function openStore(path: string): Promise<SqliteStore> {
  const store = new SqliteStore({ path });
  await store.init();
  paths.set(store, path);
  return store;
}

const freshPath = (): string => join(root, `store-${++fileCount}.db`);

storeContract('SqliteStore (file)', () => openStore(freshPath()), {
  reopen: async (store) => {
    await store.close();
    return openStore(paths.get(store)!);
  },
});

storeContract('SqliteStore (:memory:)', () => openStore(':memory:'));

aclStoreContract('SqliteStore (file)', () => openStore(freshPath()), {
  teardown: (store) => store.close(),
  reopen: async (store) => {
    await store.close();
    return openStore(paths.get(store)!);
  },
});

describe('SqliteStore on a file', () => {
  let path: string;
  let store: SqliteStore;

  beforeEach(async () => {
    path = freshPath();
    store = await openStore(path);
  });

  afterEach(async () => {
    await store.close();
  });

  /** A second connection to the same file, as an operator's sqlite3 shell would open it. */
  function inspect<T>(look: (db: Database.Database) => T): T {
    const db = new Database(path);
    try {
      return look(db);
    } finally {
      db.close();
    }
  }

  it('runs in WAL mode', () => {
    expect(inspect((db) => db.pragma('journal_mode', { simple: true }))).toBe('wal');
  });

  it('brings an empty database to the latest schema version', () => {
    expect(LATEST_SCHEMA_VERSION).toBe(MIGRATIONS.length);
    expect(inspect((db) => db.pragma('user_version', { simple: true }))).toBe(LATEST_SCHEMA_VERSION);
    const tables = inspect((db) => db.prepare<[], string>("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name").pluck().all());
    expect(tables).toEqual(['acl_entries', 'deleted_objects', 'destinations', 'meta', 'notifications', 'objects', 'organizations', 'small_blobs', 'uploads', 'webhooks']);
  });

  it('answers the ACL lookup of every user request from the primary key, never a table scan', () => {
    const plan = inspect((db) =>
      db
        .prepare<[], { detail: string }>("EXPLAIN QUERY PLAN SELECT username FROM acl_entries WHERE org = 'o' AND acl_type = 'objects' AND acl_key = 'k' ORDER BY position")
        .all()
        .map((r) => r.detail),
    );
    expect(plan.join('\n')).toMatch(/SEARCH acl_entries USING PRIMARY KEY \(org=\? AND acl_type=\? AND acl_key=\?\)/);
    expect(plan.join('\n')).not.toMatch(/SCAN acl_entries/);
  });

  it('numbers its migrations 1, 2, 3… without gaps', () => {
    expect(MIGRATIONS.map((m) => m.version)).toEqual(MIGRATIONS.map((_, i) => i + 1));
  });

  it('opens an up-to-date database again without changing it', async () => {
    await store.putObject({
      meta: { ...emptyMetaData(), destinationOrgID: 'o', objectType: 't', objectID: 'i' },
      status: 'ready',
      blobId: null,
      dataSha256: null,
      remainingConsumers: 0,
      remainingReceivers: 0,
      policyReceived: false,
      lastUpdate: 1,
    });
    await store.close();
    store = await openStore(path);
    expect(await store.countObjects()).toBe(1);
  });

  it('refuses a database written by a newer edgesync, and leaves it untouched', async () => {
    await store.close();
    inspect((db) => db.pragma(`user_version = ${LATEST_SCHEMA_VERSION + 1}`));
    const newer = new SqliteStore({ path });
    const refusal = newer.init();
    await expect(refusal).rejects.toThrow(InternalError);
    await expect(refusal).rejects.toThrow(`schema version ${LATEST_SCHEMA_VERSION + 1}, newer than the ${LATEST_SCHEMA_VERSION}`);
    expect(inspect((db) => db.pragma('user_version', { simple: true }))).toBe(LATEST_SCHEMA_VERSION + 1);
  });

  it('names the file when it is not a database, and leaves it untouched', async () => {
    await store.close();
    // No WAL beside it: SQLite would read a valid first page from there.
    for (const side of ['-wal', '-shm']) rmSync(`${path}${side}`, { force: true });
    const garbage = Buffer.alloc(8192, 0x5a);
    writeFileSync(path, garbage);
    const refusal = new SqliteStore({ path }).init();
    await expect(refusal).rejects.toThrow(`cannot open the database ${path}: file is not a database`);
    await expect(refusal).rejects.toHaveProperty('code', 'SQLITE_NOTADB');
    expect(readFileSync(path).equals(garbage)).toBe(true);
    // What afterEach closes.
    rmSync(path);
    store = await openStore(path);
  });

  it('continues instance ids from the persisted counter even when the clock is behind it', async () => {
    // Nanoseconds, an hour ahead: beyond 2^53, so it must be stored and read back exactly.
    const ahead = (BigInt(Date.now()) + 3_600_000n) * 1_000_000n;
    await store.close();
    inspect((db) => db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('last_instance_id', ?)").run(ahead));
    store = await openStore(path);
    expect(await store.nextInstanceId()).toBe(ahead + 1n);
  });

  it('plans the listing queries on indexes, not table scans', () => {
    const plan = (sql: string): string =>
      inspect((db) =>
        db
          .prepare<[], { detail: string }>(`EXPLAIN QUERY PLAN ${sql}`)
          .all()
          .map((r) => r.detail)
          .join('; '),
      );
    expect(plan("SELECT * FROM objects WHERE org = 'o' AND object_type = 't' ORDER BY object_type, object_id")).toMatch(/USING INDEX sqlite_autoindex_objects_1/);
    expect(plan("SELECT * FROM objects WHERE org = 'o' AND status = 'ready'")).toMatch(/USING INDEX objects_org_status/);
  });

  it('rejects calls after close with a clear error', async () => {
    await store.close();
    await expect(store.countObjects()).rejects.toThrow('SqliteStore used before init() or after close()');
  });
});
