/**
 * Organizations of a multi-tenant CSS. [ref rest-api §1.4]
 */
import { BadRequestError, InternalError, NotFoundError, UnauthorizedError, decodeFields, DecodeError, validatePathParam } from '../../model/index.js';
import { canManageOrgs } from '../authz.js';
import { sealBrokerPassword } from '../../security/org-secrets.js';
import { readJson } from '../../http/request.js';
import { sendJson, sendNoContent } from '../../http/response.js';
import type { RouteContext } from '../context.js';

function refuseOnEss(ctx: RouteContext, message: string): void {
  if (ctx.deps.objects.node.nodeType === 'ESS') throw new BadRequestError(message);
}

/** A CSS started with ORG_ID serves that one org only. */
function refuseSingleOrg(ctx: RouteContext): void {
  if (ctx.deps.objects.node.orgID !== '') throw new BadRequestError("Can't modify organizations for single organization CSS");
}

/**
 * The org's broker password as it is stored: sealed (the reference stores it in plaintext). A
 * node without a sealing key refuses to store a password rather than keep it in the clear.
 */
function storedPassword(ctx: RouteContext, org: string, password: string): string {
  if (password === '') return '';
  if (ctx.deps.orgSecrets === undefined) throw new InternalError('This node has no key to seal broker passwords with; the password was not stored');
  return sealBrokerPassword(org, password, ctx.deps.orgSecrets);
}

export async function listOrganizations(ctx: RouteContext): Promise<void> {
  const { role, orgID } = ctx.identity;
  if (role !== 'admin' && role !== 'syncAdmin') throw new UnauthorizedError();
  refuseOnEss(ctx, "Failed to fetch the list of organizations. Error: ESS doesn't have organizations");
  const orgs = await ctx.deps.store.listOrganizations();
  if (orgs.length === 0) throw new NotFoundError();
  // [ref rest-api §5.1] an admin whose org is not listed gets 200 [], not 404. Never the user or
  // password: the reference lists `org-id` and `address` only.
  const shown = role === 'syncAdmin' ? orgs : orgs.filter((o) => o.orgID === orgID);
  sendJson(ctx.res, shown.map((o) => ({ 'org-id': o.orgID, address: o.address })));
}

export async function putOrganization(ctx: RouteContext): Promise<void> {
  const org = ctx.params.orgID ?? '';
  if (!canManageOrgs(ctx, org)) throw new UnauthorizedError();
  const prefix = 'Invalid JSON for update. Error: ';
  const body = await readJson(ctx.req, ctx.deps.maxRequestBodySize, prefix);
  let f: Record<string, unknown>;
  try {
    f = decodeFields(body, { orgID: 'string', user: 'string', password: 'string', address: 'string' }, 'Organization');
  } catch (e) {
    if (e instanceof DecodeError) throw new BadRequestError(`${prefix}${e.message}`);
    throw e;
  }
  refuseOnEss(ctx, "ESS can't add organization");
  refuseSingleOrg(ctx);
  const payloadOrg = typeof f.orgID === 'string' ? f.orgID : '';
  if (payloadOrg !== org) throw new BadRequestError(`Org ID (${org}) in the URL doesn't match the org-id (${payloadOrg}) in the payload`);
  validatePathParam('Organization ID', payloadOrg);
  await ctx.deps.store.putOrganization({
    orgID: org,
    address: typeof f.address === 'string' ? f.address : '',
    user: typeof f.user === 'string' ? f.user : '',
    password: storedPassword(ctx, org, typeof f.password === 'string' ? f.password : ''),
    lastUpdate: Date.now(),
  });
  ctx.deps.logger.info({ org, by: ctx.identity.userID }, 'organization stored');
  sendNoContent(ctx.res);
}

export async function deleteOrganization(ctx: RouteContext): Promise<void> {
  const org = ctx.params.orgID ?? '';
  if (!canManageOrgs(ctx, org)) throw new UnauthorizedError();
  refuseOnEss(ctx, "ESS can't delete organization");
  refuseSingleOrg(ctx);
  // [ref rest-api §1.4] everything keyed by the org goes, ACLs included; the rows first, in one
  // transaction, then the data files they referred to.
  const { blobIds, stagingIds } = await ctx.deps.store.deleteOrganization(org);
  await ctx.deps.objects.releaseBlobs(blobIds);
  await ctx.deps.objects.releaseStagingAreas(stagingIds);
  ctx.deps.webhooks?.forgetOrg(org);
  ctx.deps.logger.info({ org, by: ctx.identity.userID, blobs: blobIds.length, uploads: stagingIds.length }, 'organization deleted');
  sendNoContent(ctx.res);
}
