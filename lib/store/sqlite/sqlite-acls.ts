/**
 * The ACLs of a CSS in the SQLite file of a SqliteStore, on its connection and group commit.
 * One row per entry (table `acl_entries`, schema version 5). [ref rest-api §1.5]
 *
 * Every user request reads one to four ACLs, so reads are served from memory: a lookup from
 * the table costs 6 µs (no ACL) to 25 µs (ten entries), from the cache well under 1 µs. The cache
 * is exact because this connection is the only writer of the file (one process per data
 * directory, data-lock.ts) and every ACL write, and an org's deletion, empties it.
 */
import type Database from 'better-sqlite3';
import type { AclStore, AclType, StoredAclEntry } from '../types.js';
import { removeAclUsers, sameUser } from '../acl-entries.js';

interface AclKey {
  org: string;
  type: AclType;
  key: string;
}

type EntryRow = StoredAclEntry & AclKey & { position: number };

const WHERE_ACL = 'org = @org AND acl_type = @type AND acl_key = @key';

function prepareStatements(db: Database.Database) {
  return {
    get: db.prepare<AclKey, StoredAclEntry>(
      `SELECT username, acl_user_type AS aclUserType, acl_role AS aclRole FROM acl_entries WHERE ${WHERE_ACL} ORDER BY position`,
    ),
    // The primary key's (org, acl_type, acl_key) prefix yields the keys in order, distinct.
    keys: db.prepare<[string, AclType], string>('SELECT DISTINCT acl_key FROM acl_entries WHERE org = ? AND acl_type = ? ORDER BY acl_key').pluck(),
    insert: db.prepare<EntryRow>(
      `INSERT INTO acl_entries (org, acl_type, acl_key, acl_user_type, username, acl_role, position)
       VALUES (@org, @type, @key, @aclUserType, @username, @aclRole, @position)`,
    ),
    clear: db.prepare<AclKey>(`DELETE FROM acl_entries WHERE ${WHERE_ACL}`),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

/** Bounds the memory of an org with very many types; past it the cache starts afresh. */
const MAX_CACHED_ACLS = 10_000;


/** AclStore of a SqliteStore; the store delegates its ACL methods to it. */
export class SqliteAcls implements AclStore {
  /** Statements of the connection they were prepared on; re-prepared when the store reopens. */
  private prepared: { db: Database.Database; s: Statements } | null = null;
  /** ACLs read since the last write, by type, org and key; entries frozen, shared by every reader. */
  private readonly cache = new Map<string, readonly Readonly<StoredAclEntry>[]>();

  /**
   * @param connection the store's open connection (throws when closed)
   * @param write the store's group commit: runs `work` now, resolves once it is durable
   */
  constructor(
    private readonly connection: () => Database.Database,
    private readonly write: <T>(work: () => T) => Promise<T>,
  ) {}

  /** Forgets every ACL read: after a write this class did not make (an org's deletion). */
  invalidate(): void {
    this.cache.clear();
  }

  addAclEntries(type: AclType, org: string, key: string, entries: readonly StoredAclEntry[]): Promise<void> {
    return this.changing(() => {
      const s = this.statements();
      const acl = { org, type, key };
      const held = s.get.all(acl);
      let position = held.length;
      for (const e of entries) {
        if (held.some((h) => sameUser(h, e))) continue;
        held.push(e);
        s.insert.run({ ...acl, username: e.username, aclUserType: e.aclUserType, aclRole: e.aclRole, position: position++ });
      }
    });
  }

  removeAclEntries(type: AclType, org: string, key: string, users: readonly Pick<StoredAclEntry, 'username' | 'aclUserType'>[]): Promise<void> {
    return this.changing(() => {
      const s = this.statements();
      const acl = { org, type, key };
      const held = s.get.all(acl);
      const changed = removeAclUsers(held, users);
      if (!changed) return;
      s.clear.run(acl);
      held.forEach((e, position) => s.insert.run({ ...acl, username: e.username, aclUserType: e.aclUserType, aclRole: e.aclRole, position }));
    });
  }

  /** A fresh array each time (callers may keep or sort it); the entries are shared and frozen. */
  getAcl(type: AclType, org: string, key: string): Promise<StoredAclEntry[]> {
    return new Promise((resolve) => {
      const id = `${type}\u0000${org}\u0000${key}`;
      let entries = this.cache.get(id);
      if (entries === undefined) {
        entries = this.statements().get.all({ org, type, key }).map((e) => Object.freeze(e));
        if (this.cache.size >= MAX_CACHED_ACLS) this.cache.clear();
        this.cache.set(id, entries);
      }
      resolve([...entries]);
    });
  }

  listAclKeys(type: AclType, org: string): Promise<string[]> {
    return new Promise((resolve) => resolve(this.statements().keys.all(org, type)));
  }

  /**
   * A write through the group commit. The cache is emptied as the rows change (so the next read
   * sees them, as reads on this connection do), and again if the commit fails and takes them back.
   */
  private changing(work: () => void): Promise<void> {
    return this.write(() => {
      this.cache.clear();
      work();
    }).catch((err: unknown) => {
      this.cache.clear();
      throw err;
    });
  }

  private statements(): Statements {
    const db = this.connection();
    if (this.prepared?.db !== db) this.prepared = { db, s: prepareStatements(db) };
    return this.prepared.s;
  }
}
