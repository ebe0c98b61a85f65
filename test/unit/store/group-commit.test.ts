import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import Database from 'better-sqlite3';
import { GroupCommit } from '../../../lib/store/sqlite/group-commit.js';

const root = mkdtempSync(join(tmpdir(), 'edgesync-group-commit-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let n = 0;
let path: string;
let db: Database.Database;
let commits: GroupCommit;

beforeEach(() => {
  path = join(root, `gc-${++n}.db`);
  db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT NOT NULL)');
  commits = new GroupCommit(() => db);
});
afterEach(() => {
  if (db.open) db.close();
});

const insert = (k: string, v: string) => (d: Database.Database) => d.prepare('INSERT INTO t VALUES (?, ?)').run(k, v).changes;
const persisted = (): string[] => {
  const other = new Database(path, { readonly: true });
  try {
    return other.prepare<[], { k: string }>('SELECT k FROM t ORDER BY k').all().map((r) => r.k);
  } finally {
    other.close();
  }
};

describe('GroupCommit', () => {
  it('commits the writes of one event-loop turn together, and settles each only after the commit', async () => {
    const a = commits.write(insert('a', '1'));
    const b = commits.write(insert('b', '2'));
    // Not committed yet: another connection sees nothing.
    expect(persisted()).toEqual([]);
    expect(db.inTransaction).toBe(true);
    await expect(Promise.all([a, b])).resolves.toEqual([1, 1]);
    expect(db.inTransaction).toBe(false);
    expect(persisted()).toEqual(['a', 'b']);
  });

  it('undoes only the write that failed; the others of the turn still commit', async () => {
    await commits.write(insert('a', '1'));
    const ok = commits.write(insert('b', '2'));
    const dup = commits.write(insert('a', 'again'));
    // Matched by code: the addon's SqliteError class may belong to another jest realm.
    await expect(dup).rejects.toHaveProperty('code', 'SQLITE_CONSTRAINT_PRIMARYKEY');
    await expect(ok).resolves.toBe(1);
    expect(persisted()).toEqual(['a', 'b']);
  });

  it('fails every writer of the turn when the commit fails, and keeps none of their changes', async () => {
    const a = commits.write(insert('a', '1'));
    const b = commits.write(insert('b', '2'));
    // A deferred foreign-key violation is only detected at COMMIT.
    db.pragma('foreign_keys = ON');
    db.exec('CREATE TABLE child (p TEXT REFERENCES t(k) DEFERRABLE INITIALLY DEFERRED)');
    const c = commits.write((d) => d.prepare("INSERT INTO child VALUES ('missing')").run().changes);
    await expect(Promise.all([a, b, c])).rejects.toHaveProperty('code', 'SQLITE_CONSTRAINT_FOREIGNKEY');
    await expect(a).rejects.toHaveProperty('code', 'SQLITE_CONSTRAINT_FOREIGNKEY');
    await expect(b).rejects.toHaveProperty('code', 'SQLITE_CONSTRAINT_FOREIGNKEY');
    expect(db.inTransaction).toBe(false);
    expect(persisted()).toEqual([]);
  });

  it('writeNow() hands its result back before the commit, which the turn’s next writer waits for', async () => {
    expect(commits.writeNow(insert('a', '1'))).toBe(1);
    expect(persisted()).toEqual([]);
    await commits.write(insert('b', '2'));
    expect(persisted()).toEqual(['a', 'b']);
  });

  it('flush() commits at once, for a store about to close', async () => {
    const a = commits.write(insert('a', '1'));
    commits.flush();
    expect(db.inTransaction).toBe(false);
    expect(persisted()).toEqual(['a']);
    await expect(a).resolves.toBe(1);
  });

  describe('with an fsync of its own (synchronous=NORMAL)', () => {
    it('acknowledges a write only after an fsync that started after its commit, one fsync for many commits', async () => {
      let syncs = 0;
      let release: () => void = () => undefined;
      const synced = new GroupCommit(
        () => db,
        () => {
          syncs++;
          return new Promise<void>((r) => (release = r));
        },
      );
      let settled = false;
      const a = synced.write(insert('a', '1')).then(() => (settled = true));
      await new Promise((r) => setImmediate(r));
      // Committed (another connection sees it) but not acknowledged while the fsync runs.
      expect(persisted()).toEqual(['a']);
      expect(settled).toBe(false);
      // Two more turns commit while the first fsync is in flight: they wait for the next one.
      const b = synced.write(insert('b', '2'));
      await new Promise((r) => setImmediate(r));
      const c = synced.write(insert('c', '3'));
      await new Promise((r) => setImmediate(r));
      expect(syncs).toBe(1);
      release();
      await a;
      expect(settled).toBe(true);
      await new Promise((r) => setImmediate(r));
      expect(syncs).toBe(2);
      release();
      await expect(Promise.all([b, c])).resolves.toEqual([1, 1]);
      await synced.drain();
      expect(syncs).toBe(2);
    });

    it('fails the writers whose fsync failed', async () => {
      const failing = new GroupCommit(
        () => db,
        () => Promise.reject(new Error('EIO')),
      );
      await expect(failing.write(insert('a', '1'))).rejects.toThrow('EIO');
      // The next turn gets its own fsync (and its own outcome).
      const ok = new GroupCommit(() => db, () => Promise.resolve());
      await expect(ok.write(insert('b', '2'))).resolves.toBe(1);
    });
  });
});
