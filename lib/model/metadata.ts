import { stringifyJson } from './json.js';

/**
 * The object metadata exactly as the reference serializes it: every key always present, in
 * this order. [ref rest-api §2]
 */
export interface PolicyProperty {
  name: string;
  value: unknown;
  type: string;
}

export interface PolicyService {
  orgID: string;
  arch: string;
  serviceName: string;
  version: string;
}

export interface Policy {
  properties: PolicyProperty[] | null;
  constraints: string[] | null;
  services: PolicyService[] | null;
  /** Set by the server to the store time, in Unix nanoseconds (as the reference): a Go int64. */
  timestamp: bigint;
}

export interface MetaData {
  objectID: string;
  objectType: string;
  destinationOrgID: string;
  destinationID: string;
  destinationType: string;
  destinationsList: string[] | null;
  destinationPolicy: Policy | null;
  expiration: string;
  version: string;
  description: string;
  link: string;
  inactive: boolean;
  activationTime: string;
  noData: boolean;
  metaOnly: boolean;
  destinationDataUri: string;
  sourceDataUri: string;
  consumers: number;
  autodelete: boolean;
  originID: string;
  originType: string;
  deleted: boolean;
  /** Go int64, exact (lib/model/int64.ts). */
  instanceID: bigint;
  /** Go int64, exact; equals instanceID when the data changed, 0 for noData. */
  dataID: bigint;
  objectSize: number;
  chunkSize: number;
  uploadChunkSize: number;
  hashAlgorithm: string;
  publicKey: string;
  signature: string;
  public: boolean;
  ownerID: string;
}

/**
 * The int64 keys of MetaData (and of its policy): read as bigint whatever their size, with
 * `parseJson(text, METADATA_INT64_KEYS)`.
 */
export const METADATA_INT64_KEYS: ReadonlySet<string> = new Set(['instanceID', 'dataID', 'timestamp']);

/** Key order of the wire format. */
export const METADATA_KEYS: readonly (keyof MetaData)[] = [
  'objectID',
  'objectType',
  'destinationOrgID',
  'destinationID',
  'destinationType',
  'destinationsList',
  'destinationPolicy',
  'expiration',
  'version',
  'description',
  'link',
  'inactive',
  'activationTime',
  'noData',
  'metaOnly',
  'destinationDataUri',
  'sourceDataUri',
  'consumers',
  'autodelete',
  'originID',
  'originType',
  'deleted',
  'instanceID',
  'dataID',
  'objectSize',
  'chunkSize',
  'uploadChunkSize',
  'hashAlgorithm',
  'publicKey',
  'signature',
  'public',
  'ownerID',
];

export function emptyMetaData(): MetaData {
  return {
    objectID: '',
    objectType: '',
    destinationOrgID: '',
    destinationID: '',
    destinationType: '',
    destinationsList: null,
    destinationPolicy: null,
    expiration: '',
    version: '',
    description: '',
    link: '',
    inactive: false,
    activationTime: '',
    noData: false,
    metaOnly: false,
    destinationDataUri: '',
    sourceDataUri: '',
    consumers: 0,
    autodelete: false,
    originID: '',
    originType: '',
    deleted: false,
    instanceID: 0n,
    dataID: 0n,
    objectSize: 0,
    chunkSize: 0,
    uploadChunkSize: 0,
    hashAlgorithm: '',
    publicKey: '',
    signature: '',
    public: false,
    ownerID: '',
  };
}

/** Reorders keys to the wire order (a stored object may have been built in any order). */
export function orderedMetaData(meta: MetaData): MetaData {
  const out: Record<string, unknown> = {};
  for (const k of METADATA_KEYS) out[k] = meta[k];
  return out as unknown as MetaData;
}

/**
 * JSON as Go's encoder writes it: 2-space indent, `<`, `>` and `&` escaped.
 * [ref rest-api §5.6]
 */
export function goJson(value: unknown): string {
  return stringifyJson(value, 2).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
