/**
 * The Mongo store against the same contract suites as SQLite. The server is the one
 * EDGESYNC_TEST_MONGO_URL names, else a FerretDB started for this file (test/helpers/ferretdb.ts);
 * with neither, the suites skip visibly. Each store gets a database of its own.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { MongoClient } from 'mongodb';
import { InternalError } from '../../lib/model/index.js';
import type { NotificationStore, Store } from '../../lib/store/index.js';
import { MONGO_SCHEMA_VERSION, MongoStore } from '../../lib/store/mongo/mongo-store.js';
import { ferretdbPath, MONGO_MISSING, startFerretDb, type FerretDb } from '../helpers/ferretdb.js';
import { storeContract } from './store.contract.js';
import { aclStoreContract } from './acl-store.contract.js';
import { notificationStoreContract } from './notification-store.contract.js';

const given = process.env.EDGESYNC_TEST_MONGO_URL;
const runnable = (given !== undefined && given !== '') || ferretdbPath() !== null;

if (!runnable) {
  console.warn(`Skipped: MongoStore contract (${MONGO_MISSING})`);
  describe.skip(`MongoStore contract (${MONGO_MISSING})`, () => {
    it('runs the Store, AclStore and NotificationStore contracts against a MongoStore', () => {});
  });
} else {
  let server: FerretDb | null = null;
  let url = given ?? '';
  let dbCount = 0;
  const databases = new WeakMap<Store, string>();
  const owners = new WeakMap<NotificationStore, MongoStore>();

  beforeAll(async () => {
    if (url === '') {
      server = await startFerretDb();
      url = server.url;
      process.env.EDGESYNC_TEST_MONGO_URL = url;
    }
  }, 30_000);

  afterAll(async () => {
    await server?.stop();
  });

  const freshDatabase = (): string => `edgesync_${process.pid}_${++dbCount}`;

  async function openStore(database: string): Promise<MongoStore> {
    const store = new MongoStore({ url, database });
    await store.init();
    databases.set(store, database);
    return store;
  }

  /** Closes the store and drops its database, so that a long run does not fill the disk. */
  async function dispose(store: Store): Promise<void> {
    await store.close();
    const client = new MongoClient(url);
    try {
      await client.db(databases.get(store)).dropDatabase();
    } finally {
      await client.close();
    }
  }

  const reopen = async (store: Store): Promise<MongoStore> => {
    await store.close();
    const database = databases.get(store)!;
    return openStore(database);
  };

  storeContract('MongoStore', () => openStore(freshDatabase()), { teardown: dispose, reopen });

  aclStoreContract('MongoStore', () => openStore(freshDatabase()), { teardown: dispose, reopen });

  async function openNotifications(database: string): Promise<NotificationStore> {
    const store = await openStore(database);
    const notifications = store.notifications();
    owners.set(notifications, store);
    return notifications;
  }

  notificationStoreContract('MongoNotificationStore', () => openNotifications(freshDatabase()), {
    teardown: (n) => dispose(owners.get(n)!),
    reopen: async (n) => {
      const store = owners.get(n)!;
      await store.close();
      return openNotifications(databases.get(store)!);
    },
  });

  describe('MongoStore shared by two processes (two clients on one database)', () => {
    let database: string;
    let a: MongoStore;
    let b: MongoStore;

    beforeEach(async () => {
      database = freshDatabase();
      a = await openStore(database);
      b = await openStore(database);
    });

    afterEach(async () => {
      await b.close();
      await dispose(a);
    });

    it('hands out instance ids that are unique and increasing across both', async () => {
      const ids = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).nextInstanceId()));
      expect(new Set(ids).size).toBe(20);
      const after = await a.nextInstanceId();
      for (const id of ids) expect(after > id).toBe(true);
    });

    it('lets exactly one of them accept the same upload chunk', async () => {
      await a.putUpload({ orgID: 'org1', objectType: 'model', objectID: 'm1', stagingId: 's1', total: 300, received: 0, chunkSize: 100, instanceID: 1n, lastUpdate: 1 });
      const results = await Promise.all([a.advanceUpload('org1', 'model', 'm1', 0, 100), b.advanceUpload('org1', 'model', 'm1', 0, 100)]);
      expect(results.filter(Boolean)).toHaveLength(1);
      expect((await b.getUpload('org1', 'model', 'm1'))?.received).toBe(100);
    });

    it('keeps every ACL entry both add at once', async () => {
      const users = Array.from({ length: 10 }, (_, i) => `user${i}`);
      await Promise.all(users.map((u, i) => (i % 2 === 0 ? a : b).addAclEntries('objects', 'org1', 'model', [{ username: u, aclUserType: 'user', aclRole: 'aclReader' }])));
      expect((await a.getAcl('objects', 'org1', 'model')).map((e) => e.username).sort()).toEqual(users);
    });

    it('applies a notification compare-and-set once when both try it', async () => {
      const key = { orgID: 'org1', objectType: 'model', objectID: 'm1', peerType: 'gateway', peerID: 'n1' };
      await a.notifications().putNotification({
        ...key, status: 'update', instanceID: 1n, dataID: 1n, deliveryStatus: 'delivering', message: '', resendAt: 0, attempts: 0, offset: 0, lastUpdate: 1,
      });
      const results = await Promise.all([
        a.notifications().updateNotificationIf(key, { status: 'update' }, { status: 'updated', attempts: 1 }),
        b.notifications().updateNotificationIf(key, { status: 'update' }, { status: 'updated', attempts: 2 }),
      ]);
      expect(results.filter(Boolean)).toHaveLength(1);
    });
  });

  describe('MongoStore', () => {
    it('refuses a database written by a newer edgesync', async () => {
      const database = freshDatabase();
      const store = await openStore(database);
      await store.close();
      const client = new MongoClient(url);
      try {
        await client.db(database).collection<{ _id: string; value: number }>('meta').updateOne({ _id: 'schemaVersion' }, { $set: { value: MONGO_SCHEMA_VERSION + 1 } });
        const newer = new MongoStore({ url, database });
        await expect(newer.init()).rejects.toThrow(InternalError);
        await client.db(database).dropDatabase();
      } finally {
        await client.close();
      }
    });
  });
}
