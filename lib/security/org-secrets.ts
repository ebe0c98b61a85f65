/**
 * Per-org broker passwords sealed at rest. The reference keeps the password an org admin gives
 * with `PUT /api/v1/organizations/{org}` in plaintext in its database; we store
 * `enc:v1:<base64 of nonce | ciphertext | tag>` (AES-256-GCM, a fresh 12-byte nonce per value)
 * under a key kept in a file of the CSS's data directory, so that a copy of the database alone
 * does not give away the brokers' credentials. The key file must be backed up with the database:
 * without it the sealed passwords are lost (the org admins then PUT them again).
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { link, mkdir, open, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { InternalError } from '../model/index.js';
import type { Logger } from '../log/logger.js';
import type { Organization, Store } from '../store/types.js';

/** The prefix of values sealed by this version. */
export const SEALED_PREFIX = 'enc:v1:';

/** Any sealed form, this version's or a later one's (which this version cannot open). */
const SEALED_FORM = /^enc:v(\d+):/;

const CIPHER = 'aes-256-gcm';
export const ORG_SECRETS_KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const B64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** The key file is missing its protection, has the wrong size, or cannot be read or made. */
export class OrgSecretsKeyError extends InternalError {
  /** The key file concerned. */
  readonly path: string;
  constructor(path: string, message: string) {
    super(message);
    this.path = path;
  }
}

/**
 * A sealed value does not open: it was altered, sealed under another key (a key file lost and
 * made anew, or another node's), bound to another context, or is of a later format.
 */
export class SealedValueError extends InternalError {}

/** Strict base64: decoding must give back the same text, so a truncated value is refused. */
function decodeB64(text: string): Buffer | null {
  if (!B64.test(text)) return null;
  const buf = Buffer.from(text, 'base64');
  return buf.toString('base64') === text ? buf : null;
}

function errnoOf(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Seals and opens short secrets (broker passwords) with one node's key. */
export class OrgSecrets {
  // A private field: a log line, a JSON dump or util.inspect of this object never shows the key.
  readonly #key: Buffer;

  private constructor(key: Uint8Array) {
    if (key.length !== ORG_SECRETS_KEY_BYTES) throw new RangeError(`an org secrets key is ${ORG_SECRETS_KEY_BYTES} bytes, not ${key.length}`);
    // Our own copy: the caller's buffer may be reused or zeroed behind our back.
    this.#key = Buffer.from(key);
  }

  /** Sealing with a key held in memory (tests, or a key that comes from elsewhere). */
  static fromKey(key: Uint8Array): OrgSecrets {
    return new OrgSecrets(key);
  }

  /**
   * The key of `path`, made on first use: 32 random bytes, mode 0600, in a directory made 0700.
   * A key file that other users may read or change (any group or other permission bit), that is
   * not a regular file or not 32 bytes long is refused with an {@link OrgSecretsKeyError} that
   * says what to do.
   */
  static async fromKeyFile(path: string): Promise<{ secrets: OrgSecrets; created: boolean }> {
    const existing = await readKeyFile(path);
    if (existing !== null) return { secrets: new OrgSecrets(existing), created: false };
    const made = await createKeyFile(path);
    return { secrets: new OrgSecrets(made.key), created: made.created };
  }

  /** Whether a stored value is in a sealed form (this version's or a later one's). */
  static isSealed(value: string): boolean {
    return SEALED_FORM.test(value);
  }

  /**
   * Seals `plain`. The empty string stays empty: there is nothing to hide, and the reference's
   * "no password" reads the same.
   * @param context associated data the value is bound to (the org ID for a broker password):
   *   it opens only with the same context, so a sealed value copied into another org's row
   *   does not open there.
   */
  seal(plain: string, context = ''): string {
    if (plain === '') return '';
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv(CIPHER, this.#key, nonce, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return SEALED_PREFIX + Buffer.concat([nonce, body, cipher.getAuthTag()]).toString('base64');
  }

  /**
   * Opens a value made by {@link seal} with the same context. A value in no sealed form is a
   * password stored in plaintext by an earlier version and is returned as it is, so an older
   * database keeps working. Throws {@link SealedValueError} when a sealed value does not open.
   */
  open(value: string, context = ''): string {
    const form = SEALED_FORM.exec(value);
    if (form === null) return value;
    if (!value.startsWith(SEALED_PREFIX)) {
      throw new SealedValueError(`the value is sealed in format v${form[1]}, which this version of edgesync does not know; run the version that sealed it`);
    }
    const raw = decodeB64(value.slice(SEALED_PREFIX.length));
    if (raw === null || raw.length < NONCE_BYTES + TAG_BYTES) throw new SealedValueError('the sealed value is malformed (not the base64 of nonce, ciphertext and tag)');
    const decipher = createDecipheriv(CIPHER, this.#key, raw.subarray(0, NONCE_BYTES), { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
    try {
      return Buffer.concat([decipher.update(raw.subarray(NONCE_BYTES, raw.length - TAG_BYTES)), decipher.final()]).toString('utf8');
    } catch {
      throw new SealedValueError(
        'the sealed value does not open with this node\'s key: it was altered, or sealed under another key (restore the key file backed up with the database, or store the password again)',
      );
    }
  }
}

/** The key of an existing file, checked; null when there is no file. */
async function readKeyFile(path: string): Promise<Buffer | null> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    if (errnoOf(e) === 'ENOENT') return null;
    throw new OrgSecretsKeyError(path, `cannot read the org secrets key file ${path}: ${(e as Error).message}`);
  }
  try {
    // fstat of the file opened, not stat of the path: what we check is what we read.
    const st = await fh.stat();
    if (!st.isFile()) throw new OrgSecretsKeyError(path, `the org secrets key file ${path} is not a regular file`);
    const mode = st.mode & 0o777;
    if ((mode & 0o077) !== 0) {
      throw new OrgSecretsKeyError(
        path,
        `the org secrets key file ${path} has mode 0${mode.toString(8)}, which lets other users read or change it; run chmod 600 ${path}`,
      );
    }
    if (st.size !== ORG_SECRETS_KEY_BYTES) {
      throw new OrgSecretsKeyError(
        path,
        `the org secrets key file ${path} is ${st.size} bytes long, not ${ORG_SECRETS_KEY_BYTES}: it is not a key edgesync made; restore the one backed up with the database, or remove it to start a new key (passwords sealed under the old one are then lost)`,
      );
    }
    const key = Buffer.alloc(ORG_SECRETS_KEY_BYTES);
    const { bytesRead } = await fh.read(key, 0, ORG_SECRETS_KEY_BYTES, 0);
    if (bytesRead !== ORG_SECRETS_KEY_BYTES) throw new OrgSecretsKeyError(path, `the org secrets key file ${path} changed while it was read`);
    return key;
  } finally {
    await fh.close();
  }
}

/**
 * Writes a new key next to `path` and links it into place: `link` fails if a key appeared
 * meanwhile, so a key already in use is never replaced; that one is read instead.
 */
async function createKeyFile(path: string): Promise<{ key: Buffer; created: boolean }> {
  const dir = dirname(path);
  const key = randomBytes(ORG_SECRETS_KEY_BYTES);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const fh = await open(tmp, 'wx', 0o600);
    try {
      // The umask can only narrow the mode; set it exactly anyway.
      await fh.chmod(0o600);
      await fh.writeFile(key);
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await link(tmp, path);
    } catch (e) {
      if (errnoOf(e) !== 'EEXIST') throw e;
      const theirs = await readKeyFile(path);
      if (theirs !== null) return { key: theirs, created: false };
      throw e;
    }
  } catch (e) {
    if (e instanceof OrgSecretsKeyError) throw e;
    throw new OrgSecretsKeyError(path, `cannot create the org secrets key file ${path}: ${(e as Error).message}`);
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
  await syncDirectory(dir);
  return { key, created: true };
}

/** Persists the new directory entry; not every platform lets a directory be opened, so best effort. */
async function syncDirectory(dir: string): Promise<void> {
  try {
    const dh = await open(dir, 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  } catch {
    /* directory fsync unsupported here */
  }
}

/** What a transport needs to dial an org's broker. */
export interface BrokerSettings {
  readonly address: string;
  readonly user: string;
  /** In the clear. */
  readonly password: string;
}

/**
 * The password lives in a private field behind a getter: a log line, a JSON dump or a spread of
 * the settings leaves it out (as the reference wraps it in a SecureString).
 */
class OpenedBrokerSettings implements BrokerSettings {
  readonly #password: string;
  constructor(
    readonly address: string,
    readonly user: string,
    password: string,
  ) {
    this.#password = password;
  }
  get password(): string {
    return this.#password;
  }
}

/**
 * An org's broker settings with its password opened (the MQTT transport dials the org's broker
 * with them). A password stored in plaintext by an earlier version comes back as it is; one
 * that does not open throws {@link SealedValueError} naming the org.
 */
export function brokerSettingsOf(org: Organization, secrets: OrgSecrets): BrokerSettings {
  try {
    return new OpenedBrokerSettings(org.address, org.user, secrets.open(org.password, org.orgID));
  } catch (e) {
    if (e instanceof SealedValueError) throw new SealedValueError(`broker password of organization ${org.orgID}: ${e.message}`);
    throw e;
  }
}

/** Seals an org's broker password for storage, bound to the org. */
export function sealBrokerPassword(orgID: string, password: string, secrets: OrgSecrets): string {
  return secrets.seal(password, orgID);
}

/**
 * The CSS's sealing key, made on the first start, and its database brought in line with it:
 * passwords an earlier version stored in plaintext are sealed, and sealed passwords that do not
 * open (a lost key file made anew) are reported as an error, since an operator must restore the
 * key or have the org admins store the passwords again.
 */
export async function prepareOrgSecrets(opts: {
  keyFile: string;
  store: Pick<Store, 'listOrganizations' | 'putOrganization'>;
  log: Logger;
}): Promise<OrgSecrets> {
  const { secrets, created } = await OrgSecrets.fromKeyFile(opts.keyFile);
  if (created) opts.log.info({ keyFile: opts.keyFile }, 'created the key that seals per-org broker passwords; back it up with the database');
  let sealed = 0;
  const unreadable: string[] = [];
  for (const org of await opts.store.listOrganizations()) {
    if (org.password === '') continue;
    if (!OrgSecrets.isSealed(org.password)) {
      await opts.store.putOrganization({ ...org, password: sealBrokerPassword(org.orgID, org.password, secrets) });
      sealed++;
      continue;
    }
    try {
      secrets.open(org.password, org.orgID);
    } catch (e) {
      if (!(e instanceof SealedValueError)) throw e;
      unreadable.push(org.orgID);
    }
  }
  if (sealed > 0) opts.log.info({ organizations: sealed }, 'sealed broker passwords stored in plaintext by an earlier version');
  if (unreadable.length > 0) {
    opts.log.error(
      { organizations: unreadable, keyFile: opts.keyFile },
      'broker passwords that do not open with this key file: restore the key file backed up with the database, or store the passwords again with PUT /api/v1/organizations/{org}',
    );
  }
  return secrets;
}
