/** Object status strings, exact casing. [ref rest-api §3.1] */
export const SENDER_STATUSES = ['notReady', 'verifying', 'verificationFailed', 'ready'] as const;
export const RECEIVER_STATUSES = [
  'partiallyreceived',
  'receiverVerifying',
  'receiverVerificationFailed',
  'completelyReceived',
  'objreceived',
  'objconsumed',
  'objdeleted',
] as const;
export const OBJECT_STATUSES = [...SENDER_STATUSES, ...RECEIVER_STATUSES, 'consumedByDest'] as const;
export type ObjectStatus = (typeof OBJECT_STATUSES)[number];

export function isReceiverStatus(s: ObjectStatus): boolean {
  return (RECEIVER_STATUSES as readonly string[]).includes(s);
}

/** Statuses in which the object has no readable data yet. [ref rest-api §1.2 O16] */
export const NO_DATA_STATUSES: readonly ObjectStatus[] = [
  'notReady',
  'verifying',
  'verificationFailed',
  'partiallyreceived',
  'receiverVerifying',
  'receiverVerificationFailed',
];

/** Per-destination delivery status. [ref rest-api §3.2] */
export const DELIVERY_STATUSES = ['pending', 'delivering', 'delivered', 'consumed', 'deleted', 'error'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];
