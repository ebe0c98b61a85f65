/**
 * An Edge Sync Service on the real binary: HTTPS with its own self-signed certificate, unix
 * sockets, persistence across restarts, and the object rules that differ from a CSS.
 * [ref rest-api §1.1, §2.3; sync-protocol §7 ListeningType]
 */
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { connect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { BadRequestError, NetworkError, SyncServiceClient } from '../../sdk/index.js';
import { startManaged, Teardown, type RunningProcess } from '../helpers/node-process.js';

jest.setTimeout(30_000);

const ESS_ENV = { ORG_ID: 'org1', DESTINATION_TYPE: 'edge', DESTINATION_ID: 'n1', HTTP_CSS_HOST: '127.0.0.1', HTTP_CSS_PORT: '1' };

const certPath = (node: RunningProcess): string => join(node.root, 'sync', 'certs', 'cert.pem');

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** The DER of the certificate a TLS server presents, trusting `ca`. */
function servedCertificate(url: string, ca: string): Promise<Buffer> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port), ca, servername: 'localhost' }, () => {
      const der = socket.getPeerCertificate().raw;
      socket.end();
      resolve(der);
    });
    socket.once('error', reject);
  });
}

async function withClient<T>(client: SyncServiceClient, fn: (c: SyncServiceClient) => Promise<T>): Promise<T> {
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

describe('an ESS on HTTPS with a self-signed certificate', () => {
  const t = new Teardown();
  let ess: RunningProcess;
  let admin: { appKey: string; appSecret: string };
  const payload = Buffer.from(Array.from({ length: 300_000 }, (_, i) => i % 251));

  beforeAll(async () => {
    ess = await startManaged(t, { mode: 'ess', env: ESS_ENV });
    admin = { appKey: ess.admin!.appKey, appSecret: ess.admin!.secret };
  });
  afterAll(() => t.run());

  test('it listens on https and generates its certificate and key under <root>/sync/certs/ on first start', async () => {
    expect(ess.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const pem = await readFile(certPath(ess), 'utf8');
    const cert = new X509Certificate(pem);
    expect(cert.subjectAltName).toMatch(/DNS:localhost/);
    expect(cert.subjectAltName).toMatch(/IP Address:127\.0\.0\.1/);
    expect((await stat(join(ess.root, 'sync', 'certs', 'key.pem'))).mode & 0o777).toBe(0o600);
  });

  test('the SDK trusting that certificate stores an object and reads it and its data back', async () => {
    await withClient(await ess.client(), async (client) => {
      await client.updateObject({ objectType: 'model', objectID: 'm1', version: '1.0', destinationType: 'cloud-app' });
      await client.updateObjectData('model', 'm1', payload);
      expect(await client.getObject('model', 'm1')).toMatchObject({ objectType: 'model', objectID: 'm1', version: '1.0', destinationOrgID: 'org1' });
      expect((await readAll(await client.fetchObjectData('model', 'm1'))).equals(payload)).toBe(true);
    });
  });

  test('a client that does not trust the certificate cannot complete the TLS handshake', async () => {
    const client = new SyncServiceClient({ url: ess.url, ...admin });
    const failure = await withClient(client, (c) => c.getObject('model', 'm1')).then(
      () => null,
      (e: unknown) => e,
    );
    expect(failure).toBeInstanceOf(NetworkError);
    expect(((failure as NetworkError).cause as { code?: string }).code).toMatch(/SELF_SIGNED|UNABLE_TO_VERIFY/);
  });

  test('destinationsList is refused with 400', async () => {
    await withClient(await ess.client(), async (client) => {
      const failure = await client.updateObject({ objectType: 'model', objectID: 'm2', destinationsList: ['edge:n2'] }).catch((e: unknown) => e);
      expect(failure).toBeInstanceOf(BadRequestError);
      expect(await client.getObject('model', 'm2')).toBeNull();
    });
  });

  test('an expiration is refused with 400 "Object expiration is disabled on ESS"', async () => {
    await withClient(await ess.client(), async (client) => {
      const expiration = new Date(Date.now() + 3_600_000).toISOString();
      const failure = await client.updateObject({ objectType: 'model', objectID: 'm3', expiration }).catch((e: unknown) => e);
      expect(failure).toBeInstanceOf(BadRequestError);
      expect((failure as BadRequestError).body).toBe('Object expiration is disabled on ESS\n');
    });
  });

  test('after a restart on the same root it serves the same certificate and still has the object', async () => {
    const pemBefore = await readFile(certPath(ess), 'utf8');
    expect(await ess.stop()).toBe(0);

    const again = await startManaged(t, { mode: 'ess', env: ESS_ENV, root: ess.root });
    expect(again.admin).toBeNull();
    const pemAfter = await readFile(certPath(again), 'utf8');
    expect(pemAfter).toBe(pemBefore);
    expect((await servedCertificate(again.url, pemAfter)).equals(new X509Certificate(pemBefore).raw)).toBe(true);

    await withClient(await again.client(admin), async (client) => {
      expect(await client.getObject('model', 'm1')).toMatchObject({ objectID: 'm1', version: '1.0' });
      expect((await readAll(await client.fetchObjectData('model', 'm1'))).equals(payload)).toBe(true);
    });
  });
});

describe('an ESS on a unix socket', () => {
  const t = new Teardown();
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'edgesync-sock-'));
    t.add(() => rm(dir, { recursive: true, force: true }));
  });
  afterAll(() => t.run());

  test('LISTENING_TYPE=unix: the SDK works through socketPath, and the socket file has mode 0660', async () => {
    const socketPath = join(dir, 'ess.sock');
    const ess = await startManaged(t, { mode: 'ess', env: { ...ESS_ENV, LISTENING_TYPE: 'unix', LISTENING_ADDRESS: socketPath } });
    expect(ess.url).toBe(`unix:${socketPath}`);
    const info = await stat(socketPath);
    expect(info.isSocket()).toBe(true);
    expect(info.mode & 0o777).toBe(0o660);

    await withClient(await ess.client(), async (client) => {
      await client.updateObject({ objectType: 'cfg', objectID: 'c1', destinationType: 'cloud-app' }, 'over the socket');
      expect((await readAll(await client.fetchObjectData('cfg', 'c1'))).toString()).toBe('over the socket');
      expect((await client.health()).general.nodeType).toBe('ESS');
    });
  });

  test('LISTENING_TYPE=secure-unix: TLS over the socket works with the certificate as CA', async () => {
    const socketPath = join(dir, 'ess-tls.sock');
    const ess = await startManaged(t, { mode: 'ess', env: { ...ESS_ENV, LISTENING_TYPE: 'secure-unix', LISTENING_ADDRESS: socketPath } });
    expect(ess.url).toBe(`unix:${socketPath}`);
    const ca = await readFile(certPath(ess));
    const credentials = { appKey: ess.admin!.appKey, appSecret: ess.admin!.secret };

    await withClient(new SyncServiceClient({ url: 'https://localhost', socketPath, ca, ...credentials }), async (client) => {
      await client.updateObject({ objectType: 'cfg', objectID: 'c2', destinationType: 'cloud-app' }, 'over TLS on the socket');
      expect((await readAll(await client.fetchObjectData('cfg', 'c2'))).toString()).toBe('over TLS on the socket');
    });
    // Plain HTTP on the TLS socket gets no HTTP answer at all.
    const plain = await withClient(new SyncServiceClient({ socketPath, ...credentials }), (c) => c.health()).then(
      () => null,
      (e: unknown) => e,
    );
    expect(plain).toBeInstanceOf(NetworkError);
  });
});
