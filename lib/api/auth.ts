/**
 * HTTP Basic authentication of API requests, through the node's login gate (passport, with the
 * failed-login throttle in front), mapped to the reference's answers: any failure is
 * `403 Unauthorized`, never a 401 challenge; a throttled login is 429 with `Retry-After`; an
 * identity service that is down, 503 with the reason. [ref rest-api §4.1, §3.8]
 */
import type { Request } from 'express';
import { basicCredentials } from '../security/basic-credentials.js';
import type { Authenticator, Identity } from '../security/identity.js';
import { LoginGate } from '../security/login-gate.js';

export type Authenticate = (req: Request) => Promise<Identity | null>;

/**
 * The empty app key never matches; the secret is the handler's to judge: `dummy` takes any, the
 * empty one included, as the reference's clients send it. [ref rest-api §4.1] A request without
 * credentials is no login: it is neither counted nor logged.
 * @param log told of every refused login (the app key and the caller's address, never the
 *   secret); a throttled one is the gate's to log, once per episode
 * @throws TooManyRequestsError, DependencyUnavailableError (see LoginGate.login)
 */
export function createBasicAuth(authenticator: Authenticator, log?: { info(obj: object, msg: string): void }): Authenticate {
  const gate = LoginGate.of(authenticator);
  return async (req) => {
    const authorization = req.header('authorization');
    // Behind a trusted load balancer, the client it names: else every client shares its counter.
    const source = gate.clientAddress(req.socket.remoteAddress, req.header('x-forwarded-for'));
    const identity = await gate.login({ authorization, source, transport: 'REST' });
    if (identity === null && authorization !== undefined) {
      const appKey = basicCredentials(authorization)?.appKey;
      if (appKey !== undefined) log?.info({ appKey, source, path: req.path }, 'login refused');
    }
    return identity;
  };
}
