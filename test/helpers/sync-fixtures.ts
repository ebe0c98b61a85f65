/**
 * Fixtures for unit tests of the sync engine on a real SQLite store and FileBlobStore: a fresh
 * directory per test, the stores opened in it, the ObjectService of a node, metadata and records.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from '@jest/globals';
import { emptyMetaData, type MetaData } from '../../lib/model/index.js';
import { FileBlobStore, SqliteStore, type Notification, type NotificationStore } from '../../lib/store/index.js';
import { ObjectService, type NodeIdentity, type ObjectServiceDeps } from '../../lib/sync/object-service.js';

/** The organization of the fixtures. */
export const ORG = 'org1';

/** The ESS edge/n1 of org1, as its ObjectService knows itself. */
export const ESS_N1: NodeIdentity = { nodeType: 'ESS', orgID: ORG, destinationType: 'edge', destinationID: 'n1' };

/** The CSS (serving all orgs), as its ObjectService knows itself. */
export const CSS: NodeIdentity = { nodeType: 'CSS', orgID: '', destinationType: 'Cloud', destinationID: 'Cloud' };

/** A temp directory removed after the file's tests; each call of the function returned makes a fresh sub-directory of it. */
export function scratchDirs(prefix: string): () => string {
  const root = mkdtempSync(join(tmpdir(), prefix));
  let count = 0;
  afterAll(() => {
    rmSync(root, { recursive: true, force: true });
  });
  return () => {
    const dir = join(root, String(++count));
    mkdirSync(dir);
    return dir;
  };
}

/** A node's stores: its database (with the notification records) and its data blobs. */
export interface Stores {
  store: SqliteStore;
  notifications: NotificationStore;
  blobs: FileBlobStore;
}

/** The stores of a node in `dir` (database `dir/db`, blobs under `dir/data`), initialised. */
export async function openStores(dir: string): Promise<Stores> {
  const store = new SqliteStore({ path: join(dir, 'db') });
  await store.init();
  const notifications = store.notifications();
  const blobs = new FileBlobStore({ root: join(dir, 'data') });
  await blobs.init();
  return { store, notifications, blobs };
}

/** The ObjectService of `node` on `stores`: chunks of 1 KiB and no size limit unless `deps` say otherwise. */
export function objectServiceOf(node: NodeIdentity, stores: Stores, deps: Partial<ObjectServiceDeps> = {}): ObjectService {
  return new ObjectService({ store: stores.store, blobs: stores.blobs, node, maxDataChunkSize: 1024, maxDataSize: 0, ...deps });
}

/** Metadata of model/{objectID} as the CSS sends it to org1's edge nodes: instance 10, one consumer. */
export function modelForEdge(objectID: string, m: Partial<MetaData> = {}): MetaData {
  return { ...emptyMetaData(), destinationOrgID: ORG, objectType: 'model', objectID, destinationType: 'edge', instanceID: 10n, dataID: 10n, consumers: 1, ...m };
}

/** A node's record of {objectType}/{objectID} of org1 toward the CSS (peer Cloud/Cloud), or null. */
export function cloudRecord(notifications: NotificationStore, objectType: string, objectID: string): Promise<Notification | null> {
  return notifications.getNotification(ORG, objectType, objectID, 'Cloud', 'Cloud');
}
