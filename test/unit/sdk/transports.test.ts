import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import forge from 'node-forge';
import { NetworkError, SyncServiceClient } from '../../../sdk/index.js';
import { json, metaData, RecordingServer } from './recording-server.js';

/** A self-signed certificate for 127.0.0.1 and localhost, like the one an ESS generates for itself. */
function selfSignedCertificate(): { key: string; cert: string } {
  // node:crypto makes the key fast; forge only builds the certificate.
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const key = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString());
  cert.serialNumber = '01';
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 24 * 3600_000);
  const subject = [{ name: 'commonName', value: 'localhost' }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true },
    { name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }] },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(key), forge.md.sha256.create());
  return { key, cert: forge.pki.certificateToPem(cert) };
}

describe('unix socket transport', () => {
  let dir: string;
  let server: RecordingServer;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'edgesync-sdk-'));
    server = await RecordingServer.start({ socketPath: join(dir, 'ess.sock') });
  });
  afterAll(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('talks to an ESS on a socket with the dummy host localhost:8080', async () => {
    const listed = [metaData({ objectID: 'x' })];
    server.respond = () => json(listed);
    const client = new SyncServiceClient({ socketPath: join(dir, 'ess.sock'), appKey: 'k', appSecret: 's' });
    await expect(client.listObjects('type')).resolves.toEqual(listed);
    client.close();
    expect(server.lines).toEqual(['GET /api/v1/objects/type']);
    expect(server.requests[0]?.headers.host).toBe('localhost:8080');
    expect(server.requests[0]?.headers.authorization).toBe(`Basic ${Buffer.from('k:s').toString('base64')}`);
  });
});

describe('https transport', () => {
  let server: RecordingServer;
  let cert: string;
  beforeAll(async () => {
    const tls = selfSignedCertificate();
    cert = tls.cert;
    server = await RecordingServer.start({ tls });
    server.respond = () => ({ status: 200, body: 'ready' });
  });
  afterAll(async () => {
    await server.close();
  });

  it('trusts the ESS certificate given as ca', async () => {
    const client = new SyncServiceClient({ url: server.url, ca: cert, appKey: 'k', appSecret: 's' });
    await expect(client.getObjectStatus('t', 'i')).resolves.toBe('ready');
    client.close();
  });

  it('refuses the self-signed certificate without it, keeping the TLS error as cause', async () => {
    const client = new SyncServiceClient({ url: server.url, appKey: 'k', appSecret: 's' });
    const failure = client.getObjectStatus('t', 'i');
    await expect(failure).rejects.toBeInstanceOf(NetworkError);
    await expect(failure).rejects.toMatchObject({ cause: { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' } });
    client.close();
  });
});
