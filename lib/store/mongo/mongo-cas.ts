/**
 * Compare-and-set that holds on FerretDB too.
 *
 * On MongoDB an update whose filter carries the condition is atomic. FerretDB 1.24 (SQLite)
 * runs it as a query, then a write by _id, so two processes can both match the same state and
 * both "win" (seen in the contract suite: two concurrent advances of one upload both applied).
 * A unique index insert is atomic on both, so a change of state is claimed first: every
 * document carries `rev`, a random token renewed by each write; the writer that inserts the
 * claim for the rev it read is the only one that may write. Claims are removed once older than
 * CLAIM_TTL_MS, far longer than any racing writer can hold a rev it read.
 */
import { randomUUID } from 'node:crypto';
import { MongoServerError, type Collection, type Filter, type MatchKeysAndValues, type OptionalUnlessRequiredId } from 'mongodb';

export interface ClaimDoc {
  _id: string;
  /** Epoch ms of the claim. */
  at: number;
}

/** What every document changed by compare-and-set carries. */
export interface Revisioned {
  rev: string;
}

const CLAIM_TTL_MS = 10 * 60_000;
/** Claims between two sweeps of the old ones. */
const SWEEP_EVERY = 256;

/** MongoDB's duplicate-key error: an insert lost the race for a unique key. */
export const isDuplicateKey = (e: unknown): boolean => e instanceof MongoServerError && e.code === 11000;

export const newRev = (): string => randomUUID();

/** The claims of one database; see the file comment. */
export class Claims {
  private sinceSweep = 0;

  constructor(private readonly collection: () => Collection<ClaimDoc>) {}

  /** @returns true for the one caller that claimed `rev` of the document `docId` in `scope`. */
  async claim(scope: string, docId: string, rev: string): Promise<boolean> {
    const col = this.collection();
    if (++this.sinceSweep >= SWEEP_EVERY) {
      this.sinceSweep = 0;
      await col.deleteMany({ at: { $lt: Date.now() - CLAIM_TTL_MS } });
    }
    try {
      await col.insertOne({ _id: `${scope}\u0000${docId}\u0000${rev}`, at: Date.now() });
      return true;
    } catch (e) {
      if (isDuplicateKey(e)) return false;
      throw e;
    }
  }

  /**
   * Applies `set` to the one document matching `filter`, only if no other writer changed it
   * since it was read here. The caller's condition is part of `filter`.
   * @returns false when no document matched, or another writer changed it first.
   */
  async update<T extends Revisioned>(scope: string, col: Collection<T>, filter: Filter<T>, set: Partial<T>): Promise<boolean> {
    const doc = await col.findOne(filter);
    if (doc === null) return false;
    const id = String(doc._id);
    if (!(await this.claim(scope, id, doc.rev))) return false;
    const r = await col.updateOne({ ...filter, rev: doc.rev }, { $set: { ...set, rev: newRev() } as MatchKeysAndValues<T> });
    return r.matchedCount === 1;
  }
}

/** Replaces the document matching `filter` (inserting it when missing) with a new rev. */
export async function replaceRevisioned<T extends Revisioned>(col: Collection<T>, filter: Filter<T>, doc: Omit<T, 'rev'>): Promise<void> {
  const full = { ...doc, rev: newRev() } as unknown as OptionalUnlessRequiredId<T>;
  try {
    await col.replaceOne(filter, full, { upsert: true });
  } catch (e) {
    // Two processes inserted the same new key: the later one replaces, as it would have.
    if (!isDuplicateKey(e)) throw e;
    await col.replaceOne(filter, full, { upsert: true });
  }
}
