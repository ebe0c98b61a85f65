/**
 * A test double of the external identity service (config/external-identity.md): a real HTTP
 * server on loopback that answers `POST /check {"appKey","secret"}` from a table of accounts,
 * counts the requests it gets, and can be told to fail, stall or answer garbage.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Account {
  secret: string;
  type: string;
  orgID: string;
  username: string;
}

export type Mode = 'normal' | 'error500' | 'stall' | 'garbage' | 'bad-identity';

export interface IdentityServiceDouble {
  url: string;
  accounts: Map<string, Account>;
  /** Requests received, in order (the secrets too: the double is the service, it may see them). */
  requests: { appKey: string; secret: string }[];
  mode: Mode;
  /** Delay before each answer, ms. */
  delayMs: number;
  close(): Promise<void>;
}

export async function startIdentityServiceDouble(accounts: Record<string, Account> = {}): Promise<IdentityServiceDouble> {
  const double: IdentityServiceDouble = {
    url: '',
    accounts: new Map(Object.entries(accounts)),
    requests: [],
    mode: 'normal',
    delayMs: 0,
    close: () => Promise.resolve(),
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const answer = (): void => {
        if (double.mode === 'stall') return;
        if (req.method !== 'POST' || req.url !== '/check') {
          res.writeHead(405).end();
          return;
        }
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { appKey: string; secret: string };
        double.requests.push(body);
        if (double.mode === 'error500') return void res.writeHead(500).end('boom');
        if (double.mode === 'garbage') return void res.writeHead(200, { 'Content-Type': 'application/json' }).end('{not json');
        if (double.mode === 'bad-identity') return void res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"type":"edgenode","orgID":"o","username":"no-slash"}');
        const acct = double.accounts.get(body.appKey);
        if (acct === undefined) return void res.writeHead(404).end();
        if (acct.secret !== body.secret) return void res.writeHead(401).end();
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ type: acct.type, orgID: acct.orgID, username: acct.username }));
      };
      if (double.delayMs > 0) setTimeout(answer, double.delayMs);
      else answer();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  double.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/check`;
  double.close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return double;
}
