/**
 * The ACL routes of a CSS, `/api/v1/security/{aclType}/{orgID}[/{key}[/{aclUserType}/{username}]]`,
 * checked in the reference's order: role, depth, org, ACL type, then the method's own checks.
 * The ESS does not serve them. [ref rest-api §1.5, §3.5]
 */
import { BadRequestError, DecodeError, MethodNotAllowedError, NotFoundError, UnauthorizedError, decodeFields, isValidName } from '../../model/index.js';
import { ALL_TYPES_ACL_KEY, canManageAcls } from '../../security/access.js';
import type { AclType, StoredAclEntry } from '../../store/types.js';
import { boolQuery, queryString, readJson } from '../../http/request.js';
import { sendJson, sendNoContent } from '../../http/response.js';
import type { RouteContext } from '../context.js';

const ACL_TYPES: readonly string[] = ['objects', 'destinations'] satisfies AclType[];
const USER_TYPES: readonly string[] = ['user', 'node'] satisfies StoredAclEntry['aclUserType'][];

function isAclType(v: string): v is AclType {
  return ACL_TYPES.includes(v);
}

function isUserType(v: string): v is StoredAclEntry['aclUserType'] {
  return USER_TYPES.includes(v);
}

/** Go's html.EscapeString, which the reference applies to names it quotes back. */
function htmlEscape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&#34;', "'": '&#39;' })[c] ?? c);
}

/** A 400 whose body is the message alone: this family has no trailing newline. [ref rest-api §1.1] */
function invalidParam(message: string): BadRequestError {
  return new BadRequestError(message, message);
}

/** The reference's validatePathParamForSecurity: the first bad one of org, key, user type, username. */
function validateSecurityParams(p: { org: string; key?: string; aclUserType?: string; username?: string }): void {
  const { org, key = '', aclUserType = '', username = '' } = p;
  if (org !== '' && !isValidName(org)) throw invalidParam(`Organization ID (${htmlEscape(org)}) contains invalid characters`);
  if (key !== '' && !isValidName(key)) throw invalidParam(`Key (destination type/object type) ${htmlEscape(key)} contains invalid characters`);
  if (aclUserType !== '' && !isUserType(aclUserType)) {
    throw invalidParam(`Invalid acl user type ${htmlEscape(aclUserType)} in URL. The value should be "user" or "node"`);
  }
  if (username !== '' && !isValidName(username)) throw invalidParam(`Username (${htmlEscape(username)}) contains invalid characters`);
}

/** An ACL entry as the client sent it: any strings, checked by {@link checkEntries}. */
interface RawEntry {
  Username: string;
  ACLUserType: string;
  ACLRole: string;
}

interface BulkUpdate {
  action: string;
  users: RawEntry[];
}

const JSON_PREFIX = 'Invalid JSON for update. Error: ';

/**
 * Decodes `{"action","users":[{"Username","ACLUserType","ACLRole"}]}` as Go decodes the
 * reference's bulkACLUpdate: keys in any case, unknown keys ignored (so the SDKs' `usernames`
 * is), a null entry read as an empty one.
 */
function decodeBulkUpdate(body: unknown): BulkUpdate {
  const top = decodeFields(body, { action: 'string', users: 'any' }, 'bulkACLUpdate');
  const users: RawEntry[] = [];
  if (top.users !== undefined) {
    if (!Array.isArray(top.users)) throw new DecodeError(`json: cannot unmarshal ${goKind(top.users)} into Go struct field bulkACLUpdate.users of type []common.ACLentry`);
    for (const u of top.users as unknown[]) {
      if (u === null) {
        users.push({ Username: '', ACLUserType: '', ACLRole: '' });
        continue;
      }
      if (typeof u !== 'object' || Array.isArray(u)) throw new DecodeError(`json: cannot unmarshal ${goKind(u)} into Go struct field bulkACLUpdate.users of type common.ACLentry`);
      // Go names the innermost struct, then the field's path from the top.
      const f = decodeFields(u, { Username: 'string', ACLUserType: 'string', ACLRole: 'string' }, 'ACLentry.users');
      users.push({ Username: str(f.Username), ACLUserType: str(f.ACLUserType), ACLRole: str(f.ACLRole) });
    }
  }
  return { action: str(top.action), users };
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

function goKind(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'object' && v !== null) return 'object';
  return typeof v === 'boolean' ? 'bool' : typeof v;
}

/** Go's `%s` of an ACLentry. */
const showEntry = (e: RawEntry): string => `{${e.Username} ${e.ACLUserType} ${e.ACLRole}}`;

/**
 * The reference's CheckAddACLInputFormat / CheckRemoveACLInputFormat: a user type, a username,
 * and for an objects ACL add a role; a destinations ACL has no roles, so its entries become `na`.
 */
function checkEntries(aclType: AclType, action: 'add' | 'remove', users: readonly RawEntry[]): StoredAclEntry[] {
  return users.map((u) => {
    const fail = (message: string): never => {
      throw new BadRequestError(`Invalid ACL entry for update. Error: ${message}`);
    };
    if (!isUserType(u.ACLUserType)) fail(`aclUserType "${u.ACLUserType}" is invalid for ACL entry ${showEntry(u)}, it should be "user", or "node"`);
    if (u.Username.trim() === '') {
      fail(action === 'add' ? `username/nodename cannot be empty for ACL entry ${showEntry(u)}.` : `"Username" cannot be empty for ACL entry ${showEntry(u)}.`);
    }
    let role: StoredAclEntry['aclRole'] = 'na';
    if (action === 'add' && aclType === 'objects') {
      if (u.ACLRole !== 'aclWriter' && u.ACLRole !== 'aclReader') {
        fail(`aclRole "${u.ACLRole}" is invalid for ACL entry ${showEntry(u)}, it should be "aclWriter", or "aclReader"`);
      }
      role = u.ACLRole as StoredAclEntry['aclRole'];
    }
    return { username: u.Username, aclUserType: u.ACLUserType as StoredAclEntry['aclUserType'], aclRole: role };
  });
}

/** ACLentry has no JSON tags in the reference: its keys go out capitalised. [ref rest-api §3.5] */
function wireEntry(e: StoredAclEntry): { Username: string; ACLUserType: string; ACLRole: string } {
  return { Username: e.username, ACLUserType: e.aclUserType, ACLRole: e.aclRole };
}

/**
 * GET: `all_keys=true` lists the org's ACL keys; otherwise the entries of the ACL named by the
 * `key` query (none: the all-types ACL), of one user type when `acl_usertype` is given. 404 when
 * empty. A path key is ignored, as in the reference. [ref rest-api §1.5]
 */
export async function getAcl(ctx: RouteContext): Promise<void> {
  const aclType = ctx.params.aclType as AclType;
  const org = ctx.params.orgID ?? '';
  let allKeys: boolean | undefined;
  try {
    allKeys = boolQuery(ctx.req, 'all_keys');
  } catch {
    throw new BadRequestError('');
  }
  const key = queryString(ctx.req, 'key') ?? '';
  const userType = queryString(ctx.req, 'acl_usertype') ?? '';
  if (userType !== '' && !isUserType(userType)) {
    throw new BadRequestError(`Invalid acl user type ${userType} in URL. If specified, the value should be "user" or "node"`);
  }
  validateSecurityParams({ org, key, aclUserType: userType });
  if (allKeys === true) {
    const keys = await ctx.deps.store.listAclKeys(aclType, org);
    if (keys.length === 0) throw new NotFoundError();
    sendJson(ctx.res, keys);
    return;
  }
  // [ref rest-api §5.15] filtered by user type, as the reference's MongoDB store does.
  const entries = (await ctx.deps.store.getAcl(aclType, org, key === '' ? ALL_TYPES_ACL_KEY : key)).filter((e) => userType === '' || e.aclUserType === userType);
  if (entries.length === 0) throw new NotFoundError();
  sendJson(ctx.res, entries.map(wireEntry));
}

/**
 * PUT: a bulk add or remove on the ACL of `{key}`, or on the all-types ACL without a key.
 * An empty `users` list (the SDKs' `usernames` format included) changes nothing. [ref rest-api §1.5, §3.5]
 */
export async function putAcl(ctx: RouteContext): Promise<void> {
  const aclType = ctx.params.aclType as AclType;
  const org = ctx.params.orgID ?? '';
  const key = ctx.params.key ?? '';
  validateSecurityParams({ org, key });
  let update: BulkUpdate;
  try {
    update = decodeBulkUpdate(await readJson(ctx.req, ctx.deps.maxRequestBodySize, JSON_PREFIX));
  } catch (e) {
    if (e instanceof DecodeError) throw new BadRequestError(`${JSON_PREFIX}${e.message}`);
    throw e;
  }
  const action = update.action.toLowerCase();
  if (action !== 'add' && action !== 'remove') throw new BadRequestError(`Invalid action (${update.action}) in payload.`);
  const entries = checkEntries(aclType, action, update.users);
  const aclKey = key === '' ? ALL_TYPES_ACL_KEY : key;
  if (action === 'add') await ctx.deps.store.addAclEntries(aclType, org, aclKey, entries);
  else await ctx.deps.store.removeAclEntries(aclType, org, aclKey, entries);
  if (entries.length > 0) ctx.deps.logger.info({ org, aclType, key: aclKey, action, entries: entries.length, by: ctx.identity.userID }, 'ACL changed');
  sendNoContent(ctx.res);
}

/** DELETE: removes one entry; absent is no error; the ACL goes with its last entry. [ref rest-api §1.5] */
export async function deleteAclEntry(ctx: RouteContext): Promise<void> {
  const aclType = ctx.params.aclType as AclType;
  const { orgID: org = '', key = '', aclUserType = '', username = '' } = ctx.params;
  validateSecurityParams({ org, key, aclUserType, username });
  await ctx.deps.store.removeAclEntries(aclType, org, key, [{ username, aclUserType: aclUserType as StoredAclEntry['aclUserType'] }]);
  ctx.deps.logger.info({ org, aclType, key, aclUserType, username, by: ctx.identity.userID }, 'ACL entry removed');
  sendNoContent(ctx.res);
}

/**
 * Every request under /api/v1/security/ of a CSS, once authenticated as a client identity:
 * `parts` is the path after `security/`, split on `/` as the reference splits it (a trailing
 * slash is an empty last part). The checks come in the reference's order, which differs from
 * the other collections': the role (403) before the depth (400), the org (403), the ACL type
 * (400) and the method (405). [ref rest-api §1.5; apiServer.go handleSecurity]
 */
export async function handleSecurity(ctx: RouteContext, parts: readonly string[]): Promise<void> {
  const { role } = ctx.identity;
  if (role !== 'admin' && role !== 'syncAdmin') throw new UnauthorizedError();
  if (parts.length < 2 || parts.length > 5) throw new BadRequestError('');
  const [aclType = '', orgID = '', ...rest] = parts;
  if (!canManageAcls(ctx.identity, orgID)) throw new UnauthorizedError();
  if (!isAclType(aclType)) throw new BadRequestError('');
  const params = { ...ctx.params, aclType, orgID };
  const route = { ...ctx, params };
  switch (ctx.req.method) {
    case 'DELETE': {
      const [key = '', aclUserType = '', username = ''] = rest;
      if (rest.length !== 3) throw new BadRequestError('');
      await deleteAclEntry({ ...route, params: { ...params, key, aclUserType, username } });
      return;
    }
    case 'GET':
      if (rest.length > 1) throw new BadRequestError('');
      await getAcl(route);
      return;
    case 'PUT':
      if (rest.length === 0) await putAcl(route);
      else if (rest.length === 1) await putAcl({ ...route, params: { ...params, key: rest[0] ?? '' } });
      // [ref rest-api §5.11] deeper PUTs match no branch of the reference: 200, empty, no change.
      else ctx.res.status(200).end();
      return;
    default:
      throw new MethodNotAllowedError();
  }
}
