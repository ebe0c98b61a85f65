/**
 * Storage of a CSS on MongoDB: the MONGO_* settings to a connection, the store on it, the
 * driver's "unreachable" errors turned into 503s.
 */
import { readFile } from 'node:fs/promises';
import type { Config } from '../config/index.js';
import type { Logger } from '../log/logger.js';
import { MongoBlobStore, MongoSmallBlobs, MongoStore, TieredBlobStore, mappingUnreachable, mongoConnection, type BlobStore, type NotificationStore, type Store } from '../store/index.js';

/** How long a request waits for the database before it fails with a 503. */
const SERVER_SELECTION_TIMEOUT_MS = 5_000;

const isPem = (v: string): boolean => v.includes('-----BEGIN');

export async function openMongoStorage(config: Config, log: Logger): Promise<{ store: Store; notifications: NotificationStore; blobs: BlobStore; description: string }> {
  const ca = config.mongoCACertificate;
  const connection = mongoConnection({
    addresses: config.mongoAddressCsv,
    database: config.mongoDbName,
    authDatabase: config.mongoAuthDbName,
    username: config.mongoUsername,
    password: config.mongoPassword,
    tls: config.mongoUseSSL,
    caPem: ca === '' ? null : isPem(ca) ? ca : await readFile(ca, 'utf8'),
    serverSelectionTimeoutMs: SERVER_SELECTION_TIMEOUT_MS,
  });
  const mongo = new MongoStore({ url: connection.url, database: connection.database, options: connection.options });
  try {
    await mongo.init();
  } catch (e) {
    throw new Error(`cannot open the MongoDB database ${connection.database} at ${redact(connection.url)}: ${e instanceof Error ? e.message : String(e)}`);
  }
  log.info({ database: connection.database, address: redact(connection.url) }, 'storing on MongoDB');
  // Object data in the database too, so that every process of the CSS serves every object:
  // small ones in one document each, committed with their object; larger ones in chunks.
  const db = (): ReturnType<MongoStore['database']> => mongo.database();
  const blobs = new TieredBlobStore({ files: new MongoBlobStore({ db }), small: new MongoSmallBlobs({ db }) });
  await blobs.init();
  return {
    store: mappingUnreachable<Store>(mongo),
    // Reads are streams, which the mapping leaves alone; writes and listings are mapped.
    notifications: mappingUnreachable<NotificationStore>(mongo.notifications()),
    blobs: mappingUnreachable<BlobStore>(blobs),
    description: `MongoDB database ${connection.database} at ${redact(connection.url)}`,
  };
}

/** The URL without a password it may carry. */
function redact(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@/]*@/, '//$1:***@');
}
