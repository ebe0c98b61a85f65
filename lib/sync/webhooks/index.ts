/** Webhooks that fire: delivery, the delivery log, and which targets may be called. */
export { WebhookDispatcher, webhookEvent, type WebhookDispatcherOptions } from './dispatcher.js';
export { DeliveryLog, DEFAULT_LOG_LIMITS, type DeliveryState, type WebhookAttempt, type WebhookDelivery, type WebhookEvent } from './delivery-log.js';
export { TargetPolicy, UnresolvedTargetError, WebhookTargetError, parseNetworks, type TargetPolicyOptions } from './targets.js';
