/**
 * Deliveries as OpenTelemetry spans, a `SyncEvents` observer. Per object instance: one
 * `publish` span where an app published it, and per peer one span from its first event (queued
 * on the sender, first bytes or status on the receiver) to its final state (consumed, deleted,
 * error), the steps between as span events. All of them, on every node, share the trace id
 * derived from the instance (model/log-fields.ts), and the per-peer spans name the `publish`
 * span as parent by its derived id too: nothing travels on the wire (ADR "traces by derived id").
 *
 * A delivery can stay open for days (a node offline), so no span object lives that long: only
 * its start time and a few counters, in a bounded map, and the span is made whole when the
 * delivery ends, with that start time.
 */
import { createHash, randomBytes } from 'node:crypto';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, trace, type Attributes, type Tracer } from '@opentelemetry/api';
import type { IdGenerator } from '@opentelemetry/sdk-trace-base';
import { deliveryTraceId, nonZeroHex } from '../model/log-fields.js';
import type { DeliveryStatus } from '../model/index.js';
import type { DeliveryRef, PeerRef, SyncEvents, TransportKind } from '../sync/sync-events.js';

/** The span id of an instance's `publish` span: derived like the trace id, so any node can name it as parent. */
export function publicationSpanId(ref: DeliveryRef): string {
  const input = `publish/${ref.orgID}/${ref.objectType}/${ref.objectID}/${ref.instanceID.toString()}`;
  return nonZeroHex(createHash('sha256').update(input).digest().subarray(0, 8));
}

/** The trace every span of this instance belongs to, on any node. */
export function traceIdOf(ref: DeliveryRef): string {
  return deliveryTraceId(ref.orgID, ref.objectType, ref.objectID, ref.instanceID);
}

/**
 * Random ids, except inside `withIds`: the SDK asks its generator for a root span's ids, and a
 * `publish` span must have the derived ones.
 */
export class DeliveryIdGenerator implements IdGenerator {
  private fixed: { traceId: string; spanId: string } | null = null;

  withIds<T>(ids: { traceId: string; spanId: string }, start: () => T): T {
    this.fixed = ids;
    try {
      return start();
    } finally {
      this.fixed = null;
    }
  }

  generateTraceId(): string {
    return this.fixed?.traceId ?? nonZeroHex(randomBytes(16));
  }

  generateSpanId(): string {
    return this.fixed?.spanId ?? nonZeroHex(randomBytes(8));
  }
}

/** Which side of a delivery this node is on. */
type Role = 'send' | 'receive';

interface OpenDelivery {
  /** The instance under way: a newer one for the same peer ends this delivery as superseded. */
  readonly ref: DeliveryRef;
  readonly start: number;
  readonly role: Role;
  /** Opened by a later step than its first (another process or a previous run saw the start). */
  readonly resumed: boolean;
  transport: TransportKind | undefined;
  bytes: number;
  events: { name: string; time: number; message?: string }[];
}

export interface DeliveryTracesOptions {
  /** Deliveries tracked at once; beyond it the oldest is forgotten (its span then starts late). */
  readonly maxOpen?: number;
  /**
   * How long a delivery is tracked without ending (30 days, as long as the CSS keeps a silent
   * ESS's registration): past it, it is forgotten like an evicted one. On a scaled-out CSS the
   * process that queued a delivery may never hear its end, which another process takes.
   */
  readonly maxOpenMs?: number;
  /** This node's protocol, the `transport` attribute of a delivery that moved no data. */
  readonly transport?: TransportKind;
  /**
   * This node is an ESS: it reports its side of what it receives (received, consumed), so bytes
   * received open a `receive` span, and a status about an instance not published here is one.
   * A CSS reports no such end for what its ESS nodes send it, so it keeps nothing open for them.
   */
  readonly ess?: boolean;
  readonly now?: () => number;
}

/** Where a delivery ends. `superseded`: a newer instance replaced it before. */
type FinalStatus = 'consumed' | 'deleted' | 'error' | 'superseded';
const FINAL: ReadonlySet<string> = new Set<FinalStatus>(['consumed', 'deleted', 'error']);
/** Statuses that start a delivery rather than report on one already started. */
const STARTS: ReadonlySet<DeliveryStatus> = new Set<DeliveryStatus>(['pending', 'delivering']);
/** Steps kept per open delivery: a status that flips back and forth must not grow it. */
const MAX_EVENTS = 16;
/** Instances published here, remembered so that an ESS's later statuses about them read as sending. */
const MAX_PUBLISHED = 1024;

export class DeliveryTraces implements SyncEvents {
  /** By object and peer: one delivery per peer is under way at a time, of the newest instance. */
  private readonly open = new Map<string, OpenDelivery>();
  private readonly publishedHere = new Set<string>();
  private readonly maxOpen: number;
  private readonly maxOpenMs: number;
  private readonly now: () => number;
  /** Deliveries forgotten because the map was full. */
  evicted = 0;

  constructor(
    private readonly tracer: Tracer,
    private readonly ids: DeliveryIdGenerator,
    private readonly opts: DeliveryTracesOptions = {},
  ) {
    this.maxOpen = opts.maxOpen ?? 10_000;
    this.maxOpenMs = opts.maxOpenMs ?? 30 * 86_400_000;
    this.now = opts.now ?? Date.now;
  }

  /** Deliveries whose span is still to be made. */
  get openCount(): number {
    return this.open.size;
  }

  objectPublished(obj: DeliveryRef, info: { destinations: number }): void {
    const instance = instanceKey(obj);
    // Its span id is derived: a second span for the same instance would share it.
    if (this.publishedHere.has(instance)) return;
    if (this.publishedHere.size >= MAX_PUBLISHED) this.publishedHere.delete(this.publishedHere.values().next().value as string);
    this.publishedHere.add(instance);
    const at = new Date(this.now());
    const attributes = { ...objectAttributes(obj), 'edgesync.destinations': info.destinations };
    const span = this.ids.withIds({ traceId: traceIdOf(obj), spanId: publicationSpanId(obj) }, () =>
      this.tracer.startSpan('publish', { kind: SpanKind.PRODUCER, startTime: at, attributes }, ROOT_CONTEXT),
    );
    span.end(at);
  }

  deliveryQueued(obj: DeliveryRef, peer: PeerRef): void {
    this.touch(obj, peer, 'send', false);
  }

  dataSent(obj: DeliveryRef, peer: PeerRef, transport: TransportKind, bytes: number, _offset?: number, _total?: number | null): void {
    const d = this.touch(obj, peer, 'send', true);
    d.transport = transport;
    d.bytes += bytes;
  }

  dataReceived(obj: DeliveryRef, peer: PeerRef, transport: TransportKind, bytes: number, _offset?: number, _total?: number | null): void {
    if (this.opts.ess !== true) return;
    const d = this.touch(obj, peer, 'receive', true);
    d.transport = transport;
    d.bytes += bytes;
  }

  deliveryStatus(obj: DeliveryRef, peer: PeerRef, status: DeliveryStatus, message?: string): void {
    const role: Role = this.opts.ess === true && !this.publishedHere.has(instanceKey(obj)) ? 'receive' : 'send';
    const d = this.touch(obj, peer, role, !STARTS.has(status));
    const time = this.now();
    if (!FINAL.has(status)) {
      if (d.events.length < MAX_EVENTS) d.events.push({ name: status, time, ...(message !== undefined ? { message } : {}) });
      return;
    }
    const key = deliveryKey(obj, peer);
    if (this.open.get(key) === d) this.open.delete(key);
    this.finish(peer, d, status as FinalStatus, time, message);
  }

  /** The open delivery of this instance and peer, opened now if it is new (its span then starts now). */
  private touch(obj: DeliveryRef, peer: PeerRef, role: Role, resumed: boolean): OpenDelivery {
    const key = deliveryKey(obj, peer);
    const known = this.open.get(key);
    if (known !== undefined && known.ref.instanceID === obj.instanceID) return known;
    const now = this.now();
    // A late word about an older instance: its own short span, the newer delivery stays open.
    if (known !== undefined && obj.instanceID < known.ref.instanceID) return this.entry(obj, role, true, now);
    if (known !== undefined) {
      this.open.delete(key);
      this.finish(peer, known, 'superseded', now, undefined);
    } else {
      this.forgetOld(now);
    }
    const d = this.entry(obj, role, resumed, now);
    this.open.set(key, d);
    return d;
  }

  /** Makes room for one more: the map is in insertion order, so the oldest are first. */
  private forgetOld(now: number): void {
    for (const [key, d] of this.open) {
      if (this.open.size < this.maxOpen && now - d.start < this.maxOpenMs) return;
      this.open.delete(key);
      this.evicted++;
    }
  }

  private entry(obj: DeliveryRef, role: Role, resumed: boolean, start: number): OpenDelivery {
    // A copy: the engine passes its own records, which it goes on changing.
    const ref = { orgID: obj.orgID, objectType: obj.objectType, objectID: obj.objectID, instanceID: obj.instanceID };
    return { ref, start, role, resumed, transport: this.opts.transport, bytes: 0, events: [] };
  }

  private finish(peer: PeerRef, d: OpenDelivery, status: FinalStatus, time: number, message: string | undefined): void {
    const parent = trace.setSpanContext(ROOT_CONTEXT, { traceId: traceIdOf(d.ref), spanId: publicationSpanId(d.ref), traceFlags: TraceFlags.SAMPLED, isRemote: true });
    const attributes: Attributes = {
      ...objectAttributes(d.ref),
      'edgesync.peer.type': peer.peerType,
      'edgesync.peer.id': peer.peerID,
      'edgesync.bytes': d.bytes,
      'edgesync.status': status,
      ...(d.transport !== undefined ? { 'edgesync.transport': d.transport } : {}),
      ...(d.resumed ? { 'edgesync.resumed': true } : {}),
    };
    const kind = d.role === 'send' ? SpanKind.PRODUCER : SpanKind.CONSUMER;
    const span = this.tracer.startSpan(d.role === 'send' ? 'deliver' : 'receive', { kind, startTime: new Date(d.start), attributes }, parent);
    for (const e of d.events) span.addEvent(e.name, e.message !== undefined ? { 'edgesync.message': e.message } : {}, new Date(e.time));
    if (status === 'error') span.setStatus({ code: SpanStatusCode.ERROR, ...(message !== undefined ? { message } : {}) });
    span.end(new Date(time));
  }
}

function objectAttributes(obj: DeliveryRef): Attributes {
  return {
    'edgesync.org': obj.orgID,
    'edgesync.object.type': obj.objectType,
    'edgesync.object.id': obj.objectID,
    // A string: an instance id is a 64-bit integer, beyond what an attribute's double holds exactly.
    'edgesync.object.instance': obj.instanceID.toString(),
  };
}

const instanceKey = (obj: DeliveryRef): string => `${obj.orgID}/${obj.objectType}/${obj.objectID}/${obj.instanceID.toString()}`;
const deliveryKey = (obj: DeliveryRef, peer: PeerRef): string => `${obj.orgID}/${obj.objectType}/${obj.objectID}>${peer.peerType}/${peer.peerID}`;
