/**
 * Which sync service to talk to and as whom: each setting from its flag, else its environment
 * variable, else the profile. The profile is the one named (`--profile`, EDGESYNC_PROFILE), or
 * the one `login` made current when no URL is given: a URL from a flag or the environment with
 * the org or password of a profile made for another node would be a mix nobody asked for.
 */
import { readFile } from 'node:fs/promises';
import { SyncServiceClient, type SyncServiceClientOptions } from '../../sdk/index.js';
import { UsageError } from './exit-codes.js';
import { pickProfile, profilesPath, readProfiles, type Profile } from './profiles.js';

/** The connection flags every client command takes (commander's camelCase names). */
export interface ConnectionFlags {
  url?: string;
  user?: string;
  password?: string;
  passwordFile?: string;
  org?: string;
  ca?: string;
  profile?: string;
  timeout?: string;
}

/** A complete connection, ready for the SDK. */
export interface Connection {
  url: string;
  user: string;
  password: string;
  /** Undefined for an ESS. */
  org?: string;
  /** Path of the PEM certificate to trust. */
  ca?: string;
  timeoutMs?: number;
}

/** The environment variable of each setting. */
export const ENV_NAMES = {
  url: 'EDGESYNC_URL',
  user: 'EDGESYNC_USER',
  password: 'EDGESYNC_PASSWORD',
  passwordFile: 'EDGESYNC_PASSWORD_FILE',
  org: 'EDGESYNC_ORG',
  ca: 'EDGESYNC_CA',
  profile: 'EDGESYNC_PROFILE',
} as const;

const nonEmpty = (v: string | undefined): string | undefined => (v === undefined || v === '' ? undefined : v);

async function passwordFrom(file: string): Promise<string> {
  // A trailing newline is the editor's, not the password's.
  return (await readFile(file, 'utf8')).replace(/\r?\n$/, '');
}

/**
 * Merges flags, environment and profile, field by field in that order. `useProfile: false`
 * (for `login`) leaves out the profile and returns what the flags and environment give.
 */
export async function resolveConnection(flags: ConnectionFlags, env: NodeJS.ProcessEnv, opts: { useProfile?: boolean } = {}): Promise<Connection> {
  let profile: Partial<Profile> = {};
  if (opts.useProfile !== false) {
    const name = nonEmpty(flags.profile) ?? nonEmpty(env[ENV_NAMES.profile]);
    const urlGiven = nonEmpty(flags.url) !== undefined || nonEmpty(env[ENV_NAMES.url]) !== undefined;
    if (name !== undefined || !urlGiven) {
      const path = profilesPath(env);
      const found = pickProfile(await readProfiles(path), name);
      if (found === null && name !== undefined) throw new UsageError(`no profile "${name}" in ${path}; create it with edgesync login --profile ${name}`);
      if (found !== null) profile = found.profile;
    }
  }
  const url = nonEmpty(flags.url) ?? nonEmpty(env[ENV_NAMES.url]) ?? profile.url;
  const user = nonEmpty(flags.user) ?? nonEmpty(env[ENV_NAMES.user]) ?? profile.user;
  // A password flag or file beats a password from further down, whichever of the two it is.
  const password =
    flags.password ??
    (flags.passwordFile !== undefined ? await passwordFrom(flags.passwordFile) : undefined) ??
    env[ENV_NAMES.password] ??
    (nonEmpty(env[ENV_NAMES.passwordFile]) !== undefined ? await passwordFrom(env[ENV_NAMES.passwordFile]!) : undefined) ??
    profile.password;
  const org = nonEmpty(flags.org) ?? nonEmpty(env[ENV_NAMES.org]) ?? profile.org;
  const ca = nonEmpty(flags.ca) ?? nonEmpty(env[ENV_NAMES.ca]) ?? profile.ca;
  if (url === undefined) throw new UsageError(`no sync service given: use --url, ${ENV_NAMES.url} or edgesync login`);
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error();
  } catch {
    throw new UsageError(`--url must be an http:// or https:// URL, got "${url}"`);
  }
  if (user === undefined) throw new UsageError(`no user given: use --user, ${ENV_NAMES.user} or edgesync login`);
  if (password === undefined) throw new UsageError(`no password given: use --password, --password-file, ${ENV_NAMES.password} or edgesync login`);
  const connection: Connection = { url, user, password };
  if (org !== undefined) connection.org = org;
  if (ca !== undefined) connection.ca = ca;
  if (flags.timeout !== undefined) {
    const seconds = Number(flags.timeout);
    if (!(seconds > 0)) throw new UsageError(`--timeout must be a positive number of seconds, got "${flags.timeout}"`);
    connection.timeoutMs = seconds * 1000;
  }
  return connection;
}

/** An SDK client for the connection (the caller closes it). */
export async function clientFor(c: Connection): Promise<SyncServiceClient> {
  const options: SyncServiceClientOptions = { url: c.url, appKey: c.user, appSecret: c.password };
  if (c.org !== undefined) options.orgID = c.org;
  if (c.ca !== undefined) options.ca = await readFile(c.ca);
  if (c.timeoutMs !== undefined) options.timeoutMs = c.timeoutMs;
  return new SyncServiceClient(options);
}
