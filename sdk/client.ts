/**
 * Client of the sync-service REST API, for a CSS (give `orgID`) or an ESS (no `orgID`).
 * Mirrors the reference Go/Python SDKs, with typed errors and streamed object data.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable, pipeline } from 'node:stream';
import { contentRange, resumeOffsetFromRefusal, uploadInChunks } from './chunked-upload.js';
import type { ChunkPlan, ChunkRequest } from './chunked-upload.js';
import { NotFoundError, SyncServiceError } from './errors.js';
import { stringifyJson } from './json.js';
import { destinationsPath, HEALTH_PATH, objectPath, organizationsPath, orgObjectsPath, RESEND_PATH, securityPath, withQuery } from './paths.js';
import type { Query } from './paths.js';
import { bufferStream, progressStream } from './progress.js';
import { discard, ensureSuccess, readJson, readText, Transport } from './transport.js';
import type { HttpMethod, TransportOptions, TransportRequest, TransportResponse } from './transport.js';
import type {
  AclEntry,
  AclEntryInput,
  AclType,
  AclUserType,
  Destination,
  DestinationsAction,
  DestinationsStatus,
  HealthReport,
  MetaData,
  ObjectDestinationPolicy,
  ObjectFilters,
  ObjectInput,
  ObjectStatus,
  ObjectStatusEntry,
  Organization,
  OrganizationInput,
  ProgressListener,
  WebhookAction,
  WebhookLog,
} from './types.js';
import { watchObjects } from './watch.js';
import type { WatchOptions } from './watch.js';

/** Options of {@link SyncServiceClient}. */
export interface SyncServiceClientOptions extends TransportOptions {
  /** The org, for a CSS: it becomes the first path segment. Leave it out for an ESS. */
  orgID?: string;
}

/** Options of {@link SyncServiceClient.updateObjectData}. */
export interface UploadOptions {
  /** Byte length of a Readable source, sent as Content-Length; without it the body goes out chunked. */
  size?: number;
  /** Called as bytes are handed to the socket. */
  onProgress?: ProgressListener;
  signal?: AbortSignal;
}

/** Options of {@link SyncServiceClient.updateObjectDataChunked}. */
export interface ChunkedUploadOptions {
  /** Bytes per request (the last one may be shorter). */
  chunkSize: number;
  /** Byte length of a Readable source; required for a stream, read from the file for a path. */
  size?: number;
  /** Called with the running total across chunks. */
  onProgress?: ProgressListener;
  signal?: AbortSignal;
  /**
   * Resumes an upload the server holds part of: the first byte to send. A stream source must
   * start at that byte; a file is read from there. For a file, when the server answers that its
   * upload stands elsewhere (or that it has none), the upload goes on where it says, once.
   */
  startAt?: number;
  /** Called with the offset after each chunk the server accepted: where a later resume may start. */
  onChunk?: (acknowledged: number) => void;
}

/** Options of {@link SyncServiceClient.fetchObjectData}. */
export interface FetchOptions {
  /** Inclusive byte range, sent as `Range: bytes=start-end`. */
  range?: { start: number; end: number };
  /** Called as bytes are read; the total is the response's Content-Length when known. */
  onProgress?: ProgressListener;
  signal?: AbortSignal;
}

/** Options of {@link SyncServiceClient.listObjectsWithDestinationPolicy}. */
export interface DestinationPolicyQuery {
  /** Include objects whose policy was already marked received. */
  received?: boolean;
  /** `svcOrg/svcName`: only objects whose policy names that service. */
  service?: string;
  /** Only policies updated since then: Unix nanoseconds (an integer on the wire), or a Date. */
  since?: bigint | number | Date;
}

const JSON_HEADERS = { 'content-type': 'application/json' };

/** A client of one sync service, as one identity. Call {@link close} when done to free pooled sockets. */
export class SyncServiceClient {
  readonly #transport: Transport;
  readonly #org: string | undefined;
  /** Watchers waiting to hear of the marks this client sends (see {@link watch}). */
  readonly #markListeners = new Set<(objectType: string, objectID: string) => void>();

  constructor(options: SyncServiceClientOptions) {
    this.#transport = new Transport(options);
    this.#org = options.orgID === '' ? undefined : options.orgID;
  }

  /** The org in the paths, or undefined for an ESS client. */
  get orgID(): string | undefined {
    return this.#org;
  }

  /** Closes pooled connections. */
  close(): void {
    this.#transport.close();
  }

  // --- objects -------------------------------------------------------------------------------

  /** Object metadata, or null if the object does not exist. [ref rest-api §1.2 O1] */
  async getObject(objectType: string, objectID: string): Promise<MetaData | null> {
    return this.#getJsonOrNull<MetaData>(objectPath(this.#org, objectType, objectID));
  }

  /**
   * Creates or replaces an object. `data` goes inline (base64 on the wire); a string is taken as
   * UTF-8 content, not as base64. Use {@link updateObjectData} for anything large. [ref rest-api §1.2 O2]
   */
  async updateObject(meta: ObjectInput, data?: Buffer | string): Promise<void> {
    const payload: { meta: ObjectInput; data?: string } = { meta };
    if (data !== undefined) payload.data = (typeof data === 'string' ? Buffer.from(data, 'utf8') : data).toString('base64');
    await this.#mutate('PUT', objectPath(this.#org, meta.objectType, meta.objectID), payload);
  }

  /** Deletes an object. [ref rest-api §1.2 O3] */
  async deleteObject(objectType: string, objectID: string): Promise<void> {
    await this.#mutate('DELETE', objectPath(this.#org, objectType, objectID));
  }

  /** Replaces an object's data with one streamed request. [ref rest-api §1.2 O17] */
  async updateObjectData(objectType: string, objectID: string, source: Readable | Buffer, options: UploadOptions = {}): Promise<void> {
    const size = Buffer.isBuffer(source) ? source.length : options.size;
    const headers: Record<string, string | number> = { 'content-type': 'application/octet-stream' };
    if (size !== undefined) headers['content-length'] = size;
    let body: Readable | Buffer = source;
    if (options.onProgress !== undefined) {
      const counted = Buffer.isBuffer(source) ? bufferStream(source) : source;
      body = pipeline(counted, progressStream(options.onProgress, size), () => undefined);
    }
    const res = await this.#call('PUT', objectPath(this.#org, objectType, objectID, 'data'), { body, headers, signal: options.signal });
    discard(res);
  }

  /**
   * Uploads data as sequential `Content-Range: bytes S-E/TOTAL` requests of `chunkSize` bytes,
   * from a stream of known size or a file path. An empty source is sent as one plain request.
   */
  async updateObjectDataChunked(objectType: string, objectID: string, source: Readable | string, options: ChunkedUploadOptions): Promise<void> {
    const { chunkSize, signal } = options;
    if (!Number.isSafeInteger(chunkSize) || chunkSize <= 0) throw new RangeError(`chunkSize must be a positive integer, got ${chunkSize}`);
    const total = typeof source === 'string' ? (await stat(source)).size : options.size;
    if (total === undefined) throw new TypeError('updateObjectDataChunked needs options.size for a stream source');
    const startAt = options.startAt ?? 0;
    if (total === 0) {
      const stream = typeof source === 'string' ? createReadStream(source) : source;
      await this.updateObjectData(objectType, objectID, stream, signal === undefined ? { size: 0 } : { size: 0, signal });
      return;
    }
    const path = objectPath(this.#org, objectType, objectID, 'data');
    const send = async ({ body, start, end }: ChunkRequest): Promise<void> => {
      const headers = {
        'content-type': 'application/octet-stream',
        'content-length': end - start + 1,
        'content-range': contentRange(start, end, total),
      };
      discard(await this.#call('PUT', path, { body, headers, signal }));
    };
    let accepted = false;
    const upload = (from: number): Promise<void> => {
      const stream = typeof source === 'string' ? createReadStream(source, { start: from }) : source;
      const plan: ChunkPlan = {
        startAt: from,
        onChunk: (at) => {
          accepted = true;
          options.onChunk?.(at);
        },
      };
      if (options.onProgress !== undefined) plan.onProgress = options.onProgress;
      return uploadInChunks(stream, total, chunkSize, send, plan);
    };
    if (startAt === 0 || typeof source !== 'string') {
      await upload(startAt);
      return;
    }
    try {
      await upload(startAt);
    } catch (err) {
      // Only a refusal of the first chunk says where the server's upload stands.
      const offset = !accepted && err instanceof SyncServiceError ? resumeOffsetFromRefusal(err.status, err.body) : undefined;
      if (offset === undefined || offset === startAt || offset > total) throw err;
      await upload(offset);
    }
  }

  /**
   * Streams an object's data (whole, or one byte range). The caller must consume or destroy the
   * stream. Rejects with NotFoundError while there is no data yet. [ref rest-api §1.2 O16]
   */
  async fetchObjectData(objectType: string, objectID: string, options: FetchOptions = {}): Promise<Readable> {
    const headers: Record<string, string> = {};
    const { range } = options;
    if (range !== undefined) {
      const valid = Number.isSafeInteger(range.start) && Number.isSafeInteger(range.end) && range.start >= 0 && range.end >= range.start;
      if (!valid) throw new RangeError(`invalid byte range ${range.start}-${range.end}`);
      headers.range = `bytes=${range.start}-${range.end}`;
    }
    const res = await this.#call('GET', objectPath(this.#org, objectType, objectID, 'data'), { headers, signal: options.signal });
    if (options.onProgress === undefined) return res.body;
    const length = Number(res.headers['content-length']);
    const counter = progressStream(options.onProgress, Number.isSafeInteger(length) ? length : undefined);
    // pipeline forwards errors both ways: a broken download fails the returned stream, and
    // destroying the returned stream closes the connection.
    return pipeline(res.body, counter, () => undefined);
  }

  /** The object's status string, or null if the object is unknown. [ref rest-api §1.2 O12] */
  async getObjectStatus(objectType: string, objectID: string): Promise<ObjectStatus | null> {
    try {
      const res = await this.#call('GET', objectPath(this.#org, objectType, objectID, 'status'));
      return (await readText(res.body)) as ObjectStatus;
    } catch (err) {
      if (err instanceof NotFoundError) return null;
      throw err;
    }
  }

  /** Delivery status per destination; [] when none (the server's 404). [ref rest-api §1.2 O13] */
  async getObjectDestinations(objectType: string, objectID: string): Promise<DestinationsStatus[]> {
    return this.#list<DestinationsStatus>(objectPath(this.#org, objectType, objectID, 'destinations'));
  }

  /** Replaces the destinations list (`type:id` entries); CSS only. [ref rest-api §1.2 O14] */
  async updateObjectDestinations(objectType: string, objectID: string, destinations: readonly string[]): Promise<void> {
    await this.#mutate('PUT', objectPath(this.#org, objectType, objectID, 'destinations'), destinations);
  }

  /** Adds or removes `type:id` destinations; CSS only. [ref rest-api §1.2 O15] */
  async addOrRemoveDestinations(objectType: string, objectID: string, action: DestinationsAction, destinations: readonly string[]): Promise<void> {
    await this.#mutate('POST', objectPath(this.#org, objectType, objectID, 'destinations'), { action, destinations });
  }

  /** Marks a received object consumed by this application. [ref rest-api §1.2 O7] */
  async markObjectConsumed(objectType: string, objectID: string): Promise<void> {
    await this.#mutate('PUT', objectPath(this.#org, objectType, objectID, 'consumed'));
    this.#noteMark(objectType, objectID);
  }

  /** Marks a received object received, so plain listings stop returning it. [ref rest-api §1.2 O8] */
  async markObjectReceived(objectType: string, objectID: string): Promise<void> {
    await this.#mutate('PUT', objectPath(this.#org, objectType, objectID, 'received'));
    this.#noteMark(objectType, objectID);
  }

  /** Acknowledges a deletion made by the other side. [ref rest-api §1.2 O9] */
  async markObjectDeleted(objectType: string, objectID: string): Promise<void> {
    await this.#mutate('PUT', objectPath(this.#org, objectType, objectID, 'deleted'));
    this.#noteMark(objectType, objectID);
  }

  /** Activates an object created inactive. [ref rest-api §1.2 O10] */
  async activateObject(objectType: string, objectID: string): Promise<void> {
    await this.#mutate('PUT', objectPath(this.#org, objectType, objectID, 'activate'));
  }

  /** Marks the object's destination policy processed; CSS only. [ref rest-api §1.2 O11] */
  async markPolicyReceived(objectType: string, objectID: string): Promise<void> {
    await this.#mutate('PUT', objectPath(this.#org, objectType, objectID, 'policyreceived'));
  }

  // --- listings (the server's 404 for "empty" becomes []) -------------------------------------

  /** Objects of a type received from the other side; `received` adds those already marked received. [ref rest-api §1.2 O4] */
  async listObjects(objectType: string, options: { received?: boolean; signal?: AbortSignal } = {}): Promise<MetaData[]> {
    const path = withQuery(objectPath(this.#org, objectType), { received: options.received });
    return this.#list<MetaData>(path, options.signal);
  }

  /** Every object of a type, whatever its status. [ref rest-api §1.2 O5] */
  async listAllObjects(objectType: string): Promise<ObjectDestinationPolicy[]> {
    return this.#list<ObjectDestinationPolicy>(withQuery(objectPath(this.#org, objectType), { all_objects: true }));
  }

  /** Objects with a destination policy; CSS only. [ref rest-api §1.2 O18] */
  async listObjectsWithDestinationPolicy(query: DestinationPolicyQuery = {}): Promise<ObjectDestinationPolicy[]> {
    const since = query.since instanceof Date ? BigInt(query.since.getTime()) * 1_000_000n : query.since;
    const path = withQuery(orgObjectsPath(this.#requireOrg('listObjectsWithDestinationPolicy')), {
      destination_policy: true,
      received: query.received,
      service: query.service,
      since,
    });
    return this.#list<ObjectDestinationPolicy>(path);
  }

  /** Objects matching the filters; CSS only. [ref rest-api §1.2 O19] */
  async listObjectsWithFilters(filters: ObjectFilters): Promise<MetaData[]> {
    const time = (t: Date | string | undefined): string | undefined => (t instanceof Date ? t.toISOString() : t);
    const query: Query = { filters: true, ...filters, since: time(filters.since), expirationTimeBefore: time(filters.expirationTimeBefore) };
    return this.#list<MetaData>(withQuery(orgObjectsPath(this.#requireOrg('listObjectsWithFilters')), query));
  }

  /** Distinct object types visible to the caller; CSS only. [ref rest-api §1.2 O20] */
  async listObjectTypes(): Promise<string[]> {
    return this.#list<string>(withQuery(orgObjectsPath(this.#requireOrg('listObjectTypes')), { list_object_type: true }));
  }

  // --- webhooks, destinations, organizations, misc --------------------------------------------

  /** Registers a URL the server POSTs an object's metadata to when its data arrives. [ref rest-api §3.6] */
  async registerWebhook(objectType: string, url: string): Promise<void> {
    await this.#webhook('register', objectType, url);
  }

  /** Removes a webhook registered with {@link registerWebhook}. */
  async deleteWebhook(objectType: string, url: string): Promise<void> {
    await this.#webhook('delete', objectType, url);
  }

  /**
   * The type's registered webhooks and its last deliveries, newest first, with every attempt
   * (edgesync only; a reference server answers with the type's objects instead).
   */
  async getWebhookLog(objectType: string): Promise<WebhookLog> {
    const path = withQuery(objectPath(this.#org, objectType), { webhooks: true });
    const res = await this.#call('GET', path);
    return (await readJson<WebhookLog | null>(res, 'GET', path)) ?? { webhooks: [], deliveries: [] };
  }

  /** Edge nodes registered in the org; CSS only. [ref rest-api §1.3] */
  async getDestinations(): Promise<Destination[]> {
    return this.#list<Destination>(destinationsPath(this.#requireOrg('getDestinations')));
  }

  /** Objects being delivered to one edge node; CSS only. [ref rest-api §1.3] */
  async getDestinationObjects(destType: string, destID: string): Promise<ObjectStatusEntry[]> {
    return this.#list<ObjectStatusEntry>(destinationsPath(this.#requireOrg('getDestinationObjects'), destType, destID));
  }

  /** Organizations known to the CSS (an org admin sees only its own). [ref rest-api §1.4] */
  async listOrganizations(): Promise<Organization[]> {
    return this.#list<Organization>(organizationsPath());
  }

  /** Creates or updates an organization; CSS only. [ref rest-api §1.4] */
  async putOrganization(org: OrganizationInput): Promise<void> {
    await this.#mutate('PUT', organizationsPath(org.orgID), org);
  }

  /** Deletes an organization with all its objects, destinations and ACLs; CSS only. [ref rest-api §1.4] */
  async deleteOrganization(orgID: string): Promise<void> {
    await this.#mutate('DELETE', organizationsPath(orgID));
  }

  /** Health report; `details` adds usage counters. [ref rest-api §3.7] */
  async health(details?: boolean): Promise<HealthReport> {
    const path = withQuery(HEALTH_PATH, { details });
    const report = await readJson<HealthReport>(await this.#call('GET', path), 'GET', path);
    if (report === null) throw new SyncServiceError(200, '', 'GET', path);
    return report;
  }

  /**
   * Asks the CSS to resend every object to this ESS; ESS only. Sent as POST, which the server
   * requires (the reference Go SDK's PUT gets a 405). [ref rest-api §1.6]
   */
  async resend(): Promise<void> {
    await this.#mutate('POST', RESEND_PATH);
  }

  /**
   * Polls {@link listObjects} every `intervalMs` and yields each new delivery once: an
   * (objectID, instanceID) not yielded before, or the deletion of an object. Ends when the
   * signal aborts. See {@link WatchOptions}.
   */
  watch(objectType: string, options: WatchOptions): AsyncIterable<MetaData> {
    const received = options.received;
    // The marks this client sends while the loop body handles an object, so that the watcher
    // does not mark received an object the app has just consumed or confirmed deleted.
    const listeners = new Set<(type: string, id: string) => void>();
    return watchObjects(
      {
        list: (signal) => this.listObjects(objectType, { ...(received === undefined ? {} : { received }), ...(signal === undefined ? {} : { signal }) }),
        markReceived: (meta) => this.markObjectReceived(meta.objectType, meta.objectID),
        handling: (meta) => {
          let marked = false;
          const listener = (type: string, id: string): void => {
            if (type === meta.objectType && id === meta.objectID) marked = true;
          };
          listeners.add(listener);
          this.#markListeners.add(listener);
          return () => {
            listeners.delete(listener);
            this.#markListeners.delete(listener);
            return marked;
          };
        },
        close: () => {
          for (const l of listeners) this.#markListeners.delete(l);
        },
      },
      options,
    );
  }

  #noteMark(objectType: string, objectID: string): void {
    for (const l of this.#markListeners) l(objectType, objectID);
  }

  // --- ACLs (CSS only) -------------------------------------------------------------------------
  //
  // These speak the server's real format, `{"action","users":[AclEntry]}`. The reference's Go and
  // Python SDKs send `{"action","usernames":[string]}`, which the server (theirs and ours) ignores:
  // their add and remove succeed (204) and change nothing. Their "retrieve ACL" also puts the type
  // in the path, which the server ignores, where the `key` query is what names the ACL.
  // [ref rest-api §3.5]

  /**
   * The entries of the ACL protecting `key` (an object or destination type), or of the ACL of
   * every type when `key` is left out or `*`; [] when there is none. [ref rest-api §1.5]
   */
  async getAcl(aclType: AclType, key?: string, options: { aclUserType?: AclUserType } = {}): Promise<AclEntry[]> {
    const path = withQuery(securityPath(aclType, this.#requireOrg('getAcl')), { key: key === '*' ? undefined : key, acl_usertype: options.aclUserType });
    return this.#list<AclEntry>(path);
  }

  /** The keys of the org's ACLs of that type, `*` being the ACL of every type. */
  async listAclKeys(aclType: AclType): Promise<string[]> {
    return this.#list<string>(withQuery(securityPath(aclType, this.#requireOrg('listAclKeys')), { all_keys: true }));
  }

  /**
   * Adds entries to the ACL of `key` (`*` or undefined: every type), creating it. An entry whose
   * user type and username are already there keeps its role: remove it first to change the role.
   */
  async addToAcl(aclType: AclType, key: string | undefined, entries: readonly AclEntryInput[]): Promise<void> {
    await this.#mutate('PUT', this.#aclPath(aclType, key, 'addToAcl'), { action: 'add', users: entries });
  }

  /** Removes entries (by user type and username) from an ACL; the ACL goes with its last entry. */
  async removeFromAcl(aclType: AclType, key: string | undefined, users: readonly Pick<AclEntry, 'Username' | 'ACLUserType'>[]): Promise<void> {
    await this.#mutate('PUT', this.#aclPath(aclType, key, 'removeFromAcl'), { action: 'remove', users });
  }

  /** Removes one entry with `DELETE`; an absent entry is no error. */
  async deleteAclEntry(aclType: AclType, key: string, aclUserType: AclUserType, username: string): Promise<void> {
    await this.#mutate('DELETE', securityPath(aclType, this.#requireOrg('deleteAclEntry'), key, aclUserType, username));
  }

  // --- plumbing ---------------------------------------------------------------------------------

  #aclPath(aclType: AclType, key: string | undefined, method: string): string {
    const org = this.#requireOrg(method);
    return key === undefined || key === '*' ? securityPath(aclType, org) : securityPath(aclType, org, key);
  }

  #requireOrg(method: string): string {
    if (this.#org === undefined) throw new TypeError(`${method} is a CSS route and needs the client's orgID`);
    return this.#org;
  }

  async #call(method: HttpMethod, path: string, init: Omit<TransportRequest, 'method' | 'path'> = {}): Promise<TransportResponse> {
    const res = await this.#transport.request({ ...init, method, path });
    return ensureSuccess(res, method, path);
  }

  async #mutate(method: HttpMethod, path: string, json?: unknown): Promise<void> {
    const init = json === undefined ? {} : { body: Buffer.from(stringifyJson(json)), headers: JSON_HEADERS };
    discard(await this.#call(method, path, init));
  }

  async #webhook(action: WebhookAction, objectType: string, url: string): Promise<void> {
    await this.#mutate('PUT', objectPath(this.#org, objectType), { action, url });
  }

  async #getJsonOrNull<T>(path: string, signal?: AbortSignal): Promise<T | null> {
    try {
      const res = await this.#call('GET', path, { signal });
      return await readJson<T>(res, 'GET', path);
    } catch (err) {
      if (err instanceof NotFoundError) return null;
      throw err;
    }
  }

  /** [ref rest-api §5.1] an empty listing is a 404 with an empty body, never `200 []`. */
  async #list<T>(path: string, signal?: AbortSignal): Promise<T[]> {
    // Go encodes a nil slice as `null`, so a 200 can carry null too.
    return (await this.#getJsonOrNull<T[] | null>(path, signal)) ?? [];
  }
}
