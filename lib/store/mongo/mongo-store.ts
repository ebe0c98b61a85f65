/**
 * Store on a MongoDB database, for a CSS of several processes sharing one database (issue #14).
 *
 * Written for what FerretDB (the MongoDB-wire server the tests run on) also does: no
 * multi-document transactions and no change streams. Every change that must be atomic is one
 * single-document write whose filter carries the condition (compare-and-set); every query runs
 * on an index created by init(). Object data stays in a BlobStore beside it (files for now;
 * GridFS is a later step).
 */
import { MongoClient, type Collection, type Db, type Filter, type IndexDescription, type MongoClientOptions } from 'mongodb';
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
import { Claims, isDuplicateKey, newRev, replaceRevisioned, type ClaimDoc, type Revisioned } from './mongo-cas.js';
import { MongoNotificationStore, NOTIFICATION_INDEXES, type NotificationDoc } from './mongo-notification-store.js';
import { removeAclUsers, sameUser } from '../acl-entries.js';

/** Bumped when the documents change shape; a newer database is refused rather than misread. */
export const MONGO_SCHEMA_VERSION = 1;


interface ObjectKeyFields {
  org: string;
  objectType: string;
  objectID: string;
}

/**
 * The metadata is kept as our JSON text (int64 fields exact, field order kept), beside the
 * fields the queries filter and sort on.
 */
interface ObjectDoc extends ObjectKeyFields {
  meta: string;
  status: ObjectStatus;
  blobId: string | null;
  dataSha256: string | null;
  remainingConsumers: number;
  remainingReceivers: number;
  policyReceived: boolean;
  lastUpdate: number;
  /** Whether the maintenance jobs look at the object (listTimedObjects); indexed. */
  timed: boolean;
}

interface DeletionDoc extends ObjectKeyFields {
  meta: string;
  policyReceived: boolean;
  deletedAt: number;
}

interface WebhookDoc {
  orgID: string;
  objectType: string;
  url: string;
  /** The URL case-folded: hooks compare case-insensitively. */
  urlFolded: string;
  /** Registration order, the order hooks are called in. */
  seq: bigint;
}

interface OrganizationDoc extends Organization {
  _id: string;
}

type DestinationDoc = Destination;

type UploadDoc = UploadSession & Revisioned;

interface AclDoc {
  org: string;
  aclType: AclType;
  key: string;
  entries: StoredAclEntry[];
  /** Renewed by every change: the compare-and-set of a read-modify-write (mongo-cas.ts). */
  rev: string;
}

/** A counter or setting, by name. */
interface MetaDoc extends Revisioned {
  _id: string;
  value: bigint;
}

interface Collections {
  client: MongoClient;
  db: Db;
  meta: Collection<MetaDoc>;
  objects: Collection<ObjectDoc>;
  deletions: Collection<DeletionDoc>;
  webhooks: Collection<WebhookDoc>;
  organizations: Collection<OrganizationDoc>;
  destinations: Collection<DestinationDoc>;
  uploads: Collection<UploadDoc>;
  acls: Collection<AclDoc>;
  notifications: Collection<NotificationDoc>;
  claims: Collection<ClaimDoc>;
}

const INSTANCE_ID_KEY = 'lastInstanceId';
const WEBHOOK_SEQ_KEY = 'lastWebhookSeq';
const SCHEMA_KEY = 'schemaVersion';

/** Writes of a read-modify-write give up after this many lost races (a bug or a storm). */
const MAX_RETRIES = 1000;

const OBJECT_KEY_INDEX = { org: 1, objectType: 1, objectID: 1 } as const;

function objectFilter(org: string, objectType: string, objectID: string): ObjectKeyFields {
  return { org, objectType, objectID };
}

function isTimed(meta: MetaData): boolean {
  return (meta.expiration ?? '') !== '' || (meta.inactive && (meta.activationTime ?? '') !== '');
}

function parseStoredMeta(text: string): MetaData {
  return parseJson(text, METADATA_INT64_KEYS) as MetaData;
}

function toStoredObject(d: ObjectDoc): StoredObject {
  return {
    meta: parseStoredMeta(d.meta),
    status: d.status,
    blobId: d.blobId,
    dataSha256: d.dataSha256,
    remainingConsumers: d.remainingConsumers,
    remainingReceivers: d.remainingReceivers,
    policyReceived: d.policyReceived,
    lastUpdate: d.lastUpdate,
  };
}

function toDeletion(d: DeletionDoc): ObjectDeletion {
  return { meta: parseStoredMeta(d.meta), policyReceived: d.policyReceived, deletedAt: d.deletedAt };
}

function toUpload(d: UploadSession): UploadSession {
  return {
    orgID: d.orgID, objectType: d.objectType, objectID: d.objectID, stagingId: d.stagingId, total: d.total,
    received: d.received, chunkSize: d.chunkSize, instanceID: BigInt(d.instanceID), lastUpdate: d.lastUpdate,
  };
}

function toDestination(d: DestinationDoc): Destination {
  return {
    destinationOrgID: d.destinationOrgID, destinationType: d.destinationType, destinationID: d.destinationID,
    communication: d.communication, codeVersion: d.codeVersion, lastPing: d.lastPing,
  };
}

function toOrganization(d: Organization): Organization {
  return { orgID: d.orgID, address: d.address, user: d.user, password: d.password, lastUpdate: d.lastUpdate };
}

/**
 * Creates the indexes a collection lacks, by name. Only the missing ones: FerretDB 1.24 drops
 * the connection when asked to create an index that exists (MongoDB would do nothing).
 */
export async function ensureIndexes<T extends object>(col: Collection<T>, specs: IndexDescription[]): Promise<void> {
  // A collection not created yet has no indexes (MongoDB answers NamespaceNotFound).
  const listed: { name?: unknown }[] = await col.listIndexes().toArray().catch(() => []);
  const existing = new Set(listed.map((i) => String(i.name)));
  const missing = specs.filter((s) => !existing.has(String(s.name)));
  if (missing.length > 0) await col.createIndexes(missing);
}


/** Byte-wise, as the database orders strings (no collation), not UTF-16 code units as `<` does. */
function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}


export interface MongoStoreOptions {
  /** A mongodb:// URL; its path names the database unless `database` does. */
  url: string;
  database?: string;
  /** Auth, TLS, timeouts (mongo-connection.ts builds them from the MONGO_* settings). */
  options?: MongoClientOptions;
}

/** A health check answers within this, database or not. */
const PING_TIMEOUT_MS = 2_000;

/** Store on one MongoDB (or FerretDB) database, shared by every process of a CSS. */
export class MongoStore implements Store {
  private opened: Collections | null = null;
  private readonly claims = new Claims(() => this.open().claims);

  constructor(private readonly opts: MongoStoreOptions) {}

  async init(): Promise<void> {
    if (this.opened !== null) return;
    // useBigInt64: int64 values (instance ids, the counters) come back as bigint, never a lossy number.
    const client = new MongoClient(this.opts.url, { serverSelectionTimeoutMS: 10_000, ...this.opts.options, useBigInt64: true });
    try {
      await client.connect();
      const db = client.db(this.opts.database);
      const c: Collections = {
        client,
        db,
        meta: db.collection('meta'),
        objects: db.collection('objects'),
        deletions: db.collection('deletions'),
        webhooks: db.collection('webhooks'),
        organizations: db.collection('organizations'),
        destinations: db.collection('destinations'),
        uploads: db.collection('uploads'),
        acls: db.collection('acls'),
        notifications: db.collection('notifications'),
        claims: db.collection('claims'),
      };
      await this.checkSchema(c);
      await this.createIndexes(c);
      this.opened = c;
    } catch (e) {
      await client.close();
      throw e;
    }
  }

  /** Records the schema version in a new database; refuses one written by a newer edgesync. */
  private async checkSchema(c: Collections): Promise<void> {
    await c.meta.updateOne({ _id: SCHEMA_KEY }, { $setOnInsert: { value: BigInt(MONGO_SCHEMA_VERSION), rev: newRev() } }, { upsert: true }).catch((e: unknown) => {
      if (!isDuplicateKey(e)) throw e;
    });
    const doc = await c.meta.findOne({ _id: SCHEMA_KEY });
    const version = Number(doc?.value ?? 0);
    if (version > MONGO_SCHEMA_VERSION) {
      throw new InternalError(`The database has schema version ${version}, newer than the ${MONGO_SCHEMA_VERSION} this edgesync knows: upgrade edgesync`);
    }
  }

  /** Every query of this store has its index. */
  private async createIndexes(c: Collections): Promise<void> {
    await ensureIndexes(c.objects, [
      { key: OBJECT_KEY_INDEX, name: 'key', unique: true },
      { key: { org: 1, status: 1 }, name: 'status' },
      { key: { blobId: 1 }, name: 'blob' },
      { key: { timed: 1 }, name: 'timed' },
    ]);
    await ensureIndexes(c.deletions, [{ key: OBJECT_KEY_INDEX, name: 'key', unique: true }]);
    await ensureIndexes(c.webhooks, [{ key: { orgID: 1, objectType: 1, urlFolded: 1 }, name: 'key', unique: true }]);
    await ensureIndexes(c.destinations, [{ key: { destinationOrgID: 1, destinationType: 1, destinationID: 1 }, name: 'key', unique: true }]);
    await ensureIndexes(c.uploads, [{ key: { orgID: 1, objectType: 1, objectID: 1 }, name: 'key', unique: true }]);
    await ensureIndexes(c.acls, [{ key: { org: 1, aclType: 1, key: 1 }, name: 'key', unique: true }]);
    await ensureIndexes(c.claims, [{ key: { at: 1 }, name: 'at' }]);
    await ensureIndexes(c.notifications, NOTIFICATION_INDEXES.map((i) => ({ ...i, key: { ...i.key } })));
  }

  async close(): Promise<void> {
    const c = this.opened;
    this.opened = null;
    await c?.client.close();
  }

  /** Rejects within PING_TIMEOUT_MS when the database does not answer (health turns red). */
  async ping(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new UnavailableError(`the database did not answer a ping within ${PING_TIMEOUT_MS} ms`)), PING_TIMEOUT_MS);
    });
    try {
      await Promise.race([this.open().db.command({ ping: 1 }), late]);
    } finally {
      clearTimeout(timer);
    }
  }


  /**
   * Nanoseconds since the epoch, bumped past the last id handed out: a compare-and-set on the
   * counter document, retried when another process moved it meanwhile.
   */
  async nextInstanceId(): Promise<bigint> {
    return this.bumpCounter(INSTANCE_ID_KEY, (last) => {
      const now = msToNanos(Date.now());
      return now > last ? now : last + 1n;
    });
  }

  private async bumpCounter(name: string, next: (last: bigint) => bigint): Promise<bigint> {
    const { meta } = this.open();
    for (let attempt = 0; attempt < MAX_RETRIES; attempt++) {
      const doc = await meta.findOne({ _id: name });
      if (doc === null) {
        const value = next(0n);
        try {
          await meta.insertOne({ _id: name, value, rev: newRev() });
          return value;
        } catch (e) {
          if (!isDuplicateKey(e)) throw e;
          continue;
        }
      }
      const value = next(BigInt(doc.value));
      if (await this.claims.update('meta', meta, { _id: name, rev: doc.rev }, { value })) return value;
      // Lost to another writer: let it finish its write before reading again.
      await new Promise((r) => setTimeout(r, Math.random() * 2));
    }
    throw new UnavailableError(`The counter ${name} is contended: gave up after ${MAX_RETRIES} attempts`);
  }

  async getObject(org: string, objectType: string, objectID: string): Promise<StoredObject | null> {
    const d = await this.open().objects.findOne(objectFilter(org, objectType, objectID));
    return d === null ? null : toStoredObject(d);
  }

  async putObject(obj: StoredObject): Promise<void> {
    const m = obj.meta;
    const doc: ObjectDoc = {
      org: m.destinationOrgID, objectType: m.objectType, objectID: m.objectID,
      meta: stringifyJson(m), status: obj.status, blobId: obj.blobId, dataSha256: obj.dataSha256,
      remainingConsumers: obj.remainingConsumers, remainingReceivers: obj.remainingReceivers,
      policyReceived: obj.policyReceived, lastUpdate: obj.lastUpdate, timed: isTimed(m),
    };
    await this.upsert(this.open().objects, objectFilter(doc.org, doc.objectType, doc.objectID), doc);
  }

  /** Replaces by key; an insert that lost a race to another process's insert is retried as a replace. */
  private async upsert<T extends object>(col: Collection<T>, filter: Filter<T>, doc: T): Promise<void> {
    try {
      await col.replaceOne(filter, doc, { upsert: true });
    } catch (e) {
      if (!isDuplicateKey(e)) throw e;
      await col.replaceOne(filter, doc, { upsert: true });
    }
  }

  async deleteObject(org: string, objectType: string, objectID: string): Promise<StoredObject | null> {
    const d = await this.open().objects.findOneAndDelete(objectFilter(org, objectType, objectID));
    return d === null ? null : toStoredObject(d);
  }

  async listObjects(filter: ObjectFilter): Promise<StoredObject[]> {
    const { org, objectType, statuses } = filter;
    if (statuses?.length === 0) return [];
    const q: Filter<ObjectDoc> = { org };
    if (objectType !== undefined) q.objectType = objectType;
    if (statuses !== undefined) q.status = { $in: [...statuses] };
    const docs = await this.open().objects.find(q).sort({ objectType: 1, objectID: 1 }).toArray();
    return docs.map(toStoredObject);
  }

  async countObjects(): Promise<number> {
    return this.open().objects.countDocuments();
  }

  /** distinct and counts on the (org, status) index: FerretDB's $group is not relied on. */
  async countObjectsByStatus(): Promise<ObjectStatusCount[]> {
    const { objects } = this.open();
    const out: ObjectStatusCount[] = [];
    for (const orgID of await objects.distinct('org')) {
      for (const status of await objects.distinct('status', { org: orgID })) {
        out.push({ orgID, status, count: await objects.countDocuments({ org: orgID, status }) });
      }
    }
    return out;
  }

  async listTimedObjects(): Promise<StoredObject[]> {
    return (await this.open().objects.find({ timed: true }).toArray()).map(toStoredObject);
  }

  async referencedBlobIds(): Promise<Set<string>> {
    const c = this.open();
    const blobs = await c.objects.distinct('blobId', { blobId: { $ne: null } });
    const staging = await c.uploads.distinct('stagingId');
    return new Set([...blobs.filter((b): b is string => typeof b === 'string'), ...staging]);
  }

  async putDeletion(deletion: ObjectDeletion): Promise<void> {
    const m = deletion.meta;
    const doc: DeletionDoc = {
      org: m.destinationOrgID, objectType: m.objectType, objectID: m.objectID,
      meta: stringifyJson(m), policyReceived: deletion.policyReceived, deletedAt: deletion.deletedAt,
    };
    await this.upsert(this.open().deletions, objectFilter(doc.org, doc.objectType, doc.objectID), doc);
  }

  async getDeletion(org: string, objectType: string, objectID: string): Promise<ObjectDeletion | null> {
    const d = await this.open().deletions.findOne(objectFilter(org, objectType, objectID));
    return d === null ? null : toDeletion(d);
  }

  async listDeletions(org: string, objectType?: string): Promise<ObjectDeletion[]> {
    const q: Filter<DeletionDoc> = objectType === undefined ? { org } : { org, objectType };
    return (await this.open().deletions.find(q).sort({ objectType: 1, objectID: 1 }).toArray()).map(toDeletion);
  }

  async removeDeletion(org: string, objectType: string, objectID: string): Promise<void> {
    await this.open().deletions.deleteOne(objectFilter(org, objectType, objectID));
  }

  /** Registering the same URL twice keeps the first registration (and its place in the order). */
  async addWebhook(hook: Webhook): Promise<void> {
    const c = this.open();
    const filter = { orgID: hook.orgID, objectType: hook.objectType, urlFolded: foldUrl(hook.url) };
    if ((await c.webhooks.countDocuments(filter, { limit: 1 })) === 1) return;
    const seq = await this.bumpCounter(WEBHOOK_SEQ_KEY, (last) => last + 1n);
    try {
      await c.webhooks.updateOne(filter, { $setOnInsert: { url: hook.url, seq } }, { upsert: true });
    } catch (e) {
      if (!isDuplicateKey(e)) throw e;
    }
  }

  async removeWebhook(hook: Webhook): Promise<void> {
    await this.open().webhooks.deleteOne({ orgID: hook.orgID, objectType: hook.objectType, urlFolded: foldUrl(hook.url) });
  }

  async listWebhooks(orgID: string, objectType: string): Promise<Webhook[]> {
    const docs = await this.open().webhooks.find({ orgID, objectType }).toArray();
    // Sorted here: a handful of hooks per type, and the key index serves the filter.
    docs.sort((a, b) => (a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0));
    return docs.map((d) => ({ orgID: d.orgID, objectType: d.objectType, url: d.url }));
  }

  async putOrganization(org: Organization): Promise<void> {
    await this.open().organizations.replaceOne({ _id: org.orgID }, toOrganization(org), { upsert: true });
  }

  async getOrganization(orgID: string): Promise<Organization | null> {
    const d = await this.open().organizations.findOne({ _id: orgID });
    return d === null ? null : toOrganization(d);
  }

  async listOrganizations(): Promise<Organization[]> {
    return (await this.open().organizations.find({}).sort({ _id: 1 }).toArray()).map(toOrganization);
  }

  async listOrgsInUse(): Promise<string[]> {
    const c = this.open();
    const orgs = new Set<string>([
      ...(await c.organizations.distinct('_id')),
      ...(await c.destinations.distinct('destinationOrgID')),
      ...(await c.objects.distinct('org')),
    ]);
    return [...orgs].sort(byteOrder);
  }

  /**
   * Not one transaction (FerretDB has none): the org's documents go collection by collection,
   * the ids to release read first. A crash midway leaves the rest of the org, which deleting it
   * again removes; blobs left unreferenced are collected at start-up.
   */
  async deleteOrganization(orgID: string): Promise<DeletedOrganization> {
    const c = this.open();
    const blobs = await c.objects.distinct('blobId', { org: orgID, blobId: { $ne: null } });
    const stagingIds = await c.uploads.distinct('stagingId', { orgID });
    await c.organizations.deleteMany({ _id: orgID });
    await c.objects.deleteMany({ org: orgID });
    await c.deletions.deleteMany({ org: orgID });
    await c.webhooks.deleteMany({ orgID });
    await c.destinations.deleteMany({ destinationOrgID: orgID });
    await c.uploads.deleteMany({ orgID });
    await c.notifications.deleteMany({ orgID });
    await c.acls.deleteMany({ org: orgID });
    return { blobIds: blobs.filter((b): b is string => typeof b === 'string'), stagingIds };
  }

  /**
   * One document per ACL, changed by compare-and-set on its rev (mongo-cas.ts): two processes adding to
   * the same ACL both land, one of them after a retry.
   */
  async addAclEntries(aclType: AclType, org: string, key: string, entries: readonly StoredAclEntry[]): Promise<void> {
    await this.changeAcl(aclType, org, key, (held) => {
      let changed = false;
      for (const e of entries) {
        if (held.some((h) => sameUser(h, e))) continue;
        held.push({ username: e.username, aclUserType: e.aclUserType, aclRole: e.aclRole });
        changed = true;
      }
      return changed;
    });
  }

  async removeAclEntries(aclType: AclType, org: string, key: string, users: readonly Pick<StoredAclEntry, 'username' | 'aclUserType'>[]): Promise<void> {
    await this.changeAcl(aclType, org, key, (held) => removeAclUsers(held, users));
  }

  /** Applies `change` to the entries read, and writes them back only if nobody wrote meanwhile. */
  private async changeAcl(aclType: AclType, org: string, key: string, change: (held: StoredAclEntry[]) => boolean): Promise<void> {
    const { acls } = this.open();
    const id = { org, aclType, key };
    for (let attempt = 0; attempt < MAX_RETRIES; attempt++) {
      const doc = await acls.findOne(id);
      const held = doc === null ? [] : doc.entries.map((e) => ({ ...e }));
      if (!change(held)) return;
      if (doc === null) {
        try {
          await acls.insertOne({ ...id, entries: held, rev: newRev() });
          return;
        } catch (e) {
          if (!isDuplicateKey(e)) throw e;
          continue;
        }
      }
      if (held.length > 0) {
        if (await this.claims.update('acl', acls, { ...id, rev: doc.rev }, { entries: held })) return;
      } else if (await this.claims.claim('acl', String(doc._id), doc.rev)) {
        await acls.deleteOne({ ...id, rev: doc.rev });
        return;
      }
      await new Promise((r) => setTimeout(r, Math.random() * 2));
    }
    throw new UnavailableError(`The ACL ${aclType} ${org}/${key} is contended: gave up after ${MAX_RETRIES} attempts`);
  }

  async getAcl(aclType: AclType, org: string, key: string): Promise<StoredAclEntry[]> {
    const doc = await this.open().acls.findOne({ org, aclType, key });
    return doc === null ? [] : doc.entries.map((e) => ({ username: e.username, aclUserType: e.aclUserType, aclRole: e.aclRole }));
  }

  async listAclKeys(aclType: AclType, org: string): Promise<string[]> {
    const docs = await this.open().acls.find({ org, aclType }, { projection: { key: 1 } }).toArray();
    return docs.map((d) => d.key).sort(byteOrder);
  }

  async putDestination(dest: Destination): Promise<void> {
    const filter = { destinationOrgID: dest.destinationOrgID, destinationType: dest.destinationType, destinationID: dest.destinationID };
    await this.upsert(this.open().destinations, filter, toDestination(dest));
  }

  async listDestinations(orgID: string): Promise<Destination[]> {
    const docs = await this.open().destinations.find({ destinationOrgID: orgID }).sort({ destinationType: 1, destinationID: 1 }).toArray();
    return docs.map(toDestination);
  }

  async getDestination(orgID: string, destinationType: string, destinationID: string): Promise<Destination | null> {
    const d = await this.open().destinations.findOne({ destinationOrgID: orgID, destinationType, destinationID });
    return d === null ? null : toDestination(d);
  }

  async touchDestination(orgID: string, destinationType: string, destinationID: string, at: number): Promise<boolean> {
    const r = await this.open().destinations.updateOne({ destinationOrgID: orgID, destinationType, destinationID }, { $max: { lastPing: at } });
    return r.matchedCount === 1;
  }

  async countDestinationsSeen(since: readonly number[]): Promise<DestinationsSeenCount[]> {
    const { destinations } = this.open();
    const out: DestinationsSeenCount[] = [];
    for (const orgID of await destinations.distinct('destinationOrgID')) {
      const total = await destinations.countDocuments({ destinationOrgID: orgID });
      const seen = await Promise.all(since.map((t) => destinations.countDocuments({ destinationOrgID: orgID, lastPing: { $gte: t } })));
      out.push({ orgID, total, seen });
    }
    return out;
  }

  async deleteDestination(orgID: string, destinationType: string, destinationID: string): Promise<boolean> {
    return (await this.open().destinations.deleteOne({ destinationOrgID: orgID, destinationType, destinationID })).deletedCount === 1;
  }

  async getUpload(org: string, objectType: string, objectID: string): Promise<UploadSession | null> {
    const d = await this.open().uploads.findOne({ orgID: org, objectType, objectID });
    return d === null ? null : toUpload(d);
  }

  async putUpload(session: UploadSession): Promise<void> {
    const filter = { orgID: session.orgID, objectType: session.objectType, objectID: session.objectID };
    await replaceRevisioned(this.open().uploads, filter, toUpload(session));
  }

  /**
   * A compare-and-set on `received` (mongo-cas.ts), so it holds against every process on the
   * database.
   * @throws InternalError when `received` is behind `expectedReceived` (a caller bug).
   */
  async advanceUpload(org: string, objectType: string, objectID: string, expectedReceived: number, received: number): Promise<boolean> {
    if (received < expectedReceived) throw new InternalError(`An upload cannot move back from ${expectedReceived} to ${received} bytes`);
    return this.claims.update('upload', this.open().uploads, { orgID: org, objectType, objectID, received: expectedReceived }, { received, lastUpdate: Date.now() });
  }

  async deleteUpload(org: string, objectType: string, objectID: string): Promise<void> {
    await this.open().uploads.deleteOne({ orgID: org, objectType, objectID });
  }

  /** The database this store is open on, for the other Mongo parts (blobs, the leader lease, the wake bus) to share its connection. */
  database(): Db {
    return this.open().db;
  }

  /** The notification records of this database; it follows close and init of this store. */
  notifications(): MongoNotificationStore {
    return new MongoNotificationStore(() => this.open().notifications, this.claims);
  }

  private open(): Collections {
    if (this.opened === null) throw new UnavailableError('MongoStore used before init() or after close()');
    return this.opened;
  }
}

/** Webhook URLs compare case-insensitively. */
function foldUrl(url: string): string {
  return url.toLowerCase();
}
