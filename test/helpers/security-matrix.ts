/**
 * The callers and the table format of the authorization matrix (security-matrix.test.ts):
 * one identity of every kind in org A and in org B, a sync admin, an anonymous caller and a
 * wrong password; rows that say, per caller, the status the contract gives. [ref rest-api §4]
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hashSecret } from '../../lib/security/secret-hash.js';
import type { UserType } from '../../lib/security/users-file.js';

export const ORG_A = 'orga';
export const ORG_B = 'orgb';

/** Abbreviations of rest-api.md §0: SA, ADM, OADM, USR, NODE, SVC, EN. */
export type Kind = 'ADM' | 'OADM' | 'USR' | 'NODE' | 'SVC' | 'EN';
export const KINDS: readonly Kind[] = ['ADM', 'OADM', 'USR', 'NODE', 'SVC', 'EN'];

/** A caller: `ADM.A` is the admin of org A (the fixtures' org), `ADM.B` the admin of org B. */
export type Who = 'anon' | 'badPassword' | 'SA' | `${Kind}.${'A' | 'B'}`;

export interface Caller {
  who: Who;
  /** Basic credentials; null for the anonymous caller. */
  auth: { user: string; pass: string } | null;
  /** The identity's org (A or B), '' for the sync admin, null without an identity. */
  org: string | null;
  /** The identity's user name (for ACL entries); `destType/destID` for an edge node. */
  username: string;
}

const TYPE_OF: Record<Kind, UserType> = { ADM: 'admin', OADM: 'objectadmin', USR: 'user', NODE: 'node', SVC: 'service', EN: 'edgenode' };

function usernameOf(kind: Kind, side: 'A' | 'B'): string {
  const s = side.toLowerCase();
  if (kind === 'EN') return `edge/n${s}`;
  if (kind === 'SVC') return `svcorg/1.0.0/svc${s}`;
  return `${kind.toLowerCase()}${s}`;
}

function identityCallers(): Caller[] {
  const out: Caller[] = [{ who: 'SA', auth: { user: 'root', pass: 'root-secret' }, org: '', username: 'root' }];
  for (const side of ['A', 'B'] as const) {
    const org = side === 'A' ? ORG_A : ORG_B;
    for (const kind of KINDS) {
      out.push({ who: `${kind}.${side}`, auth: { user: `${org}-${kind.toLowerCase()}`, pass: `${kind}-${side}-secret` }, org, username: usernameOf(kind, side) });
    }
  }
  return out;
}

/** Every caller of the matrix, in a fixed order. */
export const CALLERS: readonly Caller[] = [
  ...identityCallers(),
  { who: 'anon', auth: null, org: null, username: '' },
  { who: 'badPassword', auth: { user: `${ORG_A}-adm`, pass: 'not-the-secret' }, org: null, username: '' },
];

export function caller(who: Who): Caller {
  const c = CALLERS.find((x) => x.who === who);
  if (c === undefined) throw new Error(`no caller ${who}`);
  return c;
}

/** The ESS of the matrix: type `ess`, id `e1`, org A; its credentials on the CSS. */
export const ESS_DEST = { type: 'ess', id: 'e1', appKey: `${ORG_A}/ess/e1`, secret: 'ess-secret' };

/**
 * Writes `<root>/sync/users.json` with every caller that has an identity (and, for the CSS, the
 * ESS's edge-node credential), secrets scrypt-hashed as `edgesync users add` writes them.
 */
export async function writeUsersFile(root: string, opts: { withEss: boolean }): Promise<void> {
  const credentials: Record<string, { secretHash: string; orgID: string; username: string; type: UserType }> = {};
  const entries = CALLERS.filter((c) => c.org !== null && c.auth !== null).map((c) => {
    const kind = c.who === 'SA' ? null : (c.who.split('.')[0] as Kind);
    return { appKey: c.auth!.user, secret: c.auth!.pass, orgID: c.org!, username: c.username, type: kind === null ? ('syncadmin' as const) : TYPE_OF[kind] };
  });
  if (opts.withEss) entries.push({ appKey: ESS_DEST.appKey, secret: ESS_DEST.secret, orgID: ORG_A, username: `${ESS_DEST.type}/${ESS_DEST.id}`, type: 'edgenode' });
  for (const e of entries) credentials[e.appKey] = { secretHash: await hashSecret(e.secret), orgID: e.orgID, username: e.username, type: e.type };
  await mkdir(join(root, 'sync'), { recursive: true, mode: 0o700 });
  await writeFile(join(root, 'sync', 'users.json'), `${JSON.stringify({ credentials }, null, 2)}\n`, { mode: 0o600 });
}

/** The status per caller. */
export type Statuses = Record<Who, number>;

/** `base` for every caller, then the named exceptions: the way the contract reads ("403 unless …"). */
export function statuses(base: number, exceptions: Partial<Record<Who, number>> = {}): Statuses {
  const out = {} as Statuses;
  for (const c of CALLERS) out[c.who] = exceptions[c.who] ?? base;
  return out;
}

/** Groups of callers, for exceptions that name several at once. */
export const GROUPS = {
  /** Every identity of org A that may use the client API (EN excluded). */
  clientsA: ['ADM.A', 'OADM.A', 'USR.A', 'NODE.A', 'SVC.A'],
  clientsB: ['ADM.B', 'OADM.B', 'USR.B', 'NODE.B', 'SVC.B'],
} as const satisfies Record<string, readonly Who[]>;

/** `{ a: s, b: s, … }` for each caller of `who`. */
export function all(who: readonly Who[], status: number): Partial<Record<Who, number>> {
  return Object.fromEntries(who.map((w) => [w, status]));
}

export type NodeKind = 'CSS' | 'ESS';

/** One request of the matrix, sent by each caller. */
export interface Row {
  /** Which node serves it. */
  node: NodeKind;
  /**
   * The route it exercises, `METHOD path` as in route-table.ts (the node's form), or an SPI or
   * ACL route; the coverage test matches it with ROUTES.
   */
  route: string;
  /** What makes this row differ from the route's other rows (`private object`, `claim: other org`). */
  variant: string;
  method: string;
  /** The concrete path; per caller for rows that write a caller's own object. */
  path: (c: Caller) => string;
  body?: (c: Caller) => string | Buffer;
  headers?: (c: Caller) => Record<string, string>;
  expect: Statuses;
  /**
   * For listings: the IDs (or types) each caller that gets a 200 must see, exactly. Readers with
   * full access see everything, the others the public part only.
   */
  visible?: (c: Caller) => readonly string[];
  /** How a listing's answer reads as IDs; objectIDs of a JSON array by default. */
  ids?: (body: unknown) => string[];
}

/** Path-safe form of a caller, for per-caller object IDs (`ADM.A` → `adm-a`). */
export function slug(who: Who): string {
  return who.toLowerCase().replace('.', '-');
}

export interface Outcome {
  row: Row;
  who: Who;
  status: number;
  text: string;
}

/** Sends one row as one caller. */
export async function send(baseUrl: string, row: Row, c: Caller): Promise<Outcome> {
  const headers: Record<string, string> = { ...row.headers?.(c) };
  if (c.auth !== null) headers.authorization = `Basic ${Buffer.from(`${c.auth.user}:${c.auth.pass}`).toString('base64')}`;
  const body = row.body?.(c);
  const res = await fetch(baseUrl + row.path(c), { method: row.method, headers, redirect: 'manual', ...(body !== undefined ? { body } : {}) });
  return { row, who: c.who, status: res.status, text: await res.text() };
}

/**
 * What went wrong in one outcome, or null: the status, and for a listing the IDs seen.
 * Returned as text so that a failing matrix lists every wrong case at once.
 */
export function mismatch(o: Outcome): string | null {
  const want = o.row.expect[o.who];
  const label = `${o.row.node} ${o.row.route} [${o.row.variant}] as ${o.who}`;
  if (o.status !== want) return `${label}: got ${o.status}, want ${want} (${o.text.slice(0, 120).trim()})`;
  if (o.status === 200 && o.row.visible !== undefined) {
    const want = [...o.row.visible(caller(o.who))].sort();
    let got: string[];
    try {
      const body = JSON.parse(o.text) as unknown;
      got = (o.row.ids ?? objectIds)(body).sort();
    } catch {
      return `${label}: answer is no JSON list: ${o.text.slice(0, 120)}`;
    }
    if (JSON.stringify(got) !== JSON.stringify(want)) return `${label}: sees ${JSON.stringify(got)}, want ${JSON.stringify(want)}`;
  }
  return null;
}

export function objectIds(body: unknown): string[] {
  if (!Array.isArray(body)) throw new Error('not a list');
  return body.map((o: unknown) => {
    const id = (o as { objectID?: unknown }).objectID;
    return typeof id === 'string' ? id : JSON.stringify(o);
  });
}
