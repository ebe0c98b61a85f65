/**
 * GET /api/v1/fleet/{orgID}/events (an edgesync extension): the fleet snapshot as server-sent
 * events, sent again whenever it changes. A fresh snapshot rather than a change notice keeps the
 * page simple (it renders what arrives) and costs one request per page instead of two.
 *
 * The store is polled once a second per connected page: deliveries and registrations change in
 * records that other CSS processes may write, which no in-process event sees. The live transfer
 * view wakes the loop sooner, at most twice a second, so progress bars move with the bytes.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { RouteContext } from '../context.js';
import { fleetOrg, fleetSnapshot, snapshotQuery } from './fleet.js';

const POLL_MS = 1000;
/** At most two snapshots a second, however fast the transfer events come. */
const MIN_GAP_MS = 500;
/** A comment line now and then, so that proxies and the browser keep an idle stream open. */
const KEEPALIVE_MS = 15_000;

export async function getFleetEvents(ctx: RouteContext): Promise<void> {
  const org = fleetOrg(ctx);
  const query = snapshotQuery(ctx);
  const { res, deps } = ctx;
  res.status(200);
  res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
  // Tells nginx and similar proxies not to hold the stream back.
  res.setHeader('X-Accel-Buffering', 'no');
  res.flushHeaders();

  let closed = false;
  let wake: (() => void) | null = null;
  const stop = (): void => {
    closed = true;
    wake?.();
  };
  // The response's close, not the request's: a GET's request closes once read, the response when the client goes.
  res.on('close', stop);
  const off = deps.transfers?.onChange(() => wake?.());

  let sent = '';
  let lastWrite = Date.now();
  let lastBuilt = 0;
  try {
    while (!closed && deps.isRunning()) {
      const gap = Date.now() - lastBuilt;
      if (gap < MIN_GAP_MS) await delay(MIN_GAP_MS - gap);
      if (closed) break;
      lastBuilt = Date.now();
      const snap = await fleetSnapshot(ctx, org, query);
      const { generatedAt: _at, ...content } = snap;
      const key = JSON.stringify(content);
      // A reader that does not keep up gets the next change rather than a growing buffer.
      if (key !== sent && !res.writableNeedDrain) {
        res.write(`event: snapshot\ndata: ${JSON.stringify(snap)}\n\n`);
        sent = key;
        lastWrite = Date.now();
      } else if (Date.now() - lastWrite >= KEEPALIVE_MS) {
        res.write(': keepalive\n\n');
        lastWrite = Date.now();
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, POLL_MS);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = null;
    }
  } catch (err) {
    // The answer has started: the stream ends and the page reconnects.
    deps.logger.warn({ err, orgID: org }, 'fleet event stream ended by an error');
  } finally {
    off?.();
    res.off('close', stop);
    res.end();
  }
}
