/**
 * Decoding and validating the body of `PUT /api/v1/objects/.../{type}/{id}`, in the
 * reference's order so that the first failure reported is the same. [ref rest-api §2.3]
 */
import { BadRequestError } from './errors.js';
import { decodeFields, DecodeError, type Schema } from './decode.js';
import { emptyMetaData, type MetaData, type Policy } from './metadata.js';
import { isDestinationsListEntry } from './destination-ref.js';
import { isValidName } from './names.js';
import { parseRfc3339 } from './instant.js';
import { parseDataSignature } from './data-signature.js';
import { fileUriPath } from './file-uri.js';

const META_SCHEMA: Schema = {
  objectID: 'string',
  objectType: 'string',
  destinationOrgID: 'string',
  destinationID: 'string',
  destinationType: 'string',
  destinationsList: 'stringList',
  destinationPolicy: 'object',
  expiration: 'string',
  version: 'string',
  description: 'string',
  link: 'string',
  inactive: 'bool',
  activationTime: 'string',
  noData: 'bool',
  metaOnly: 'bool',
  destinationDataUri: 'string',
  sourceDataUri: 'string',
  consumers: 'int',
  autodelete: 'bool',
  originID: 'string',
  originType: 'string',
  deleted: 'bool',
  instanceID: 'int64',
  dataID: 'int64',
  objectSize: 'int',
  chunkSize: 'int',
  uploadChunkSize: 'int',
  hashAlgorithm: 'string',
  publicKey: 'string',
  signature: 'string',
  public: 'bool',
  ownerID: 'string',
};

const POLICY_SCHEMA: Schema = { properties: 'any', constraints: 'stringList', services: 'any', timestamp: 'int64' };
const PROPERTY_SCHEMA: Schema = { name: 'string', value: 'any', type: 'string' };
const SERVICE_SCHEMA: Schema = { orgID: 'string', arch: 'string', serviceName: 'string', version: 'string' };

export interface ObjectUpdate {
  meta: MetaData;
  /** Inline data: absent/null → undefined; `""` is present and empty. */
  data: Buffer | undefined;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function decodePolicy(raw: unknown): Policy {
  const p = decodeFields(raw, POLICY_SCHEMA, 'Policy');
  const list = (v: unknown, where: string): unknown[] | null => {
    if (v === undefined) return null;
    if (!Array.isArray(v)) throw new DecodeError(`json: cannot unmarshal ${typeof v} into Go struct field Policy.${where} of type array`);
    return v as unknown[];
  };
  const props = list(p.properties, 'properties')?.map((e) => ({ name: '', value: null, type: '', ...decodeFields(e, PROPERTY_SCHEMA, 'PolicyProperty') })) ?? null;
  const services =
    list(p.services, 'services')?.map((e) => ({ orgID: '', arch: '', serviceName: '', version: '', ...decodeFields(e, SERVICE_SCHEMA, 'ServiceID') })) ?? null;
  return {
    properties: props,
    constraints: (p.constraints as string[] | undefined) ?? null,
    services,
    timestamp: (p.timestamp as bigint | undefined) ?? 0n,
  };
}

/**
 * Turns a parsed JSON body into an ObjectUpdate, checking value types.
 * @throws BadRequestError `Invalid JSON for update. Error: …`
 */
export function decodeObjectUpdate(body: unknown): ObjectUpdate {
  try {
    const top = decodeFields(body, { meta: 'object', data: 'string' }, 'objectUpdate');
    const meta = emptyMetaData();
    if (top.meta !== undefined) {
      const fields = decodeFields(top.meta, META_SCHEMA, 'MetaData');
      const policy = fields.destinationPolicy;
      delete fields.destinationPolicy;
      Object.assign(meta, fields);
      if (policy !== undefined) meta.destinationPolicy = decodePolicy(policy);
    }
    let data: Buffer | undefined;
    if (typeof top.data === 'string') {
      if (!BASE64.test(top.data)) throw new DecodeError('illegal base64 data at input byte 0');
      data = Buffer.from(top.data, 'base64');
    }
    return { meta, data };
  } catch (e) {
    if (e instanceof DecodeError) throw new BadRequestError(`Invalid JSON for update. Error: ${e.message}`);
    throw e;
  }
}

export interface UpdateContext {
  /** Org from the URL (CSS) or the node's org (ESS). */
  orgID: string;
  objectType: string;
  objectID: string;
  nodeType: 'CSS' | 'ESS';
  now: Date;
}

const TAG = /<\/?[a-zA-Z][^>]*>/;
/** Semver range as the reference's policy services accept: versions joined by range operators. */
const VERSION_RANGE = /^[[(]?\s*\d+(\.\d+){0,2}(\s*,\s*(\d+(\.\d+){0,2}|INFINITY))?\s*[\])]?$/;

function validatePolicy(policy: Policy): void {
  for (const p of policy.properties ?? []) {
    if (p.name === '') throw new BadRequestError('Invalid destination policy. Error: A property must have a name');
  }
  for (const s of policy.services ?? []) {
    if (s.orgID === '' || s.arch === '' || s.serviceName === '' || s.version === '') {
      throw new BadRequestError('Invalid destination policy. Error: A service must have an orgID, arch, serviceName and version');
    }
    if (!VERSION_RANGE.test(s.version)) {
      throw new BadRequestError(`Invalid destination policy. Error: The version range ${s.version} of service ${s.serviceName} is invalid`);
    }
  }
}

function parseFutureTime(value: string, what: string, now: Date): void {
  const t = parseRfc3339(value);
  if (t === null) {
    throw new BadRequestError(`Failed to parse ${what} (${value}) as an RFC3339 time, e.g. 2030-01-31T12:00:00Z or 2030-01-31T14:00:00+02:00`);
  }
  if (t <= now.getTime()) throw new BadRequestError(`The ${what} (${value}) is in the past`);
}

function checkName(field: string, value: string): void {
  if (value !== '' && !isValidName(value)) throw new BadRequestError(`${field} (${value}) contains invalid characters`);
}

/**
 * Validates an update against the URL, in the reference's order; the first failure wins.
 * Also normalizes `destinationOrgID` to the URL org.
 */
export function validateObjectUpdate(update: ObjectUpdate, ctx: UpdateContext): void {
  const m = update.meta;
  if (m.objectID === '') throw new BadRequestError("Object's meta data does not contain object's ID");
  if (m.objectID !== ctx.objectID) {
    throw new BadRequestError(`Object ID (${ctx.objectID}) in the URL doesn't match the object-id (${m.objectID}) in the payload`);
  }
  checkName('object ID', m.objectID);
  if (m.objectType === '') throw new BadRequestError("Object's meta data does not contain object's type");
  if (m.objectType !== ctx.objectType) {
    throw new BadRequestError(`Object type (${ctx.objectType}) in the URL doesn't match the object-type (${m.objectType}) in the payload`);
  }
  checkName('object type', m.objectType);
  if (m.hashAlgorithm !== '' && m.hashAlgorithm !== 'SHA1' && m.hashAlgorithm !== 'SHA256') {
    throw new BadRequestError(`Hash algorithm (${m.hashAlgorithm}) is not supported, use SHA1 or SHA256`);
  }
  if (m.publicKey !== '' && !BASE64.test(m.publicKey)) throw new BadRequestError('PublicKey is not base64 encoded');
  if (m.signature !== '' && !BASE64.test(m.signature)) throw new BadRequestError('Signature is not base64 encoded');
  // Parsed here, so a key or signature that can never verify is refused before any data comes.
  if (parseDataSignature(m) !== null && m.noData) {
    throw new BadRequestError('A noData object has no data to sign: remove hashAlgorithm, publicKey and signature, or noData');
  }
  if (m.expiration !== '') {
    if (ctx.nodeType === 'ESS') throw new BadRequestError('Object expiration is disabled on ESS');
    parseFutureTime(m.expiration, 'expiration time', ctx.now);
  }
  checkName('object version', m.version);
  if (TAG.test(m.description)) throw new BadRequestError('Object description contains HTML tags');
  if (m.metaOnly && update.data !== undefined) throw new BadRequestError("Can't update data if MetaOnly is true");
  if (m.destinationID !== '' && m.destinationType === '') {
    throw new BadRequestError('Destination ID provided without destination type');
  }
  if (m.destinationsList !== null) {
    if (ctx.nodeType === 'ESS') throw new BadRequestError('ESS does not support destinationsList');
    if (m.destinationType !== '') throw new BadRequestError("Can't specify both destination type and destinations list");
    for (const d of m.destinationsList) {
      if (d.includes('<') || d.includes('>')) {
        throw new BadRequestError(`Unsupported char in destinationsList. Error: destinationsList contains unsupported char: < or > (${d})`);
      }
      if (!isDestinationsListEntry(d)) throw new BadRequestError(`Invalid destination (${d}) in destinationsList, expected destinationType:destinationID`);
    }
  }
  if (m.destinationPolicy !== null) {
    if (m.destinationType !== '' || m.destinationsList !== null) {
      throw new BadRequestError("Can't specify a destination policy together with a destination type or destinations list");
    }
    validatePolicy(m.destinationPolicy);
  }
  checkName('Destination type', m.destinationType);
  checkName('Destination ID', m.destinationID);
  if (m.autodelete && m.destinationsList === null && m.destinationID === '') {
    throw new BadRequestError('Autodelete requires a destinations list or a destination ID');
  }
  if (m.inactive && m.activationTime !== '') parseFutureTime(m.activationTime, 'activation time', ctx.now);
  if (m.deleted) throw new BadRequestError('Object marked as deleted');
  if (m.destinationDataUri !== '') {
    if (ctx.nodeType === 'ESS') throw new BadRequestError('Data URI is disabled on CSS');
    // Only the form here: the directories an ESS allows are its own business (data-files.ts).
    fileUriPath(m.destinationDataUri, { field: 'destinationDataUri' });
  }
  if (m.sourceDataUri !== '' && !m.noData) {
    if (update.data !== undefined) throw new BadRequestError('Both source data URI and data are set');
    if (m.metaOnly) throw new BadRequestError("Can't update data if MetaOnly is true");
    if (m.link !== '') throw new BadRequestError('Both source data URI and link are set');
    // The file itself is checked against SOURCE_DATA_DIRS where it is read (ObjectService.update).
    fileUriPath(m.sourceDataUri, { field: 'sourceDataUri' });
  }
  checkName('Origin ID', m.originID);
  checkName('Origin type', m.originType);
  if (m.destinationOrgID === '') m.destinationOrgID = ctx.orgID;
  checkName('Destination organization ID', m.destinationOrgID);
  if (m.destinationOrgID !== ctx.orgID) {
    throw new BadRequestError(
      `Destination organization ID (${m.destinationOrgID}) in the payload doesn't match the organization (${ctx.orgID}) in the URL`,
    );
  }
}
