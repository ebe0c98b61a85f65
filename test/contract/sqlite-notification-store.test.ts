import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import Database from 'better-sqlite3';
import { emptyMetaData, stringifyJson, UnavailableError } from '../../lib/model/index.js';
import { SqliteStore, type Notification, type NotificationStore } from '../../lib/store/index.js';
import { LATEST_SCHEMA_VERSION, migrate, MIGRATIONS } from '../../lib/store/sqlite/migrations.js';
import { notificationStoreContract } from './notification-store.contract.js';

const root = mkdtempSync(join(tmpdir(), 'edgesync-notifications-'));
let fileCount = 0;
/** The SqliteStore owning each NotificationStore the contract gets, and its file. */
const owners = new WeakMap<NotificationStore, { store: SqliteStore; path: string }>();

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

const freshPath = (): string => join(root, `notifications-${++fileCount}.db`);

async function openStore(path: string): Promise<SqliteStore> {
  const store = new SqliteStore({ path });
  await store.init();
  return store;
}

async function openNotifications(path: string): Promise<NotificationStore> {
  const store = await openStore(path);
  const notifications = store.notifications();
  owners.set(notifications, { store, path });
  return notifications;
}

const closeOwner = async (n: NotificationStore): Promise<void> => {
  await owners.get(n)!.store.close();
};

notificationStoreContract('SqliteNotificationStore (file)', () => openNotifications(freshPath()), {
  teardown: closeOwner,
  reopen: async (n) => {
    await closeOwner(n);
    return openNotifications(owners.get(n)!.path);
  },
});

notificationStoreContract('SqliteNotificationStore (:memory:)', () => openNotifications(':memory:'), { teardown: closeOwner });

function record(orgID: string, objectID: string, peerID: string, fields: Partial<Notification> = {}): Notification {
  return {
    orgID, objectType: 'model', objectID, peerType: 'gateway', peerID,
    status: 'updatePending', instanceID: 1n, dataID: 1n, deliveryStatus: 'delivering', message: '',
    resendAt: 0, attempts: 0, offset: 0, lastUpdate: 1, ...fields,
  };
}

describe('SqliteNotificationStore on a file', () => {
  let path: string;

  /** A second connection to the same file, as an operator's sqlite3 shell would open it. */
  function inspect<T>(look: (db: Database.Database) => T): T {
    const db = new Database(path);
    try {
      return look(db);
    } finally {
      db.close();
    }
  }

  beforeEach(() => {
    path = freshPath();
  });

  describe('with an open store', () => {
    let store: SqliteStore;

    beforeEach(async () => {
      store = await openStore(path);
    });

    afterEach(async () => {
      await store.close();
    });

    it('plans the poll, per-object, per-peer and due queries on indexes', () => {
      const plan = (sql: string, ...params: (string | number)[]): string =>
        inspect((db) =>
          db
            .prepare<(string | number)[], { detail: string }>(`EXPLAIN QUERY PLAN ${sql}`)
            .all(...params)
            .map((r) => r.detail)
            .join('; '),
        );
      // The same WHERE clauses as the store's statements.
      const poll = plan(
        `SELECT * FROM notifications WHERE org = ? AND peer_type = ? AND peer_id = ? AND status IN (SELECT value FROM json_each(?))
         ORDER BY last_update, object_type, object_id LIMIT ?`,
        'o', 'gateway', 'n1', '["updatePending"]', 10,
      );
      expect(poll).toMatch(/SEARCH notifications USING INDEX notifications_peer_status/);
      expect(plan('DELETE FROM notifications WHERE org = ? AND peer_type = ? AND peer_id = ?', 'o', 'gateway', 'n1')).toMatch(
        /USING INDEX notifications_peer_status/,
      );
      expect(plan('SELECT * FROM notifications WHERE org = ? AND object_type = ? AND object_id = ? ORDER BY peer_type, peer_id', 'o', 't', 'i')).toMatch(
        /USING INDEX sqlite_autoindex_notifications_1/,
      );
      expect(plan('SELECT * FROM notifications WHERE resend_at > 0 AND resend_at <= ? ORDER BY resend_at LIMIT ?', 5, 10)).toMatch(
        /USING INDEX notifications_due/,
      );
    });

    it('keeps working across close and init of the same SqliteStore, and rejects calls in between', async () => {
      const notifications = store.notifications();
      await notifications.putNotification(record('o', 'm1', 'n1'));
      await store.close();
      await expect(notifications.listForObject('o', 'model', 'm1')).rejects.toThrow(UnavailableError); // a 503 to a request that raced a stop
      await store.init();
      expect(await notifications.listForObject('o', 'model', 'm1')).toEqual([record('o', 'm1', 'n1')]);
    });

    it('deletes an organization\'s records with the organization, and only them', async () => {
      const notifications = store.notifications();
      await notifications.putNotification(record('gone', 'm1', 'n1'));
      await notifications.putNotification(record('kept', 'm1', 'n1'));
      await store.deleteOrganization('gone');
      expect(await notifications.listForObject('gone', 'model', 'm1')).toEqual([]);
      expect(await notifications.listForObject('kept', 'model', 'm1')).toEqual([record('kept', 'm1', 'n1')]);
    });

    it('refuses a record that breaks the schema, and keeps the one stored', async () => {
      const notifications = store.notifications();
      await notifications.putNotification(record('o', 'm1', 'n1'));
      // Matched by code, not toThrow: the native addon keeps the SqliteError class of the first
      // test file that loaded it in this jest worker, which is not an Error of this file's realm.
      await expect(notifications.putNotification(record('o', 'm1', 'n1', { offset: -1 }))).rejects.toHaveProperty('code', 'SQLITE_CONSTRAINT_CHECK');
      await expect(notifications.putNotification(record('o', 'm1', 'n1', { attempts: 1.5 }))).rejects.toHaveProperty('code', 'SQLITE_CONSTRAINT_DATATYPE');
      expect(await notifications.getNotification('o', 'model', 'm1', 'gateway', 'n1')).toEqual(record('o', 'm1', 'n1'));
    });
  });

  it('rejects calls on a store that was never initialized', async () => {
    await expect(new SqliteStore({ path }).notifications().listDue(1, 1)).rejects.toThrow('SqliteStore used before init() or after close()');
  });

  it('migrates a version-1 database holding objects to the latest version, keeping the objects', async () => {
    const meta = { ...emptyMetaData(), destinationOrgID: 'o', objectType: 'model', objectID: 'm1', instanceID: 42n };
    inspect((db) => {
      migrate(db, [MIGRATIONS[0]!]);
      db.prepare(
        `INSERT INTO objects (org, object_type, object_id, meta, status, blob_id, data_sha256, remaining_consumers,
           remaining_receivers, policy_received, last_update, instance_id)
         VALUES ('o', 'model', 'm1', ?, 'ready', NULL, NULL, 1, 0, 0, 7, 42)`,
      ).run(stringifyJson(meta));
    });
    expect(inspect((db) => db.pragma('user_version', { simple: true }))).toBe(1);

    const store = await openStore(path);
    try {
      expect(inspect((db) => db.pragma('user_version', { simple: true }))).toBe(LATEST_SCHEMA_VERSION);
      expect(await store.getObject('o', 'model', 'm1')).toEqual({
        meta, status: 'ready', blobId: null, dataSha256: null,
        remainingConsumers: 1, remainingReceivers: 0, policyReceived: false, lastUpdate: 7,
      });
      const notifications = store.notifications();
      await notifications.putNotification(record('o', 'm1', 'n1'));
      expect(await notifications.listForObject('o', 'model', 'm1')).toEqual([record('o', 'm1', 'n1')]);
      const indexes = inspect((db) =>
        db.prepare<[], string>("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'notifications' ORDER BY name").pluck().all(),
      );
      expect(indexes).toEqual(['notifications_due', 'notifications_peer_status', 'sqlite_autoindex_notifications_1']);
    } finally {
      await store.close();
    }
  });
});
