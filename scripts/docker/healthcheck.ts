/**
 * The image's HEALTHCHECK (`node dist/scripts/docker/healthcheck.js`): healthy when the node
 * answers GET /swagger.json (200) on one of its listeners. That route needs no credentials, so no secret has to be in the image or its
 * environment; GET /api/v1/health, which says more, needs a sync admin's.
 *
 * It asks 127.0.0.1 (the node listens on LISTENING_ADDRESS=0.0.0.0 in the image): HTTP on
 * UNSECURE_LISTENING_PORT, then HTTPS on SECURE_LISTENING_PORT. The HTTPS certificate is not
 * checked: this is the node's own loopback, and an ESS's certificate is self-signed.
 */
import { request as httpRequest, type ClientRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';

type Request = (options: RequestOptions & { rejectUnauthorized?: boolean }, answer: (res: IncomingMessage) => void) => ClientRequest;

/** Two requests at most must fit in the HEALTHCHECK's --timeout=5s. */
const TIMEOUT_MS = 2000;

function answers(request: Request, port: number, extra: { rejectUnauthorized?: boolean }): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/swagger.json', method: 'GET', timeout: TIMEOUT_MS, ...extra }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

const port = (name: string, fallback: number): number | undefined => {
  const n = Number(process.env[name] ?? fallback);
  return Number.isInteger(n) && n > 0 ? n : undefined;
};

const http = port('UNSECURE_LISTENING_PORT', 8080);
const https = port('SECURE_LISTENING_PORT', 8443);
const ok = (http !== undefined && (await answers(httpRequest, http, {}))) || (https !== undefined && (await answers(httpsRequest, https, { rejectUnauthorized: false })));
process.exit(ok ? 0 : 1);
