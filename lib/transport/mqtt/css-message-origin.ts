/**
 * Who sent a control message to the CSS, and in which org. The topic names the ESS
 * (`iot-2/type/{T}/id/{I}/evt/…`; a broker with ACLs lets a node publish on its own topics
 * only); the payload names it again (destination fields, or the metadata's origin or destination
 * fields, depending on the command). The reference trusts the payload; we require both to agree
 * and refuse the message otherwise. [ref sync-protocol §2 "MQTT authenticity"]
 *
 * Upstream topics carry no org: a single-org CSS uses its own, a multi-org CSS the payload's
 * (the destination's org for registrations, the metadata's `destinationOrgID` for objects).
 */
import type { DestinationRef } from '../../model/index.js';
import type { ControlMessage } from './control-codec.js';
import type { SyncTopic } from './topics.js';

/**
 * - `peer`: the ESS the message is from;
 * - `refused`: the payload names another ESS (or org) than the topic, or none at all;
 * - `ignored`: a command an ESS never sends the CSS (regack, registerAsNew, ackresend).
 */
export type MessageOrigin =
  | { kind: 'peer'; peer: DestinationRef }
  | { kind: 'refused'; claimed: string; reason: string }
  | { kind: 'ignored' };

/** Which fields of the payload name the sending ESS. [ref mqttCommunication processMessage] */
type Claim = 'destination' | 'origin' | 'receiver';

function claimOf(msg: ControlMessage): Claim | null {
  switch (msg.command) {
    case 'register':
    case 'registerNew':
    case 'ping':
    case 'resend':
      return 'destination';
    // The ESS as the origin of an object: its `update`, `delete`, its acks of what the CSS told
    // it about that object, and its feedback as origin (it could not serve a chunk).
    case 'update':
    case 'delete':
    case 'ackreceived':
    case 'ackconsumed':
    case 'ackDeleted':
      return 'origin';
    // The ESS as the receiver of a CSS object: the metadata names it as its destination.
    case 'updated':
    case 'received':
    case 'consumed':
    case 'ackDelete':
    case 'deleted':
    case 'getdata':
      return 'receiver';
    case 'feedback':
      return msg.feedbackFromOrigin ? 'origin' : 'receiver';
    case 'regack':
    case 'registerAsNew':
    case 'ackresend':
      return null;
  }
}

/**
 * The ESS a control message received on `topic` comes from.
 * @param singleOrg the CSS's ORG_ID; '' for a multi-org CSS
 */
export function messageOrigin(msg: ControlMessage, topic: SyncTopic, singleOrg: string): MessageOrigin {
  const claim = claimOf(msg);
  if (claim === null) return { kind: 'ignored' };
  let org: string;
  let type: string;
  let id: string;
  if (claim === 'destination') {
    ({ destinationOrgID: org, destinationType: type, destinationID: id } = msg.destination);
  } else if (claim === 'origin') {
    org = msg.meta.destinationOrgID;
    type = msg.meta.originType;
    id = msg.meta.originID;
  } else {
    org = msg.meta.destinationOrgID;
    // An ack may leave the destination out (the reference's acks of a stale message do): the
    // topic then names the ESS alone.
    const named = msg.meta.destinationType !== '' || msg.meta.destinationID !== '';
    type = named ? msg.meta.destinationType : topic.destType;
    id = named ? msg.meta.destinationID : topic.destID;
  }
  const claimed = `${org}/${type}/${id}`;
  if (type !== topic.destType || id !== topic.destID) {
    return { kind: 'refused', claimed, reason: `the payload names ${type}/${id}, the topic ${topic.destType}/${topic.destID}` };
  }
  if (singleOrg !== '') {
    if (org !== '' && org !== singleOrg) return { kind: 'refused', claimed, reason: `org ${org} is not this CSS's org ${singleOrg}` };
    org = singleOrg;
  } else if (org === '') {
    return { kind: 'refused', claimed, reason: 'the payload names no org' };
  }
  return { kind: 'peer', peer: { orgID: org, destType: type, destID: id } };
}
