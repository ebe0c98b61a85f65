/**
 * The reference's `dummy` authenticator, for compatibility tests only: it ignores the secret
 * and derives the identity from the shape of the appKey. [ref rest-api §4.1]
 */
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import type { Authenticator, Identity } from './identity.js';
import { isMissingFileError } from './users-file.js';

/** Contents of `<root>/sync/dummy-auth.json`. */
export interface DummyAuthLists {
  /** `user@org` names that are plain users (USR). */
  regularUsers: readonly string[];
  /** `user@org` names that are sync admins (SA, no org). */
  syncAdmins: readonly string[];
  /** `org/user` names that are org admins (ADM) rather than object admins. */
  exchangeAdmins: readonly string[];
}

const EMPTY_LISTS: DummyAuthLists = { regularUsers: [], syncAdmins: [], exchangeAdmins: [] };

function stringList(raw: Record<string, unknown>, key: keyof DummyAuthLists, path: string): string[] {
  const v = raw[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((e) => typeof e !== 'string')) {
    throw new Error(`Invalid dummy auth file ${path}: ${key} must be a list of strings`);
  }
  return v as string[];
}

/**
 * Reads the lists; a missing file gives empty lists, as in the reference. A file that is not
 * valid is an error (the reference would silently treat everyone as an org admin).
 */
export async function loadDummyAuthLists(path: string): Promise<DummyAuthLists> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if (isMissingFileError(e)) return EMPTY_LISTS;
    throw e;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`Invalid dummy auth file ${path}: not JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`Invalid dummy auth file ${path}: expected an object`);
  const obj = raw as Record<string, unknown>;
  return {
    regularUsers: stringList(obj, 'regularUsers', path),
    syncAdmins: stringList(obj, 'syncAdmins', path),
    exchangeAdmins: stringList(obj, 'exchangeAdmins', path),
  };
}

/** Splits on `sep`; null unless there are exactly `count` parts, none empty. */
function partsOf(appKey: string, sep: string, ...counts: number[]): string[] | null {
  const parts = appKey.split(sep);
  // Empty parts (`/a/b`, `user@`) would give identities with an empty org or name; the
  // reference accepts them, we treat them as "anything else".
  if (!counts.includes(parts.length) || parts.some((p) => p === '')) return null;
  return parts;
}

/**
 * Accepts any secret; the appKey decides who the caller is. Never expose it beyond loopback
 * (see {@link assertDummyAllowed}).
 */
export class DummyAuthenticator implements Authenticator {
  readonly name = 'dummy';

  constructor(private readonly lists: DummyAuthLists = EMPTY_LISTS) {}

  /** Builds one from `<root>/sync/dummy-auth.json` (missing file → empty lists). */
  static async fromFile(path: string): Promise<DummyAuthenticator> {
    return new DummyAuthenticator(await loadDummyAuthLists(path));
  }

  authenticate(appKey: string, _secret: string): Promise<Identity | null> {
    return Promise.resolve(this.identityFor(appKey));
  }

  /** The identity of an appKey, by the first matching row of the table. [ref rest-api §4.1] */
  identityFor(appKey: string): Identity | null {
    const slash = appKey.split('/');
    if (slash.length === 3) {
      const p = partsOf(appKey, '/', 3);
      return p === null ? null : { role: 'edgeNode', orgID: p[0]!, userID: `${p[1]!}/${p[2]!}` };
    }
    if (slash.length === 2) {
      const p = partsOf(appKey, '/', 2);
      if (p === null) return null;
      const [org, user] = p as [string, string];
      return { role: this.lists.exchangeAdmins.includes(user) ? 'admin' : 'objectAdmin', orgID: org, userID: user };
    }
    if (appKey.split('$').length === 4) {
      const p = partsOf(appKey, '$', 4);
      return p === null ? null : { role: 'service', orgID: p[0]!, userID: `${p[1]!}/${p[2]!}/${p[3]!}` };
    }
    if (appKey.split('%').length === 2) {
      const p = partsOf(appKey, '%', 2);
      return p === null ? null : { role: 'node', orgID: p[1]!, userID: p[0]! };
    }
    const at = partsOf(appKey, '@', 2, 3);
    if (at === null) return null;
    const org = at[at.length - 1]!;
    const user = at.slice(0, -1).join('@');
    if (this.lists.regularUsers.includes(user)) return { role: 'user', orgID: org, userID: user };
    if (this.lists.syncAdmins.includes(user)) return { role: 'syncAdmin', orgID: '', userID: user };
    return { role: 'admin', orgID: org, userID: user };
  }
}

/** The host part of `host`, `host:port`, `[v6]:port` or a bare IPv6 literal. */
function hostOf(address: string): string {
  if (address.startsWith('[')) {
    const end = address.indexOf(']');
    return end < 0 ? address : address.slice(1, end);
  }
  if (isIP(address) === 6) return address;
  const colon = address.lastIndexOf(':');
  return colon < 0 ? address : address.slice(0, colon);
}

function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  if (h === 'localhost') return true;
  const v4 = h.startsWith('::ffff:') && isIP(h.slice(7)) === 4 ? h.slice(7) : h;
  if (isIP(v4) === 4) return v4.split('.')[0] === '127';
  if (isIP(h) === 6) {
    // Any spelling of ::1 (e.g. 0:0:0:0:0:0:0:1): all groups zero except a final 1.
    const groups = h.split(':').filter((g) => g !== '');
    return groups.length > 0 && groups.slice(0, -1).every((g) => /^0+$/.test(g)) && /^0*1$/.test(groups[groups.length - 1] ?? '');
  }
  return false;
}

function isSocketPath(address: string): boolean {
  return address.startsWith('/') || address.startsWith('./') || address.startsWith('../') || address.startsWith('unix:');
}

/**
 * The dummy authenticator accepts any password, so it must never face a network.
 * @param listenAddresses every address the node will listen on: `host[:port]`, `[v6]:port`, or a unix socket path
 * @throws Error unless every address is loopback (127.0.0.0/8, ::1, localhost) or a unix socket
 */
export function assertDummyAllowed(listenAddresses: readonly string[]): void {
  if (listenAddresses.length === 0) {
    throw new Error('The dummy authenticator needs the listen addresses to check that they are all loopback; none were given');
  }
  const exposed = listenAddresses.filter((a) => !isSocketPath(a) && !isLoopbackHost(hostOf(a.trim())));
  if (exposed.length > 0) {
    throw new Error(
      `The dummy authenticator accepts any password, so it may only listen on loopback (127.0.0.0/8, ::1, localhost) ` +
        `or a unix socket; refusing to listen on ${exposed.join(', ')}. Use the preset authenticator instead.`,
    );
  }
}
