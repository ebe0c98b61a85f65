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
    // An empty user or secret never matches: refused without a (costly) verification.
    if (creds === null || creds.appKey === '' || creds.secret === '') return null;
    return authenticator.authenticate(creds.appKey, creds.secret);
  };
}
