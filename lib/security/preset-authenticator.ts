/**
 * The preset authenticator: credentials from our hashed users file and, for deployments
 * migrating from the reference, its plaintext `preset-auth.json`. [ref rest-api §4.1]
 */
import { VerifiedLogins } from './verified-logins.js';
import { stat } from 'node:fs/promises';
import type { Authenticator, Identity, Role } from './identity.js';
import { verifySecret } from './secret-hash.js';
import { loadReferencePresetFile, loadUsersFile, type CssCredentials } from './users-file.js';

/** A successful verification is trusted this long. [ref rest-api §4.1 "cached per appKey for 15 min"] */
export const AUTH_CACHE_MS = 15 * 60 * 1000;
/** A request checks at most this often whether the files changed on disk. */
export const RELOAD_CHECK_MS = 1000;

const TYPE_TO_ROLE: ReadonlyMap<string, Role> = new Map<string, Role>([
  ['admin', 'admin'],
  ['objectadmin', 'objectAdmin'],
  ['user', 'user'],
  ['node', 'node'],
  ['syncadmin', 'syncAdmin'],
  ['service', 'service'],
  ['edgenode', 'edgeNode'],
]);

/**
 * The role of a credential type, matched case-insensitively; null for an unknown type, which
 * authenticates nobody. [ref rest-api §4.1]
 */
export function roleForUserType(type: string): Role | null {
  return TYPE_TO_ROLE.get(type.toLowerCase()) ?? null;
}

export interface PresetAuthenticatorOptions {
  /** Our users file, `<root>/sync/users.json`; a missing file means no users. */
  usersFile: string;
  /** The reference's `<root>/sync/preset-auth.json` (plaintext secrets); a missing file is ignored. */
  referencePresetFile?: string;
  /** Millisecond clock, for the cache and the reload throttle; tests inject a fake one. */
  now?: () => number;
  /** A changed file that fails to load: the previous credentials stay in force. */
  onReloadError?: (err: Error) => void;
}

interface Credential {
  identity: Identity;
  /** Exactly one of the two is set. */
  secretHash?: string;
  plaintext?: string;
}


/** Identifies one version of a file cheaply; atomic saves change the inode even within one mtime tick. */
async function fileSignature(path: string | undefined): Promise<string> {
  if (path === undefined) return '-';
  try {
    const s = await stat(path);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return 'missing';
  }
}

interface Loaded {
  credentials: Map<string, Credential>;
  cssCredentials: CssCredentials | undefined;
  referenceCount: number;
}

async function loadAll(usersFile: string, referenceFile: string | undefined): Promise<Loaded> {
  const credentials = new Map<string, Credential>();
  let cssCredentials: CssCredentials | undefined;
  let referenceCount = 0;
  if (referenceFile !== undefined) {
    const ref = await loadReferencePresetFile(referenceFile);
    for (const [appKey, c] of Object.entries(ref?.credentials ?? {})) {
      const role = roleForUserType(c.type);
      // Unknown types stay out of the map: they authenticate nobody. [ref rest-api §4.1]
      if (role === null) continue;
      credentials.set(appKey, { identity: { role, orgID: c.orgID, userID: c.username }, plaintext: c.secret });
      referenceCount++;
    }
    cssCredentials = ref?.cssCredentials;
  }
  // The hashed file wins over the plaintext one for the same appKey: it is the one we manage.
  const users = await loadUsersFile(usersFile);
  for (const [appKey, c] of Object.entries(users.credentials)) {
    const role = roleForUserType(c.type);
    if (role === null) continue;
    credentials.set(appKey, { identity: { role, orgID: c.orgID, userID: c.username }, secretHash: c.secretHash });
  }
  if (users.cssCredentials !== undefined) cssCredentials = users.cssCredentials;
  return { credentials, cssCredentials, referenceCount };
}

/**
 * Checks Basic credentials against the users file (scrypt hashes) and optionally the
 * reference's plaintext preset file. Verifications are cached, and the files are re-read when
 * they change, so `edgesync users add` takes effect without a restart.
 */
export class PresetAuthenticator implements Authenticator {
  readonly name = 'preset';

  /** Verified logins, and one scrypt run per concurrent identical login. */
  private readonly verified: VerifiedLogins;
  private readonly now: () => number;
  private loaded: Loaded;
  private signature: string;
  private lastCheck: number;
  private refreshing: Promise<void> | undefined;
  /** Bumped on every reload, so a verification that raced a reload is not cached. */
  private generation = 0;

  private constructor(
    private readonly options: PresetAuthenticatorOptions,
    loaded: Loaded,
    signature: string,
  ) {
    this.now = options.now ?? Date.now;
    this.verified = new VerifiedLogins(this.now);
    this.loaded = loaded;
    this.signature = signature;
    this.lastCheck = this.now();
  }

  /**
   * Loads the files. Unlike a later reload, a bad file here is an error: the node must not
   * start with credentials it cannot read.
   */
  static async create(options: PresetAuthenticatorOptions): Promise<PresetAuthenticator> {
    const signature = await PresetAuthenticator.signatureOf(options);
    const loaded = await loadAll(options.usersFile, options.referencePresetFile);
    return new PresetAuthenticator(options, loaded, signature);
  }

  private static async signatureOf(options: PresetAuthenticatorOptions): Promise<string> {
    return `${await fileSignature(options.usersFile)}|${await fileSignature(options.referencePresetFile)}`;
  }

  /** Credentials an ESS presents to the CSS (users file first, else the reference file). */
  get cssCredentials(): CssCredentials | undefined {
    return this.loaded.cssCredentials;
  }

  /** How many credentials come from the plaintext reference file; > 0 deserves a migration warning. */
  get referenceCredentialCount(): number {
    return this.loaded.referenceCount;
  }

  /** Forgets cached verifications (e.g. after an admin command). */
  clearCache(): void {
    this.verified.clear();
  }

  async authenticate(appKey: string, secret: string): Promise<Identity | null> {
    // An empty secret never matches a stored one: refused without a (costly) verification.
    if (secret === '') return null;
    await this.refreshIfChanged();
    const identity = await this.check(appKey, secret);
    if (identity !== null) return identity;
    // A refusal may come from a file changed since the last look (`users add` a moment ago):
    // one more look now, past the throttle; it costs a stat, and a verification only if the
    // files did change.
    const generation = this.generation;
    await this.refreshNow();
    return this.generation === generation ? null : this.check(appKey, secret);
  }

  private async check(appKey: string, secret: string): Promise<Identity | null> {
    const mac = this.verified.mac(secret);
    return this.verified.verifyOnce(appKey, mac, () => this.verify(appKey, secret, mac));
  }

  private async verify(appKey: string, secret: string, mac: Buffer): Promise<Identity | null> {
    const generation = this.generation;
    const cred = this.loaded.credentials.get(appKey);
    if (cred === undefined) return null;
    let ok: boolean;
    if (cred.secretHash !== undefined) {
      ok = await verifySecret(secret, cred.secretHash);
    } else {
      // Compare MACs rather than the strings: equal lengths, so the comparison leaks nothing.
      ok = this.verified.same(this.verified.mac(cred.plaintext ?? ''), mac);
    }
    if (!ok) return null;
    if (generation === this.generation) this.verified.remember(appKey, mac, cred.identity, AUTH_CACHE_MS);
    return cred.identity;
  }

  private async refreshIfChanged(): Promise<void> {
    if (this.now() - this.lastCheck < RELOAD_CHECK_MS) return;
    await this.refreshNow();
  }

  private async refreshNow(): Promise<void> {
    this.refreshing ??= this.refresh().finally(() => {
      this.refreshing = undefined;
    });
    await this.refreshing;
  }

  private async refresh(): Promise<void> {
    this.lastCheck = this.now();
    const signature = await PresetAuthenticator.signatureOf(this.options);
    if (signature === this.signature) return;
    // Remember the new version even if it fails to load, so one bad edit is reported once,
    // not on every request.
    this.signature = signature;
    try {
      this.loaded = await loadAll(this.options.usersFile, this.options.referencePresetFile);
      this.generation++;
      // Removed users and changed roles must not survive in the cache.
      this.verified.clear();
    } catch (e) {
      // Errors from node:fs may belong to another realm, so test the shape, not instanceof.
      const isError = typeof e === 'object' && e !== null && typeof (e as { message?: unknown }).message === 'string';
      this.options.onReloadError?.(isError ? (e as Error) : new Error(String(e)));
    }
  }
}
