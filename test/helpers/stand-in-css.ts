/**
 * A CSS played by a test on loopback, for an ESS's agent over HTTP. `answer` handles the requests the
 * test cares about (and returns true); any other poll is answered 204 after a short hold, as a
 * long-poll with nothing new would be, and anything else 204.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { BlobStore } from '../../lib/store/types.js';
import type { Receiver } from '../../lib/sync/receiver.js';
import type { HttpAgentDeps } from './http-ess-agent.js';

export type StandInAnswer = (req: http.IncomingMessage, body: string, res: http.ServerResponse) => boolean;

export async function startStandInCss(answer: StandInAnswer): Promise<{ server: http.Server; url: string }> {
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      if (answer(req, body, res)) return;
      if (req.url?.startsWith('/spi/v1/objects/?') === true) {
        setTimeout(() => res.writeHead(204).end(), 50);
        return;
      }
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** What an ESS agent over HTTP of edge node n1 of org1 needs against a stand-in CSS: fast retries, a 1 s long-poll. */
export function n1ClientDeps(baseUrl: string, receiver: Receiver, blobs: BlobStore, log: HttpAgentDeps['log']): HttpAgentDeps {
  return {
    baseUrl,
    user: 'org1/edge/n1',
    password: 'p',
    orgID: 'org1',
    destinationType: 'edge',
    destinationID: 'n1',
    receiver,
    blobs,
    pollingIntervalMs: 20,
    resendIntervalMs: 20,
    longPollSeconds: 1,
    log,
  };
}
