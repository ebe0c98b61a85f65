/**
 * TLS material: the ESS's self-signed certificate, made on first start and renewed before it
 * expires, and loading of an operator-supplied certificate and key given as PEM text or as file
 * paths (the reference's SERVER_CERTIFICATE / SERVER_KEY).
 */
import { createPrivateKey, generateKeyPair, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { writeFileAtomic } from './users-file.js';

const DAY_MS = 24 * 60 * 60 * 1000;
/** Backdating absorbs small clock differences between the ESS and its clients. */
const BACKDATE_MS = 5 * 60 * 1000;
/** Also in the reference's certificate, so clients that check for it keep working. */
const REFERENCE_DNS_NAME = 'edge-sync-service';

/** A certificate chain and its private key, both PEM. */
export interface CertificateMaterial {
  certPem: string;
  keyPem: string;
  /** End of validity of the (first) certificate. */
  notAfter: Date;
}

export interface SelfSignedCertificate extends CertificateMaterial {
  certPath: string;
  keyPath: string;
  /** True when this call made a new key and certificate. */
  generated: boolean;
}

export interface SelfSignedOptions {
  /** Directory holding `cert.pem` and `key.pem` (the reference uses `<root>/sync/certs`). */
  dir: string;
  /** Subject CN; also added to subjectAltName (as an IP when it is one). */
  commonName: string;
  /** Validity of a new certificate; 500 days as in the reference. */
  validityDays?: number;
  /** A certificate expiring within this many days is replaced. */
  renewBeforeDays?: number;
  /** The current time; tests move it forward to exercise renewal. */
  now?: Date;
}

/** Duck-typed: errors from Node internals may come from another realm (vm contexts), defeating instanceof. */
function message(e: unknown): string {
  const m = typeof e === 'object' && e !== null ? (e as { message?: unknown }).message : undefined;
  return typeof m === 'string' ? m : String(e);
}

/**
 * Parses a certificate and key and checks that they belong together.
 * @throws Error saying which part is wrong; `source` tells where the material came from
 */
function checkPair(certPem: string, keyPem: string, source: string): { cert: X509Certificate; key: KeyObject } {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (e) {
    throw new Error(`The server certificate ${source} is not a valid PEM X.509 certificate: ${message(e)}`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (e) {
    throw new Error(`The server key ${source} is not a valid unencrypted PEM private key: ${message(e)}`);
  }
  if (!cert.checkPrivateKey(key)) {
    throw new Error(`The server key ${source} does not match the server certificate (subject ${cert.subject.replace(/\n/g, ', ')})`);
  }
  return { cert, key };
}

/** Node's X509Certificate gives dates as text such as `Nov 24 15:31:47 2026 GMT`. */
function dateOf(text: string): Date {
  return new Date(Date.parse(text));
}

async function pemOrFile(value: string, what: string): Promise<{ pem: string; source: string }> {
  if (value.includes('-----BEGIN ')) return { pem: value, source: '(given as PEM text)' };
  try {
    return { pem: await readFile(value, 'utf8'), source: `(file ${value})` };
  } catch (e) {
    throw new Error(`Cannot read the server ${what} file ${value}: ${message(e)}`);
  }
}

/**
 * Loads an operator-supplied certificate (chain) and key. Each argument is either PEM text or
 * the path of a PEM file, as the reference's SERVER_CERTIFICATE / SERVER_KEY.
 * @throws Error when a file cannot be read, a part does not parse, or the key does not match
 */
export async function loadCertificateMaterial(certOrPath: string, keyOrPath: string): Promise<CertificateMaterial> {
  const cert = await pemOrFile(certOrPath, 'certificate');
  const key = await pemOrFile(keyOrPath, 'key');
  const source = cert.source === key.source ? cert.source : `${key.source} / certificate ${cert.source}`;
  const { cert: x509 } = checkPair(cert.pem, key.pem, source);
  return { certPem: cert.pem, keyPem: key.pem, notAfter: dateOf(x509.validTo) };
}

/**
 * RSA-2048 from Node's native generator: it runs on the libuv thread pool in well under a
 * second, whereas forge's pure-JS generator takes seconds of main-thread CPU (its `workers`
 * option relies on web workers loading a script by URL, which does not work under Node).
 * forge then only builds and signs the certificate, one private-key operation.
 */
function generateRsaKey(): Promise<{ publicKeyPem: string; privateKeyPem: string }> {
  return new Promise((resolve, reject) => {
    generateKeyPair(
      'rsa',
      { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } },
      (err, publicKeyPem, privateKeyPem) => (err ? reject(err) : resolve({ publicKeyPem, privateKeyPem })),
    );
  });
}

/** 16 random bytes, positive and minimally encoded as a DER INTEGER (strict parsers, Go's included, demand it). */
function serialNumberHex(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) || 0x01;
  return bytes.toString('hex');
}

interface AltName {
  type: 2 | 7;
  value?: string;
  ip?: string;
}

function altNames(commonName: string): AltName[] {
  const names: AltName[] = [
    { type: 2, value: 'localhost' },
    { type: 2, value: REFERENCE_DNS_NAME },
    { type: 7, ip: '127.0.0.1' },
    { type: 7, ip: '::1' },
  ];
  const cn = commonName.toLowerCase();
  const known = names.some((n) => n.value === cn || n.ip === cn);
  if (!known && cn !== '') names.push(isIP(cn) === 0 ? { type: 2, value: cn } : { type: 7, ip: cn });
  return names;
}

async function generate(commonName: string, validityDays: number, now: Date): Promise<{ certPem: string; keyPem: string }> {
  const { publicKeyPem, privateKeyPem } = await generateRsaKey();
  // Loaded only when a certificate is made: forge is large and most starts reuse the cert.
  const { default: forge } = await import('node-forge');
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKeyPem);
  cert.serialNumber = serialNumberHex();
  cert.validity.notBefore = new Date(now.getTime() - BACKDATE_MS);
  cert.validity.notAfter = new Date(now.getTime() + validityDays * DAY_MS);
  const subject = [
    { name: 'commonName', value: commonName },
    { name: 'organizationalUnitName', value: 'edgesync' },
  ];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: altNames(commonName) },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(privateKeyPem), forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: privateKeyPem };
}

/** Existing material if it is usable until `renewAt`; null otherwise (missing, broken, mismatched, expiring). */
async function reusable(certPath: string, keyPath: string, now: Date, renewAt: number): Promise<CertificateMaterial | null> {
  let certPem: string;
  let keyPem: string;
  try {
    [certPem, keyPem] = await Promise.all([readFile(certPath, 'utf8'), readFile(keyPath, 'utf8')]);
  } catch {
    return null;
  }
  try {
    const { cert } = checkPair(certPem, keyPem, `(file ${keyPath})`);
    const notAfter = dateOf(cert.validTo);
    const notBefore = dateOf(cert.validFrom);
    if (notAfter.getTime() <= renewAt || notBefore.getTime() > now.getTime()) return null;
    return { certPem, keyPem, notAfter };
  } catch {
    // A crash between writing the key and the certificate leaves a mismatched pair: make a new one.
    return null;
  }
}

/**
 * Returns the self-signed certificate kept in `dir` (`cert.pem`, `key.pem` with mode 0600),
 * making a new RSA-2048 key and SHA-256 certificate when there is none, it does not parse, the
 * key does not match, or it expires within `renewBeforeDays`. The certificate is for
 * serverAuth, not a CA, and names localhost, 127.0.0.1, ::1 and `commonName`.
 */
export async function ensureSelfSignedCertificate(options: SelfSignedOptions): Promise<SelfSignedCertificate> {
  const { dir, commonName, validityDays = 500, renewBeforeDays = 30, now = new Date() } = options;
  if (!(validityDays > renewBeforeDays)) {
    throw new Error(`validityDays (${validityDays}) must be greater than renewBeforeDays (${renewBeforeDays})`);
  }
  const certPath = join(dir, 'cert.pem');
  const keyPath = join(dir, 'key.pem');
  const existing = await reusable(certPath, keyPath, now, now.getTime() + renewBeforeDays * DAY_MS);
  if (existing !== null) return { ...existing, certPath, keyPath, generated: false };

  const { certPem, keyPem } = await generate(commonName === '' ? 'localhost' : commonName, validityDays, now);
  // Key first: if we crash before the certificate is written, the pair mismatches and the next
  // start makes a new one instead of serving a certificate without its key.
  await writeFileAtomic(keyPath, keyPem, 0o600);
  await writeFileAtomic(certPath, certPem, 0o644);
  const notAfter = dateOf(new X509Certificate(certPem).validTo);
  return { certPem, keyPem, notAfter, certPath, keyPath, generated: true };
}
