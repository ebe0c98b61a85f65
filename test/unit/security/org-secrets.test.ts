/**
 * Per-org broker passwords sealed at rest (AES-256-GCM under a key file of the data directory),
 * where the reference stores them in plaintext.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import {
  OrgSecrets,
  OrgSecretsKeyError,
  SEALED_PREFIX,
  SealedValueError,
  brokerSettingsOf,
  prepareOrgSecrets,
  sealBrokerPassword,
} from '../../../lib/security/index.js';
import { SqliteStore, type Organization } from '../../../lib/store/index.js';
import type { Logger } from '../../../lib/log/logger.js';

let dir: string;
let n = 0;
/** A fresh key file path in its own not-yet-existing directory. */
const keyPath = (): string => join(dir, `node${++n}`, 'sync', 'keys', 'org-secrets.key');

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'edgesync-org-secrets-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Flips one bit of the decoded body of a sealed value at `index` (negative: from the end). */
function flipBit(sealed: string, index: number): string {
  const raw = Buffer.from(sealed.slice(SEALED_PREFIX.length), 'base64');
  const i = index < 0 ? raw.length + index : index;
  raw[i] = (raw[i] ?? 0) ^ 0x01;
  return SEALED_PREFIX + raw.toString('base64');
}

describe('sealing and opening', () => {
  const secrets = OrgSecrets.fromKey(randomBytes(32));

  it('round-trips any text, and the sealed form names its format and hides the text', () => {
    for (const plain of ['p', 'correct horse battery staple', 'pässwörd ✓ 密码', 'x'.repeat(4096), SEALED_PREFIX]) {
      const sealed = secrets.seal(plain);
      expect(sealed.startsWith(SEALED_PREFIX)).toBe(true);
      // (A one-letter text may turn up in base64 by chance.)
      if (plain.length > 8) expect(sealed).not.toContain(plain);
      expect(secrets.open(sealed)).toBe(plain);
    }
  });

  it('is the base64 of a 12-byte nonce, the ciphertext and a 16-byte tag', () => {
    const sealed = secrets.seal('hunter2');
    const raw = Buffer.from(sealed.slice(SEALED_PREFIX.length), 'base64');
    expect(raw).toHaveLength(12 + Buffer.byteLength('hunter2') + 16);
  });

  it('uses a fresh nonce for every seal, so the same password never seals the same way twice', () => {
    const a = secrets.seal('same password');
    const b = secrets.seal('same password');
    expect(a).not.toBe(b);
    const nonce = (s: string): string => Buffer.from(s.slice(SEALED_PREFIX.length), 'base64').subarray(0, 12).toString('hex');
    expect(nonce(a)).not.toBe(nonce(b));
    expect(secrets.open(a)).toBe(secrets.open(b));
  });

  it('keeps an empty password empty: there is nothing to seal', () => {
    expect(secrets.seal('')).toBe('');
    expect(secrets.open('')).toBe('');
  });

  it('returns a value in no sealed form as it is: a plaintext password stored by an earlier version', () => {
    for (const legacy of ['p', 'enc:', 'enc:v1', 'ENC:V1:abc', 'encrypted', 'x enc:v1:AAAA']) expect(secrets.open(legacy)).toBe(legacy);
    expect(OrgSecrets.isSealed('plain')).toBe(false);
    expect(OrgSecrets.isSealed(secrets.seal('p'))).toBe(true);
  });

  it('refuses a tampered value with a typed error, wherever the change is', () => {
    const sealed = secrets.seal('the real password');
    for (const at of [0, 11, 12, 14, -17, -1]) expect(() => secrets.open(flipBit(sealed, at))).toThrow(SealedValueError);
    // Cut short, or extended.
    const raw = Buffer.from(sealed.slice(SEALED_PREFIX.length), 'base64');
    expect(() => secrets.open(SEALED_PREFIX + raw.subarray(0, raw.length - 1).toString('base64'))).toThrow(SealedValueError);
    expect(() => secrets.open(SEALED_PREFIX + Buffer.concat([raw, Buffer.from([0])]).toString('base64'))).toThrow(SealedValueError);
  });

  it('refuses a malformed sealed value (bad base64, too short for nonce and tag)', () => {
    for (const bad of [`${SEALED_PREFIX}`, `${SEALED_PREFIX}not base64!`, `${SEALED_PREFIX}AAAA`, `${SEALED_PREFIX}${Buffer.alloc(27).toString('base64')}`]) {
      expect(() => secrets.open(bad)).toThrow(SealedValueError);
    }
  });

  it('refuses a value sealed in a later format rather than passing it on as a password', () => {
    expect(() => secrets.open('enc:v2:AAAA')).toThrow(/format v2/);
  });

  it('does not open a value sealed under another key', () => {
    const other = OrgSecrets.fromKey(randomBytes(32));
    expect(() => other.open(secrets.seal('hunter2'))).toThrow(SealedValueError);
    expect(() => other.open(secrets.seal('hunter2'))).toThrow(/another key/);
  });

  it('binds a value to its context: a password sealed for one org does not open as another org\'s', () => {
    const sealed = secrets.seal('hunter2', 'orgA');
    expect(secrets.open(sealed, 'orgA')).toBe('hunter2');
    expect(() => secrets.open(sealed, 'orgB')).toThrow(SealedValueError);
    expect(() => secrets.open(sealed)).toThrow(SealedValueError);
  });

  it('never shows its key when it is logged or dumped', () => {
    const shown = OrgSecrets.fromKey(randomBytes(32));
    expect(JSON.stringify(shown)).toBe('{}');
    expect(inspect(shown, { showHidden: true, depth: 5 })).toBe('OrgSecrets {}');
  });

  it('takes only 32-byte keys', () => {
    expect(() => OrgSecrets.fromKey(randomBytes(16))).toThrow(RangeError);
  });
});

describe('the key file', () => {
  it('is made on first use: 32 random bytes, mode 0600, in a directory made 0700', async () => {
    const path = keyPath();
    const first = await OrgSecrets.fromKeyFile(path);
    expect(first.created).toBe(true);
    const st = await stat(path);
    expect(st.mode & 0o777).toBe(0o600);
    expect(st.size).toBe(32);
    expect((await stat(join(path, '..'))).mode & 0o777).toBe(0o700);

    // The next start reads the same key: what was sealed still opens.
    const sealed = first.secrets.seal('hunter2');
    const again = await OrgSecrets.fromKeyFile(path);
    expect(again.created).toBe(false);
    expect(again.secrets.open(sealed)).toBe('hunter2');
  });

  it('gives each data directory its own key', async () => {
    const a = await OrgSecrets.fromKeyFile(keyPath());
    const b = await OrgSecrets.fromKeyFile(keyPath());
    expect(() => b.secrets.open(a.secrets.seal('hunter2'))).toThrow(SealedValueError);
  });

  it('is made once when several callers race for it', async () => {
    const path = keyPath();
    const all = await Promise.all([1, 2, 3, 4].map(() => OrgSecrets.fromKeyFile(path)));
    const sealed = all[0]!.secrets.seal('p');
    for (const r of all) expect(r.secrets.open(sealed)).toBe('p');
    expect(all.filter((r) => r.created)).toHaveLength(1);
  });

  it.each(['640', '644', '604', '660', '620', '770'])('is refused with mode 0%s, saying how to fix it', async (octal) => {
    const mode = parseInt(octal, 8);
    const path = keyPath();
    await OrgSecrets.fromKeyFile(path);
    await chmod(path, mode);
    const refusal = OrgSecrets.fromKeyFile(path);
    await expect(refusal).rejects.toThrow(OrgSecretsKeyError);
    await expect(OrgSecrets.fromKeyFile(path)).rejects.toThrow(`has mode 0${mode.toString(8)}, which lets other users read or change it; run chmod 600 ${path}`);
  });

  it('is accepted read-only for its owner (0400)', async () => {
    const path = keyPath();
    const { secrets } = await OrgSecrets.fromKeyFile(path);
    await chmod(path, 0o400);
    expect((await OrgSecrets.fromKeyFile(path)).secrets.open(secrets.seal('p'))).toBe('p');
  });

  it('is refused when its size is not 32 bytes, and is left as it is', async () => {
    for (const size of [0, 31, 33, 64]) {
      const path = keyPath();
      await mkdir(join(path, '..'), { recursive: true });
      await writeFile(path, randomBytes(size), { mode: 0o600 });
      await expect(OrgSecrets.fromKeyFile(path)).rejects.toThrow(`is ${size} bytes long, not 32`);
      expect((await readFile(path)).length).toBe(size);
    }
  });

  it('is refused when it is not a regular file', async () => {
    const path = keyPath();
    await mkdir(path, { recursive: true, mode: 0o700 });
    await expect(OrgSecrets.fromKeyFile(path)).rejects.toThrow(OrgSecretsKeyError);
  });

  it('may be a symbolic link to a protected key (a mounted secret); the target is checked', async () => {
    const target = keyPath();
    const { secrets } = await OrgSecrets.fromKeyFile(target);
    const path = keyPath();
    await mkdir(join(path, '..'), { recursive: true });
    await symlink(target, path);
    expect((await OrgSecrets.fromKeyFile(path)).secrets.open(secrets.seal('p'))).toBe('p');
    await chmod(target, 0o644);
    await expect(OrgSecrets.fromKeyFile(path)).rejects.toThrow(/mode 0644/);
  });
});

describe('broker settings of an org', () => {
  const secrets = OrgSecrets.fromKey(randomBytes(32));
  const org = (password: string): Organization => ({ orgID: 'orgA', address: 'tcp://broker-a:1883', user: 'ua', password, lastUpdate: 1 });

  it('come back in the clear from the stored org', () => {
    const settings = brokerSettingsOf(org(sealBrokerPassword('orgA', 'hunter2', secrets)), secrets);
    expect([settings.address, settings.user, settings.password]).toEqual(['tcp://broker-a:1883', 'ua', 'hunter2']);
  });

  it('leave the password out of a log line, a JSON dump or a copy', () => {
    const settings = brokerSettingsOf(org(sealBrokerPassword('orgA', 'hunter2', secrets)), secrets);
    expect(JSON.stringify(settings)).toBe('{"address":"tcp://broker-a:1883","user":"ua"}');
    expect({ ...settings }).toEqual({ address: 'tcp://broker-a:1883', user: 'ua' });
    expect(inspect(settings, { showHidden: true })).not.toContain('hunter2');
  });

  it('take a plaintext password of an earlier version as it is, and an empty one as empty', () => {
    expect(brokerSettingsOf(org('legacy'), secrets).password).toBe('legacy');
    expect(brokerSettingsOf(org(''), secrets).password).toBe('');
  });

  it('name the org when its password does not open', () => {
    expect(() => brokerSettingsOf(org(sealBrokerPassword('orgB', 'hunter2', secrets)), secrets)).toThrow(/^broker password of organization orgA: /);
    expect(() => brokerSettingsOf(org(sealBrokerPassword('orgA', 'hunter2', OrgSecrets.fromKey(randomBytes(32)))), secrets)).toThrow(SealedValueError);
  });
});

/** Records what is logged, to check what an operator is told. */
function recordingLogger(): Logger & { lines: { level: string; obj: object | string; msg?: string }[] } {
  const lines: { level: string; obj: object | string; msg?: string }[] = [];
  const at =
    (level: string) =>
    (obj: object | string, msg?: string): void => {
      lines.push({ level, obj, ...(msg !== undefined ? { msg } : {}) });
    };
  const log = { lines, trace: at('trace'), debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), fatal: at('fatal'), child: () => log, flush: () => undefined };
  return log;
}

describe('preparing a CSS database on start', () => {
  it('makes the key, seals plaintext passwords of an earlier version, and leaves empty ones empty', async () => {
    const root = join(dir, `db${++n}`);
    await mkdir(root);
    const store = new SqliteStore({ path: join(root, 'edgesync.db') });
    await store.init();
    try {
      await store.putOrganization({ orgID: 'old', address: 'a:1883', user: 'u', password: 'plain-old', lastUpdate: 5 });
      await store.putOrganization({ orgID: 'none', address: 'b:1883', user: '', password: '', lastUpdate: 6 });
      const log = recordingLogger();
      const keyFile = join(root, 'keys', 'org-secrets.key');
      const secrets = await prepareOrgSecrets({ keyFile, store, log });

      const old = await store.getOrganization('old');
      expect(old?.password.startsWith(SEALED_PREFIX)).toBe(true);
      expect(old).toMatchObject({ address: 'a:1883', user: 'u', lastUpdate: 5 });
      expect(brokerSettingsOf(old!, secrets).password).toBe('plain-old');
      expect((await store.getOrganization('none'))?.password).toBe('');
      expect(log.lines.filter((l) => l.level === 'info').map((l) => l.msg)).toEqual([
        'created the key that seals per-org broker passwords; back it up with the database',
        'sealed broker passwords stored in plaintext by an earlier version',
      ]);

      // The next start finds nothing to do, and says nothing.
      const quiet = recordingLogger();
      await prepareOrgSecrets({ keyFile, store, log: quiet });
      expect(quiet.lines).toEqual([]);
      expect((await store.getOrganization('old'))?.password).toBe(old?.password);
    } finally {
      await store.close();
    }
  });

  it('reports, as an error an operator must act on, passwords sealed under a key that is gone', async () => {
    const root = join(dir, `db${++n}`);
    await mkdir(root);
    const store = new SqliteStore({ path: join(root, 'edgesync.db') });
    await store.init();
    try {
      const keyFile = join(root, 'keys', 'org-secrets.key');
      const before = await prepareOrgSecrets({ keyFile, store, log: recordingLogger() });
      await store.putOrganization({ orgID: 'orgA', address: '', user: 'u', password: sealBrokerPassword('orgA', 'p', before), lastUpdate: 1 });
      await rm(keyFile);

      const log = recordingLogger();
      await prepareOrgSecrets({ keyFile, store, log });
      const errors = log.lines.filter((l) => l.level === 'error');
      expect(errors).toHaveLength(1);
      expect(errors[0]?.obj).toMatchObject({ organizations: ['orgA'], keyFile });
      expect(errors[0]?.msg).toMatch(/restore the key file backed up with the database/);
    } finally {
      await store.close();
    }
  });
});
