/**
 * The ACLs of a CSS in the SQLite file of a SqliteStore, on its connection and group commit.
 * One row per entry (table `acl_entries`, schema version 5). [ref rest-api §1.5]
 */
import type Database from 'better-sqlite3';
import type { AclStore, AclType, StoredAclEntry } from '../types.js';

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

const sameUser = (a: Pick<StoredAclEntry, 'username' | 'aclUserType'>, b: Pick<StoredAclEntry, 'username' | 'aclUserType'>): boolean =>
  a.aclUserType === b.aclUserType && a.username === b.username;

/** AclStore of a SqliteStore; the store delegates its ACL methods to it. */
export class SqliteAcls implements AclStore {
  /** Statements of the connection they were prepared on; re-prepared when the store reopens. */
  private prepared: { db: Database.Database; s: Statements } | null = null;

  /**
   * @param connection the store's open connection (throws when closed)
   * @param write the store's group commit: runs `work` now, resolves once it is durable
   */
  constructor(
    private readonly connection: () => Database.Database,
    private readonly write: <T>(work: () => T) => Promise<T>,
  ) {}

  addAclEntries(type: AclType, org: string, key: string, entries: readonly StoredAclEntry[]): Promise<void> {
    return this.write(() => {
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
    return this.write(() => {
      const s = this.statements();
      const acl = { org, type, key };
      const held = s.get.all(acl);
      let changed = false;
      for (const u of users) {
        const i = held.findIndex((h) => sameUser(h, u));
        if (i === -1) continue;
        // [ref boltStorage RemoveUsersFromACL] the last entry takes the removed one's place.
        const last = held.pop();
        if (last !== undefined && i < held.length) held[i] = last;
        changed = true;
      }
      if (!changed) return;
      s.clear.run(acl);
      held.forEach((e, position) => s.insert.run({ ...acl, username: e.username, aclUserType: e.aclUserType, aclRole: e.aclRole, position }));
    });
  }

  getAcl(type: AclType, org: string, key: string): Promise<StoredAclEntry[]> {
    return new Promise((resolve) => resolve(this.statements().get.all({ org, type, key })));
  }

  listAclKeys(type: AclType, org: string): Promise<string[]> {
    return new Promise((resolve) => resolve(this.statements().keys.all(org, type)));
  }

  private statements(): Statements {
    const db = this.connection();
    if (this.prepared?.db !== db) this.prepared = { db, s: prepareStatements(db) };
    return this.prepared.s;
  }
}
