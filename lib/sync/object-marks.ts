/**
 * The application's acknowledgements on a receiving node: consumed, received, deleted, and
 * the sender-side activate / policyreceived marks. [ref rest-api §1.2 O7–O11]
 */
import { BadRequestError, isReceiverStatus, type ObjectStatus } from '../model/index.js';
import type { StoredObject } from '../store/types.js';
import type { ObjectService } from './object-service.js';

const RECEIVED_STATES: readonly ObjectStatus[] = ['completelyReceived', 'objreceived'];

/**
 * The route's 400. The reference's "invalid attempt" reasons end in a newline of their own and
 * the error response adds another, so those bodies end in `\n\n`. [ref rest-api §1.2 O7]
 */
function fail(prefix: string, reason: string): never {
  throw new BadRequestError(`${prefix}${reason}`);
}

export async function markConsumed(svc: ObjectService, org: string, type: string, id: string): Promise<void> {
  const prefix = 'Failed to mark the object as consumed. Error: ';
  await svc.modify(org, type, id, (obj) => {
    if (obj === null) fail(prefix, 'Failed to find object to mark as consumed');
    if (!RECEIVED_STATES.includes(obj.status)) fail(prefix, `Invalid attempt to mark object in status ${obj.status} as consumed\n`);
    const remaining = Math.max(0, obj.remainingConsumers - 1);
    return { ...obj, remainingConsumers: remaining, status: remaining === 0 ? 'objconsumed' : obj.status };
  });
}

export async function markReceived(svc: ObjectService, org: string, type: string, id: string): Promise<void> {
  const prefix = 'Failed to mark the object as received. Error: ';
  await svc.modify(org, type, id, (obj) => {
    if (obj === null) fail(prefix, 'Failed to find object to mark as received');
    if (!RECEIVED_STATES.includes(obj.status)) fail(prefix, `Invalid attempt to mark object in status ${obj.status} as received\n`);
    const remaining = Math.max(0, obj.remainingReceivers - 1);
    return { ...obj, remainingReceivers: remaining, status: remaining === 0 ? 'objreceived' : obj.status };
  });
}

/**
 * The app confirms a deletion that came from the other side; once every consumer has, the
 * object goes away locally.
 */
export async function markDeleted(svc: ObjectService, org: string, type: string, id: string): Promise<void> {
  const prefix = "Failed to confirm object's deletion. Error: ";
  let gone: StoredObject | null = null;
  await svc.modify(org, type, id, (obj) => {
    if (obj === null) fail(prefix, 'Failed to find object to confirm deletion');
    if (obj.status !== 'objdeleted') fail(prefix, `Invalid attempt to confirm deletion of object in status ${obj.status}\n`);
    const remaining = Math.max(0, obj.remainingConsumers - 1);
    if (remaining === 0) gone = obj;
    return { ...obj, remainingConsumers: remaining };
  });
  if (gone !== null) await svc.removeConfirmedDeletion(org, type, id);
}

export async function activate(svc: ObjectService, org: string, type: string, id: string): Promise<void> {
  const prefix = 'Failed to mark the object as active. Error: ';
  await svc.modify(org, type, id, (obj) => {
    if (obj === null) fail(prefix, 'Object not found');
    if (isReceiverStatus(obj.status)) fail(prefix, "Can't activate object on the receiving side");
    return { ...obj, meta: { ...obj.meta, inactive: false } };
  });
}

export async function markPolicyReceived(svc: ObjectService, org: string, type: string, id: string): Promise<void> {
  await svc.modify(org, type, id, (obj) => {
    if (obj === null) fail('Failed to mark the object as having its policy received. Error: ', 'Object not found');
    return { ...obj, policyReceived: true };
  });
}
