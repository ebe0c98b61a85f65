/**
 * Object metadata routes and per-type listings. [ref rest-api §1.2 O1–O6]
 */
import {
  BadRequestError,
  NotFoundError,
  UnauthorizedError,
  decodeFields,
  DecodeError,
  decodeObjectUpdate,
  orderedMetaData,
} from '../../model/index.js';
import { addressedTo, objectLogFields } from '../../model/log-fields.js';
import { objectDestinationPolicies, receivedObjects } from '../../sync/object-queries.js';
import { WebhookTargetError } from '../../sync/webhooks/index.js';
import { canDeleteObject, canManageWebhooks, canWrite, filterReadable, readLevel, readableObject } from '../authz.js';
import { boolQuery, readJson } from '../../http/request.js';
import { sendJson, sendNoContent } from '../../http/response.js';
import type { RouteContext } from '../context.js';

/** O1: metadata of one object. */
export async function getObject(ctx: RouteContext): Promise<void> {
  const { orgID, objectType, objectID } = ctx.params as { orgID: string; objectType: string; objectID: string };
  const obj = await readableObject(ctx, orgID, objectType, objectID);
  sendJson(ctx.res, orderedMetaData(obj.meta));
}

/** O2: create or replace an object, optionally with inline base64 data. */
export async function putObject(ctx: RouteContext): Promise<void> {
  const { orgID, objectType, objectID } = ctx.params as { orgID: string; objectType: string; objectID: string };
  const body = await readJson(ctx.req, ctx.deps.maxRequestBodySize, 'Invalid JSON for update. Error: ');
  const update = decodeObjectUpdate(body);
  // [ref rest-api §1.2 O2] the write check runs on the payload, before validation.
  const target = { ...update.meta, destinationOrgID: update.meta.destinationOrgID || orgID };
  if (!(await canWrite(ctx, orgID, target))) throw new UnauthorizedError();
  const stored = await ctx.deps.objects.update(orgID, objectType, objectID, update, { orgID: ctx.identity.orgID, userID: ctx.identity.userID });
  ctx.deps.logger.info(
    { ...objectLogFields(orgID, objectType, objectID, undefined, stored.meta.instanceID), addressedTo: addressedTo(stored.meta), status: stored.status, size: stored.meta.objectSize, user: ctx.identity.userID },
    'object published',
  );
  sendNoContent(ctx.res);
}

/** O3: delete an object. */
export async function deleteObject(ctx: RouteContext): Promise<void> {
  const { orgID, objectType, objectID } = ctx.params as { orgID: string; objectType: string; objectID: string };
  await canDeleteObject(ctx, orgID, objectType, objectID);
  await ctx.deps.objects.delete(orgID, objectType, objectID);
  ctx.deps.logger.info({ ...objectLogFields(orgID, objectType, objectID), user: ctx.identity.userID }, 'object deleted');
  sendNoContent(ctx.res);
}

/** O4 / O5: objects of one type, received ones by default, every one with `all_objects=true`; `webhooks=true`: the type's webhooks. */
export async function listObjects(ctx: RouteContext): Promise<void> {
  if (boolQuery(ctx.req, 'webhooks') === true) return webhookLog(ctx);
  const { orgID, objectType } = ctx.params as { orgID: string; objectType: string };
  const all = boolQuery(ctx.req, 'all_objects');
  const received = boolQuery(ctx.req, 'received') ?? false;
  const level = await readLevel(ctx, orgID, objectType);
  if (level === 'none') throw new UnauthorizedError();
  const { store } = ctx.deps;
  if (all === true) {
    const objs = filterReadable(ctx, level, await ctx.deps.objects.listAll(orgID, objectType));
    if (objs.length === 0) throw new NotFoundError();
    sendJson(ctx.res, await objectDestinationPolicies(ctx.deps.notifications, objs));
    return;
  }
  const objs = filterReadable(ctx, level, await receivedObjects(store, orgID, objectType, received));
  if (objs.length === 0) throw new NotFoundError();
  sendJson(
    ctx.res,
    objs.map((o) => orderedMetaData(o.meta)),
  );
}

/** O6: register or delete a webhook for an object type. An unknown action is a quiet no-op. */
export async function putWebhook(ctx: RouteContext): Promise<void> {
  const { orgID, objectType } = ctx.params as { orgID: string; objectType: string };
  if (!(await canManageWebhooks(ctx, orgID, objectType))) throw new UnauthorizedError();
  const body = await readJson(ctx.req, ctx.deps.maxRequestBodySize, 'Invalid JSON for update. Error: ');
  let fields: Record<string, unknown>;
  try {
    fields = decodeFields(body, { action: 'string', url: 'string' }, 'webhookUpdate');
  } catch (e) {
    if (e instanceof DecodeError) throw new BadRequestError(`Invalid JSON for update. Error: ${e.message}`);
    throw e;
  }
  const action = typeof fields.action === 'string' ? fields.action.toLowerCase() : '';
  const url = typeof fields.url === 'string' ? fields.url : '';
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new BadRequestError('Invalid webhook');
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new BadRequestError('Invalid destination data URI');
  const hook = { orgID, objectType, url };
  // A CSS refuses link-local and metadata targets, and those outside WEBHOOK_ALLOWED_NETWORKS
  // (sync/webhooks/targets.ts); they are checked again before every call.
  if (action === 'register') await checkTarget(ctx, url);
  if (action === 'register') await checkRoom(ctx, orgID, objectType, url);
  // [ref rest-api §1.2 O6] an unknown action answers 204 and does nothing.
  if (action === 'register') await ctx.deps.store.addWebhook(hook);
  else if (action === 'delete') await ctx.deps.store.removeWebhook(hook);
  sendNoContent(ctx.res);
}

/** Each change calls every hook of its type: their number is bounded, as the work of one change is. */
const MAX_WEBHOOKS_PER_TYPE = 100;

async function checkRoom(ctx: RouteContext, orgID: string, objectType: string, url: string): Promise<void> {
  const hooks = await ctx.deps.store.listWebhooks(orgID, objectType);
  if (hooks.length < MAX_WEBHOOKS_PER_TYPE) return;
  // Registering one already there (the same text: the store keeps each text once) changes nothing.
  if (hooks.some((h) => h.url === url)) return;
  throw new BadRequestError(`Invalid webhook: at most ${MAX_WEBHOOKS_PER_TYPE} webhooks per object type`);
}

async function checkTarget(ctx: RouteContext, url: string): Promise<void> {
  try {
    await ctx.deps.webhooks?.checkTarget(url);
  } catch (e) {
    if (e instanceof WebhookTargetError) throw new BadRequestError(e.message);
    throw e;
  }
}

/**
 * `GET /objects/{org}/{type}?webhooks=true` (ours): the type's registered webhooks and its
 * last deliveries, newest first, for whoever may manage the type's webhooks.
 */
async function webhookLog(ctx: RouteContext): Promise<void> {
  const { orgID, objectType } = ctx.params as { orgID: string; objectType: string };
  if (!(await canManageWebhooks(ctx, orgID, objectType))) throw new UnauthorizedError();
  const hooks = await ctx.deps.store.listWebhooks(orgID, objectType);
  sendJson(ctx.res, {
    webhooks: hooks.map((h) => h.url),
    deliveries: ctx.deps.webhooks?.deliveries(orgID, objectType) ?? [],
  });
}
