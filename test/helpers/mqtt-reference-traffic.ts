/**
 * Reads the captured reference MQTT traffic (test/fixtures/reference-traffic/mqtt-*.jsonl, see
 * its README "Line format (mqtt-*.jsonl)"). A control payload is kept as its exact text; a binary
 * data message only by its first 512 bytes, its size and its digest, plus the capture harness's
 * decoding of its header.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REFERENCE_TRAFFIC_DIR } from './reference-traffic.js';

/** The MQTT capture files (mqtt-app-calls.jsonl holds REST calls, not MQTT messages). */
export const MQTT_CAPTURE_FILES = ['mqtt-register.jsonl', 'mqtt-publish-to-node.jsonl', 'mqtt-ess-to-css.jsonl', 'mqtt-large.jsonl'] as const;

export interface CapturedTlv {
  type: number;
  name: string;
  len: number;
  /** Strings as such, int64 as decimal strings, data as its size and digest. */
  value: string | { bytes: number; sha256: string };
}

/** One MQTT message as the capture subscriber received it. */
export interface CapturedMqttMessage {
  seq: number;
  t_ms: number;
  dir: 'css->ess' | 'ess->css';
  topic: string;
  qos: number;
  retain: number;
  /** Size of the whole payload. */
  bytes: number;
  /** A control message: the payload's exact text. */
  payload_text?: string;
  /** A data message: its first 512 bytes. */
  payload_hex?: string;
  sha256?: string;
  truncated?: boolean;
  decoded?: { magic: string; major: number; minor: number; fields: number; tlv: CapturedTlv[]; trailing_bytes_after_tlvs: number };
}

/** Every message of an MQTT capture file, in order, tagged with the file. */
export function readMqttCapture(file: string): (CapturedMqttMessage & { file: string })[] {
  return readFileSync(join(REFERENCE_TRAFFIC_DIR, file), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => ({ ...(JSON.parse(l) as CapturedMqttMessage), file }));
}

/** Every message of every MQTT capture file. */
export function allMqttMessages(): (CapturedMqttMessage & { file: string })[] {
  return MQTT_CAPTURE_FILES.flatMap((f) => readMqttCapture(f));
}
