/** Public surface of the edgesync client SDK. It depends on node: built-ins only. */
export { SyncServiceClient } from './client.js';
export type {
  ChunkedUploadOptions,
  DestinationPolicyQuery,
  FetchOptions,
  SyncServiceClientOptions,
  UploadOptions,
} from './client.js';
export {
  BadRequestError,
  ConflictError,
  errorForStatus,
  NetworkError,
  NotFoundError,
  SyncServiceError,
  TimeoutError,
  TooManyRequestsError,
  UnauthorizedError,
} from './errors.js';
export { Transport } from './transport.js';
export type { HttpMethod, TransportOptions, TransportRequest, TransportResponse } from './transport.js';
export type { WatchOptions } from './watch.js';
export type * from './types.js';
export { parseJson, stringifyJson } from './json.js';
export { FleetClient } from './fleet.js';
export type * from './fleet.js';
