/**
 * HTTP Basic authentication of API requests, mapped to the reference's answers: any failure
 * is `403 Unauthorized`, never a 401 challenge. [ref rest-api §4.1, §3.8]
 */
import type { Request } from 'express';
import { basicCredentials } from '../security/basic-credentials.js';
import type { Authenticator, Identity } from '../security/identity.js';

export type Authenticate = (req: Request) => Promise<Identity | null>;

/**
 * @param log told of every refused login (the app key and the caller's address, never the
 *   secret); a request without credentials is no login and is not logged.
 */
export function createBasicAuth(authenticator: Authenticator, log?: { info(obj: object, msg: string): void }): Authenticate {
  return async (req) => {
    const creds = basicCredentials(req.header('authorization'));
    if (creds === null) return null;
    // An empty user never matches. The secret is the authenticator's to judge: `dummy` takes
    // any, the empty one included, as the reference's clients send it. [ref rest-api §4.1]
    const identity = creds.appKey === '' ? null : await authenticator.authenticate(creds.appKey, creds.secret);
    if (identity === null) log?.info({ appKey: creds.appKey, source: req.socket.remoteAddress ?? 'unix socket', path: req.path }, 'login refused');
    return identity;
  };
}
