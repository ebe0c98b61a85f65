/**
 * The ESS nodes a CSS knows and what is addressed to each. [ref rest-api §1.3]
 */
import { NotFoundError, UnauthorizedError } from '../../model/index.js';
import { objectsToward } from '../../sync/object-queries.js';
import { canAccessDestinations } from '../authz.js';
import { sendJson } from '../../http/response.js';
import type { RouteContext } from '../context.js';

export async function listDestinations(ctx: RouteContext): Promise<void> {
  const org = ctx.params.orgID ?? '';
  if (!canAccessDestinations(ctx, org)) throw new UnauthorizedError();
  const dests = await ctx.deps.store.listDestinations(org);
  if (dests.length === 0) throw new NotFoundError();
  sendJson(
    ctx.res,
    dests.map((d) => ({
      destinationOrgID: d.destinationOrgID,
      destinationType: d.destinationType,
      destinationID: d.destinationID,
      communication: d.communication,
      codeVersion: d.codeVersion,
    })),
  );
}

/** Objects with delivery under way or done toward one node (pending ones are not listed). */
export async function listDestinationObjects(ctx: RouteContext): Promise<void> {
  const { orgID = '', destType = '', destID = '' } = ctx.params;
  if (!canAccessDestinations(ctx, orgID)) throw new UnauthorizedError();
  const out = await objectsToward(ctx.deps.notifications, orgID, destType, destID);
  if (out.length === 0) throw new NotFoundError();
  sendJson(ctx.res, out);
}
