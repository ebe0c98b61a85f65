/**
 * HTTP Basic authentication through passport-http, mapped to the reference's answers:
 * any failure is `403 Unauthorized`, never a 401 challenge. [ref rest-api §4.1, §3.8]
 */
import type { Request, Response } from 'express';
import { Passport } from 'passport';
import { BasicStrategy } from 'passport-http';
import type { Authenticator, Identity } from '../security/identity.js';

export type Authenticate = (req: Request, res: Response) => Promise<Identity | null>;

export function createBasicAuth(authenticator: Authenticator): Authenticate {
  const passport = new Passport();
  passport.use(
    new BasicStrategy((appKey, secret, done) => {
      authenticator.authenticate(appKey, secret).then(
        (identity) => done(null, identity ?? false),
        (err: unknown) => done(err),
      );
    }),
  );
  const middleware = (req: Request, res: Response, cb: (err: unknown, user: unknown) => void): void => {
    // A custom callback keeps passport from answering 401 itself.
    (passport.authenticate('basic', { session: false }, cb) as (req: Request, res: Response, next: (err?: unknown) => void) => void)(req, res, (err) =>
      cb(err, false),
    );
  };
  return (req, res) =>
    new Promise((resolve, reject) => {
      middleware(req, res, (err, user) => {
        if (err !== null && err !== undefined) reject(err instanceof Error ? err : new Error('authentication failed'));
        else resolve(user === false || user === undefined || user === null ? null : (user as Identity));
      });
    });
}
