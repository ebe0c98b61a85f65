/**
 * Health, resend and shutdown. [ref rest-api §1.6]
 */
import { BadRequestError, UnauthorizedError } from '../../model/index.js';
import { canReadHealth, canResend, canShutdown } from '../authz.js';
import { queryString } from '../../http/request.js';
import { sendJson, sendNoContent } from '../../http/response.js';
import type { RouteContext } from '../context.js';

export async function getHealth(ctx: RouteContext): Promise<void> {
  if (!canReadHealth(ctx)) throw new UnauthorizedError();
  const details = ctx.params.details === 'true';
  sendJson(ctx.res, await ctx.deps.health.report(details));
}

/** The ESS asks the CSS to send everything again. The CSS has no one to ask. */
export function postResend(ctx: RouteContext): Promise<void> {
  if (!canResend(ctx)) throw new UnauthorizedError();
  if (ctx.deps.objects.node.nodeType === 'CSS') {
    throw new BadRequestError("Failed to send resend objects request. Error: CSS can't request to resend objects");
  }
  ctx.deps.logger.info({ by: ctx.identity.userID }, 'resend of all objects requested');
  // Sent by the sync loop, retried until the CSS acks it; answered now, as the reference does.
  ctx.deps.requestResend?.();
  sendNoContent(ctx.res);
  return Promise.resolve();
}

/**
 * Answers 204 at once and stops the service shortly after, as the reference does.
 * `restart=true|yes` exits with a code that asks the supervisor for a restart.
 */
export function postShutdown(ctx: RouteContext): Promise<void> {
  if (!canShutdown(ctx)) throw new UnauthorizedError();
  const restartRaw = (queryString(ctx.req, 'restart') ?? '').toLowerCase();
  const quiesceRaw = queryString(ctx.req, 'quiesce');
  const quiesce = quiesceRaw !== undefined && /^\d+$/.test(quiesceRaw) ? Number(quiesceRaw) : 3;
  sendNoContent(ctx.res);
  ctx.deps.logger.info({ by: ctx.identity.userID, restart: restartRaw }, 'shutdown requested through the API');
  ctx.deps.requestShutdown({ restart: restartRaw === 'true' || restartRaw === 'yes', quiesceSeconds: quiesce });
  return Promise.resolve();
}
