/**
 * The CSS side of the MQTT transport: a thin adapter between the broker and the sync engine's
 * EssSession. It reads what the ESS nodes publish on `iot-2/type/+/id/+/evt/sync-cmd[-leader]/…`,
 * checks who sent it, calls the session and publishes the answers (QoS 1) on the ESS's
 * `…/cmd/sync-cmd/…` topic. It decides nothing about the protocol and stores nothing itself.
 * [ref sync-protocol §2, §3]
 *
 * The parts: who sent a message (css-message-origin.ts), the push of what is queued for each ESS
 * (css-push-loops.ts), the data served to `getdata` (css-chunk-server.ts) and the data pulled
 * from an ESS for the objects it publishes (css-upstream-pulls.ts).
 *
 * Several CSS processes on one broker (docs/adr/0021-mqtt-scale-out.md): the ESS events are
 * subscribed in an MQTT 5 shared group, so each reaches one CSS, which handles it against the
 * shared store; the chunked traffic (`sync-cmd-leader`) and the push loops belong to the leader
 * alone, as the reference has it; a data chunk that reaches a CSS which did not ask for it is
 * stored all the same when it is the next one the store awaits.
 */
import { setMaxListeners } from 'node:events';
import {
  BadRequestError,
  ConflictError,
  EdgesyncError,
  FailedDependencyError,
  NotFoundError,
  PayloadTooLargeError,
  destinationKey,
  destinationLabel,
  type DestinationRef,
  type MetaData,
} from '../../model/index.js';
import type { Logger } from '../../log/logger.js';
import type { CssSyncEngine, EssSession, ObjectRef, RegistrationAction, SyncItem, UpstreamAck } from '../../sync/css/types.js';
import type { SenderAck } from '../../sync/sender-acks.js';
import type { UpstreamProgress } from '../../sync/upstream-progress.js';
import type { SyncEvents } from '../../sync/sync-events.js';
import { chunkBytes, chunkCapacity, CssChunkServer } from './css-chunk-server.js';
import { messageOrigin } from './css-message-origin.js';
import { ConnectionGate } from './connection-gate.js';
import { CssPushLoops } from './css-push-loops.js';
import { UpstreamPulls } from './css-upstream-pulls.js';
import { decodeControl, encodeControl, type ControlInput, type ControlMessage } from './control-codec.js';
import { decodeData, isDataMessage, type DataMessage } from './data-codec.js';
import { PeerQueues } from './peer-queues.js';
import { chunkStream } from './css-upstream-pulls.js';
import type { SubscriptionMode } from './shared-subscriptions.js';
import { CSS_EVENT_FILTER, CSS_LEADER_EVENT_FILTER, commandTopic, parseSyncTopic, type SyncTopic } from './topics.js';

/**
 * What the adapter needs of its broker connections: one shared by every org, and on a
 * multi-org CSS one of its own for each org whose broker is set apart (PUT
 * /api/v1/organizations/{org} with an address). [ref sync-protocol §2 "one MQTT client per org"]
 */
export interface CssMqttChannel {
  /**
   * Subscribes at QoS 1 on every connection (and again after every reconnect: the connection's
   * business); `shared`: in the CSS processes' shared group where the broker has one.
   * @returns how the shared broker took them
   */
  subscribe(filters: readonly string[], opts?: { shared?: boolean }): Promise<SubscriptionMode>;
  /** Ends plain subscriptions. */
  unsubscribe(filters: readonly string[]): Promise<void>;
  /**
   * Every message received, on any subscribed topic; `org` is the org whose own broker it came
   * from, null when it came from the shared one.
   */
  onMessage(handler: (topic: string, payload: Buffer, org: string | null) => void): void;
  /** Publishes toward the org's broker; resolves when the broker took it (QoS 1: its PUBACK); rejects when not connected. */
  publish(org: string, topic: string, payload: Buffer, opts: { qos: 0 | 1 }): Promise<void>;
  /** The largest payload a QoS 1 publish on `topic` toward the org's broker may carry now. */
  maxPayload(org: string, topic: string): number;
  /** Whether a publish toward the org's broker can go out now. */
  connected(org: string): boolean;
  /** Whether the org has a broker of its own (its ESS nodes do not use the shared one). */
  ownBroker(org: string): boolean;
}

/**
 * Whether this CSS process leads the others on its database (the leader lease): the leader takes
 * the chunked traffic and pushes to the ESS nodes when several share one broker.
 */
export interface CssLeadership {
  /** Whether this instance leads now. */
  isLeader(): boolean;
  /** Calls `listener` on each change; returns what stops the calls. */
  onChange(listener: (isLeader: boolean) => void): () => void;
}

/** Where the data of an instance an ESS published stands in the store, when some is awaited. */
export type AwaitedData = (peer: DestinationRef, ref: ObjectRef) => Promise<{ received: number; total: number } | null>;

export interface CssMqttAdapterDeps {
  engine: CssSyncEngine;
  channel: CssMqttChannel;
  /** Where the engine's persisted upstream transfers stand (lib/sync/upstream-progress.ts). */
  progress: UpstreamProgress;
  /** The ESS nodes registered over MQTT, listed at start, and when this CSS becomes the leader (their push loops start). */
  mqttDestinations(): Promise<DestinationRef[]>;
  /**
   * Where the awaited data of an upstream instance stands: a chunk no transfer of this process
   * asked for (another CSS did) is stored when it starts there. Without it such chunks are dropped.
   */
  awaitedData?: AwaitedData;
  /**
   * The leader lease, when several CSS processes may share the broker; without it this process
   * acts as the only one (it takes the chunked traffic and pushes).
   */
  leadership?: CssLeadership;
  /** How often a leader sharing the broker lists the MQTT ESS nodes for loops it lacks (ms); 3 × RESEND_INTERVAL by default. */
  rescanMs?: number;
  /** ORG_ID of a single-org CSS; '' for a multi-org CSS (the org comes from the payload). */
  orgID: string;
  /** RESEND_INTERVAL, seconds. */
  resendInterval: number;
  /** MAX_INFLIGHT_CHUNKS: the window of chunks pulled ahead from an ESS. */
  maxInflightChunks: number;
  /** MAX_DATA_CHUNK_SIZE: the chunk served for an object that states none. */
  maxDataChunkSize: number;
  /** A chunk asked of an ESS and not arrived after this long is asked again; default 5 s. */
  chunkRetryMs?: number;
  log: Logger;
  /** Told of the data chunks served and stored. */
  events?: SyncEvents;
}

/** Messages queued per ESS at most; more are dropped (the ESS repeats what stays unanswered). */
const QUEUE_LIMIT = 1000;

/**
 * Messages handled at once, over every ESS: most wait for a store commit, and the more of them
 * wait together the more share one fsync; bounded so that a flood is paced, not piled up.
 */
const DISPATCH_CONCURRENCY = 64;

/**
 * Bytes of chunks the `getdata` answered at once may hold, over every ESS (each holds its chunk
 * until it is published; css-chunk-server.ts chunkBytes): a few chunks of large objects, or
 * many of small ones.
 */
const DATA_BUDGET_BYTES = 32 * 1024 * 1024;

/** How long a stop waits for the messages being handled. */
const STOP_DRAIN_MS = 5000;

/** How often a loop waiting for the broker looks again. */
const CONNECTION_CHECK_MS = 1000;

/** [ref common.CreateFeedback] codes of the feedback message. */
const FEEDBACK_INTERNAL = 1;
const FEEDBACK_INVALID_OBJECT = 5;

/** The sender acks an ESS sends about CSS objects, and the reply each gets. [ref traffic mqtt-publish-to-node.jsonl] */
const SENDER_ACK_REPLY: Readonly<Record<Exclude<SenderAck, 'feedback'>, ControlInput['command'] | null>> = {
  updated: null,
  received: 'ackreceived',
  consumed: 'ackconsumed',
  ackDelete: null,
  deleted: 'ackDeleted',
};

/** Commands about the ESS as a whole: handled after every earlier message of the ESS, before every later one. */
const PEER_COMMANDS: ReadonlySet<ControlMessage['command']> = new Set<ControlMessage['command']>(['register', 'registerNew', 'ping', 'resend', 'regack', 'registerAsNew', 'ackresend']);

function refOf(meta: MetaData): ObjectRef {
  return { objectType: meta.objectType, objectID: meta.objectID, instanceID: meta.instanceID };
}

function objectFields(peer: DestinationRef, meta: MetaData): Record<string, unknown> {
  return { destination: destinationLabel(peer), org: peer.orgID, objectType: meta.objectType, objectID: meta.objectID, instanceID: meta.instanceID.toString() };
}

export class CssMqttAdapter {
  private readonly pushes: CssPushLoops;
  private readonly pulls: UpstreamPulls;
  /** Per ESS and object, messages are handled in order; different objects side by side. */
  private readonly queues = new PeerQueues(QUEUE_LIMIT, DISPATCH_CONCURRENCY, DATA_BUDGET_BYTES);
  private readonly stopping = new AbortController();
  private readonly log: Logger;
  private readonly gate: ConnectionGate;
  private readonly chunks: CssChunkServer;
  /** The events come through a shared subscription: other CSS processes may take some of them. */
  private sharing = false;
  /** This process takes the chunked traffic and runs the push loops. */
  private leading = false;
  /** Leadership changes, applied one after the other. */
  private roles: Promise<void> = Promise.resolve();
  private unwatch: () => void = () => undefined;
  private rescan: NodeJS.Timeout | null = null;

  constructor(private readonly deps: CssMqttAdapterDeps) {
    this.log = deps.log;
    // Every chunk being served listens on the stop signal; the data budget lets many run at once.
    setMaxListeners(0, this.stopping.signal);
    this.chunks = new CssChunkServer({
      maxPayload: (peer) => deps.channel.maxPayload(peer.orgID, commandTopic(peer.destType, peer.destID)),
      maxDataChunkSize: deps.maxDataChunkSize,
      signal: this.stopping.signal,
      ...(deps.events !== undefined ? { events: deps.events } : {}),
    });
    this.gate = new ConnectionGate((org) => deps.channel.connected(org), CONNECTION_CHECK_MS, this.stopping.signal);
    this.pushes = new CssPushLoops({
      engine: deps.engine,
      send: (peer, item) => this.pushItem(peer, item),
      resendIntervalMs: deps.resendInterval * 1000,
      ready: (peer, signal) => this.gate.wait(peer.orgID, signal),
      log: deps.log,
    });
    this.pulls = new UpstreamPulls({
      engine: deps.engine,
      ...(deps.events !== undefined ? { events: deps.events } : {}),
      requestChunk: (peer, meta, offset) => this.send(peer, { command: 'getdata', meta, offset: BigInt(offset) }),
      refuse: (peer, meta, reason) => this.send(peer, { command: 'feedback', meta, feedbackCode: FEEDBACK_INTERNAL, reason }),
      resumeOffset: async (peer, ref) => {
        const state = await deps.progress.of(peer, ref);
        return state.kind === 'awaiting' ? state.received : null;
      },
      window: Math.max(1, deps.maxInflightChunks),
      retryMs: deps.chunkRetryMs ?? 5000,
      log: deps.log,
    });
  }

  /**
   * Subscribes, then, as the leader (or alone), starts pushing to the MQTT ESS nodes and resumes
   * the pulls a stop cut short.
   */
  async start(): Promise<void> {
    const { channel, leadership } = this.deps;
    channel.onMessage((topic, payload, org) => this.receive(topic, payload, org));
    this.sharing = (await channel.subscribe([CSS_EVENT_FILTER], { shared: true })) === 'shared';
    if (!this.sharing || leadership === undefined) {
      await channel.subscribe([CSS_LEADER_EVENT_FILTER]);
      this.leading = true;
      await this.takeOver();
      return;
    }
    this.unwatch = leadership.onChange((leader) => void this.lead(leader));
    await this.lead(leadership.isLeader());
  }

  /** Takes the leader's part (chunked traffic, push loops) or gives it up; changes apply in order. */
  private lead(leader: boolean): Promise<void> {
    this.roles = this.roles.then(async () => {
      if (this.stopping.signal.aborted || leader === this.leading) return;
      this.leading = leader;
      try {
        if (leader) {
          await this.deps.channel.subscribe([CSS_LEADER_EVENT_FILTER]);
          this.log.info('this CSS leads: it takes the chunked MQTT traffic and pushes to the MQTT ESS nodes');
          await this.takeOver();
          const every = this.deps.rescanMs ?? 3 * this.deps.resendInterval * 1000;
          this.rescan = setInterval(() => void this.ensureLoops().catch((err: unknown) => this.log.warn({ err }, 'could not list the MQTT ESS nodes')), every);
          this.rescan.unref();
        } else {
          if (this.rescan !== null) clearInterval(this.rescan);
          this.rescan = null;
          await this.deps.channel.unsubscribe([CSS_LEADER_EVENT_FILTER]);
          this.pulls.cancelAll();
          await this.pushes.stopAll();
          this.log.info('this CSS no longer leads: the new leader takes the chunked MQTT traffic and the pushes');
        }
      } catch (err) {
        this.log.warn({ err, leader }, 'could not change the MQTT part of this CSS with its leadership');
      }
    });
    return this.roles;
  }

  /** Push loops for every MQTT ESS, and the pulls a stop (or another leader) left unfinished. */
  private async takeOver(): Promise<void> {
    for (const peer of await this.deps.mqttDestinations()) {
      this.pushes.ensure(peer);
      for (const { meta, received } of await this.deps.progress.awaiting(peer)) this.pulls.start(peer, meta, received);
    }
  }

  /** A leader's loops for the ESS nodes that registered through another CSS. */
  private async ensureLoops(): Promise<void> {
    if (!this.leading || this.stopping.signal.aborted) return;
    for (const peer of await this.deps.mqttDestinations()) this.pushes.ensure(peer);
  }

  /** Whether this process runs the push loops: alone on the broker, or as the leader. */
  private get pushing(): boolean {
    return this.leading;
  }

  /**
   * What is pending for the ESS goes out: through its loop where this process runs the loops
   * (`fresh`: everything at once), else (`fresh` only) in one round from here, the loop being
   * another CSS's.
   */
  private push(peer: DestinationRef, opts: { fresh?: boolean } = {}): void {
    if (this.pushing) this.pushes.ensure(peer, opts);
    else if (opts.fresh === true) this.pushes.once(peer);
  }

  /** Stops pushing and pulling; resolves when no message is being handled any more. */
  async stop(): Promise<void> {
    this.unwatch();
    if (this.rescan !== null) clearInterval(this.rescan);
    this.rescan = null;
    this.stopping.abort();
    this.pulls.stop();
    await this.pushes.stop();
    // What is being handled finishes (each step commits before it resolves); bounded, so that a
    // publish the broker never acknowledges cannot hold the stop.
    await this.queues.drain(STOP_DRAIN_MS);
  }

  /** For the health report. */
  stats(): { pushLoops: number; pulls: number; subscriptions: SubscriptionMode; leading: boolean } {
    return { pushLoops: this.pushes.size, pulls: this.pulls.size, subscriptions: this.sharing ? 'shared' : 'plain', leading: this.leading };
  }

  /** One message from the broker. Garbage is logged at debug and dropped; nothing here throws. */
  private receive(topicName: string, payload: Buffer, fromOrg: string | null): void {
    if (this.stopping.signal.aborted) return;
    const topic = parseSyncTopic(topicName);
    if (topic === null || topic.direction !== 'evt') {
      this.log.debug({ topic: topicName }, 'dropped an MQTT message on a topic that is not an ESS event');
      return;
    }
    if (isDataMessage(payload)) {
      this.receiveData(topic, topicName, payload, fromOrg);
      return;
    }
    const decoded = decodeControl(payload);
    if (decoded.kind === 'invalid') {
      this.log.debug({ topic: topicName, reason: decoded.error.message }, 'dropped an MQTT message that is not a control message');
      return;
    }
    if (decoded.kind === 'dropped') {
      this.log.debug({ topic: topicName, reason: decoded.reason, detail: decoded.detail }, 'dropped an MQTT control message');
      return;
    }
    const msg = decoded.message;
    // An org's own broker speaks for that org alone, as a single-org CSS's broker does.
    const origin = messageOrigin(msg, topic, fromOrg ?? this.deps.orgID);
    if (origin.kind === 'ignored') {
      this.log.debug({ topic: topicName, command: msg.command }, 'dropped a command an ESS does not send');
      return;
    }
    if (origin.kind === 'refused') {
      this.log.info({ topic: topicName, command: msg.command, claimed: origin.claimed, reason: origin.reason }, 'refused an MQTT message whose payload names another ESS than its topic');
      return;
    }
    if (fromOrg === null && this.deps.channel.ownBroker(origin.peer.orgID)) {
      this.log.info({ topic: topicName, command: msg.command, org: origin.peer.orgID }, 'refused an MQTT message on the shared broker for an org that has a broker of its own');
      return;
    }
    this.enqueue(origin.peer, msg, topic.leader);
  }

  private receiveData(topic: SyncTopic, topicName: string, payload: Buffer, fromOrg: string | null): void {
    const decoded = decodeData(payload);
    if (decoded.kind !== 'message') {
      this.log.debug({ topic: topicName, reason: decoded.kind === 'invalid' ? decoded.error.message : decoded.detail }, 'dropped an MQTT data message');
      return;
    }
    const m = decoded.message;
    const fixed = fromOrg ?? this.deps.orgID;
    const org = fixed !== '' ? fixed : m.orgID;
    if (org === '' || (fixed !== '' && m.orgID !== '' && m.orgID !== fixed) || (fromOrg === null && this.deps.channel.ownBroker(org))) {
      this.log.info({ topic: topicName, claimed: m.orgID }, 'refused an MQTT data message of an org its broker does not serve');
      return;
    }
    // The topic names the sender; only a chunk asked of that very ESS is taken.
    const peer: DestinationRef = { orgID: org, destType: topic.destType, destID: topic.destID };
    if (this.pulls.onData(peer, m.objectType, m.objectID, m.instanceID, m.offset, m.data)) return;
    // Asked for by another CSS (or by this one before a restart): the store decides.
    const queued = this.queues.add(destinationKey(peer), {
      object: `${m.objectType}\u0000${m.objectID}`,
      kind: 'data',
      bytes: m.data.length,
      work: () => this.storeUnasked(peer, m),
      onError: (err) => this.failed(peer, err),
    });
    if (!queued) this.log.debug({ destination: destinationLabel(peer), org: peer.orgID }, 'dropped an MQTT data message: too many queued from this ESS');
  }

  /**
   * A chunk no transfer of this process asked for: stored when it starts where the store's
   * upload of that instance stands (the engine checks again under its lock), dropped otherwise;
   * whoever asked for it asks again.
   */
  private async storeUnasked(peer: DestinationRef, m: DataMessage): Promise<void> {
    const ref: ObjectRef = { objectType: m.objectType, objectID: m.objectID, instanceID: m.instanceID };
    const target = this.deps.awaitedData === undefined ? null : await this.deps.awaitedData(peer, ref);
    const fields = { destination: destinationLabel(peer), org: peer.orgID, objectType: m.objectType, objectID: m.objectID, offset: m.offset.toString() };
    if (target === null || m.offset !== BigInt(target.received) || (m.data.length === 0 && target.total !== 0)) {
      this.log.debug(fields, 'dropped a data message nothing was asked for');
      return;
    }
    const start = target.received;
    const end = Math.min(start + m.data.length, target.total);
    const data = target.total === 0 ? { size: 0 } : { range: { start, end: end - 1, total: target.total } };
    let outcome;
    try {
      outcome = await this.deps.engine.session(peer).upstreamData(ref, chunkStream(m.data.subarray(0, end - start)), data);
    } catch (err) {
      if (!(err instanceof BadRequestError || err instanceof ConflictError)) throw err;
      // Another CSS stored this offset meanwhile.
      this.log.debug({ ...fields, reason: err.message }, 'dropped a data message the store took from elsewhere');
      return;
    }
    this.log.debug({ ...fields, outcome }, 'stored a chunk another CSS asked for');
    if (outcome === 'applied') this.deps.events?.dataReceived?.({ ...ref, orgID: peer.orgID }, { peerType: peer.destType, peerID: peer.destID }, 'mqtt', end - start, start, target.total);
    // The last one: the engine queued `received` (and woke this process's loop, if it runs one);
    // from a CSS that runs no loop for the ESS, one round pushes it now.
    if (outcome === 'applied' && end >= target.total) this.push(peer, { fresh: !this.pushing });
  }

  private enqueue(peer: DestinationRef, msg: ControlMessage, chunked: boolean): void {
    const queued = this.queues.add(destinationKey(peer), {
      object: PEER_COMMANDS.has(msg.command) ? null : `${msg.meta.objectType}\u0000${msg.meta.objectID}`,
      ...(msg.command === 'getdata' ? { kind: 'data', bytes: this.chunkBytes(peer, msg.meta, msg.offset) } : { kind: 'control' }),
      work: () => this.dispatch(peer, msg, chunked),
      onError: (err) => this.failed(peer, err),
    });
    if (!queued) {
      this.log.debug({ destination: destinationLabel(peer), org: peer.orgID }, 'dropped an MQTT message: too many queued from this ESS');
    }
  }

  private failed(peer: DestinationRef, err: unknown): void {
    if (this.stopping.signal.aborted) return;
    if (err instanceof FailedDependencyError) {
      // [ref processMessage destinationExists] a message from an ESS not registered is dropped.
      this.log.debug({ destination: destinationLabel(peer), org: peer.orgID }, 'dropped an MQTT message from an ESS that is not registered');
      return;
    }
    if (err instanceof EdgesyncError && err.status < 500) {
      this.log.debug({ destination: destinationLabel(peer), org: peer.orgID, reason: err.message }, 'dropped an MQTT message the engine refused');
      return;
    }
    this.log.warn({ err, destination: destinationLabel(peer), org: peer.orgID }, 'could not handle an MQTT message from an ESS');
  }

  /** `chunked`: the message came on the chunked-traffic topic (`sync-cmd-leader`). */
  private async dispatch(peer: DestinationRef, msg: ControlMessage, chunked: boolean): Promise<void> {
    if (this.stopping.signal.aborted) return;
    const session = this.deps.engine.session(peer);
    switch (msg.command) {
      case 'register':
      case 'registerNew':
        return this.register(session, peer, msg.command === 'register' ? 'register' : 'register-new', msg.persistent);
      case 'ping':
        return this.register(session, peer, 'ping', msg.persistent);
      case 'resend':
        // [ref handleResendRequest] ackresend first, then everything again.
        await session.resend();
        await this.send(peer, { command: 'ackresend', destination: msg.destination });
        this.push(peer, { fresh: true });
        return;
      case 'updated':
      case 'received':
      case 'consumed':
      case 'ackDelete':
      case 'deleted':
        return this.senderAck(session, peer, msg.command, msg);
      case 'feedback':
        return this.feedback(session, peer, msg);
      case 'getdata':
        return this.serveChunk(session, peer, msg);
      case 'update':
        return this.upstreamUpdate(session, peer, msg.meta, chunked);
      case 'delete':
        return this.upstreamDelete(session, peer, msg.meta);
      case 'ackreceived':
      case 'ackconsumed':
      case 'ackDeleted':
        return this.upstreamAck(session, peer, msg.command, msg.meta);
      case 'regack':
      case 'registerAsNew':
      case 'ackresend':
        // messageOrigin() ignores these already.
        return;
    }
  }

  /** [ref handleRegistration, handleRegisterNew, handlePing; traffic mqtt-register.jsonl] */
  private async register(session: EssSession, peer: DestinationRef, action: RegistrationAction, persistent: boolean): Promise<void> {
    const outcome = await session.register(action, { persistent, communication: 'mqtt' });
    if (outcome === 'unknown') {
      await this.send(peer, { command: 'registerAsNew' });
      return;
    }
    if (action === 'ping') {
      this.push(peer);
      return;
    }
    this.log.info({ destination: destinationLabel(peer), org: peer.orgID, persistent, new: action === 'register-new' }, 'an ESS registered over MQTT');
    await this.send(peer, { command: 'regack' });
    // It may have lost what it was sent: everything pending goes out again at once.
    this.push(peer, { fresh: true });
  }

  /** An ESS's answer about a CSS object; a stale or repeated one is acked all the same, so it stops repeating. */
  private async senderAck(session: EssSession, peer: DestinationRef, action: Exclude<SenderAck, 'feedback'>, msg: ControlMessage): Promise<void> {
    const outcome = await session.ack(refOf(msg.meta), action);
    // What the ESS answered leaves the items to push, making room for those behind it.
    this.pushes.answered(peer);
    if (outcome !== 'applied') this.log.debug({ ...objectFields(peer, msg.meta), action, outcome }, 'an ESS acked what changed nothing');
    const reply = SENDER_ACK_REPLY[action];
    if (reply !== null) await this.send(peer, { command: reply, meta: msg.meta });
  }

  private async feedback(session: EssSession, peer: DestinationRef, msg: ControlMessage): Promise<void> {
    if (msg.feedbackFromOrigin) {
      // The ESS, as the origin, could not serve a chunk of its object: the CSS stops asking;
      // the ESS publishes the object again when it has it.
      this.log.info({ ...objectFields(peer, msg.meta), code: msg.feedbackCode, reason: msg.reason }, 'an ESS could not serve the data of its object');
      this.pulls.cancel(peer, msg.meta.objectType, msg.meta.objectID);
      return;
    }
    await session.ack(refOf(msg.meta), 'feedback', { code: msg.feedbackCode, retryInterval: msg.retry, reason: msg.reason });
    this.pushes.answered(peer);
  }

  /** The most a `getdata` may hold in memory: its chunk (see chunkBytes). */
  private chunkBytes(peer: DestinationRef, meta: MetaData, offset: bigint): number {
    const capacity = chunkCapacity(this.deps.channel.maxPayload(peer.orgID, commandTopic(peer.destType, peer.destID)), peer.orgID, meta.objectType, meta.objectID);
    return chunkBytes(meta, offset >= 0n && offset <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(offset) : 0, capacity, this.deps.maxDataChunkSize);
  }

  private async serveChunk(session: EssSession, peer: DestinationRef, msg: ControlMessage): Promise<void> {
    const { meta } = msg;
    const topic = commandTopic(peer.destType, peer.destID);
    if (msg.offset < 0n || msg.offset > BigInt(Number.MAX_SAFE_INTEGER)) {
      this.log.debug({ ...objectFields(peer, meta), offset: msg.offset.toString() }, 'dropped a getdata for an impossible offset');
      return;
    }
    let payload: Buffer;
    try {
      payload = await this.chunks.message(session, peer, meta, Number(msg.offset));
    } catch (err) {
      if (!(err instanceof NotFoundError || err instanceof ConflictError)) throw err;
      // [ref processMessage Getdata] what cannot be served is answered "not found", as from the origin.
      await this.send(peer, { command: 'feedback', meta, feedbackCode: FEEDBACK_INVALID_OBJECT, feedbackFromOrigin: true, reason: err.message });
      return;
    }
    // QoS 0, as the reference sends data: the ESS's window asks again for a chunk that does not
    // come, and QoS 1 would hold a copy of every chunk at each hop until it is acknowledged.
    await this.deps.channel.publish(peer.orgID, topic, payload, { qos: 0 });
  }

  /**
   * [ref handleUpdate; traffic mqtt-ess-to-css.jsonl] `updated`, then the data is pulled.
   * `chunked`: the update came on the chunked-traffic topic, as the ESS sends one whose data
   * takes several messages; those come on that topic too, which only the leader takes when CSS
   * processes share the broker. An update on the shared topic has its data asked for in the one
   * message the ESS meant (not cut to PULL_CHUNK_SIZE), so that it comes on the shared topic too
   * and any CSS stores it.
   */
  private async upstreamUpdate(session: EssSession, peer: DestinationRef, meta: MetaData, chunked: boolean): Promise<void> {
    const ref = refOf(meta);
    let outcome;
    try {
      outcome = await session.upstreamUpdate(ref, meta);
    } catch (err) {
      if (!(err instanceof BadRequestError || err instanceof ConflictError || err instanceof PayloadTooLargeError)) throw err;
      this.log.info({ ...objectFields(peer, meta), reason: err.message }, 'refused an object an ESS published');
      await this.send(peer, { command: 'feedback', meta, feedbackCode: FEEDBACK_INTERNAL, reason: err.message });
      return;
    }
    if (outcome !== 'applied' && outcome !== 'duplicate') {
      // An older instance: acked so that the ESS stops sending it.
      await this.send(peer, { command: 'updated', meta });
      return;
    }
    const state = await this.deps.progress.of(peer, ref);
    if (state.kind === 'complete') {
      // The engine queued `received`; a repeated update means the ESS missed it: push it again.
      // Pushed from here when another CSS runs the ESS's loop: the engine queued it here.
      this.push(peer, { fresh: outcome === 'duplicate' || !this.pushing });
      return;
    }
    await this.send(peer, { command: 'updated', meta });
    if (state.kind === 'awaiting') this.pulls.start(peer, meta, state.received, { whole: this.sharing && !chunked });
  }

  /** [ref handleDelete] `ackDelete`, whatever it changed. */
  private async upstreamDelete(session: EssSession, peer: DestinationRef, meta: MetaData): Promise<void> {
    const outcome = await session.upstreamDelete(refOf(meta), meta);
    if (outcome === 'applied') this.pulls.cancel(peer, meta.objectType, meta.objectID);
    await this.send(peer, { command: 'ackDelete', meta });
  }

  private async upstreamAck(session: EssSession, peer: DestinationRef, action: UpstreamAck, meta: MetaData): Promise<void> {
    const outcome = await session.upstreamAck(refOf(meta), action);
    if (outcome !== 'applied') this.log.debug({ ...objectFields(peer, meta), action, outcome }, 'an ESS acked what changed nothing');
  }

  private async pushItem(peer: DestinationRef, item: SyncItem): Promise<void> {
    try {
      await this.send(peer, { command: item.type, meta: item.meta });
    } catch (err) {
      // Lost with the connection, as a QoS 0 message would be: it goes again after the resend
      // interval; the loop waits for the broker meanwhile.
      if (this.deps.channel.connected(peer.orgID)) throw err;
      this.log.debug({ ...objectFields(peer, item.meta), command: item.type }, 'could not push to an ESS: no connection to the broker');
    }
  }

  private send(peer: DestinationRef, input: ControlInput): Promise<void> {
    return this.deps.channel.publish(peer.orgID, commandTopic(peer.destType, peer.destID), encodeControl(input), { qos: 1 });
  }
}
