/**
 * The `/spi/v1` request surface of the CSS, parsed and validated before anything else
 * happens. [ref rest-api §6, sync-protocol §1]
 */
import { BadRequestError, parseInt64 } from '../../model/index.js';

export const SPI_PREFIX = '/spi/v1/';

/**
 * Response header of a whole-object data download: the hex SHA-256 of the stored data, for
 * the ESS to check what it received (lib/sync/data-check.ts). An edgesync extension; a
 * reference ESS ignores unknown headers.
 */
export const DATA_SHA256_HEADER = 'X-Edgesync-Data-Sha256';

/** Path parameters of the SPI: letters, digits, combining marks and `._@-`. [ref rest-api §6] */
const SPI_NAME = /^[\p{L}\p{N}\p{M}._@-]+$/u;

/** Notification actions an ESS may PUT for one object. [ref sync-protocol §1] */
export const SPI_OBJECT_ACTIONS = [
  'update',
  'updated',
  'consumed',
  'ackconsumed',
  'received',
  'ackreceived',
  'delete',
  'ackDelete',
  'deleted',
  'ackDeleted',
  'feedback',
  'data',
] as const;
export type SpiObjectAction = (typeof SPI_OBJECT_ACTIONS)[number];

export const SPI_REGISTRATION_ACTIONS = ['register', 'register-new', 'ping', 'unregister'] as const;
export type SpiRegistrationAction = (typeof SPI_REGISTRATION_ACTIONS)[number];

export interface SpiDestinationRef {
  orgID: string;
  destinationType: string;
  destinationID: string;
}

export type SpiRoute =
  | ({ kind: 'registration'; action: SpiRegistrationAction } & SpiDestinationRef)
  | { kind: 'poll' }
  | { kind: 'resend'; orgID: string }
  /** Several acks in one request (`PUT /spi/v1/objects/{org}/acks`): our extension, spi-batch-acks.ts. */
  | { kind: 'acks'; orgID: string }
  /** The data of an upload still arriving (`GET /spi/v1/early/{org}/{type}/{id}`): our extension, lib/sync/early-data.ts. */
  | { kind: 'early'; orgID: string; objectType: string; objectID: string }
  | {
      kind: 'object';
      orgID: string;
      objectType: string;
      objectID: string;
      instanceID: bigint;
      /** Absent in the short form `…/{instanceID}/{action}`. */
      dataID?: bigint;
      action: SpiObjectAction;
    };

/**
 * Checks one SPI path parameter. `..`, `://` and control characters are refused even where the
 * character class would let parts of them through. [ref rest-api §6 Validation]
 */
export function validateSpiName(field: string, value: string): void {
  if (value === '' || !SPI_NAME.test(value) || value.includes('..') || value.includes('://') || /\p{Cc}/u.test(value)) {
    throw new BadRequestError(`${field} (${value}) is not a valid SPI path parameter`);
  }
}

/** A Go int64 path segment, exact: the reference's ids are 19-digit nanosecond stamps. */
function parseId(field: string, value: string): bigint {
  if (!/^\d+$/.test(value)) throw new BadRequestError(`${field} (${value}) must be a non-negative integer`);
  const n = parseInt64(value);
  if (n === null) throw new BadRequestError(`${field} (${value}) is out of range`);
  return n;
}

function decodeSegments(path: string): string[] {
  try {
    return path.split('/').map(decodeURIComponent);
  } catch {
    throw new BadRequestError(`Invalid URL encoding in ${path}`);
  }
}

/**
 * Parses a request path (without the query) below `/spi/v1/`.
 * @throws BadRequestError for a malformed path, parameter or action
 */
export function parseSpiPath(path: string): SpiRoute {
  if (!path.startsWith(SPI_PREFIX)) throw new BadRequestError(`Not an SPI path: ${path}`);
  const parts = decodeSegments(path.slice(SPI_PREFIX.length));
  if (parts.length > 1 && parts[parts.length - 1] === '') parts.pop();
  const [head, ...rest] = parts;
  if ((SPI_REGISTRATION_ACTIONS as readonly string[]).includes(head ?? '')) {
    const [orgID = '', destinationType = '', destinationID = '', ...extra] = rest;
    if (extra.length > 0) throw new BadRequestError(`Unexpected path segments after ${head}/${orgID}/${destinationType}/${destinationID}`);
    validateSpiName('Organization ID', orgID);
    validateSpiName('Destination type', destinationType);
    validateSpiName('Destination ID', destinationID);
    return { kind: 'registration', action: head as SpiRegistrationAction, orgID, destinationType, destinationID };
  }
  if (head === 'early') {
    const [orgID = '', objectType = '', objectID = '', ...extra] = rest;
    if (extra.length > 0) throw new BadRequestError(`Unexpected path segments after early/${orgID}/${objectType}/${objectID}`);
    validateSpiName('Organization ID', orgID);
    validateSpiName('Object type', objectType);
    validateSpiName('Object ID', objectID);
    return { kind: 'early', orgID, objectType, objectID };
  }
  if (head !== 'objects') throw new BadRequestError(`Unknown SPI path ${path}`);
  if (rest.length === 0 || (rest.length === 1 && rest[0] === '')) return { kind: 'poll' };
  if (rest.length === 2 && (rest[1] === 'resend' || rest[1] === 'acks')) {
    validateSpiName('Organization ID', rest[0] ?? '');
    return { kind: rest[1], orgID: rest[0] ?? '' };
  }
  if (rest.length !== 5 && rest.length !== 6) throw new BadRequestError(`Unexpected number of path segments in ${path}`);
  const [orgID = '', objectType = '', objectID = ''] = rest;
  validateSpiName('Organization ID', orgID);
  validateSpiName('Object type', objectType);
  validateSpiName('Object ID', objectID);
  const action = rest[rest.length - 1] ?? '';
  if (!(SPI_OBJECT_ACTIONS as readonly string[]).includes(action)) throw new BadRequestError(`Unknown SPI action (${action})`);
  const instanceID = parseId('Instance ID', rest[3] ?? '');
  const route: SpiRoute = { kind: 'object', orgID, objectType, objectID, instanceID, action: action as SpiObjectAction };
  if (rest.length === 6) route.dataID = parseId('Data ID', rest[4] ?? '');
  return route;
}

/**
 * `X-Sync-Service-Dest: org/destType/destID`, the destination a caller acts for.
 * [ref rest-api §4.6]
 */
export function parseDestinationHeader(value: string | undefined): SpiDestinationRef {
  const parts = (value ?? '').split('/');
  if (parts.length !== 3) throw new BadRequestError('The X-Sync-Service-Dest header must be org/destinationType/destinationID');
  const [orgID = '', destinationType = '', destinationID = ''] = parts;
  validateSpiName('Organization ID', orgID);
  validateSpiName('Destination type', destinationType);
  validateSpiName('Destination ID', destinationID);
  return { orgID, destinationType, destinationID };
}

/** The path an ESS uses for one object action (the client side of {@link parseSpiPath}). */
export function spiObjectPath(ref: { orgID: string; objectType: string; objectID: string; instanceID: bigint; dataID: bigint }, action: SpiObjectAction): string {
  const seg = [ref.orgID, ref.objectType, ref.objectID, String(ref.instanceID), String(ref.dataID), action].map(encodeURIComponent);
  return `${SPI_PREFIX}objects/${seg.join('/')}`;
}

/** Query parameter of a poll asking for early-data offers (our extension, lib/sync/early-data.ts). */
export const EARLY_PARAM = 'early';

/** Poll entry type of an early-data offer; a reference ESS never asks for one. */
export const EARLY_ENTRY = 'edgesync-early';

/** The path of the data of an upload still arriving (our extension, lib/sync/early-data.ts). */
export function spiEarlyPath(ref: { orgID: string; objectType: string; objectID: string }): string {
  return `${SPI_PREFIX}early/${[ref.orgID, ref.objectType, ref.objectID].map(encodeURIComponent).join('/')}`;
}

/** The path of a batch of acks (our extension, see spi-batch-acks.ts). */
export function spiAcksPath(orgID: string): string {
  return `${SPI_PREFIX}objects/${encodeURIComponent(orgID)}/acks`;
}

/**
 * The route's template, for the request metrics: the parameters as `{names}`, the actions (a
 * fixed set) as they are, so that the label stays bounded.
 */
export function spiRouteTemplate(route: SpiRoute): string {
  switch (route.kind) {
    case 'registration':
      return `${SPI_PREFIX}${route.action}/{orgID}/{destType}/{destID}`;
    case 'poll':
      return `${SPI_PREFIX}objects`;
    case 'resend':
    case 'acks':
      return `${SPI_PREFIX}objects/{orgID}/${route.kind}`;
    case 'early':
      return `${SPI_PREFIX}early/{orgID}/{objectType}/{objectID}`;
    case 'object':
      return `${SPI_PREFIX}objects/{orgID}/{objectType}/{objectID}/{instanceID}/${route.dataID !== undefined ? '{dataID}/' : ''}${route.action}`;
  }
}
