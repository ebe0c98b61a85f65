/**
 * Wire types of the sync-service REST API, as the reference server emits and accepts them.
 * Kept separate from `lib/model` on purpose: the SDK is published alone and must not import the server.
 */

/** Status of an object on the node that answers (`GET .../status`). [ref rest-api §3.1] */
export type ObjectStatus =
  | 'notReady'
  | 'verifying'
  | 'verificationFailed'
  | 'ready'
  | 'partiallyreceived'
  | 'receiverVerifying'
  | 'receiverVerificationFailed'
  | 'completelyReceived'
  | 'objreceived'
  | 'objconsumed'
  | 'objdeleted'
  | 'consumedByDest';

/** Delivery status of an object toward one destination. [ref rest-api §3.2] */
export type DeliveryStatus = 'pending' | 'delivering' | 'delivered' | 'consumed' | 'deleted' | 'error';

/** One property of a destination policy. */
export interface PolicyProperty {
  /** Property name; required by the server. */
  name: string;
  /** Any JSON value. */
  value: unknown;
  /** Optional type hint (e.g. `string`, `int`, `version`). */
  type?: string;
}

/** A service a policy-based object is meant for. All four fields are required by the server. */
export interface PolicyService {
  orgID: string;
  arch: string;
  serviceName: string;
  /** A semver range, e.g. `[1.0.0,2.0.0)`. */
  version: string;
}

/** Destination policy of an object. [ref rest-api §2 #7] */
export interface Policy {
  properties: PolicyProperty[] | null;
  constraints: string[] | null;
  services: PolicyService[] | null;
  /** Set by the server to the store time in Unix nanoseconds: exact, hence a bigint. */
  timestamp: bigint;
}

/** A policy as sent by a client: the server fills in the timestamp. */
export type PolicyInput = Partial<Policy>;

/** Object metadata: all 32 keys in wire order, always present in server output. [ref rest-api §2] */
export interface MetaData {
  objectID: string;
  objectType: string;
  /** The object's org; empty means the URL org. */
  destinationOrgID: string;
  destinationID: string;
  /** Empty (with no list and no policy) means broadcast to every node. */
  destinationType: string;
  /** `type:id` entries; `[]` is not the same as null for the server. */
  destinationsList: string[] | null;
  destinationPolicy: Policy | null;
  /** RFC3339; CSS only. */
  expiration: string;
  version: string;
  description: string;
  link: string;
  inactive: boolean;
  /** RFC3339. */
  activationTime: string;
  noData: boolean;
  metaOnly: boolean;
  /** `file:///` URI where a receiving ESS also writes the data (within its DESTINATION_DATA_DIRS); set on the CSS. */
  destinationDataUri: string;
  /** `file:///` URI the publishing node reads the data from at the PUT (within its SOURCE_DATA_DIRS). */
  sourceDataUri: string;
  /** Expected consumers; 0 means 1, -1 means unlimited. */
  consumers: number;
  autodelete: boolean;
  originID: string;
  originType: string;
  /** Read-only: set on objects deleted by the other side. */
  deleted: boolean;
  /**
   * Server-assigned; changes on every store. A Go int64 (the reference's are 19-digit
   * nanosecond stamps, beyond 2^53), hence a bigint: a number would round it.
   */
  instanceID: bigint;
  /** The instanceID of the store that last changed the data; 0 without data. */
  dataID: bigint;
  objectSize: number;
  chunkSize: number;
  uploadChunkSize: number;
  /** `SHA1`, `SHA256` or empty. */
  hashAlgorithm: string;
  publicKey: string;
  signature: string;
  public: boolean;
  ownerID: string;
}

/**
 * Metadata as a client sends it: only objectID and objectType are required, the server defaults
 * the rest. The policy timestamp is optional because the server overwrites it.
 */
export type ObjectInput = Omit<Partial<MetaData>, 'objectID' | 'objectType' | 'destinationPolicy'> &
  Pick<MetaData, 'objectID' | 'objectType'> & { destinationPolicy?: PolicyInput | null };

/** Delivery status of an object for one destination (`GET .../destinations`). [ref rest-api §3.3] */
export interface DestinationsStatus {
  destinationType: string;
  destinationID: string;
  status: DeliveryStatus;
  /** Feedback error text, empty when none. */
  message: string;
}

/** An object with its policy and destinations (`all_objects=true`, `destination_policy=true`). [ref rest-api §2.2] */
export interface ObjectDestinationPolicy {
  orgID: string;
  objectType: string;
  objectID: string;
  /** Omitted by the server when the object has no policy. */
  destinationPolicy?: Policy;
  destinations: DestinationsStatus[];
}

/** An edge node registered with the CSS. [ref rest-api §2.2] */
export interface Destination {
  destinationOrgID: string;
  destinationType: string;
  destinationID: string;
  communication: 'http' | 'mqtt';
  codeVersion: string;
}

/**
 * An object with an active notification toward one destination
 * (`GET /destinations/{org}/{type}/{id}/objects`). The reference calls this struct `ObjectStatus`;
 * the SDK renames it because `ObjectStatus` is the status string union. [ref rest-api §3.4]
 */
export interface ObjectStatusEntry {
  orgID: string;
  objectType: string;
  objectID: string;
  status: DeliveryStatus;
}

/** An organization as listed by `GET /organizations` (note the hyphenated key). [ref rest-api §1.4] */
export interface Organization {
  'org-id': string;
  address: string;
}

/** Body of `PUT /organizations/{org}`; the listing and the input use different keys. [ref rest-api §1.4] */
export interface OrganizationInput {
  orgID: string;
  user?: string;
  password?: string;
  /** Broker address; required when the CSS uses MQTT. */
  address?: string;
}

/** Objects ACLs protect object types; destinations ACLs, destination types. [ref rest-api §1.5] */
export type AclType = 'objects' | 'destinations';

/** Whether an ACL entry names a user or a node (exchange node credentials). */
export type AclUserType = 'user' | 'node';

/** `aclWriter`/`aclReader` in objects ACLs; destinations ACLs have no roles and show `na`. */
export type AclRole = 'aclWriter' | 'aclReader' | 'na';

/**
 * One ACL entry, with the capitalised keys the server sends and takes (the reference's
 * ACLentry has no JSON tags). Username `*` stands for every user (or node) of the org.
 * [ref rest-api §3.5]
 */
export interface AclEntry {
  Username: string;
  ACLUserType: AclUserType;
  ACLRole: AclRole;
}

/** An entry to add: a destinations ACL needs no role (the server stores `na`). */
export type AclEntryInput = Omit<AclEntry, 'ACLRole'> & { ACLRole?: AclRole };

/** Colour of a health indicator. */
export type HealthStatus = 'green' | 'yellow' | 'red';

/** `GET /health`; keys marked optional are omitted by the server when zero. [ref rest-api §3.7] */
export interface HealthReport {
  general: { nodeType: 'CSS' | 'ESS'; healthStatus: HealthStatus; upTime: number };
  dbHealth: {
    dbStatus: HealthStatus;
    disconnectedFromDB: boolean;
    lastDisconnectFromDBDuration?: number;
    dbReadFailures: number;
    dbWriteFailures: number;
    timeSinceLastReadWriteError?: number;
  };
  /** Present only with `details=true`. */
  usage?: { clientRequests: number; registeredESS: number; storedObjects: number };
  /** Present only when the node talks MQTT. */
  mqttHealth?: {
    mqttConnectionStatus: string;
    subscribeFailures: number;
    publishFailures: number;
    disconnectedFromMQTTBroker: boolean;
    lastDisconnectFromBrokerDuration?: number;
    timeSinceLastSubscribeError?: number;
    timeSinceLastPublishError?: number;
  };
  /**
   * An edgesync ESS's link to its CSS (not in the reference): green while exchanges succeed,
   * yellow when the last one failed or none succeeded for a while, red when the CSS refuses the
   * credentials or stayed out of reach longer. Its colour counts in `general.healthStatus`.
   */
  cssHealth?: {
    cssStatus: HealthStatus;
    cssConnectionStatus: 'connecting' | 'connected' | 'unreachable' | 'failing' | 'credentialsRefused' | 'certificateUntrusted';
    css: string;
    registered: boolean;
    lastSuccessfulExchange?: string;
    timeSinceLastSuccessfulExchange: number;
    reason?: string;
  };
}

/** Webhook operation of `PUT /objects/[{org}/]{type}`. [ref rest-api §3.6] */
export type WebhookAction = 'register' | 'delete';

/** One call of a webhook for one object change, and its attempts (edgesync only). */
export interface WebhookDelivery {
  id: number;
  url: string;
  /** `available`: a new version can be read; `deleted`: the object was deleted. */
  event: 'available' | 'deleted';
  objectType: string;
  objectID: string;
  instanceID: bigint | number;
  /** `pending`, `retrying` (see nextAttemptAt), `delivered`, or `failed` (given up). */
  state: 'pending' | 'retrying' | 'delivered' | 'failed';
  createdAt: string;
  attempts: { at: string; status?: number; error?: string; durationMs: number }[];
  nextAttemptAt?: string;
}

/** `GET /objects/[{org}/]{type}?webhooks=true` (edgesync only): the type's webhooks and its last deliveries, newest first. */
export interface WebhookLog {
  webhooks: string[];
  deliveries: WebhookDelivery[];
}

/** Operation of `POST .../destinations`. [ref rest-api §1.2 O15] */
export type DestinationsAction = 'add' | 'remove';

/** Query of `GET /objects/{org}?filters=true`; every field is optional. [ref rest-api §1.2 O19] */
export interface ObjectFilters {
  /** true: only objects with a policy; false: only objects without one. */
  destinationPolicy?: boolean;
  /** `svcOrg/svcName`; honoured only with `destinationPolicy: true`. */
  dpService?: string;
  /** Honoured only with `destinationPolicy: true`. */
  dpPropertyName?: string;
  /** Policy timestamp lower bound; honoured only with `destinationPolicy: true`. Sent as RFC3339. */
  since?: Date | string;
  objectType?: string;
  /** Honoured only with `objectType`. */
  objectID?: string;
  destinationType?: string;
  /** Honoured only with `destinationType`. */
  destinationID?: string;
  noData?: boolean;
  /** Keeps objects expiring at or before this time. Sent as RFC3339. */
  expirationTimeBefore?: Date | string;
  deleted?: boolean;
}

/** Progress callback: bytes transferred so far, and the total when known. */
export type ProgressListener = (bytes: number, total?: number) => void;
