/**
 * HTTP Basic credentials (RFC 7617), read as the reference reads them (Go's
 * `Request.BasicAuth`): the scheme in any case, the user up to the first colon, the secret
 * after it, colons included.
 */
export interface BasicCredentials {
  appKey: string;
  secret: string;
}

/** The credentials of an Authorization header, or null when there are none or they are malformed. */
export function basicCredentials(header: string | undefined): BasicCredentials | null {
  const m = /^Basic\s+(\S+)$/i.exec(header ?? '');
  if (m?.[1] === undefined) return null;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? null : { appKey: decoded.slice(0, colon), secret: decoded.slice(colon + 1) };
}
