/**
 * Who a control message comes from, on the CSS: the ESS its topic names, provided the payload
 * names the same one (the reference trusts the payload alone). [ref sync-protocol §2 "MQTT
 * authenticity"]
 */
import { describe, expect, it } from '@jest/globals';
import { emptyMetaData, type MetaData } from '../../../../lib/model/index.js';
import { emptyDestination, type ControlMessage } from '../../../../lib/transport/mqtt/control-codec.js';
import { messageOrigin } from '../../../../lib/transport/mqtt/css-message-origin.js';
import { parseSyncTopic, type SyncTopic } from '../../../../lib/transport/mqtt/topics.js';

const topic: SyncTopic = parseSyncTopic('iot-2/type/edge/id/node1/evt/sync-cmd/fmt/bin')!;

type MessageInput = Partial<Omit<ControlMessage, 'meta' | 'destination'>> & { meta?: Partial<MetaData>; destination?: Partial<ControlMessage['destination']> };

function msg(over: MessageInput): ControlMessage {
  return {
    command: 'register',
    offset: 0n,
    persistent: false,
    feedbackCode: 0,
    feedbackFromOrigin: false,
    retry: 0,
    reason: '',
    ...over,
    destination: { ...emptyDestination(), ...over.destination },
    meta: { ...emptyMetaData(), ...over.meta },
  };
}

const NODE1 = { kind: 'peer', peer: { orgID: 'myorg', destType: 'edge', destID: 'node1' } };
const asReceiver = { destinationOrgID: 'myorg', destinationType: 'edge', destinationID: 'node1', originType: 'Cloud', originID: 'Cloud' };
const asOrigin = { destinationOrgID: 'myorg', destinationType: 'edge', destinationID: 'node1', originType: 'edge', originID: 'node1' };

describe('the origin of an MQTT message on the CSS', () => {
  it('is the ESS a registration names in its destination, when the topic names it too', () => {
    for (const command of ['register', 'registerNew', 'ping', 'resend'] as const) {
      expect(messageOrigin(msg({ command, destination: { destinationOrgID: 'myorg', destinationType: 'edge', destinationID: 'node1' } }), topic, '')).toEqual(NODE1);
      expect(messageOrigin(msg({ command, destination: { destinationOrgID: 'myorg', destinationType: 'edge', destinationID: 'node2' } }), topic, '')).toMatchObject({ kind: 'refused', claimed: 'myorg/edge/node2' });
    }
  });

  it("is the object's receiver for the acks of a CSS object, the topic's ESS when the meta names none", () => {
    for (const command of ['updated', 'received', 'consumed', 'ackDelete', 'deleted', 'getdata'] as const) {
      expect(messageOrigin(msg({ command, meta: asReceiver }), topic, '')).toEqual(NODE1);
      expect(messageOrigin(msg({ command, meta: { ...asReceiver, destinationID: 'node7' } }), topic, '')).toMatchObject({ kind: 'refused' });
      expect(messageOrigin(msg({ command, meta: { ...asReceiver, destinationType: '', destinationID: '' } }), topic, '')).toEqual(NODE1);
    }
  });

  it("is the object's origin for what an ESS says of its own objects", () => {
    for (const command of ['update', 'delete', 'ackreceived', 'ackconsumed', 'ackDeleted'] as const) {
      // The reference's acks leave the destination empty (traffic mqtt-ess-to-css.jsonl 6).
      expect(messageOrigin(msg({ command, meta: { ...asOrigin, destinationType: '', destinationID: '' } }), topic, '')).toEqual(NODE1);
      expect(messageOrigin(msg({ command, meta: { ...asOrigin, originID: 'node2' } }), topic, '')).toMatchObject({ kind: 'refused', claimed: 'myorg/edge/node2' });
    }
  });

  it('reads feedback as from the receiver, or from the origin when it says so', () => {
    expect(messageOrigin(msg({ command: 'feedback', meta: asReceiver }), topic, '')).toEqual(NODE1);
    expect(messageOrigin(msg({ command: 'feedback', feedbackFromOrigin: true, meta: asReceiver }), topic, '')).toMatchObject({ kind: 'refused' });
    expect(messageOrigin(msg({ command: 'feedback', feedbackFromOrigin: true, meta: asOrigin }), topic, '')).toEqual(NODE1);
  });

  it("takes a single-org CSS's own org, and refuses a payload naming another", () => {
    expect(messageOrigin(msg({ command: 'received', meta: { ...asReceiver, destinationOrgID: '' } }), topic, 'myorg')).toEqual(NODE1);
    expect(messageOrigin(msg({ command: 'received', meta: { ...asReceiver, destinationOrgID: 'other' } }), topic, 'myorg')).toMatchObject({ kind: 'refused' });
  });

  it('refuses a payload of no org on a multi-org CSS', () => {
    expect(messageOrigin(msg({ command: 'register', destination: { destinationType: 'edge', destinationID: 'node1' } }), topic, '')).toMatchObject({ kind: 'refused' });
  });

  it('ignores what only a CSS sends', () => {
    for (const command of ['regack', 'registerAsNew', 'ackresend'] as const) expect(messageOrigin(msg({ command }), topic, '')).toEqual({ kind: 'ignored' });
  });
});
