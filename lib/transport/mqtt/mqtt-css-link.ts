/**
 * The ESS's CssLink over MQTT: both sides dial a broker; this ESS publishes on
 * `iot-2/type/{T}/id/{I}/evt/sync-cmd/fmt/bin` (`…/sync-cmd-leader/…` for chunked traffic) and
 * hears its CSS on `iot-2/type/{T}/id/{I}/cmd/sync-cmd/fmt/bin`. What the CSS pushes waits in a
 * bounded queue for the agent's `poll`; the answers the agent waits for (`regack`, `updated`,
 * `ackreceived`…) settle its calls; data comes in windows of `getdata` requests (chunk-window.ts)
 * and goes out as the CSS asks for it (ess-data-server.ts). The link decides nothing about the
 * protocol: the agent does. [ref sync-protocol §2, §3; traffic mqtt-*.jsonl]
 *
 * Beyond the reference: QoS 1 on the control messages we publish (data goes at QoS 0, as the
 * reference's: a lost chunk is asked for again within seconds); every ack the agent waits for has
 * a timeout, so it retries instead of hanging.
 */
import { Readable } from 'node:stream';
import { orderedMetaData, type ByteRange, type MetaData } from '../../model/index.js';
import type { RegistrationOutcome } from '../../sync/css/types.js';
import {
  CredentialsRefusedError,
  DataUnavailableError,
  NotRegisteredError,
  type CssItem,
  type CssLink,
  type EssAction,
  type EssObjectRef,
  type FetchedData,
  type OwnDataSource,
  type PublishOutcome,
} from '../../sync/ess/css-link.js';
import type { Feedback } from '../../sync/sender-acks.js';
import { AnswerWaits } from './answer-waits.js';
import { ChunkWindows } from './chunk-window.js';
import { decodeControl, encodeControl, type ControlDestination, type ControlInput, type ControlMessage } from './control-codec.js';
import { decodeData, isDataMessage, type DataMessage } from './data-codec.js';
import { EssDataServer } from './ess-data-server.js';
import { EssWireMeta } from './ess-wire-meta.js';
import { PushedItems } from './pushed-items.js';
import { LinkConnector, type ConnectFailure, type LinkConnection, type LinkConnectionHandlers } from './link-connector.js';
import type { MqttConnectionStatus } from './mqtt-connection.js';
import { commandTopic, eventTopic } from './topics.js';

export interface MqttCssLinkTimeouts {
  /** `register`/`registerNew` → `regack`; `resend` → `ackresend`. */
  registerMs: number;
  /** `received`/`consumed`/`deleted` → their ack; `update` → `updated`; `delete` → `ackDelete`. */
  ackMs: number;
  /** A chunk not arrived after this is asked for again (doubling per try). */
  chunkMs: number;
  /** Requests of one chunk before the fetch fails. */
  chunkTries: number;
  /** Wait before opening the connection again after a failed first connection. */
  connectRetryMs: number;
}

export interface MqttCssLinkDeps {
  /**
   * Opens the connection to the broker with the link's subscriptions and handlers, resolving
   * once it is up (openMqttConnection); called again after a failure.
   */
  connect(handlers: LinkConnectionHandlers): Promise<LinkConnection>;
  /** The broker, for log lines and the health report (e.g. `mqtt://127.0.0.1:1883`). */
  address: string;
  orgID: string;
  destinationType: string;
  destinationID: string;
  /** MAX_INFLIGHT_CHUNKS: `getdata` requests outstanding per transfer. */
  maxInflightChunks: number;
  /** The chunk asked for, at most; FETCH_CHUNK_SIZE by default. */
  fetchChunkSize?: number;
  /** Bytes asked for ahead, at most (at least one chunk); FETCH_WINDOW_BYTES by default. */
  fetchWindowBytes?: number;
  /** Whether this ESS keeps its state across restarts (our SQLite store: true). */
  persistent?: boolean;
  timeouts?: Partial<MqttCssLinkTimeouts>;
  log: { debug(obj: object, msg: string): void; info(obj: object, msg: string): void; warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
  /** Told of every message from the CSS, of every registration outcome and of connection failures. */
  health?: { succeeded(): void; setRegistered(registered: boolean): void; failed(status: ConnectFailure, reason: string): void };
}

/**
 * The chunk this ESS asks for, at most: smaller than a reference's 5 MiB, each copy of a chunk on
 * its way is small; larger, the cost per message (a `getdata` and its answer through the broker)
 * would weigh more.
 */
export const FETCH_CHUNK_SIZE = 1024 * 1024;
/**
 * Bytes of a transfer asked for and not yet written, at most (and at least one chunk), whatever
 * MAX_INFLIGHT_CHUNKS allows: measured with a 256 MiB object, 8 MiB in flight took the ESS's peak
 * RSS from about 145 MB (2 MiB) to 185 MB, for no more throughput on loopback; chunks that wait
 * longer outlive more collections, and V8 frees them later.
 */
export const FETCH_WINDOW_BYTES = 2 * 1024 * 1024;

const DEFAULT_TIMEOUTS: MqttCssLinkTimeouts = { registerMs: 10_000, ackMs: 10_000, chunkMs: 3_000, chunkTries: 8, connectRetryMs: 10_000 };
/** Messages from the CSS waiting for a poll; beyond, the ESS registers again and the CSS resends. */
const QUEUE_LIMIT = 10_000;
/** Objects up to this size are fetched as light items (CssLink.lightDownloadBytes): 256 at once hold at most 16 MiB. */
const LIGHT_DOWNLOAD_BYTES = 64 * 1024;
/** Items one poll returns at most. */
const POLL_BATCH = 500;
/** The reference's code version, sent in registrations. [ref common.VersionAsString] */
const CODE_VERSION = '1.0';

/** The ack of each action whose delivery the agent needs to know of. */
const ACK_OF: Partial<Record<EssAction, string>> = { received: 'ackreceived', consumed: 'ackconsumed', deleted: 'ackDeleted' };
/** Actions about objects this ESS receives (the others are about objects it published). */
const RECEIVER_ACTIONS: ReadonlySet<EssAction> = new Set<EssAction>(['updated', 'received', 'consumed', 'ackDelete', 'deleted']);

const answerKey = (command: string, meta: Pick<MetaData, 'objectType' | 'objectID' | 'instanceID'>): string =>
  `${command}\u0000${meta.objectType}\u0000${meta.objectID}\u0000${meta.instanceID}`;

type PublishAnswer = 'taken' | 'refused';

export class MqttCssLink implements CssLink {
  readonly holdsPolls = true;
  readonly pushesData = false;
  /**
   * A download within one chunk's worth of a small message is a `getdata` and its answer on the
   * shared connection: the agent runs many at once, as it does light items.
   */
  readonly lightDownloadBytes = LIGHT_DOWNLOAD_BYTES;
  /** What the CSS pushes waits in `queue` until the next poll takes it: the agent handles it as it comes. */
  readonly itemsPushed = true;
  readonly address: string;
  private readonly timeouts: MqttCssLinkTimeouts;
  private readonly queue = new PushedItems(QUEUE_LIMIT);
  private readonly wire: EssWireMeta;
  private readonly fetches = new ChunkWindows();
  private readonly registration = new AnswerWaits<RegistrationOutcome>();
  private readonly resendAcks = new AnswerWaits<true>();
  private readonly acks = new AnswerWaits<true>();
  private readonly publishes = new AnswerWaits<PublishAnswer>();
  private readonly dataServer: EssDataServer;
  private readonly ownTopic: string;
  private registered = false;
  /** The queue overflowed: once drained, the agent must register again so the CSS resends. */
  private lost = false;
  private wakePoll: (() => void) | null = null;
  private closed = false;
  private readonly connector: LinkConnector;

  constructor(private readonly deps: MqttCssLinkDeps) {
    this.address = deps.address;
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...deps.timeouts };
    this.ownTopic = eventTopic(deps.destinationType, deps.destinationID);
    this.wire = new EssWireMeta(deps);
    this.dataServer = new EssDataServer({
      orgID: deps.orgID,
      destinationType: deps.destinationType,
      destinationID: deps.destinationID,
      publish: (topic, payload) => this.connector.now().publish(topic, payload, { qos: 0 }),
      sendControl: (input) => this.sendControl(input),
      maxPayload: (topic) => this.connector.now().maxPayload(topic),
      log: deps.log,
    });
    this.connector = new LinkConnector({
      connect: (handlers) => deps.connect(handlers),
      broker: deps.address,
      retryDelayMs: this.timeouts.connectRetryMs,
      log: deps.log,
      onFailure: (kind, reason) => deps.health?.failed(kind, reason),
      handlers: {
        subscriptions: [commandTopic(deps.destinationType, deps.destinationID)],
        onMessage: (topic, payload) => this.onMessage(topic, payload),
        onConnect: (first) => {
          deps.health?.succeeded();
          // [ref mqttCommunication onReconnect] after every reconnect the ESS registers again:
          // what the CSS sent meanwhile is lost, and the registration makes it resend.
          if (!first) this.unregistered('the connection to the broker was restored');
        },
      },
    });
  }

  /** The connection's state; null until the first connection. */
  connectionStatus(): MqttConnectionStatus | null {
    return this.connector.status();
  }

  /**
   * How the link fares now, for the health report (CssLinkHealth `live`): up while connected and
   * registered (an idle link exchanges nothing, yet all is well), down while the connection to
   * the broker is lost; null otherwise (the failures of registration say the rest).
   */
  live(): { up: true } | { up: false; reason: string } | null {
    const status = this.connector.status();
    if (status === null) return null;
    if (status.state === 'connected') return this.registered ? { up: true } : null;
    return { up: false, reason: `the connection to the MQTT broker ${this.address} is lost${status.lastError !== null ? `: ${status.lastError}` : ''}` };
  }

  async register(): Promise<RegistrationOutcome> {
    return this.registerWith('register');
  }

  async registerNew(): Promise<void> {
    const outcome = await this.registerWith('registerNew');
    if (outcome !== 'registered') throw new Error(`the CSS answered registerNew with registerAsNew`);
  }

  /**
   * `ping`. The reference CSS answers only a ping from an ESS it does not know (`registerAsNew`);
   * that answer makes the next poll throw NotRegisteredError. [ref notificationHandler handlePing]
   */
  async ping(): Promise<RegistrationOutcome> {
    this.mustBeRegistered();
    await this.sendControl({ command: 'ping', destination: this.destination(CODE_VERSION), persistent: this.persistent });
    return 'registered';
  }

  /** `resend`, acked by `ackresend`. [ref notificationHandler handleResendRequest] */
  async resend(): Promise<void> {
    this.mustBeRegistered();
    const answer = this.resendAcks.wait('resend', this.timeouts.registerMs);
    await this.sendControl({ command: 'resend', destination: this.destination('') });
    if ((await answer) === undefined) throw new Error(`the CSS did not ack the resend request within ${this.timeouts.registerMs} ms`);
  }

  async poll(opts: { holdS: number; signal: AbortSignal }): Promise<CssItem[]> {
    if (this.queue.size === 0 && opts.holdS > 0 && !this.closed && !opts.signal.aborted && this.registered) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          opts.signal.removeEventListener('abort', done);
          if (this.wakePoll === done) this.wakePoll = null;
          resolve();
        };
        const timer = setTimeout(done, opts.holdS * 1000);
        opts.signal.addEventListener('abort', done, { once: true });
        this.wakePoll?.();
        this.wakePoll = done;
      });
    }
    if (this.queue.size > 0) return this.queue.take(POLL_BATCH);
    if (!this.registered || this.lost) {
      this.lost = false;
      throw new NotRegisteredError('the CSS must hear this ESS register again');
    }
    return [];
  }

  fetchData(ref: EssObjectRef, meta: MetaData, range: ByteRange | undefined, signal: AbortSignal): Promise<FetchedData> {
    // Nothing is asked for until the stream is read (backpressure): the window opens then.
    return Promise.resolve().then(() => this.openFetch(ref, meta, range, signal));
  }

  private openFetch(ref: EssObjectRef, meta: MetaData, range: ByteRange | undefined, signal: AbortSignal): FetchedData {
    this.mustBeRegistered();
    const total = meta.objectSize;
    const start = range?.start ?? 0;
    const end = Math.min(range?.end ?? total - 1, total - 1);
    // The chunks of a larger object are asked for FETCH_CHUNK_SIZE at a time (the `getdata`
    // states it; a reference CSS serves its own size all the same, which the window then takes:
    // `probe`). A smaller object's requests are the reference's, byte for byte.
    const stated = meta.chunkSize > 0 ? meta.chunkSize : this.dataServer.chunkSizeOf(meta);
    const fetchChunk = this.deps.fetchChunkSize ?? FETCH_CHUNK_SIZE;
    const chunkSize = total > fetchChunk ? Math.min(stated, fetchChunk) : stated;
    const wire = this.wire.asReceiver({ ...meta, instanceID: ref.instanceID, dataID: ref.dataID, chunkSize });
    if (end < start) return { stream: Readable.from([]), start, total };
    const window = this.fetches.open(ref, {
      start,
      end,
      chunkSize,
      probe: chunkSize < stated,
      window: Math.max(1, this.deps.maxInflightChunks),
      windowBytes: this.deps.fetchWindowBytes ?? FETCH_WINDOW_BYTES,
      retryAfterMs: this.timeouts.chunkMs,
      maxTries: this.timeouts.chunkTries,
      signal,
      // [ref GetData] `getdata` with the object's metadata and the chunk's offset.
      request: (offset) => this.sendControl({ command: 'getdata', meta: wire, offset: BigInt(offset) }),
    });
    // The SHA-256 comes with the chunks (our CSS states it in each): known once they came.
    return {
      stream: window.stream,
      start,
      total,
      get sha256(): string | undefined {
        return window.sha256;
      },
    };
  }

  async send(ref: EssObjectRef, action: EssAction, body?: MetaData): Promise<boolean> {
    this.mustBeRegistered();
    const base = body ?? this.wire.of(ref);
    const meta = RECEIVER_ACTIONS.has(action) ? this.wire.asReceiver(base) : this.wire.asOrigin(base);
    const ack = ACK_OF[action];
    if (ack === undefined) {
      await this.sendControl({ command: action, meta });
      return true;
    }
    const answer = this.acks.wait(answerKey(ack, meta), this.timeouts.ackMs);
    await this.sendControl({ command: action, meta });
    return (await answer) !== undefined;
  }

  async feedback(ref: EssObjectRef, fb: Feedback): Promise<void> {
    this.mustBeRegistered();
    const meta = this.wire.asReceiver(this.wire.of(ref));
    await this.sendControl({ command: 'feedback', meta, feedbackCode: fb.code, retry: fb.retryInterval, reason: fb.reason });
  }

  /**
   * `update` of an object published here; taken when the CSS answers `updated` (or `received`:
   * an object without data, or one it holds already). [ref notificationHandler handleUpdate]
   */
  async publish(meta: MetaData): Promise<PublishOutcome> {
    this.mustBeRegistered();
    const origin = this.wire.asOrigin(meta);
    // The chunk size on the wire is the one this ESS serves: within the broker's packet limit.
    const wire = orderedMetaData({ ...origin, chunkSize: this.dataServer.chunkSizeOf(origin) });
    this.wire.remember(wire);
    const answer = this.publishes.wait(answerKey('update', wire), this.timeouts.ackMs);
    // [ref SendNotificationMessage] an update whose data comes in several chunks goes to the leader.
    await this.sendControl({ command: 'update', meta: wire }, wire.objectSize > wire.chunkSize);
    const outcome = await answer;
    return outcome ?? 'refused';
  }

  /** `delete` of an object published here, taken when the CSS answers `ackDelete`. [ref handleDelete] */
  async publishDelete(meta: MetaData): Promise<boolean> {
    this.mustBeRegistered();
    const wire = this.wire.asOrigin(meta);
    const answer = this.acks.wait(answerKey('ackDelete', wire), this.timeouts.ackMs);
    await this.sendControl({ command: 'delete', meta: wire });
    return (await answer) !== undefined;
  }

  /**
   * The log line for a failure only an operator can mend: the broker refuses this ESS, or its
   * certificate (or our TLS material) is not usable. [CssLink.operatorAction]
   */
  operatorAction(err: unknown): string | undefined {
    const kind = this.connector.failureKind;
    if (err instanceof CredentialsRefusedError || kind === 'credentialsRefused')
      return 'the MQTT broker refuses this ESS: check MQTT_USER_NAME, MQTT_PASSWORD, MQTT_CLIENT_ID and the client certificate; retrying every RESEND_INTERVAL';
    if (kind === 'certificateUntrusted')
      return "the MQTT broker's certificate is not trusted, or the TLS settings are unusable: check MQTT_CA_CERTIFICATE, MQTT_SSL_CERT, MQTT_SSL_KEY and that BROKER_ADDRESS is a name the certificate holds; retrying every RESEND_INTERVAL";
    return undefined;
  }

  serveData(source: OwnDataSource): void {
    this.dataServer.serve(source);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.wakePoll?.();
    this.registration.close();
    this.resendAcks.close();
    this.acks.close();
    this.publishes.close();
    this.dataServer.close();
    this.fetches.failAll(new Error('the link to the CSS was closed'));
    await this.connector.close();
  }

  private get persistent(): boolean {
    return this.deps.persistent ?? true;
  }

  private mustBeRegistered(): void {
    if (this.closed) throw new Error('the link to the CSS is closed');
    if (!this.registered) throw new NotRegisteredError('this ESS is not registered with the CSS');
  }

  /** This ESS as the reference's `Destination` names it. */
  private destination(codeVersion: string): ControlDestination {
    const { orgID, destinationType, destinationID } = this.deps;
    return { destinationOrgID: orgID, destinationType, destinationID, communication: 'mqtt', codeVersion };
  }

  /**
   * `register` or `registerNew`, answered by `regack` or `registerAsNew`.
   * [ref mqttCommunication sendRegisterOrPing; traffic mqtt-register.jsonl]
   */
  private async registerWith(command: 'register' | 'registerNew'): Promise<RegistrationOutcome> {
    if (this.closed) throw new Error('the link to the CSS is closed');
    // The first registration may come before the broker answered: it waits a little for it.
    try {
      await this.connector.ready(this.timeouts.registerMs);
    } catch (err) {
      if (this.connector.failureKind === 'credentialsRefused') throw new CredentialsRefusedError(`the MQTT broker ${this.address} refuses this ESS: ${this.connector.lastFailure?.message ?? ''}`);
      throw err;
    }
    const answer = this.registration.wait('registration', this.timeouts.registerMs);
    await this.sendControl({ command, destination: this.destination(CODE_VERSION), persistent: this.persistent });
    const outcome = await answer;
    if (outcome === undefined) {
      const reason = `the CSS did not answer ${command} within ${this.timeouts.registerMs} ms`;
      this.deps.health?.failed('unreachable', reason);
      throw new Error(reason);
    }
    if (outcome === 'unknown') {
      // The CSS forgot this ESS: what it pushed before is void, it sends everything again.
      this.queue.clear();
      this.lost = false;
    }
    this.registered = outcome === 'registered';
    this.deps.health?.setRegistered(this.registered);
    if (this.registered) this.deps.log.debug({ broker: this.address }, 'regack from the CSS');
    return outcome;
  }

  private unregistered(why: string): void {
    if (!this.registered) return;
    this.registered = false;
    this.deps.health?.setRegistered(false);
    this.deps.log.info({ broker: this.address }, `${why}: registering again`);
    this.wakePoll?.();
  }

  private async sendControl(input: ControlInput, leader = false): Promise<void> {
    const topic = leader ? eventTopic(this.deps.destinationType, this.deps.destinationID, { leader: true }) : this.ownTopic;
    await this.connector.now().publish(topic, encodeControl(input), { qos: 1 });
  }

  private onMessage(_topic: string, payload: Buffer): void {
    if (this.closed) return;
    if (isDataMessage(payload)) {
      const decoded = decodeData(payload);
      if (decoded.kind === 'message') this.onData(decoded.message);
      else this.deps.log.debug({ detail: decoded.kind === 'invalid' ? decoded.error.message : decoded.detail }, 'a data message from the CSS was dropped');
      return;
    }
    const decoded = decodeControl(payload);
    if (decoded.kind !== 'message') {
      this.deps.log.debug({ detail: decoded.kind === 'invalid' ? decoded.error.message : decoded.detail }, 'a control message from the CSS was dropped');
      return;
    }
    this.deps.health?.succeeded();
    this.onControl(decoded.message);
  }

  private onData(msg: DataMessage): void {
    this.deps.health?.succeeded();
    // A chunk of another instance (an older transfer's late answer) is dropped.
    if (!this.fetches.deliver(msg.objectType, msg.objectID, msg.instanceID, Number(msg.offset), msg.data, msg.sha256)) this.deps.log.debug({ objectID: msg.objectID, offset: msg.offset.toString(), instanceID: msg.instanceID.toString() }, 'a chunk nobody waits for was dropped');
  }

  private onControl(msg: ControlMessage): void {
    const { command, meta } = msg;
    switch (command) {
      case 'regack':
        if (!this.registration.settle('registration', 'registered')) this.deps.log.debug({}, 'a regack nobody waits for');
        return;
      case 'registerAsNew':
        if (!this.registration.settle('registration', 'unknown')) this.unregistered('the CSS does not know this ESS');
        return;
      case 'ackresend':
        this.resendAcks.settle('resend', true);
        return;
      case 'updated':
        this.publishes.settle(answerKey('update', meta), 'taken');
        return;
      case 'ackreceived':
      case 'ackconsumed':
      case 'ackDeleted':
      case 'ackDelete':
        this.acks.settle(answerKey(command, meta), true);
        return;
      case 'getdata':
        this.dataServer.request(msg);
        return;
      case 'feedback':
        this.onFeedback(msg);
        return;
      case 'received':
        // Also the answer to an update: an object without data is received at once.
        this.publishes.settle(answerKey('update', meta), 'taken');
        this.enqueue(command, meta);
        return;
      case 'update':
      case 'delete':
      case 'consumed':
      case 'deleted':
        this.enqueue(command, meta);
        return;
      case 'register':
      case 'registerNew':
      case 'ping':
      case 'resend':
        this.deps.log.debug({ command }, 'a command only a CSS takes was dropped');
        return;
    }
  }

  /**
   * Feedback from the CSS: as origin, about data this ESS asks for (it has none: the fetch
   * fails and is retried later); as receiver, about an update this ESS published (refused).
   */
  private onFeedback(msg: ControlMessage): void {
    const { meta } = msg;
    this.deps.log.debug({ objectID: meta.objectID, code: msg.feedbackCode, reason: msg.reason, fromOrigin: msg.feedbackFromOrigin }, 'feedback from the CSS');
    if (!msg.feedbackFromOrigin) {
      this.publishes.settle(answerKey('update', meta), 'refused');
      return;
    }
    const error = new DataUnavailableError(`the CSS cannot serve the data: ${msg.reason} (feedback code ${msg.feedbackCode})`, 'unavailable');
    this.fetches.fail(meta.objectType, meta.objectID, meta.instanceID, error);
  }

  /** Something for the agent: a poll item. */
  private enqueue(type: string, meta: MetaData): void {
    this.wire.remember(meta);
    const outcome = this.queue.push({ type, meta, inline: null });
    if (outcome === 'full') {
      if (!this.lost) this.deps.log.warn({ broker: this.address, limit: QUEUE_LIMIT }, 'too many messages from the CSS wait for this ESS: dropping them, and registering again once the rest is done');
      this.lost = true;
    }
    if (outcome === 'queued') this.wakePoll?.();
  }
}
