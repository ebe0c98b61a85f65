/**
 * Early data on the ESS (lib/sync/early-data.ts is the CSS side): when the CSS offers the data
 * of an upload still arriving (an EARLY_DATA_ITEM), the agent downloads it at once, through the
 * link, into a staging area, hashed on the way. When the object's `update` then comes, stating
 * the SHA-256 of the committed data, those bytes complete the object if they have that digest
 * and size; otherwise they are dropped and the usual download takes over. Nothing of it is
 * persisted: after a restart the usual path does it all, and start-up's garbage collection
 * removes a staging area left behind.
 */
import type { Readable } from 'node:stream';
import type { MetaData } from '../../model/index.js';
import type { BlobStore, BlobWriteResult } from '../../store/types.js';
import { StagingWriter } from '../staging-writer.js';

/** Early downloads at once; further offers are left to the usual path. */
const MAX_AT_ONCE = 4;

/** How long finished early bytes wait for their `update` before they are dropped. */
const KEEP_MS = 60_000;

interface Staged {
  stagingId: string;
  size: number;
  sha256: string;
}

interface Early {
  done: Promise<Staged | null>;
  timer: NodeJS.Timeout | null;
}

export interface EarlyDownloadsDeps {
  /** The offered data from its start; null when the CSS no longer offers it (CssLink.fetchEarly). */
  fetch(meta: MetaData, signal: AbortSignal): Promise<Readable | null>;
  blobs: Pick<BlobStore, 'createStaging' | 'appendStaging' | 'commitStaging' | 'deleteStaging'>;
  /** Aborted when the agent stops. */
  signal: AbortSignal;
  log: { debug(obj: object, msg: string): void };
}

const keyOf = (m: Pick<MetaData, 'objectType' | 'objectID'>): string => `${m.objectType}\u0000${m.objectID}`;

export class EarlyDownloads {
  private readonly downloads = new Map<string, Early>();
  private running = 0;

  constructor(private readonly deps: EarlyDownloadsDeps) {}

  /**
   * An offer of the data of the object `meta` names, `size` bytes (null: not said): downloads
   * it unless a download of it is under way.
   */
  start(meta: MetaData, size: number | null): void {
    const key = keyOf(meta);
    if (this.downloads.has(key) || this.running >= MAX_AT_ONCE || size === 0) return;
    this.running++;
    const early: Early = { done: this.fetch(meta, size), timer: null };
    this.downloads.set(key, early);
    void early.done.then((staged) => {
      this.running--;
      if (this.downloads.get(key) !== early) return;
      if (staged === null) {
        this.downloads.delete(key);
        return;
      }
      early.timer = setTimeout(() => {
        if (this.downloads.get(key) === early) this.downloads.delete(key);
        void this.drop(staged);
      }, KEEP_MS);
      early.timer.unref();
    });
  }

  /**
   * The early bytes of the object, as a blob, when they are the data the update states (its
   * size and SHA-256); null when there are none or they are not (they are then dropped). Waits
   * for an early download still under way.
   */
  async take(meta: MetaData, statedSha256: string | undefined): Promise<BlobWriteResult | null> {
    const key = keyOf(meta);
    const early = this.downloads.get(key);
    if (early === undefined) return null;
    this.downloads.delete(key);
    if (early.timer !== null) clearTimeout(early.timer);
    const staged = await early.done;
    if (staged === null) return null;
    if (staged.size !== meta.objectSize || statedSha256 === undefined || staged.sha256 !== statedSha256) {
      this.deps.log.debug({ objectID: meta.objectID, instanceID: meta.instanceID }, 'early data is not the data of the update; dropped');
      await this.drop(staged);
      return null;
    }
    return this.deps.blobs.commitStaging(staged.stagingId, { sha256: staged.sha256 });
  }

  private async fetch(meta: MetaData, size: number | null): Promise<Staged | null> {
    const { blobs, signal } = this.deps;
    let stagingId: string | null = null;
    try {
      const source = await this.deps.fetch(meta, signal);
      if (source === null) return null;
      stagingId = await blobs.createStaging();
      const writer = StagingWriter.fresh(blobs, stagingId);
      await writer.append(source, size, () => Promise.resolve(), signal);
      return { stagingId, size: writer.offset, sha256: writer.sha256() };
    } catch (err) {
      this.deps.log.debug({ err, objectID: meta.objectID }, 'early data download ended early; the usual download will do');
      if (stagingId !== null) await blobs.deleteStaging(stagingId).catch(() => undefined);
      return null;
    }
  }

  private async drop(staged: Staged): Promise<void> {
    await this.deps.blobs.deleteStaging(staged.stagingId).catch(() => undefined);
  }
}
