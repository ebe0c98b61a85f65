import http from 'node:http';
import https from 'node:https';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from '@jest/globals';
import { ensureSelfSignedCertificate } from '../../../lib/security/index.js';
import type { BlobStore } from '../../../lib/store/types.js';
import type { Receiver } from '../../../lib/sync/receiver.js';
import type { EssAgent } from '../../../lib/sync/ess/agent.js';
import { httpEssAgent, type HttpAgentDeps } from '../../helpers/http-ess-agent.js';

const quiet = { info: (): void => undefined, warn: (): void => undefined, debug: (): void => undefined, error: (): void => undefined };
/** A receiver with nothing owed: the client only registers, pings and polls. */
const idleReceiver = { outbound: () => Promise.resolve([]), onRegisterNew: () => Promise.resolve() } as unknown as Receiver;

let server: http.Server | https.Server | null = null;
let client: EssAgent | null = null;
afterEach(async () => {
  await client?.stop();
  await new Promise((r) => server?.close(r));
  server = null;
  client = null;
});

/** A CSS that answers `answer(method path)` and records every request line. */
async function fakeCss(answer: (line: string) => number): Promise<{ url: string; lines: string[] }> {
  const lines: string[] = [];
  server = http.createServer((req, res) => {
    const line = `${req.method} ${req.url}`;
    lines.push(line);
    req.resume();
    res.statusCode = answer(line);
    res.end();
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, lines };
}

async function until(what: string, cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`not before the deadline: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function startClient(url: string, pingIntervalMs: number, log: HttpAgentDeps['log'] = quiet): EssAgent {
  client = httpEssAgent({
    baseUrl: url,
    user: 'org1/edge/n1',
    password: '',
    orgID: 'org1',
    destinationType: 'edge',
    destinationID: 'n1',
    receiver: idleReceiver,
    blobs: {} as BlobStore,
    pollingIntervalMs: 20,
    resendIntervalMs: 20,
    longPollSeconds: 0,
    pingIntervalMs,
    log,
  });
  client.start();
  return client;
}

describe('the ESS agent over HTTP: ping', () => {
  it('pings the CSS every ping interval once registered', async () => {
    const css = await fakeCss(() => 204);
    startClient(css.url, 30);
    await until('two pings', () => css.lines.filter((l) => l.startsWith('PUT /spi/v1/ping/org1/edge/n1')).length >= 2);
    expect(css.lines[0]).toBe('PUT /spi/v1/register/org1/edge/n1?persistent-storage=true');
  });

  it('registers again, as new, when the CSS answers a ping with 404', async () => {
    let forgotten = false;
    const css = await fakeCss((line) => {
      if (line.startsWith('PUT /spi/v1/ping/')) {
        forgotten = true;
        return 404;
      }
      if (line.startsWith('PUT /spi/v1/register/')) return forgotten ? 404 : 204;
      return 204;
    });
    startClient(css.url, 30);
    await until('register-new', () => css.lines.some((l) => l.startsWith('PUT /spi/v1/register-new/org1/edge/n1')));
    const firstPing = css.lines.findIndex((l) => l.startsWith('PUT /spi/v1/ping/'));
    expect(css.lines.slice(firstPing, firstPing + 3)).toEqual([
      'PUT /spi/v1/ping/org1/edge/n1',
      'PUT /spi/v1/register/org1/edge/n1?persistent-storage=true',
      'PUT /spi/v1/register-new/org1/edge/n1?persistent-storage=true',
    ]);
  });
});

describe('the ESS agent over HTTP: resend', () => {
  it('asks the CSS for everything again, and asks again until the CSS acks it', async () => {
    let refusals = 1;
    const css = await fakeCss((line) => {
      if (line === 'PUT /spi/v1/objects/org1/resend' && refusals > 0) {
        refusals--;
        return 503;
      }
      return 204;
    });
    const c = startClient(css.url, 3_600_000);
    await until('registered', () => css.lines.length > 0);
    c.requestResend();
    await until('two resend requests', () => css.lines.filter((l) => l === 'PUT /spi/v1/objects/org1/resend').length === 2);
    // Acked: no third one.
    await new Promise((r) => setTimeout(r, 200));
    expect(css.lines.filter((l) => l === 'PUT /spi/v1/objects/org1/resend')).toHaveLength(2);
  });
});

describe('the ESS agent over HTTP: credentials and certificates', () => {
  it('reports refused credentials as an error to act on, not as an unreachable CSS, and registers once they are accepted', async () => {
    let refuse = true;
    const css = await fakeCss((line) => (line.startsWith('PUT /spi/v1/register/') && refuse ? 403 : 204));
    const logged: { level: string; msg: string }[] = [];
    const record = (level: string) => (_o: object, msg: string): void => void logged.push({ level, msg });
    startClient(css.url, 3_600_000, { info: record('info'), warn: record('warn'), debug: record('debug'), error: record('error') });
    await until('two refused registrations', () => css.lines.filter((l) => l.startsWith('PUT /spi/v1/register/')).length >= 2);
    // Said once, as an error, however many retries.
    expect(logged.filter((l) => l.level === 'error')).toEqual([{ level: 'error', msg: expect.stringContaining("the CSS refuses this ESS's credentials") }]);
    expect(logged.filter((l) => l.msg.includes('cannot reach the CSS'))).toEqual([]);
    refuse = false;
    await until('registered', () => logged.some((l) => l.msg === 'registered with the CSS'));
  });

  it('reports a CSS certificate it cannot verify as an error naming HTTP_CSS_CA_CERTIFICATE', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'edgesync-untrusted-'));
    try {
      const cert = await ensureSelfSignedCertificate({ dir, commonName: '127.0.0.1' });
      server = https.createServer({ cert: cert.certPem, key: cert.keyPem }, (_req, res) => res.writeHead(204).end());
      await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
      const logged: { level: string; msg: string }[] = [];
      const record = (level: string) => (_o: object, msg: string): void => void logged.push({ level, msg });
      // No CA given: the self-signed certificate cannot be verified.
      startClient(`https://127.0.0.1:${(server.address() as AddressInfo).port}`, 3_600_000, { info: record('info'), warn: record('warn'), debug: record('debug'), error: record('error') });
      await until('the error line', () => logged.some((l) => l.level === 'error'));
      expect(logged.filter((l) => l.level === 'error' || l.level === 'warn')).toEqual([{ level: 'error', msg: expect.stringContaining("the CSS's certificate is not trusted: set HTTP_CSS_CA_CERTIFICATE") }]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
