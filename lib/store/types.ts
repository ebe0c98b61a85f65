/**
 * The storage seams. Every method is async so that MongoDB can implement them as well as
 * SQLite; one contract suite (test/contract/) runs against every implementation.
 */
import type { Readable, Writable } from 'node:stream';
import type { MetaData, ObjectStatus } from '../model/index.js';

/** One object as stored: its metadata plus the bookkeeping the reference keeps beside it. */
export interface StoredObject {
  meta: MetaData;
  status: ObjectStatus;
  /** Blob holding the current data; null when the object has no data (yet). */
  blobId: string | null;
  /** Lower-case hex SHA-256 of the current data; null when there is none. */
  dataSha256: string | null;
  /** Consumers still expected to mark the object consumed (receiver side). */
  remainingConsumers: number;
  /** Receivers still expected to mark the object received (receiver side). */
  remainingReceivers: number;
  /** Set by `policyreceived` (O11): hides the object from the policy listing. */
  policyReceived: boolean;
  /** Last change, epoch milliseconds. */
  lastUpdate: number;
}

/**
 * A sender-side object the app deleted while some destination may still hold it. Its metadata
 * is kept, without data, so that the object still answers as `objdeleted` and shows the
 * deletion's progress per destination until every one of them acknowledged it.
 * [ref sync-protocol §3 Delete steps 1, 3]
 */
export interface ObjectDeletion {
  /** The metadata as it was when deleted, with `deleted: true`. */
  meta: MetaData;
  /** The object's `policyReceived` when deleted. */
  policyReceived: boolean;
  /** Epoch milliseconds. */
  deletedAt: number;
}

export interface ObjectFilter {
  org: string;
  objectType?: string;
  /** Only objects in one of these statuses. */
  statuses?: readonly ObjectStatus[];
}

export interface Webhook {
  orgID: string;
  objectType: string;
  url: string;
}

/** An organization of a multi-tenant CSS. [ref rest-api §1.4] */
export interface Organization {
  orgID: string;
  address: string;
  user: string;
  password: string;
  /** Epoch ms of the last change. */
  lastUpdate: number;
}

/** An ESS known to the CSS. [ref rest-api §2.2 Destination] */
/** One group of `Store.countObjectsByStatus`. */
export interface ObjectStatusCount {
  orgID: string;
  status: ObjectStatus;
  count: number;
}

/** One org of `Store.countDestinationsSeen`. */
export interface DestinationsSeenCount {
  orgID: string;
  /** Registered destinations of the org. */
  total: number;
  /** `seen[i]`: those whose last contact (`lastPing`) is at or after `since[i]`. */
  seen: number[];
}

export interface Destination {
  destinationOrgID: string;
  destinationType: string;
  destinationID: string;
  /** As the reference spells it (its HTTPProtocol, MQTTProtocol). */
  communication: 'http' | 'mqtt';
  codeVersion: string;
  /** Epoch ms of the last registration or ping. */
  lastPing: number;
}

/**
 * A chunked data upload in progress (`PUT …/data` with Content-Range). Persisted so that any
 * process can take the next chunk and an upload survives a restart.
 */
export interface UploadSession {
  orgID: string;
  objectType: string;
  objectID: string;
  /** Staging area in the BlobStore holding the bytes received so far. */
  stagingId: string;
  /** Declared total size. */
  total: number;
  /** Bytes received and durable, i.e. the next expected offset. */
  received: number;
  /** Size of the first chunk, reported as the object's uploadChunkSize. */
  chunkSize: number;
  /** The object's instanceID the upload belongs to; a newer PUT of the object discards it. */
  instanceID: bigint;
  /** Epoch ms of the last accepted chunk. */
  lastUpdate: number;
}

/** An objects ACL protects one object type, a destinations ACL one destination type. [ref rest-api §1.5] */
export type AclType = 'objects' | 'destinations';

/** One entry of an ACL, as the reference's ACLentry. Username `*` stands for every user of its type. */
export interface StoredAclEntry {
  username: string;
  aclUserType: 'user' | 'node';
  /** `na` in destinations ACLs, which have no roles. */
  aclRole: 'aclWriter' | 'aclReader' | 'na';
}

/**
 * ACLs per (org, aclType, key), the key being an object or destination type or `*` for the ACL
 * of every type (to the store, `*` is a key like any other); an ACL exists while it has an entry. Entries keep the
 * reference's order: an add appends, a removal moves the last entry into the freed place.
 * Only a CSS keeps ACLs. Lookups are on the path of every user request: implementations
 * answer {@link getAcl} from an index.
 */
export interface AclStore {
  /**
   * Appends the entries whose (aclUserType, username) the ACL does not hold yet, the first of
   * duplicates in `entries` winning; an entry already there keeps its role (to change a role,
   * remove then add). Creates the ACL with its first entry.
   */
  addAclEntries(aclType: AclType, org: string, key: string, entries: readonly StoredAclEntry[]): Promise<void>;
  /**
   * Removes the entries matching (aclUserType, username); absent ones are no error. The ACL is
   * deleted with its last entry.
   */
  removeAclEntries(aclType: AclType, org: string, key: string, users: readonly Pick<StoredAclEntry, 'username' | 'aclUserType'>[]): Promise<void>;
  /** The entries of one ACL in order; [] when there is no such ACL. */
  getAcl(aclType: AclType, org: string, key: string): Promise<StoredAclEntry[]>;
  /** The keys of the org's ACLs of that type (`*` for the all-types ACL), byte-wise ordered. */
  listAclKeys(aclType: AclType, org: string): Promise<string[]>;
}

/** What deleting an org leaves to release outside the database. */
export interface DeletedOrganization {
  /** Blobs of the org's objects. */
  blobIds: string[];
  /** Staging areas of the org's chunked uploads in progress. */
  stagingIds: string[];
}

export interface Store extends AclStore {
  /** Opens the store and applies pending migrations. */
  init(): Promise<void>;
  close(): Promise<void>;
  /** Cheap round trip used by the health report. */
  ping(): Promise<void>;

  /** A new id greater than every id handed out before, across restarts. */
  nextInstanceId(): Promise<bigint>;

  getObject(org: string, objectType: string, objectID: string): Promise<StoredObject | null>;
  /** Inserts or replaces the object with the same (org, type, id). */
  putObject(obj: StoredObject): Promise<void>;
  /** Removes the object; returns what was stored (so its blob can be released), or null. */
  deleteObject(org: string, objectType: string, objectID: string): Promise<StoredObject | null>;
  /** Objects matching the filter, ordered by (objectType, objectID). */
  listObjects(filter: ObjectFilter): Promise<StoredObject[]>;
  countObjects(): Promise<number>;
  /**
   * How many objects each org holds in each status, every org at once; a pair with none is left
   * out. For the metrics, read at scrape time: one grouped query, not a listing.
   */
  countObjectsByStatus(): Promise<ObjectStatusCount[]>;
  /**
   * Every object whose metadata names an `expiration`, or that is `inactive` with an
   * `activationTime`: what the maintenance jobs (lib/sync/maintenance/) compare with the clock.
   * The times are returned as written; the caller parses them as instants.
   */
  listTimedObjects(): Promise<StoredObject[]>;
  /** Every blob id referenced by an object or an upload (for garbage collection). */
  referencedBlobIds(): Promise<Set<string>>;

  /** Inserts or replaces the deletion of the same (org, type, id), taken from the metadata. */
  putDeletion(deletion: ObjectDeletion): Promise<void>;
  getDeletion(org: string, objectType: string, objectID: string): Promise<ObjectDeletion | null>;
  /** The org's deletions (of one type when given), ordered by (objectType, objectID). */
  listDeletions(org: string, objectType?: string): Promise<ObjectDeletion[]>;
  /** A missing deletion is not an error. */
  removeDeletion(org: string, objectType: string, objectID: string): Promise<void>;

  addWebhook(hook: Webhook): Promise<void>;
  /** Removes a hook; the URL is matched case-insensitively. [ref rest-api §3.6] */
  removeWebhook(hook: Webhook): Promise<void>;
  listWebhooks(orgID: string, objectType: string): Promise<Webhook[]>;

  putOrganization(org: Organization): Promise<void>;
  getOrganization(orgID: string): Promise<Organization | null>;
  /** The orgs stored with their settings (PUT /api/v1/organizations/{org}). */
  listOrganizations(): Promise<Organization[]>;
  /**
   * Every org in use: stored with settings, or holding objects or destinations. Orgs are
   * implicit, as in the reference: none needs creating before it is used. [ref rest-api §1.4]
   */
  listOrgsInUse(): Promise<string[]>;
  /**
   * Deletes, in one transaction, everything keyed by the org: its settings, objects, deletions
   * in progress, webhooks, destinations, uploads, notifications and ACLs; nothing of another org.
   * Returns the blobs and staging areas that nothing refers to any more, for the caller to remove.
   */
  deleteOrganization(orgID: string): Promise<DeletedOrganization>;

  putDestination(dest: Destination): Promise<void>;
  listDestinations(orgID: string): Promise<Destination[]>;
  /** One ESS by its key (an index lookup, not a listing of the org). */
  getDestination(orgID: string, destinationType: string, destinationID: string): Promise<Destination | null>;
  /**
   * Moves an ESS's `lastPing` forward to `at` (never back), without creating the record.
   * @returns false when the ESS is not registered (it was removed meanwhile).
   */
  touchDestination(orgID: string, destinationType: string, destinationID: string, at: number): Promise<boolean>;
  /**
   * Per org, how many destinations are registered and how many were last in contact at or
   * after each of `since` (epoch ms): the metrics' last-contact buckets, read at scrape time.
   * Orgs without destinations are left out.
   */
  countDestinationsSeen(since: readonly number[]): Promise<DestinationsSeenCount[]>;
  /** Forgets an ESS (SPI unregister); @returns true when it was registered. */
  deleteDestination(orgID: string, destinationType: string, destinationID: string): Promise<boolean>;

  getUpload(org: string, objectType: string, objectID: string): Promise<UploadSession | null>;
  putUpload(session: UploadSession): Promise<void>;
  /**
   * Moves `received` forward only if it still equals `expectedReceived` (compare-and-set, so
   * two processes cannot both accept the same chunk). Returns false when it did not.
   */
  advanceUpload(org: string, objectType: string, objectID: string, expectedReceived: number, received: number): Promise<boolean>;
  deleteUpload(org: string, objectType: string, objectID: string): Promise<void>;
}

export interface BlobWriteResult {
  blobId: string;
  size: number;
  /** Lower-case hex SHA-256 of the bytes written. */
  sha256: string;
}

/**
 * The bytes of a blob write in progress, readable while they land: an upload that an ESS
 * starts downloading before it ends (lib/sync/early-data.ts).
 */
export interface GrowingData {
  /** Bytes the blob holds once the write completes; null when the writer does not know yet. */
  readonly size: number | null;
  /**
   * Streams the data from its first byte, waiting for bytes that have not landed yet. Ends
   * once every byte was read from a write that completed; fails if the write failed.
   */
  read(signal?: AbortSignal): Readable;
}

export interface BlobWriteOptions {
  signal?: AbortSignal;
  /**
   * Told, once the write has started, how to read it while it goes on. A store may not call it
   * (a blob it keeps in the database).
   */
  onGrowing?: (data: GrowingData) => void;
  /** When set, a source that ends with another length is rejected and nothing is kept. */
  expectedSize?: number;
  /** A source longer than this is rejected (PayloadTooLargeError) and nothing is kept. */
  maxBytes?: number;
}

export interface BlobReadOptions {
  /** First byte, default 0. */
  start?: number;
  /** Last byte, inclusive; default the end of the blob. */
  end?: number;
  signal?: AbortSignal;
}

/**
 * Object data on durable storage. Writes are all-or-nothing: a blob id exists only once its
 * bytes are complete and synced; a failed write leaves nothing behind.
 */
export interface BlobStore {
  init(): Promise<void>;
  /**
   * Streams `source` into a new blob, hashed as it streams. When the promise resolves the blob
   * is durable (a file: temp file, fsync, rename), or, kept in the database (SmallBlobStore),
   * becomes durable with the store write that records its id.
   */
  write(source: Readable, opts?: BlobWriteOptions): Promise<BlobWriteResult>;
  /** Streams a byte range; O(range), not O(blob). */
  read(blobId: string, opts?: BlobReadOptions): Readable;
  /** Size in bytes; rejects NotFoundError when the blob does not exist. */
  size(blobId: string): Promise<number>;
  /** Removes a blob; a missing one is not an error. Open readers keep reading. */
  delete(blobId: string): Promise<void>;
  /** Every blob id present (for garbage collection of blobs no object references). */
  list(): Promise<string[]>;

  /** Every staging area id present (for garbage collection of abandoned uploads). */
  listStaging(): Promise<string[]>;
  /** Creates an empty staging area for a chunked upload and returns its id. */
  createStaging(): Promise<string>;
  /**
   * Writes `source` at `offset` of a staging area, first dropping anything past `offset`
   * (left by a crash before the offset was committed). Exactly `length` bytes must come.
   * Durable (fsynced) when it resolves.
   */
  writeStaging(stagingId: string, offset: number, length: number, source: Readable, opts?: { signal?: AbortSignal }): Promise<void>;
  /**
   * Opens a staging area for a long run of appends from `offset`, first dropping anything past
   * it (left by a crash after the last durable offset). Unlike writeStaging, making bytes
   * durable is a separate call, so a download keeps streaming while earlier bytes are synced.
   * @throws NotFoundError when the staging area does not exist.
   * @throws BadRequestError when the area holds fewer than `offset` bytes.
   */
  appendStaging(stagingId: string, offset: number): Promise<StagingAppender>;
  /**
   * Streams a byte range of a staging area, like read() does for a blob; a missing area is a
   * NotFoundError on the stream. Lets a resumed download rebuild the hash of what it holds.
   */
  openStaging(stagingId: string, opts?: BlobReadOptions): Readable;
  /**
   * Turns a complete staging area into a blob and removes the staging area. The area is hashed
   * by reading it whole, unless the caller already hashed every byte it wrote and passes that
   * digest as `opts.sha256` (lower-case hex), which is then taken as is.
   */
  commitStaging(stagingId: string, opts?: StagingCommitOptions): Promise<BlobWriteResult>;
  deleteStaging(stagingId: string): Promise<void>;
}

/**
 * Blobs small enough to be kept in the database's own rows (see tiered-blob-store.ts): one
 * commit of the database makes many of them durable, where a file each costs a create, an
 * fsync, a rename and a directory fsync.
 */
export interface SmallBlobStore {
  /**
   * Resolves once the blob is stored. It may become durable only with the store's next durable
   * write: a blob matters once a row refers to it, and writing that row makes both durable.
   * A crash before leaves an unreferenced blob, which start-up's garbage collection removes.
   */
  put(id: string, data: Buffer): Promise<void>;
  /** The whole blob, or null when there is none by that id. */
  get(id: string): Promise<Buffer | null>;
  /** A missing blob is not an error. */
  delete(id: string): Promise<void>;
  list(): Promise<string[]>;
}

/** An open run of appends to a staging area; see BlobStore.appendStaging. */
export interface StagingAppender {
  /** Takes the bytes, in order, from the offset the area was opened at; destroy it to give up. */
  readonly stream: Writable;
  /**
   * Makes durable every byte the stream has already handed to storage, and resolves with the
   * offset those bytes reach (bytes still buffered in the stream are not counted).
   */
  sync(): Promise<number>;
  /**
   * Releases the area. Call it once the stream has finished or failed: a stream still open is
   * destroyed, and what it still buffered is lost (what reached storage stays).
   */
  close(): Promise<void>;
}

export interface StagingCommitOptions {
  /** Lower-case hex SHA-256 of the whole area, computed by the caller as it wrote it. */
  sha256?: string;
}
