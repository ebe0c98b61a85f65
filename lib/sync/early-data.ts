/**
 * Early data, an extension between our CSS and our ESS: the data of an object still being
 * uploaded to the CSS is offered to the ESS nodes it is addressed to, which may start
 * downloading it while it arrives instead of after. Without it, a large object reaches an ESS
 * in upload time plus transfer time; with it, in about the longer of the two.
 *
 * Nothing of the protocol's state changes: no record is written and no status moves. The offer
 * lives in memory for the length of the upload, an ESS that asks for early data (a reference
 * ESS never does) hears of it once in a poll answer, and the bytes it downloads count for
 * nothing until the object's `update` comes through the usual path, stating the SHA-256 of the
 * committed data: only bytes with that digest complete the object. An upload that fails or is
 * replaced leaves the ESS with bytes that match nothing, which it drops.
 */
import type { Readable } from 'node:stream';
import { destinationKey, type MetaData } from '../model/index.js';
import type { Destination, GrowingData, Store } from '../store/types.js';
import { isAddressedTo } from './addressing.js';
import type { PeerSignal } from './peer-signal.js';

export interface EarlyDataDeps {
  store: Pick<Store, 'listDestinations'>;
  /** Wakes the long-polls of the nodes an upload is addressed to. */
  peerSignal?: Pick<PeerSignal, 'notify'>;
  log?: { debug(obj: object, msg: string): void };
}

/** An upload on offer, as a poll answer announces it. */
export interface EarlyOffer {
  meta: MetaData;
  /** Its bytes, or null when the upload did not say (no Content-Length). */
  size: number | null;
}

interface Upload {
  meta: MetaData;
  data: GrowingData;
  /** Peers (destinationKey) that heard of it already. */
  told: Set<string>;
  /** Early downloads of it under way. */
  readers: number;
}

/**
 * Nodes one upload is offered to, and early downloads of it at once. Every one of them takes
 * CSS memory (read buffers, socket buffers) and CPU while the upload itself is arriving; an
 * upload addressed to thousands of nodes reaches the others the usual way, after it.
 */
export const MAX_EARLY_READERS = 16;

const keyOf = (org: string, type: string, id: string): string => `${org}\u0000${type}\u0000${id}`;
const peerOf = (d: Destination): string => destinationKey({ orgID: d.destinationOrgID, destType: d.destinationType, destID: d.destinationID });

export class EarlyData {
  private readonly uploads = new Map<string, Upload>();

  constructor(private readonly deps: EarlyDataDeps) {}

  /**
   * An upload of data for the object `meta` describes has started. Only an object that will be
   * sent once it has its data (active) is offered; the registered nodes it is addressed to are
   * woken, so that a long-poll answers with the offer at once.
   */
  begin(meta: MetaData, data: GrowingData): void {
    if (meta.inactive || meta.noData) return;
    this.uploads.set(keyOf(meta.destinationOrgID, meta.objectType, meta.objectID), { meta, data, told: new Set(), readers: 0 });
    const signal = this.deps.peerSignal;
    if (signal === undefined) return;
    this.deps.store.listDestinations(meta.destinationOrgID).then(
      (dests) => {
        for (const d of dests) if (isAddressedTo(meta, d)) signal.notify(d.destinationOrgID, d.destinationType, d.destinationID);
      },
      (err: unknown) => this.deps.log?.debug({ err, objectID: meta.objectID }, 'early data not announced'),
    );
  }

  /** The upload that `begin` announced with `data` is over (committed or failed). */
  end(meta: Pick<MetaData, 'destinationOrgID' | 'objectType' | 'objectID'>, data: GrowingData): void {
    const key = keyOf(meta.destinationOrgID, meta.objectType, meta.objectID);
    if (this.uploads.get(key)?.data === data) this.uploads.delete(key);
  }

  /** Uploads addressed to `dest` that it has not heard of yet (up to MAX_EARLY_READERS nodes each); from now on it has. */
  announce(dest: Destination): EarlyOffer[] {
    const offers: EarlyOffer[] = [];
    const peer = peerOf(dest);
    for (const u of this.uploads.values()) {
      if (u.told.has(peer) || u.told.size >= MAX_EARLY_READERS || !isAddressedTo(u.meta, dest)) continue;
      u.told.add(peer);
      offers.push({ meta: u.meta, size: u.data.size });
    }
    return offers;
  }

  /**
   * The data of the upload in progress for an object, streamed as it arrives, when it is
   * addressed to `dest` and fewer than MAX_EARLY_READERS download it already; else null.
   * @returns the stream, the data's size and the instance the upload is for
   */
  open(org: string, type: string, id: string, dest: Destination): { stream: Readable; size: number | null; instanceID: bigint } | null {
    const u = this.uploads.get(keyOf(org, type, id));
    if (u === undefined || u.readers >= MAX_EARLY_READERS || !isAddressedTo(u.meta, dest)) return null;
    const stream = u.data.read();
    u.readers++;
    stream.once('close', () => u.readers--);
    return { stream, size: u.data.size, instanceID: u.meta.instanceID };
  }
}
