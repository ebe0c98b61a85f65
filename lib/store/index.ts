/** The storage seam: interfaces and the implementations the composition roots choose from. */
export type * from './types.js';
export type * from './notification-types.js';
export { NOTIFICATION_STATUSES } from './notification-types.js';
export { SqliteStore } from './sqlite/sqlite-store.js';
export { SqliteNotificationStore } from './sqlite/sqlite-notification-store.js';
export { FileBlobStore } from './file-blob-store.js';
export { TieredBlobStore, DEFAULT_INLINE_LIMIT } from './tiered-blob-store.js';
export { MongoStore } from './mongo/mongo-store.js';
export { MongoNotificationStore } from './mongo/mongo-notification-store.js';
export { MongoBlobStore } from './mongo/mongo-blob-store.js';
export { MongoSmallBlobs } from './mongo/mongo-small-blobs.js';
export { mongoConnection, type MongoSettings, type MongoConnection } from './mongo/mongo-connection.js';
export { mappingUnreachable, isUnreachable } from './mongo/mongo-errors.js';
export type * from './coordination-types.js';
export { SoleLeaderLease, NoPeerWakeBus, newInstanceId } from './single-process-coordination.js';
export { MongoLeaderLease, type MongoLeaderLeaseOptions } from './mongo/mongo-lease.js';
export { MongoWakeBus, type MongoWakeBusOptions } from './mongo/mongo-wake-bus.js';
