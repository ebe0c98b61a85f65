/**
 * HTTP Basic authentication of API requests, mapped to the reference's answers: any failure
 * is `403 Unauthorized`, never a 401 challenge. [ref rest-api §4.1, §3.8]
 */
import type { Request } from 'express';
import { basicCredentials } from '../security/basic-credentials.js';
import type { Authenticator, Identity } from '../security/identity.js';

export type Authenticate = (req: Request) => Promise<Identity | null>;

export function createBasicAuth(authenticator: Authenticator): Authenticate {
  return async (req) => {
    const creds = basicCredentials(req.header('authorization'));
    // An empty user never matches. The secret is the authenticator's to judge: `dummy` takes
    // any, the empty one included, as the reference's clients send it. [ref rest-api §4.1]
    if (creds === null || creds.appKey === '') return null;
    return authenticator.authenticate(creds.appKey, creds.secret);
  };
}
