/**
 * Batched acks, an edgesync extension of the SPI: `PUT /spi/v1/objects/{org}/acks` carries
 * several body-less acks about CSS-originated objects in one request, and answers the status
 * each would have got alone. An ESS working on many objects at once then sends one request per
 * event-loop turn instead of one per ack. A reference CSS does not know the path (it answers
 * 400); our ESS then falls back to one request per ack, so both kinds of CSS keep working.
 *
 * Body: `[{"action":"received","objectType":"t","objectID":"i","instanceID":1,"dataID":1}, …]`.
 * Answer: 200 with `[204, 409, …]`, one status per entry, in order.
 */
import type { Request, Response } from 'express';
import { readBodyText } from '../../http/request.js';
import { BadRequestError, DecodeError, MethodNotAllowedError, UnauthorizedError, decodeFields, parseJsonBody } from '../../model/index.js';
import { notRegistered } from '../../sync/css/ess-session.js';
import type { EssSession } from '../../sync/css/types.js';
import type { SenderAck } from '../../sync/sender-acks.js';
import { validateSpiName } from './spi-paths.js';

/** Acks that carry no body, the ones a batch may hold. */
export const BATCHABLE_ACKS = ['updated', 'received', 'consumed', 'ackDelete'] as const satisfies readonly SenderAck[];
export type BatchableAck = (typeof BATCHABLE_ACKS)[number];

/** One entry of a batch. */
export interface BatchedAck {
  action: BatchableAck;
  objectType: string;
  objectID: string;
  instanceID: bigint;
  dataID: bigint;
}

/** Entries per request; the client sends no more. */
export const MAX_BATCH = 1000;
/** ~150 bytes per entry, with room to spare. */
const BODY_LIMIT = 1024 * 1024;
const PREFIX = 'Invalid batch of acks: ';

function isBatchable(action: string): action is BatchableAck {
  return (BATCHABLE_ACKS as readonly string[]).includes(action);
}

/**
 * Decodes a batch body.
 * @throws BadRequestError for anything but an array of at most MAX_BATCH valid entries
 */
export function parseBatch(text: string): BatchedAck[] {
  const value = parseJsonBody(text, PREFIX);
  if (!Array.isArray(value)) throw new BadRequestError(`${PREFIX}expected a JSON array`);
  if (value.length > MAX_BATCH) throw new BadRequestError(`${PREFIX}more than ${MAX_BATCH} entries`);
  return (value as unknown[]).map((entry, i) => {
    let f: Record<string, unknown>;
    try {
      f = decodeFields(entry, { action: 'string', objectType: 'string', objectID: 'string', instanceID: 'int64', dataID: 'int64' }, `entry ${i}`);
    } catch (e) {
      if (e instanceof DecodeError) throw new BadRequestError(`${PREFIX}${e.message}`);
      throw e;
    }
    const action = (f.action as string | undefined) ?? '';
    if (!isBatchable(action)) throw new BadRequestError(`${PREFIX}entry ${i}: action (${action}) cannot be batched`);
    const objectType = (f.objectType as string | undefined) ?? '';
    const objectID = (f.objectID as string | undefined) ?? '';
    validateSpiName('Object type', objectType);
    validateSpiName('Object ID', objectID);
    const instanceID = f.instanceID as bigint | undefined;
    const dataID = f.dataID as bigint | undefined;
    if (instanceID === undefined || dataID === undefined || instanceID < 0n || dataID < 0n) {
      throw new BadRequestError(`${PREFIX}entry ${i}: instanceID and dataID must be non-negative integers`);
    }
    return { action, objectType, objectID, instanceID, dataID };
  });
}

/** The CSS handler of `PUT /spi/v1/objects/{org}/acks`. */
export function createBatchAcks(): (orgID: string, session: EssSession, req: Request, res: Response) => Promise<void> {
  return async (orgID, session, req, res) => {
    if (req.method !== 'PUT') throw new MethodNotAllowedError();
    // An ESS acks only its own records, in its own org.
    if (orgID !== session.peer.orgID) throw new UnauthorizedError();
    if ((await session.destination()) === null) throw notRegistered(session.peer);
    const batch = parseBatch(await readBodyText(req, BODY_LIMIT));
    // Started together, so their writes share one commit; each is the same decision as the
    // single-ack request's, with the same status.
    const statuses = await Promise.all(
      batch.map(async (a) => {
        const outcome = await session.ack({ objectType: a.objectType, objectID: a.objectID, instanceID: a.instanceID, dataID: a.dataID }, a.action);
        return outcome === 'applied' || outcome === 'duplicate' ? 204 : 409;
      }),
    );
    const body = JSON.stringify(statuses);
    res.status(200).setHeader('Content-Type', 'application/json').setHeader('Content-Length', String(Buffer.byteLength(body))).end(body);
  };
}
