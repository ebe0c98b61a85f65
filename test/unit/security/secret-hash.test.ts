import { describe, expect, it } from '@jest/globals';
import { generateSecret, hashSecret, verifySecret } from '../../../lib/security/index.js';

describe('secret hashing', () => {
  it('encodes scrypt parameters, salt and hash, and never the secret', async () => {
    const encoded = await hashSecret('s3cret');
    expect(encoded).toMatch(/^scrypt\$16384\$8\$1\$[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=$/);
    expect(encoded).not.toContain('s3cret');
  });

  it('verifies the right secret and refuses a wrong one', async () => {
    const encoded = await hashSecret('correct horse');
    await expect(verifySecret('correct horse', encoded)).resolves.toBe(true);
    await expect(verifySecret('correct horsE', encoded)).resolves.toBe(false);
    await expect(verifySecret('', encoded)).resolves.toBe(false);
  });

  it('salts every hash, so equal secrets give different encodings', async () => {
    const [a, b] = await Promise.all([hashSecret('same'), hashSecret('same')]);
    expect(a).not.toBe(b);
  });

  it('treats malformed encodings as a mismatch rather than an error', async () => {
    const good = await hashSecret('x');
    const [, n, r, p, salt, hash] = good.split('$');
    const bad = [
      '',
      'x',
      'plaintext-secret',
      `bcrypt$${n}$${r}$${p}$${salt}$${hash}`,
      `scrypt$${n}$${r}$${p}$${salt}`,
      `scrypt$1000$${r}$${p}$${salt}$${hash}`, // N not a power of two
      `scrypt$${2 ** 24}$${r}$${p}$${salt}$${hash}`, // N beyond the bound: would allocate gigabytes
      `scrypt$${n}$0$${p}$${salt}$${hash}`,
      `scrypt$${n}$${r}$${p}$not base64!$${hash}`,
      `scrypt$${n}$${r}$${p}$${salt}$AAAA`, // hash too short to mean anything
      `${good}$extra`,
    ];
    for (const encoded of bad) await expect(verifySecret('x', encoded)).resolves.toBe(false);
  });

  it('generates 24 random bytes as base64url', () => {
    const a = generateSecret();
    expect(a).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(Buffer.from(a, 'base64url')).toHaveLength(24);
    expect(generateSecret()).not.toBe(a);
  });
});
