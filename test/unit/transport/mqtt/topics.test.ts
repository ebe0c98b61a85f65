/**
 * The plain-broker topics of the reference [ref sync-protocol §2 "Topics"], checked against the
 * captured traffic: every captured topic parses, and building it again gives the same string.
 */
import { describe, expect, it } from '@jest/globals';
import {
  CSS_EVENT_FILTER,
  CSS_LEADER_EVENT_FILTER,
  TopicNameError,
  commandTopic,
  eventTopic,
  isTopicLevel,
  parseSyncTopic,
} from '../../../../lib/transport/mqtt/topics.js';
import { allMqttMessages } from '../../../helpers/mqtt-reference-traffic.js';

describe('MQTT sync topics', () => {
  it('names the CSS → ESS and ESS → CSS topics as the reference does', () => {
    expect(commandTopic('edge', 'node1')).toBe('iot-2/type/edge/id/node1/cmd/sync-cmd/fmt/bin');
    expect(eventTopic('edge', 'node1')).toBe('iot-2/type/edge/id/node1/evt/sync-cmd/fmt/bin');
    expect(eventTopic('edge', 'node1', { leader: true })).toBe('iot-2/type/edge/id/node1/evt/sync-cmd-leader/fmt/bin');
    expect(CSS_EVENT_FILTER).toBe('iot-2/type/+/id/+/evt/sync-cmd/fmt/bin');
    expect(CSS_LEADER_EVENT_FILTER).toBe('iot-2/type/+/id/+/evt/sync-cmd-leader/fmt/bin');
  });

  it('parses every captured topic, and builds each one back to the same string', () => {
    const messages = allMqttMessages();
    expect(messages.length).toBe(72);
    for (const m of messages) {
      const parsed = parseSyncTopic(m.topic);
      expect(parsed).not.toBeNull();
      const t = parsed!;
      expect({ destType: t.destType, destID: t.destID }).toEqual({ destType: 'edge', destID: 'node1' });
      // The README: css->ess is …/cmd/…, ess->css is …/evt/…
      expect(t.direction).toBe(m.dir === 'css->ess' ? 'cmd' : 'evt');
      const rebuilt = t.direction === 'cmd' ? commandTopic(t.destType, t.destID) : eventTopic(t.destType, t.destID, { leader: t.leader });
      expect(rebuilt).toBe(m.topic);
    }
    expect(messages.filter((m) => parseSyncTopic(m.topic)?.leader === true).length).toBeGreaterThan(0);
  });

  it('returns null for a topic that is not a sync topic', () => {
    for (const topic of [
      '',
      'iot-2/type/edge/id/node1/cmd/sync-cmd/fmt/json',
      'iot-2/type/edge/id/node1/cmd/sync-cmd-leader/fmt/bin',
      'iot-2/type/edge/id/node1/evt/other/fmt/bin',
      'iot-3/type/edge/id/node1/evt/sync-cmd/fmt/bin',
      'iot-2/type//id/node1/evt/sync-cmd/fmt/bin',
      'iot-2/type/edge/id/node1/evt/sync-cmd/fmt/bin/extra',
      'iot-2/type/edge/node1/evt/sync-cmd/fmt/bin',
      '$SYS/broker/uptime',
    ]) {
      expect(parseSyncTopic(topic)).toBeNull();
    }
  });

  it('refuses a type or id that cannot be one topic level, with a TopicNameError', () => {
    for (const bad of ['', 'a/b', 'a+', '#', 'x\u0000y']) {
      expect(isTopicLevel(bad)).toBe(false);
      expect(() => commandTopic(bad, 'node1')).toThrow(TopicNameError);
      expect(() => eventTopic('edge', bad)).toThrow(TopicNameError);
    }
    // What a REST name may hold (lib/model names.ts) except '#' is fine as a level.
    for (const good of ['edge', 'n-1_x.y~z', 'a|b!c@d$e^f*g', 'nœud', '12']) expect(isTopicLevel(good)).toBe(true);
  });
});
