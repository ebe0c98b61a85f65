/**
 * The optional second listener (METRICS_PORT): `GET /metrics` and nothing else, without
 * authentication, for a scraper that sends no credentials. It binds METRICS_LISTENING_ADDRESS,
 * loopback by default: whoever reaches it reads the metrics, org names included.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log/logger.js';

export interface MetricsListener {
  /** Where it listens, e.g. `http://127.0.0.1:9464/metrics`. */
  url: string;
  close(): Promise<void>;
}

export async function startMetricsListener(address: string, port: number, metrics: { scrape(): Promise<{ contentType: string; text: string }> }, log: Logger): Promise<MetricsListener> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(path === '/metrics' ? 405 : 404, { 'Content-Type': 'text/plain; charset=utf-8' }).end(path === '/metrics' ? 'Method not allowed\n' : '404 page not found\n');
      return;
    }
    metrics.scrape().then(
      ({ contentType, text }) => res.writeHead(200, { 'Content-Type': contentType, 'Cache-Control': 'no-store' }).end(req.method === 'HEAD' ? undefined : text),
      (err: unknown) => {
        log.warn({ err }, 'could not collect the metrics');
        res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' }).end('Could not collect the metrics\n');
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  const host = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
  return {
    url: `http://${host}:${bound.port}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
