/**
 * A throwaway PKI for TLS tests: a CA, a server certificate it signed for 127.0.0.1 and
 * localhost, and a client certificate it signed, as PEM text and as files in `dir`. Keys come
 * from Node's native RSA generator (fast); node-forge builds and signs the certificates.
 */
import { generateKeyPair, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import forge from 'node-forge';

export interface PemPair {
  certPem: string;
  keyPem: string;
  certFile: string;
  keyFile: string;
}

export interface TestPki {
  ca: PemPair;
  /** For 127.0.0.1, ::1 and localhost. */
  server: PemPair;
  /** CN `client`, for clientAuth. */
  client: PemPair;
}

function rsaKey(): Promise<{ publicKeyPem: string; privateKeyPem: string }> {
  return new Promise((resolve, reject) => {
    generateKeyPair('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } }, (err, publicKeyPem, privateKeyPem) =>
      err ? reject(err) : resolve({ publicKeyPem, privateKeyPem }),
    );
  });
}

function serial(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) || 1;
  return b.toString('hex');
}

async function issue(
  cn: string,
  extensions: object[],
  issuer: { cert: forge.pki.Certificate; keyPem: string } | null,
): Promise<{ cert: forge.pki.Certificate; certPem: string; keyPem: string }> {
  const { publicKeyPem, privateKeyPem } = await rsaKey();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKeyPem);
  cert.serialNumber = serial();
  cert.validity.notBefore = new Date(Date.now() - 60 * 60 * 1000);
  cert.validity.notAfter = new Date(Date.now() + 24 * 60 * 60 * 1000);
  const subject = [{ name: 'commonName', value: cn }];
  cert.setSubject(subject);
  cert.setIssuer(issuer === null ? subject : issuer.cert.subject.attributes);
  cert.setExtensions([...extensions, { name: 'subjectKeyIdentifier' }]);
  cert.sign(forge.pki.privateKeyFromPem(issuer === null ? privateKeyPem : issuer.keyPem), forge.md.sha256.create());
  return { cert, certPem: forge.pki.certificateToPem(cert), keyPem: privateKeyPem };
}

async function save(dir: string, name: string, m: { certPem: string; keyPem: string }): Promise<PemPair> {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  await writeFile(certFile, m.certPem);
  await writeFile(keyFile, m.keyPem, { mode: 0o600 });
  return { certPem: m.certPem, keyPem: m.keyPem, certFile, keyFile };
}

/** Makes the CA, server and client material and writes it into `dir`. */
export async function makeTestPki(dir: string): Promise<TestPki> {
  const ca = await issue('edgesync test CA', [{ name: 'basicConstraints', cA: true, critical: true }, { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true }], null);
  const [server, client] = await Promise.all([
    issue(
      '127.0.0.1',
      [
        { name: 'basicConstraints', cA: false },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
        { name: 'extKeyUsage', serverAuth: true },
        { name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }, { type: 7, ip: '::1' }, { type: 2, value: 'localhost' }] },
      ],
      ca,
    ),
    issue('client', [{ name: 'basicConstraints', cA: false }, { name: 'keyUsage', digitalSignature: true, keyEncipherment: true }, { name: 'extKeyUsage', clientAuth: true }], ca),
  ]);
  return { ca: await save(dir, 'ca', ca), server: await save(dir, 'server', server), client: await save(dir, 'client', client) };
}
