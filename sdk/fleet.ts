/**
 * A client of the fleet read model (`/api/v1/fleet/{orgID}…`, an edgesync extension): the nodes
 * and objects of an org with per-destination delivery and live progress, as the web dashboard and
 * `edgesync top` show them. Not part of the reference API: a reference CSS answers 404.
 */
import { ensureSuccess, readText, Transport, type TransportOptions } from './transport.js';

export type FleetNodeHealth = 'ok' | 'late' | 'silent';
export type FleetDeliveryStatus = 'pending' | 'delivering' | 'delivered' | 'consumed' | 'deleted' | 'error';

export interface FleetNode {
  /** `ESS` for a destination of a CSS; `CSS` for the cloud an ESS talks to. */
  kind: 'ESS' | 'CSS';
  destinationType: string;
  destinationID: string;
  communication: string;
  codeVersion: string;
  /** RFC 3339; null when never heard from. */
  lastContact: string | null;
  health: FleetNodeHealth;
}

export interface FleetProgress {
  bytes: number;
  total: number | null;
}

export interface FleetDelivery {
  destinationType: string;
  destinationID: string;
  status: FleetDeliveryStatus;
  message: string;
  lastUpdate: string;
  /** Present while bytes move. */
  progress?: FleetProgress;
}

export interface FleetObject {
  objectType: string;
  objectID: string;
  /** Decimal string (64-bit). */
  instanceID: string;
  status: string;
  size: number;
  deleted: boolean;
  public: boolean;
  lastUpdate: string;
  deliveryCounts: Record<FleetDeliveryStatus, number>;
  /** The first destinations; {@link FleetClient.object} pages through all of them. */
  deliveries: FleetDelivery[];
  deliveriesTotal: number;
}

export interface FleetPage<T> {
  items: T[];
  /** Cursor of the next page; null on the last. */
  next: string | null;
  total: number;
}

export interface FleetSnapshot {
  orgID: string;
  nodeType: 'CSS' | 'ESS';
  generatedAt: string;
  nodes: FleetPage<FleetNode>;
  objects: FleetPage<FleetObject>;
}

export interface FleetObjectDetail {
  object: FleetObject;
  metadata: Record<string, unknown>;
  deliveries: FleetPage<FleetDelivery>;
}

export interface FleetNodeDetail {
  node: FleetNode;
  objects: FleetPage<FleetDelivery & { objectType: string; objectID: string }>;
}

export interface FleetQuery {
  /** Items per page, 1–1000 (100 by default). */
  limit?: number;
  nodesAfter?: string;
  objectsAfter?: string;
  signal?: AbortSignal;
}

export interface FleetPageQuery {
  limit?: number;
  after?: string;
  signal?: AbortSignal;
}

const seg = encodeURIComponent;

function withQuery(path: string, q: Record<string, string | number | undefined>): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== '') params.set(k, String(v));
  const s = params.toString();
  return s === '' ? path : `${path}?${s}`;
}

/** Reads the fleet API of one CSS or ESS. Call {@link close} when done. */
export class FleetClient {
  readonly #transport: Transport;

  constructor(options: TransportOptions) {
    this.#transport = new Transport(options);
  }

  close(): void {
    this.#transport.close();
  }

  /** One page of the org's nodes and one of its objects. */
  snapshot(orgID: string, q: FleetQuery = {}): Promise<FleetSnapshot> {
    return this.#get(withQuery(`/api/v1/fleet/${seg(orgID)}`, { limit: q.limit, nodesAfter: q.nodesAfter, objectsAfter: q.objectsAfter }), q.signal);
  }

  /** One object and its destinations, a page at a time. */
  object(orgID: string, objectType: string, objectID: string, q: FleetPageQuery = {}): Promise<FleetObjectDetail> {
    return this.#get(withQuery(`/api/v1/fleet/${seg(orgID)}/objects/${seg(objectType)}/${seg(objectID)}`, { limit: q.limit, after: q.after }), q.signal);
  }

  /** One ESS node (CSS only) and what is addressed to it, a page at a time. */
  node(orgID: string, destType: string, destID: string, q: FleetPageQuery = {}): Promise<FleetNodeDetail> {
    return this.#get(withQuery(`/api/v1/fleet/${seg(orgID)}/nodes/${seg(destType)}/${seg(destID)}`, { limit: q.limit, after: q.after }), q.signal);
  }

  /**
   * The snapshots the server sends as they change (server-sent events), until `signal` aborts
   * or the server ends the stream (it does when it stops).
   */
  async *events(orgID: string, q: FleetQuery = {}): AsyncGenerator<FleetSnapshot> {
    const path = withQuery(`/api/v1/fleet/${seg(orgID)}/events`, { limit: q.limit, nodesAfter: q.nodesAfter, objectsAfter: q.objectsAfter });
    const res = await ensureSuccess(await this.#transport.request({ method: 'GET', path, headers: { accept: 'text/event-stream' }, signal: q.signal }), 'GET', path);
    res.body.setEncoding('utf8');
    let buf = '';
    try {
      for await (const chunk of res.body as AsyncIterable<string>) {
        buf += chunk.replace(/\r\n?/g, '\n');
        let end: number;
        while ((end = buf.indexOf('\n\n')) !== -1) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          let name = 'message';
          const data: string[] = [];
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) name = line.slice(6).trim();
            else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
          }
          if (name === 'snapshot' && data.length > 0) yield JSON.parse(data.join('\n')) as FleetSnapshot;
        }
      }
    } catch (err) {
      if (q.signal?.aborted === true) return;
      throw err;
    } finally {
      res.body.destroy();
    }
  }

  async #get<T>(path: string, signal?: AbortSignal): Promise<T> {
    const res = await ensureSuccess(await this.#transport.request({ method: 'GET', path, signal }), 'GET', path);
    return JSON.parse(await readText(res.body)) as T;
  }
}
