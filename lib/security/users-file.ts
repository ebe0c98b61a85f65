/**
 * The preset users file, `<root>/sync/users.json`: edgesync's hashed counterpart of the
 * reference's `preset-auth.json`, plus a reader for that plaintext file so existing
 * deployments keep working. [ref rest-api §4.1 "Preset authenticator"]
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { z } from 'zod';
import { decodeFields, DecodeError } from '../model/index.js';
import { generateSecret, hashSecret } from './secret-hash.js';

/** Credential types, lower case as stored; the authenticator maps them to roles. */
export const USER_TYPES = ['syncadmin', 'admin', 'objectadmin', 'user', 'node', 'service', 'edgenode'] as const;
export type UserType = (typeof USER_TYPES)[number];

/** One credential of the users file. The secret is never stored, only its scrypt hash. */
export interface UserCredential {
  /** `scrypt$N$r$p$salt$hash`, see secret-hash.ts. */
  secretHash: string;
  /** Org of the identity; "" for a sync admin without org. */
  orgID: string;
  /** User name; `destType/destID` for an edge node, `svcOrg/version/svcName` for a service. */
  username: string;
  type: UserType;
}

/** What an ESS presents to the CSS over HTTP. Plaintext by necessity: the ESS must send it. */
export interface CssCredentials {
  key: string;
  secret: string;
}

export interface UsersFile {
  /** By appKey. */
  credentials: Record<string, UserCredential>;
  cssCredentials?: CssCredentials;
}

/** A user to add; the secret is hashed before it is written. */
export interface NewUser {
  appKey: string;
  secret: string;
  orgID: string;
  username: string;
  /** A {@link UserType} in any case; anything else is refused as the users file refuses it. */
  type: string;
}

/** An entry of the reference's `preset-auth.json`, whose secrets are plaintext. */
export interface ReferencePresetEntry {
  secret: string;
  orgID: string;
  username: string;
  /** As written in the file; unknown values authenticate nobody. */
  type: string;
  /** Always true: compare with timingSafeEqual, and recommend migrating to users.json. */
  plaintext: true;
}

export interface ReferencePresetFile {
  credentials: Record<string, ReferencePresetEntry>;
  cssCredentials?: CssCredentials;
}

/** The appKey is the user part of HTTP Basic auth, which cannot contain `:`. */
const APP_KEY = /^[^:\s\p{Cc}]+$/u;

const identityShape = {
  orgID: z.string(),
  username: z.string().min(1, 'must not be empty'),
  type: z
    .string()
    .transform((t) => t.toLowerCase())
    .pipe(z.enum(USER_TYPES, { error: `must be one of ${USER_TYPES.join(', ')}` })),
};

/**
 * The rules of an identity across its fields, in one place: the users file, `edgesync users add`
 * and the external identity service's answers are held to them alike.
 */
function identityRules(c: { orgID: string; username: string; type: UserType }, ctx: z.RefinementCtx): void {
  if (c.type !== 'syncadmin' && c.orgID === '') ctx.addIssue({ code: 'custom', path: ['orgID'], message: `must not be empty for type ${c.type}` });
  if (c.type === 'edgenode' && !/^[^/]+\/[^/]+$/.test(c.username)) {
    ctx.addIssue({ code: 'custom', path: ['username'], message: 'must be destType/destID for an edge node' });
  }
  if (c.type === 'service' && !/^[^/]+\/[^/]+\/.+$/.test(c.username)) {
    ctx.addIssue({ code: 'custom', path: ['username'], message: 'must be svcOrg/version/svcName for a service' });
  }
}

const credentialSchema = z
  .object({
    secretHash: z.string().startsWith('scrypt$', 'must be an scrypt hash (scrypt$N$r$p$salt$hash), never a plaintext secret'),
    ...identityShape,
  })
  .strict()
  .superRefine(identityRules);

/**
 * An identity as an external identity service states it (`type`, `orgID`, `username`, the users
 * file's names and rules); other fields are ignored.
 */
export const identityAnswerSchema = z.object(identityShape).superRefine(identityRules);

const usersFileSchema = z
  .object({
    credentials: z.record(z.string().regex(APP_KEY, 'appKey must be non-empty, without ":" or whitespace'), credentialSchema),
    cssCredentials: z.object({ key: z.string().min(1), secret: z.string().min(1) }).strict().optional(),
  })
  .strict();

function describeIssues(path: string, issues: readonly z.core.$ZodIssue[]): string {
  // A bad record key is reported by zod as "Invalid key in record"; the reason is inside.
  const reason = (i: z.core.$ZodIssue): string => (i.code === 'invalid_key' && i.issues[0] !== undefined ? i.issues[0].message : i.message);
  const lines = issues.map((i) => `  ${i.path.map(String).join('.') || '(top level)'}: ${reason(i)}`);
  return `Invalid users file ${path}:\n${lines.join('\n')}`;
}

/** Duck-typed: errors from node:fs may come from another realm (vm contexts), defeating instanceof. */
export function isMissingFileError(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'ENOENT';
}

async function readJson(path: string, what: string): Promise<unknown> {
  const text = await readFile(path, 'utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new Error(`Invalid ${what} ${path}: not JSON (${e instanceof Error ? e.message : String(e)})`);
  }
}

/**
 * Reads and validates the users file, reporting every bad key at once.
 * A file that does not exist reads as having no users (the node then creates one with
 * {@link ensureSyncAdmin}).
 * @throws Error naming the file and each bad key
 */
export async function loadUsersFile(path: string): Promise<UsersFile> {
  let raw: unknown;
  try {
    raw = await readJson(path, 'users file');
  } catch (e) {
    if (isMissingFileError(e)) return { credentials: Object.create(null) as Record<string, UserCredential> };
    throw e;
  }
  const parsed = usersFileSchema.safeParse(raw);
  if (!parsed.success) throw new Error(describeIssues(path, parsed.error.issues));
  const file: UsersFile = { credentials: parsed.data.credentials };
  if (parsed.data.cssCredentials !== undefined) file.cssCredentials = parsed.data.cssCredentials;
  return file;
}

/**
 * Writes `data` so that readers see either the old file or the new one, never a torn one:
 * temp file in the same directory, fsync, rename, fsync of the directory. Also used for the
 * TLS key and certificate.
 */
export async function writeFileAtomic(path: string, data: string, mode: number): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data, 'utf8');
    // The umask may have narrowed the mode, never widened it; set it exactly anyway.
    await fh.chmod(mode);
    await fh.sync();
  } catch (e) {
    await fh.close();
    await rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  // Persist the rename itself; not every platform lets a directory be opened, so best effort.
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

/**
 * Checks one entry exactly as {@link loadUsersFile} would check it in the file (same schema,
 * same messages), before its secret is hashed or anything is written.
 * @param type as typed by a person: any case; an unknown one is refused with the file's message
 * @throws Error `Invalid users file <path>:` and one line per problem, as the server reports it
 */
export function checkUserEntry(path: string, user: { appKey: string; orgID: string; username: string; type: string }): void {
  // A well-formed hash stands in for the one the secret will get: only the entry is judged here.
  const placeholder = 'scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=';
  const entry = { secretHash: placeholder, orgID: user.orgID, username: user.username, type: user.type };
  const parsed = usersFileSchema.safeParse({ credentials: { [user.appKey]: entry } });
  if (!parsed.success) throw new Error(describeIssues(path, parsed.error.issues));
}

/** Validates and writes the users file atomically with mode 0600. */
export async function saveUsersFile(path: string, file: UsersFile): Promise<void> {
  const checked = usersFileSchema.safeParse(file);
  if (!checked.success) throw new Error(describeIssues(path, checked.error.issues));
  await writeFileAtomic(path, `${JSON.stringify(file, null, 2)}\n`, 0o600);
}

/**
 * Adds a user, hashing its secret.
 * @throws Error when the appKey exists (unless `replace`), or the entry is invalid
 */
export async function addUser(path: string, user: NewUser, options: { replace?: boolean } = {}): Promise<void> {
  if (user.secret === '') throw new Error(`Invalid secret for ${user.appKey}: it must not be empty`);
  checkUserEntry(path, user);
  const file = await loadUsersFile(path);
  if (Object.hasOwn(file.credentials, user.appKey) && options.replace !== true) {
    throw new Error(`User ${user.appKey} already exists in ${path}`);
  }
  const secretHash = await hashSecret(user.secret);
  file.credentials[user.appKey] = { secretHash, orgID: user.orgID, username: user.username, type: user.type.toLowerCase() as UserType };
  await saveUsersFile(path, file);
}

/** Removes a user. @returns false when there was no such appKey. */
export async function removeUser(path: string, appKey: string): Promise<boolean> {
  const file = await loadUsersFile(path);
  if (!Object.hasOwn(file.credentials, appKey)) return false;
  delete file.credentials[appKey];
  await saveUsersFile(path, file);
  return true;
}

/**
 * Makes sure a sync admin exists. When the file is missing or has none, creates appKey
 * `admin` (username `admin`, no org) with a random secret and returns the plaintext once,
 * for the caller to print: it is not stored anywhere. Returns null when a sync admin exists.
 * If `admin` is taken by another type, a suffixed appKey is used instead of overwriting it.
 */
export async function ensureSyncAdmin(path: string): Promise<{ appKey: string; secret: string } | null> {
  const file = await loadUsersFile(path);
  if (Object.values(file.credentials).some((c) => c.type === 'syncadmin')) return null;
  let appKey = 'admin';
  while (Object.hasOwn(file.credentials, appKey)) appKey = `admin-${randomBytes(3).toString('hex')}`;
  const secret = generateSecret();
  file.credentials[appKey] = { secretHash: await hashSecret(secret), orgID: '', username: 'admin', type: 'syncadmin' };
  await saveUsersFile(path, file);
  return { appKey, secret };
}

const PRESET_TOP = { credentials: 'object', cssCredentials: 'object' } as const;
const PRESET_ENTRY = { username: 'string', secret: 'string', orgID: 'string', type: 'string' } as const;
const PRESET_CSS = { key: 'string', secret: 'string' } as const;

/**
 * Reads the reference's `preset-auth.json` the way Go's decoder does (keys case-insensitive,
 * unknown keys ignored, missing fields empty). Entries with an empty secret are dropped: the
 * reference would accept an empty password for them, which we do not.
 * @returns null when the file does not exist
 * @throws Error naming the file and the bad key
 */
export async function loadReferencePresetFile(path: string): Promise<ReferencePresetFile | null> {
  let raw: unknown;
  try {
    raw = await readJson(path, 'preset file');
  } catch (e) {
    if (isMissingFileError(e)) return null;
    throw e;
  }
  const at = (where: string, fn: () => Record<string, unknown>): Record<string, unknown> => {
    try {
      return fn();
    } catch (e) {
      if (e instanceof DecodeError) throw new Error(`Invalid preset file ${path}: ${where}: ${e.message}`);
      throw e;
    }
  };
  const top = at('(top level)', () => decodeFields(raw, PRESET_TOP, 'PresetAuthenticate'));
  // Null prototype: an appKey such as `__proto__` must stay an ordinary key.
  const out: ReferencePresetFile = { credentials: Object.create(null) as Record<string, ReferencePresetEntry> };
  const creds = (top.credentials ?? {}) as Record<string, unknown>;
  for (const [appKey, value] of Object.entries(creds)) {
    const e = at(`credentials.${appKey}`, () => decodeFields(value, PRESET_ENTRY, 'CredentialInfo'));
    const str = (v: unknown): string => (typeof v === 'string' ? v : '');
    if (str(e.secret) === '') continue;
    out.credentials[appKey] = { secret: str(e.secret), orgID: str(e.orgID), username: str(e.username), type: str(e.type), plaintext: true };
  }
  if (top.cssCredentials !== undefined) {
    const c = at('cssCredentials', () => decodeFields(top.cssCredentials, PRESET_CSS, 'CSSCredentials'));
    if (typeof c.key === 'string' && c.key !== '') out.cssCredentials = { key: c.key, secret: typeof c.secret === 'string' ? c.secret : '' };
  }
  return out;
}
