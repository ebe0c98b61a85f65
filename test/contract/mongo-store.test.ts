/**
 * The Mongo store against the same contract suites as SQLite. The server is the one
 * EDGESYNC_TEST_MONGO_URL names, else a FerretDB started for this file (test/helpers/ferretdb.ts);
 * with neither, the suites skip visibly. Each store gets a database of its own.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
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
