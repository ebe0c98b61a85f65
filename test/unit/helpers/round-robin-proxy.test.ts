/**
 * The test load balancer the scale-out tests put in front of several CSS processes
 * (test/helpers/round-robin-proxy.ts): round-robin per request, streaming, failover on a refused
 * connection, X-Forwarded-For.
 */
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { freePort } from '../../helpers/mosquitto.js';
import { startRoundRobinProxy, type RoundRobinProxy } from '../../helpers/round-robin-proxy.js';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

interface Backend {
  port: number;
  server: http.Server;
  /** Requests seen: method, url and X-Forwarded-For. */
  seen: { url: string; forwardedFor: string | undefined }[];
  handler: Handler;
}

const backends: Backend[] = [];
const proxies: RoundRobinProxy[] = [];

async function backend(name: string): Promise<Backend> {
  const b: Backend = {
    port: 0,
    server: http.createServer((req, res) => {
      b.seen.push({ url: req.url ?? '', forwardedFor: req.headers['x-forwarded-for'] as string | undefined });
      b.handler(req, res);
    }),
    seen: [],
    handler: (req, res) => {
      req.resume();
      req.on('end', () => res.end(name));
    },
  };
  b.server.listen(0, '127.0.0.1');
  await once(b.server, 'listening');
  b.port = (b.server.address() as AddressInfo).port;
  backends.push(b);
  return b;
}

async function proxyOver(...ports: number[]): Promise<RoundRobinProxy> {
  const p = await startRoundRobinProxy(ports.map((port) => ({ host: '127.0.0.1', port })));
  proxies.push(p);
  return p;
}

/** A request through one keep-alive agent; resolves to the status and the body. */
function get(agent: http.Agent, url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent, headers }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

afterEach(async () => {
  for (const p of proxies.splice(0)) await p.stop();
  for (const b of backends.splice(0)) {
    b.server.closeAllConnections();
    await new Promise((r) => b.server.close(r));
  }
});

describe('the round-robin test proxy', () => {
  it('sends consecutive requests of one keep-alive connection to the upstreams in turn', async () => {
    const [a, b] = [await backend('a'), await backend('b')];
    const proxy = await proxyOver(a.port, b.port);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const bodies: string[] = [];
    for (let i = 0; i < 6; i++) bodies.push((await get(agent, `${proxy.url}/x?i=${i}`)).body);
    agent.destroy();
    expect(bodies).toEqual(['a', 'b', 'a', 'b', 'a', 'b']);
    expect(proxy.served).toEqual([3, 3]);
    expect(proxy.routed.map((r) => r.upstream)).toEqual([0, 1, 0, 1, 0, 1]);
  });

  it('streams a request body to the upstream before the client has sent all of it, and an answer back before the upstream has ended it', async () => {
    const up = await backend('up');
    const firstChunkArrived = new Promise<void>((resolve) => {
      up.handler = (req, res) => {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        req.once('data', () => {
          resolve();
          // Half the answer now; the rest only when the request body has ended.
          res.write('first-');
        });
        req.on('end', () => res.end('last'));
        req.resume();
      };
    });
    const proxy = await proxyOver(up.port);
    const req = http.request(`${proxy.url}/upload`, { method: 'PUT', headers: { 'transfer-encoding': 'chunked' } });
    const answer = new Promise<http.IncomingMessage>((resolve) => req.on('response', resolve));
    req.write(Buffer.alloc(64 * 1024, 1));
    // The second chunk is sent only once the upstream holds the first: a proxy that waits for the
    // whole body would never pass it on, and the test would time out.
    await firstChunkArrived;
    const res = await answer;
    const [firstBytes] = (await once(res, 'data')) as [Buffer];
    expect(firstBytes.toString()).toBe('first-');
    req.end(Buffer.alloc(1024, 2));
    let rest = '';
    for await (const chunk of res) rest += String(chunk);
    expect(rest).toBe('last');
  });

  it('sends a request refused by one upstream to the next, and skips an upstream marked down', async () => {
    const live = await backend('live');
    const dead = await freePort();
    const proxy = await proxyOver(dead, live.port);
    const agent = new http.Agent({ keepAlive: true });
    expect((await get(agent, `${proxy.url}/a`)).body).toBe('live');
    expect(proxy.routed[0]).toMatchObject({ upstream: 1, refusedBy: [0] });

    const put = await new Promise<string>((resolve, reject) => {
      const req = http.request(`${proxy.url}/b`, { method: 'PUT', agent }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve(body));
      });
      req.on('error', reject);
      req.end('a body that must reach the live upstream whole');
    });
    expect(put).toBe('live');

    proxy.setDown(0, true);
    expect((await get(agent, `${proxy.url}/c`)).body).toBe('live');
    expect(proxy.routed[2]).toMatchObject({ upstream: 1, refusedBy: [] });
    proxy.setDown(1, true);
    expect((await get(agent, `${proxy.url}/d`)).status).toBe(502);
    agent.destroy();
  });

  it('lets a test steer chosen requests to one upstream, the others keeping their turns', async () => {
    const [a, b] = [await backend('a'), await backend('b')];
    const proxy = await proxyOver(a.port, b.port);
    proxy.steer = (r) => (r.url.startsWith('/early/') ? 1 : undefined);
    const agent = new http.Agent({ keepAlive: true });
    const bodies: string[] = [];
    for (const path of ['/x', '/early/1', '/y', '/early/2', '/z']) bodies.push((await get(agent, `${proxy.url}${path}`)).body);
    agent.destroy();
    expect(bodies).toEqual(['a', 'b', 'b', 'b', 'a']);
  });

  it('adds the client address to X-Forwarded-For, after what the client sent', async () => {
    const up = await backend('up');
    const proxy = await proxyOver(up.port);
    const agent = new http.Agent();
    await get(agent, `${proxy.url}/one`);
    await get(agent, `${proxy.url}/two`, { 'x-forwarded-for': '203.0.113.7' });
    expect(up.seen.map((s) => s.forwardedFor)).toEqual(['127.0.0.1', '203.0.113.7, 127.0.0.1']);
  });

  it('cuts the answer when its upstream dies in the middle of it, so the client sees a broken transfer', async () => {
    const up = await backend('up');
    up.handler = (req, res) => {
      res.writeHead(200, { 'content-length': '1000' });
      res.write(Buffer.alloc(100));
      setImmediate(() => res.socket?.destroy());
    };
    const proxy = await proxyOver(up.port);
    const outcome = await new Promise<string>((resolve) => {
      http
        .get(`${proxy.url}/big`, (res) => {
          res.on('data', () => undefined);
          res.on('end', () => resolve('ended'));
          res.on('error', () => resolve('broken'));
          res.on('aborted', () => resolve('broken'));
        })
        .on('error', () => resolve('broken'));
    });
    expect(outcome).toBe('broken');
  });

  it('ends the upstream request when the client goes away (a long-poll given up)', async () => {
    const up = await backend('up');
    const upstreamClosed = new Promise<void>((resolve) => {
      up.handler = (req, res) => {
        res.on('close', () => resolve());
      };
    });
    const proxy = await proxyOver(up.port);
    const req = http.get(`${proxy.url}/spi/v1/objects?wait=60`);
    req.on('error', () => undefined);
    while (up.seen.length === 0) await new Promise((r) => setTimeout(r, 10));
    expect(proxy.inFlight()).toHaveLength(1);
    req.destroy();
    await upstreamClosed;
    while (proxy.inFlight().length > 0) await new Promise((r) => setTimeout(r, 10));
  });
});
