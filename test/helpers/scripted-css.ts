/**
 * TEST DOUBLE: a CSS played by hand on a real MQTT broker, for tests of the ESS's MQTT link. It
 * speaks as the reference CSS does (QoS 0 publishes and subscriptions, the captured bytes of
 * test/fixtures/reference-traffic/mqtt-*.jsonl, or messages made with our codecs), hears what the
 * ESS publishes, and decides nothing by itself: each test scripts its answers.
 */
import { connectAsync, type MqttClient } from 'mqtt';
import { decodeControl, encodeControl, type ControlInput, type ControlMessage } from '../../lib/transport/mqtt/control-codec.js';
import { decodeData, encodeData, isDataMessage, type DataMessage } from '../../lib/transport/mqtt/data-codec.js';
import { commandTopic, parseSyncTopic } from '../../lib/transport/mqtt/topics.js';

/** One message the ESS published. */
export interface HeardMessage {
  topic: string;
  /** On `…/evt/sync-cmd-leader/…`. */
  leader: boolean;
  raw: Buffer;
  control?: ControlMessage;
  data?: DataMessage;
}

export class ScriptedCss {
  /** Everything heard, in order. */
  readonly heard: HeardMessage[] = [];
  /** Indexes of `heard` that `next` returned. */
  private readonly taken = new Set<number>();
  private waiter: (() => void) | null = null;
  /** Called on each message as it arrives (before `next` sees it), e.g. to answer getdata at once. */
  onHeard: ((m: HeardMessage) => void) | null = null;

  private constructor(
    private readonly client: MqttClient,
    private readonly destType: string,
    private readonly destID: string,
  ) {}

  /** Connects as `CSS-…` and listens to the ESS `destType/destID`'s events (both topics). */
  static async start(url: string, destType: string, destID: string): Promise<ScriptedCss> {
    const client = await connectAsync(url, { clientId: `CSS-${Date.now()}${Math.floor(Math.random() * 1e6)}`, reconnectPeriod: 0, clean: true, keepalive: 120 });
    const css = new ScriptedCss(client, destType, destID);
    client.on('message', (topic, payload) => css.hear(topic, payload));
    await client.subscribeAsync(`iot-2/type/${destType}/id/${destID}/evt/+/fmt/bin`, { qos: 0 });
    return css;
  }

  private hear(topic: string, payload: Buffer): void {
    const parsed = parseSyncTopic(topic);
    const m: HeardMessage = { topic, leader: parsed?.leader === true, raw: Buffer.from(payload) };
    if (isDataMessage(payload)) {
      const d = decodeData(m.raw);
      if (d.kind === 'message') m.data = d.message;
    } else {
      const c = decodeControl(m.raw);
      if (c.kind === 'message') m.control = c.message;
    }
    this.heard.push(m);
    this.onHeard?.(m);
    this.waiter?.();
  }

  /** The first message not taken yet that `match` accepts; it is taken. Fails after `timeoutMs`. */
  async next(match: (m: HeardMessage) => boolean = () => true, timeoutMs = 10_000): Promise<HeardMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (let i = 0; i < this.heard.length; i++) {
        const m = this.heard[i]!;
        if (!this.taken.has(i) && match(m)) {
          this.taken.add(i);
          return m;
        }
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`the scripted CSS heard nothing that matches in ${timeoutMs} ms; heard: ${this.heard.map((m) => m.control?.command ?? 'data').join(', ')}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          this.waiter = null;
          resolve();
        };
      });
    }
  }

  /** The next control message with this command. */
  nextCommand(command: string, timeoutMs?: number): Promise<HeardMessage & { control: ControlMessage }> {
    return this.next((m) => m.control?.command === command, timeoutMs) as Promise<HeardMessage & { control: ControlMessage }>;
  }

  /** Messages heard from now on only. */
  skipHeard(): void {
    for (let i = 0; i < this.heard.length; i++) this.taken.add(i);
  }

  /** Publishes a payload as is (e.g. captured bytes) to the ESS, QoS 0 as the reference. */
  async sendRaw(payload: Buffer | string): Promise<void> {
    await this.client.publishAsync(commandTopic(this.destType, this.destID), typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload, { qos: 0 });
  }

  async send(input: ControlInput): Promise<void> {
    await this.sendRaw(encodeControl(input));
  }

  /** A data message, zero-padded to `padTo` bytes as the reference pads its chunks. */
  async sendData(msg: DataMessage, padTo = 0): Promise<void> {
    const body = encodeData(msg);
    await this.sendRaw(body.length >= padTo ? body : Buffer.concat([body, Buffer.alloc(padTo - body.length)]));
  }

  async close(): Promise<void> {
    await this.client.endAsync(true);
  }
}
