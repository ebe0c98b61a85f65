import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, connect, type TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureSelfSignedCertificate, loadCertificateMaterial, type SelfSignedCertificate } from '../../../lib/security/index.js';

const DAY = 24 * 60 * 60 * 1000;
let dir: string;
let certDir: string;
/** Generated once for the whole file: key generation is the slow part. */
let first: SelfSignedCertificate;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'edgesync-tls-'));
  certDir = join(dir, 'sync', 'certs');
  first = await ensureSelfSignedCertificate({ dir: certDir, commonName: 'ess1.example' });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('ensureSelfSignedCertificate', () => {
  it('generates cert.pem and key.pem, the key readable by the owner only', async () => {
    expect(first.generated).toBe(true);
    expect(first.certPath).toBe(join(certDir, 'cert.pem'));
    expect(first.keyPath).toBe(join(certDir, 'key.pem'));
    expect(await readFile(first.certPath, 'utf8')).toBe(first.certPem);
    expect(await readFile(first.keyPath, 'utf8')).toBe(first.keyPem);
    expect((await stat(first.keyPath)).mode & 0o777).toBe(0o600);
  });

  it('makes a 500-day RSA-2048 SHA-256 server certificate for localhost, loopback and the common name', () => {
    const x = new X509Certificate(first.certPem);
    expect(x.subject).toContain('CN=ess1.example');
    expect(x.ca).toBe(false);
    expect(x.publicKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
    expect(x.checkHost('localhost')).toBe('localhost');
    expect(x.checkHost('ess1.example')).toBe('ess1.example');
    expect(x.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(x.subjectAltName).toContain('IP Address:0:0:0:0:0:0:0:1');
    expect(x.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']); // serverAuth (Node reports the extended key usage here)
    expect(x.verify(x.publicKey)).toBe(true); // self-signed
    const days = (first.notAfter.getTime() - Date.now()) / DAY;
    expect(days).toBeGreaterThan(499);
    expect(days).toBeLessThanOrEqual(500);
    const serial = BigInt(`0x${x.serialNumber}`);
    expect(serial > 0n && serial < 2n ** 127n).toBe(true); // 16 random bytes, positive
  });

  it('reuses the pair while it is valid beyond the renewal window', async () => {
    const again = await ensureSelfSignedCertificate({ dir: certDir, commonName: 'ess1.example' });
    expect(again.generated).toBe(false);
    expect(again.certPem).toBe(first.certPem);
    expect(again.keyPem).toBe(first.keyPem);
  });

  it('regenerates when the certificate expires within renewBeforeDays', async () => {
    const inside = new Date(Date.now() + 480 * DAY); // 20 days left < 30
    const renewed = await ensureSelfSignedCertificate({ dir: certDir, commonName: 'ess1.example', now: inside });
    expect(renewed.generated).toBe(true);
    expect(renewed.certPem).not.toBe(first.certPem);
    expect(renewed.keyPem).not.toBe(first.keyPem);
    expect(renewed.notAfter.getTime()).toBeGreaterThan(inside.getTime() + 499 * DAY);
    // ...and the renewed pair is then reused at that time.
    await expect(ensureSelfSignedCertificate({ dir: certDir, commonName: 'ess1.example', now: inside })).resolves.toMatchObject({ generated: false });
  });

  it('regenerates a mismatched or unreadable pair', async () => {
    const d = join(dir, 'broken');
    const made = await ensureSelfSignedCertificate({ dir: d, commonName: 'localhost' });
    await writeFile(made.keyPath, first.keyPem); // the key of another certificate
    await expect(ensureSelfSignedCertificate({ dir: d, commonName: 'localhost' })).resolves.toMatchObject({ generated: true });
    await writeFile(join(d, 'cert.pem'), 'garbage');
    await expect(ensureSelfSignedCertificate({ dir: d, commonName: 'localhost' })).resolves.toMatchObject({ generated: true });
  });

  it('serves TLS that a client trusting the certificate accepts for localhost and 127.0.0.1', async () => {
    const server = createServer({ cert: first.certPem, key: first.keyPem }, (s) => s.end('ok'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    try {
      for (const servername of ['localhost', undefined]) {
        const socket: TLSSocket = connect({ host: '127.0.0.1', port, ca: first.certPem, ...(servername ? { servername } : {}) });
        const body = await new Promise<string>((resolve, reject) => {
          let text = '';
          socket.on('data', (c: Buffer) => (text += c.toString()));
          socket.on('end', () => resolve(text));
          socket.on('error', reject);
        });
        expect(body).toBe('ok');
        expect(socket.authorized).toBe(true);
        socket.destroy();
      }
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('loadCertificateMaterial', () => {
  it('accepts PEM text', async () => {
    const m = await loadCertificateMaterial(first.certPem, first.keyPem);
    expect(m.certPem).toBe(first.certPem);
    expect(m.notAfter).toEqual(first.notAfter);
  });

  it('accepts file paths', async () => {
    // Own copies: the renewal tests above replace the files in certDir.
    const certPath = join(dir, 'server.crt');
    const keyPath = join(dir, 'server.key');
    await writeFile(certPath, first.certPem);
    await writeFile(keyPath, first.keyPem);
    const m = await loadCertificateMaterial(certPath, keyPath);
    expect(m.certPem).toBe(first.certPem);
    expect(m.keyPem).toBe(first.keyPem);
  });

  it('refuses a key that does not belong to the certificate', async () => {
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    await expect(loadCertificateMaterial(first.certPem, other)).rejects.toThrow(/does not match the server certificate \(subject CN=ess1\.example/);
  });

  it('says which file it cannot read or parse', async () => {
    const missing = join(dir, 'nope.pem');
    await expect(loadCertificateMaterial(missing, first.keyPem)).rejects.toThrow(`Cannot read the server certificate file ${missing}`);
    const junk = join(dir, 'junk.pem');
    await writeFile(junk, 'not a certificate');
    await expect(loadCertificateMaterial(junk, first.keyPem)).rejects.toThrow(/server certificate .*is not a valid PEM X\.509 certificate/);
    await expect(loadCertificateMaterial(first.certPem, junk)).rejects.toThrow(`The server key (file ${junk}) / certificate (given as PEM text) is not a valid`);
  });
});
