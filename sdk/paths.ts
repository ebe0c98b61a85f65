/**
 * URL paths of the REST API. One client serves both node kinds: with an org the paths are the
 * CSS's (`/api/v1/objects/{org}/...`), without one the ESS's (`/api/v1/objects/...`), exactly as
 * the reference SDKs build them. [ref rest-api §1.1]
 */

const API = '/api/v1';

/** Query values; undefined entries are left out. */
export type Query = Record<string, string | number | bigint | boolean | undefined>;

/** Encodes each segment on its own so `/`, `?`, `#` and `%` inside names cannot change the route. */
function join(prefix: string, segments: readonly string[]): string {
  return segments.reduce((path, segment) => `${path}/${encodeURIComponent(segment)}`, prefix);
}

/** Appends a query string built from the defined entries. */
export function withQuery(path: string, query: Query): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) if (value !== undefined) params.append(key, String(value));
  const text = params.toString();
  return text === '' ? path : `${path}?${text}`;
}

/** `/api/v1/objects/[{org}/]{type}[/{id}[/{op}]]`. */
export function objectPath(org: string | undefined, type: string, id?: string, op?: string): string {
  const segments = org === undefined || org === '' ? [type] : [org, type];
  if (id !== undefined) {
    segments.push(id);
    if (op !== undefined) segments.push(op);
  }
  return join(`${API}/objects`, segments);
}

/** `/api/v1/objects/{org}`: the root of the CSS-only org-wide listings (O18–O20). */
export function orgObjectsPath(org: string): string {
  return join(`${API}/objects`, [org]);
}

/** `/api/v1/destinations/{org}[/{destType}/{destID}/objects]`. */
export function destinationsPath(org: string, destType?: string, destID?: string): string {
  if (destType === undefined || destID === undefined) return join(`${API}/destinations`, [org]);
  return `${join(`${API}/destinations`, [org, destType, destID])}/objects`;
}

/** `/api/v1/organizations[/{org}]`. */
export function organizationsPath(org?: string): string {
  return org === undefined ? `${API}/organizations` : join(`${API}/organizations`, [org]);
}

/** `/api/v1/security/{aclType}/{org}[/{key}[/{aclUserType}/{username}]]`: the ACL routes of a CSS. */
export function securityPath(aclType: string, org: string, ...rest: string[]): string {
  return join(`${API}/security`, [aclType, org, ...rest]);
}

/** `/api/v1/health`. */
export const HEALTH_PATH = `${API}/health`;

/** `/api/v1/resend`. */
export const RESEND_PATH = `${API}/resend`;
