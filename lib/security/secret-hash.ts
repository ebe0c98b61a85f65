/**
 * Hashing of app secrets for the users file. The reference keeps secrets in plaintext
 * (`preset-auth.json`); we store `scrypt$N$r$p$<salt>$<hash>` so that a leaked file does not
 * leak credentials (DESIGN.md, "Secrets are stored hashed").
 */
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/** CPU/memory cost. 2^14 with r=8 costs ~16 MiB and tens of ms: slow for guessing, fine per login. */
const COST_N = 16384;
const BLOCK_R = 8;
const PARALLEL_P = 1;
const SALT_BYTES = 16;
const KEY_BYTES = 32;

/*
 * Bounds for parameters read back from a file. A hand-edited (or hostile) file must not make
 * one verification allocate gigabytes or spin for minutes.
 */
const MAX_N = 1 << 20;
const MAX_R = 32;
const MAX_P = 16;

const B64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * The scrypt calls in progress, one after the other: each holds 128·N·r bytes (16 MiB with our
 * parameters) outside the JS heap, and a burst of first logins (ten ESSs registering at once)
 * would otherwise add those up in the process's peak memory. Verifications are cached by the
 * authenticator, so the queue only forms on such bursts.
 */
let scryptQueue: Promise<unknown> = Promise.resolve();

function scryptAsync(secret: string, salt: Buffer, keyLen: number, options: ScryptOptions): Promise<Buffer> {
  const run = scryptQueue.then(
    () =>
      new Promise<Buffer>((resolve, reject) => {
        scrypt(secret, salt, keyLen, options, (err, key) => (err ? reject(err) : resolve(key)));
      }),
  );
  scryptQueue = run.catch(() => undefined);
  return run;
}

/** scrypt needs 128·N·r bytes for its working set; leave headroom above Node's 32 MiB default. */
function maxmemFor(n: number, r: number, p: number): number {
  return 128 * n * r + 128 * r * p + 1024 * 1024;
}

/** Strict base64: decoding must round-trip, so truncated or padded-wrong values are refused. */
function decodeB64(text: string): Buffer | null {
  if (!B64.test(text)) return null;
  const buf = Buffer.from(text, 'base64');
  return buf.toString('base64') === text ? buf : null;
}

function parseParam(text: string, max: number): number | null {
  if (!/^[1-9]\d{0,9}$/.test(text)) return null;
  const v = Number(text);
  return v <= max ? v : null;
}

/**
 * Hashes a secret with a fresh random salt.
 * @returns `scrypt$16384$8$1$<salt base64>$<hash base64>`
 */
export async function hashSecret(secret: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await scryptAsync(secret, salt, KEY_BYTES, {
    N: COST_N,
    r: BLOCK_R,
    p: PARALLEL_P,
    maxmem: maxmemFor(COST_N, BLOCK_R, PARALLEL_P),
  });
  return ['scrypt', COST_N, BLOCK_R, PARALLEL_P, salt.toString('base64'), key.toString('base64')].join('$');
}

/**
 * Checks a secret against an encoding made by {@link hashSecret} (any N, r, p within sane
 * bounds). Malformed encodings give false rather than an error: to a caller they are simply
 * credentials that do not match.
 */
export async function verifySecret(secret: string, encoded: string): Promise<boolean> {
  const parts = encoded.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [, nText, rText, pText, saltText, hashText] = parts as [string, string, string, string, string, string];
  const n = parseParam(nText, MAX_N);
  const r = parseParam(rText, MAX_R);
  const p = parseParam(pText, MAX_P);
  if (n === null || r === null || p === null || n < 2 || (n & (n - 1)) !== 0) return false;
  const salt = decodeB64(saltText);
  const expected = decodeB64(hashText);
  if (salt === null || expected === null || salt.length === 0 || expected.length < 16) return false;
  try {
    const actual = await scryptAsync(secret, salt, expected.length, { N: n, r, p, maxmem: maxmemFor(n, r, p) });
    return timingSafeEqual(actual, expected);
  } catch {
    return false;
  }
}

/** A new random secret: 24 bytes, base64url (32 characters, safe in Basic auth and shells). */
export function generateSecret(): string {
  return randomBytes(24).toString('base64url');
}
