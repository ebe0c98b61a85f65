/**
 * The topics CSS and ESS use on a plain MQTT broker. [ref sync-protocol §2 "Topics", traffic
 * README obs. 13] Upstream topics carry no org: the org travels in the payload.
 *
 *   CSS → ESS  `iot-2/type/{T}/id/{I}/cmd/sync-cmd/fmt/bin`
 *   ESS → CSS  `iot-2/type/{T}/id/{I}/evt/sync-cmd/fmt/bin`
 *              `iot-2/type/{T}/id/{I}/evt/sync-cmd-leader/fmt/bin` (chunked traffic)
 *
 * A type or id is one topic level, so it cannot hold `/` (a level separator), `+` or `#`
 * (wildcards: a subscription filter would match other nodes' topics) or U+0000 (forbidden in
 * MQTT strings), and cannot be empty (the level would be missing). The builders refuse such a
 * name with a TopicNameError; `isTopicLevel` lets a caller refuse it earlier (at registration).
 */

/** Which way a message goes: `cmd` from the CSS to one ESS, `evt` from an ESS to the CSS. */
export type TopicDirection = 'cmd' | 'evt';

/** What a sync topic names. */
export interface SyncTopic {
  destType: string;
  destID: string;
  direction: TopicDirection;
  /** `sync-cmd-leader`: chunked ESS → CSS traffic, subscribed by the CSS leader only. */
  leader: boolean;
}

const ROOT = 'iot-2';
const COMMAND = 'sync-cmd';
const LEADER_COMMAND = 'sync-cmd-leader';

/** What the CSS subscribes to: every ESS's events. [ref sync-protocol §2] */
export const CSS_EVENT_FILTER = `${ROOT}/type/+/id/+/evt/${COMMAND}/fmt/bin`;
/** What the CSS also subscribes to for chunked traffic (the reference: the leader only). */
export const CSS_LEADER_EVENT_FILTER = `${ROOT}/type/+/id/+/evt/${LEADER_COMMAND}/fmt/bin`;

/** A destination type or id that cannot be one topic level. */
export class TopicNameError extends Error {
  readonly value: string;
  constructor(what: string, value: string) {
    super(`${what} ${JSON.stringify(value)} cannot be an MQTT topic level: it is empty or holds '/', '+', '#' or U+0000`);
    this.name = 'TopicNameError';
    this.value = value;
  }
}

/** True when `name` can stand as one level of a topic and of a subscription filter. */
export function isTopicLevel(name: string): boolean {
  return name !== '' && !/[/+#]/.test(name) && !name.includes('\u0000');
}

function level(what: string, name: string): string {
  if (!isTopicLevel(name)) throw new TopicNameError(what, name);
  return name;
}

function topic(destType: string, destID: string, direction: TopicDirection, leader: boolean): string {
  return `${ROOT}/type/${level('destination type', destType)}/id/${level('destination id', destID)}/${direction}/${leader ? LEADER_COMMAND : COMMAND}/fmt/bin`;
}

/**
 * The topic the CSS publishes on and the ESS `destType/destID` subscribes to.
 * @throws TopicNameError
 */
export function commandTopic(destType: string, destID: string): string {
  return topic(destType, destID, 'cmd', false);
}

/**
 * The topic the ESS `destType/destID` publishes on; `leader` for chunked traffic.
 * @throws TopicNameError
 */
export function eventTopic(destType: string, destID: string, opts: { leader?: boolean } = {}): string {
  return topic(destType, destID, 'evt', opts.leader === true);
}

/**
 * What a topic names, or null when it is not one of ours (another root, another shape, a
 * `cmd/sync-cmd-leader`, which nobody publishes).
 */
export function parseSyncTopic(name: string): SyncTopic | null {
  const parts = name.split('/');
  if (parts.length !== 9) return null;
  const [root, typeWord, destType, idWord, destID, direction, command, fmtWord, fmt] = parts as [string, string, string, string, string, string, string, string, string];
  if (root !== ROOT || typeWord !== 'type' || idWord !== 'id' || fmtWord !== 'fmt' || fmt !== 'bin') return null;
  if (destType === '' || destID === '') return null;
  if (direction === 'cmd' && command === COMMAND) return { destType, destID, direction, leader: false };
  if (direction === 'evt' && (command === COMMAND || command === LEADER_COMMAND)) return { destType, destID, direction, leader: command === LEADER_COMMAND };
  return null;
}
