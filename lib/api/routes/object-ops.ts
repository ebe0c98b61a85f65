/**
 * Operations on one object: app marks, status, destinations and data.
 * [ref rest-api §1.2 O7–O17]
 */
import { pipeline } from 'node:stream/promises';
import {
  BadRequestError,
  NotFoundError,
  UnauthorizedError,
  decodeFields,
  DecodeError,
  isDestinationsListEntry,
} from '../../model/index.js';
import { activate, markConsumed, markDeleted, markPolicyReceived, markReceived } from '../../sync/object-marks.js';
import { destinationsOf } from '../../sync/object-queries.js';
import { objectLogFields } from '../../model/log-fields.js';
import type { ObjectService } from '../../sync/object-service.js';
import { canWrite, readableObject, requireFullAccess, requireMayWriteInOrg } from '../authz.js';
import { parseContentRange, parseRange, readJson } from '../../http/request.js';
import { sendDataHeaders, sendJson, sendNoContent, sendText } from '../../http/response.js';
import type { RouteContext } from '../context.js';

type Mark = (svc: ObjectService, org: string, type: string, id: string) => Promise<void>;

function ids(ctx: RouteContext): { orgID: string; objectType: string; objectID: string } {
  return ctx.params as { orgID: string; objectType: string; objectID: string };
}

/** The marks need full read access; being public is not enough. [ref rest-api §4.5] */
function markRoute(mark: Mark): (ctx: RouteContext) => Promise<void> {
  return async (ctx) => {
    const { orgID, objectType, objectID } = ids(ctx);
    await requireFullAccess(ctx, orgID, objectType, objectID);
    await mark(ctx.deps.objects, orgID, objectType, objectID);
    sendNoContent(ctx.res);
  };
}

export const putConsumed = markRoute(markConsumed);
export const putReceived = markRoute(markReceived);
export const putDeleted = markRoute(markDeleted);
export const putActivate = markRoute(activate);

/** O11: CSS only; the ESS answers a bare 400. */
export async function putPolicyReceived(ctx: RouteContext): Promise<void> {
  if (ctx.deps.objects.node.nodeType === 'ESS') throw new BadRequestError('');
  await markRoute(markPolicyReceived)(ctx);
}

/** O12: the bare status string, with the reference's `plain/text` content type (sic). */
export async function getStatus(ctx: RouteContext): Promise<void> {
  const { orgID, objectType, objectID } = ids(ctx);
  const obj = await readableObject(ctx, orgID, objectType, objectID);
  sendText(ctx.res, 200, obj.status, 'plain/text');
}

/** O13: where the object goes and how far it got. Always 404 on the ESS. */
export async function getDestinations(ctx: RouteContext): Promise<void> {
  const { orgID, objectType, objectID } = ids(ctx);
  const obj = await readableObject(ctx, orgID, objectType, objectID);
  if (ctx.deps.objects.node.nodeType === 'ESS') throw new NotFoundError();
  const list = destinationsOf(await ctx.deps.notifications.listForObject(orgID, obj.meta.objectType, obj.meta.objectID));
  if (list.length === 0) throw new NotFoundError();
  sendJson(ctx.res, list);
}

function checkDestinations(list: unknown): string[] {
  if (!Array.isArray(list) || list.some((d) => typeof d !== 'string')) {
    throw new BadRequestError('Invalid JSON for update. Error: json: cannot unmarshal into Go value of type []string');
  }
  for (const d of list as string[]) {
    if (d.includes('<') || d.includes('>')) {
      throw new BadRequestError(`Unsupported char in destinationsList. Error: destinationsList contains unsupported char: < or > (${d})`);
    }
    if (!isDestinationsListEntry(d)) throw new BadRequestError(`Invalid destination (${d}), expected destinationType:destinationID`);
  }
  return list as string[];
}

/** Loads the object a destinations change targets and checks the caller may write it. */
async function writableForDestinations(ctx: RouteContext): Promise<void> {
  if (ctx.deps.objects.node.nodeType === 'ESS') throw new BadRequestError("ESS doesn't support destinations update");
  const { orgID, objectType, objectID } = ids(ctx);
  requireMayWriteInOrg(ctx, orgID);
  const obj = await ctx.deps.objects.get(orgID, objectType, objectID);
  if (obj === null) throw new NotFoundError();
  if (!(await canWrite(ctx, orgID, obj.meta))) throw new UnauthorizedError();
}

async function setDestinations(ctx: RouteContext, change: (current: string[]) => string[]): Promise<void> {
  const { orgID, objectType, objectID } = ids(ctx);
  await ctx.deps.objects.modify(orgID, objectType, objectID, (obj) => {
    if (obj === null) throw new NotFoundError();
    const list = change(obj.meta.destinationsList ?? []);
    return { ...obj, meta: { ...obj.meta, destinationsList: list, destinationType: '', destinationID: '' } };
  });
}

/** O14: replace the destinations list. */
export async function putDestinations(ctx: RouteContext): Promise<void> {
  await writableForDestinations(ctx);
  const list = checkDestinations(await readJson(ctx.req, ctx.deps.maxRequestBodySize, 'Invalid JSON for update. Error: '));
  await setDestinations(ctx, () => [...new Set(list)]);
  sendNoContent(ctx.res);
}

/**
 * O15: add or remove destinations. The reference checks no write permission here; we apply
 * the same write check as O14 (see README, compatibility).
 */
export async function postDestinations(ctx: RouteContext): Promise<void> {
  await writableForDestinations(ctx);
  const prefix = 'Invalid JSON for add/remove destinations. Error: ';
  const body = await readJson(ctx.req, ctx.deps.maxRequestBodySize, prefix);
  let fields: Record<string, unknown>;
  try {
    fields = decodeFields(body, { action: 'string', destinations: 'stringList' }, 'destinationsUpdate');
  } catch (e) {
    if (e instanceof DecodeError) throw new BadRequestError(`${prefix}${e.message}`);
    throw e;
  }
  const action = typeof fields.action === 'string' ? fields.action : '';
  const list = checkDestinations(fields.destinations ?? []);
  if (action === 'add') await setDestinations(ctx, (cur) => [...new Set([...cur, ...list])]);
  else if (action === 'remove') await setDestinations(ctx, (cur) => cur.filter((d) => !list.includes(d)));
  else throw new BadRequestError(`Invalid action (${action}) in payload.`);
  sendNoContent(ctx.res);
}

const DATA_FORBIDDEN = 'Unauthorized. The object may not exist or be public.\n';

/** O16: the data, whole or one `bytes=S-E` range. */
export async function getData(ctx: RouteContext): Promise<void> {
  const { orgID, objectType, objectID } = ids(ctx);
  const rangeHeader = ctx.req.headers.range;
  const range = rangeHeader !== undefined ? parseRange(rangeHeader) : undefined;
  const obj = await readableObject(ctx, orgID, objectType, objectID, new UnauthorizedError(DATA_FORBIDDEN));
  const abort = new AbortController();
  ctx.res.on('close', () => abort.abort());
  const read = ctx.deps.objects.openData(obj, range, abort.signal);
  const res = ctx.res;
  sendDataHeaders(res, read);
  await pipeline(read.stream, res);
}

/** O17: replace the data, whole or as one chunk of a `Content-Range` upload. */
export async function putData(ctx: RouteContext): Promise<void> {
  const { orgID, objectType, objectID } = ids(ctx);
  const { req, deps } = ctx;
  const crHeader = req.headers['content-range'];
  const contentRange = crHeader !== undefined ? parseContentRange(crHeader) : undefined;
  requireMayWriteInOrg(ctx, orgID);
  const obj = await deps.objects.get(orgID, objectType, objectID);
  if (obj === null) throw new NotFoundError();
  if (!(await canWrite(ctx, orgID, obj.meta))) throw new UnauthorizedError();
  const abort = new AbortController();
  req.on('close', () => {
    if (!req.complete) abort.abort();
  });
  const lengthHeader = req.headers['content-length'];
  const size = lengthHeader !== undefined ? Number(lengthHeader) : undefined;
  if (contentRange) {
    const expected = contentRange.end - contentRange.start + 1;
    if (size !== undefined && size !== expected) {
      throw new BadRequestError(`Content-Length (${size}) does not match the Content-Range length (${expected})`);
    }
    await deps.objects.putDataChunk(orgID, objectType, objectID, contentRange, req, abort.signal);
    ctx.res.set('MMS-Upload-Owner', deps.objects.node.destinationID);
    if (contentRange.end + 1 === contentRange.total) deps.logger.info({ ...objectLogFields(orgID, objectType, objectID), size: contentRange.total, user: ctx.identity.userID }, 'object data stored');
  } else {
    await deps.objects.putData(orgID, objectType, objectID, req, { ...(size !== undefined ? { size } : {}), signal: abort.signal });
    deps.logger.info({ ...objectLogFields(orgID, objectType, objectID), ...(size !== undefined ? { size } : {}), user: ctx.identity.userID }, 'object data stored');
  }
  sendNoContent(ctx.res);
}
