/**
 * Schema migrations of the SQLite store, kept in code so that the binary and its schema
 * cannot drift apart. The applied version lives in `PRAGMA user_version`: it is part of the
 * database header, so it changes in the same transaction as the DDL.
 */
import type Database from 'better-sqlite3';
import { InternalError } from '../../model/index.js';

/** One step of the schema. Versions are 1, 2, 3… with no gaps; a step is never edited once released. */
export interface Migration {
  version: number;
  description: string;
  up: (db: Database.Database) => void;
}

/** Every migration, oldest first. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'objects, webhooks, organizations, destinations, uploads, meta',
    up: (db) => {
      // STRICT makes SQLite refuse a value of the wrong type instead of storing it silently.
      // The primary key (org, object_type, object_id) is itself an index whose prefix serves
      // the (org) and (org, object_type) lookups, so no separate (org, object_type) index is
      // created: it would cost every write and never be chosen by the planner.
      db.exec(`
        CREATE TABLE objects (
          org TEXT NOT NULL,
          object_type TEXT NOT NULL,
          object_id TEXT NOT NULL,
          meta TEXT NOT NULL,
          status TEXT NOT NULL,
          blob_id TEXT,
          data_sha256 TEXT,
          remaining_consumers INTEGER NOT NULL,
          remaining_receivers INTEGER NOT NULL,
          policy_received INTEGER NOT NULL,
          last_update INTEGER NOT NULL,
          instance_id INTEGER NOT NULL,
          PRIMARY KEY (org, object_type, object_id)
        ) STRICT;
        CREATE INDEX objects_org_status ON objects (org, status);

        CREATE TABLE webhooks (
          org TEXT NOT NULL,
          object_type TEXT NOT NULL,
          url TEXT NOT NULL,
          url_folded TEXT NOT NULL,
          PRIMARY KEY (org, object_type, url)
        ) STRICT;
        CREATE INDEX webhooks_folded ON webhooks (org, object_type, url_folded);

        CREATE TABLE organizations (
          org TEXT NOT NULL PRIMARY KEY,
          address TEXT NOT NULL,
          user TEXT NOT NULL,
          password TEXT NOT NULL,
          last_update INTEGER NOT NULL
        ) STRICT;

        CREATE TABLE destinations (
          org TEXT NOT NULL,
          dest_type TEXT NOT NULL,
          dest_id TEXT NOT NULL,
          communication TEXT NOT NULL CHECK (communication IN ('HTTP', 'MQTT')),
          code_version TEXT NOT NULL,
          last_ping INTEGER NOT NULL,
          PRIMARY KEY (org, dest_type, dest_id)
        ) STRICT;

        CREATE TABLE uploads (
          org TEXT NOT NULL,
          object_type TEXT NOT NULL,
          object_id TEXT NOT NULL,
          staging_id TEXT NOT NULL,
          total INTEGER NOT NULL,
          received INTEGER NOT NULL,
          chunk_size INTEGER NOT NULL,
          instance_id INTEGER NOT NULL,
          last_update INTEGER NOT NULL,
          PRIMARY KEY (org, object_type, object_id)
        ) STRICT;

        CREATE TABLE meta (
          key TEXT NOT NULL PRIMARY KEY,
          value INTEGER NOT NULL
        ) STRICT;
      `);
    },
  },
  {
    version: 2,
    description: 'notifications: one record per (object, peer)',
    up: (db) => {
      // Its own table, not a column of objects, so an ack rewrites one small row. Statuses are
      // not CHECKed: SQLite cannot alter a CHECK without rebuilding the table, and the status
      // list may grow with negotiated extensions. `offset` is an SQL keyword, hence data_offset.
      // The primary key's (org, object_type, object_id) prefix serves the per-object queries;
      // notifications_peer_status serves the poll query and per-peer deletion;
      // notifications_due serves the resend scheduler's scan, and is partial because most
      // records are not scheduled and need no entry in it.
      db.exec(`
        CREATE TABLE notifications (
          org TEXT NOT NULL,
          object_type TEXT NOT NULL,
          object_id TEXT NOT NULL,
          peer_type TEXT NOT NULL,
          peer_id TEXT NOT NULL,
          status TEXT NOT NULL,
          instance_id INTEGER NOT NULL,
          data_id INTEGER NOT NULL,
          delivery_status TEXT NOT NULL,
          message TEXT NOT NULL,
          resend_at INTEGER NOT NULL CHECK (resend_at >= 0),
          attempts INTEGER NOT NULL CHECK (attempts >= 0),
          data_offset INTEGER NOT NULL CHECK (data_offset >= 0),
          last_update INTEGER NOT NULL,
          PRIMARY KEY (org, object_type, object_id, peer_type, peer_id)
        ) STRICT;
        CREATE INDEX notifications_peer_status ON notifications (org, peer_type, peer_id, status);
        CREATE INDEX notifications_due ON notifications (resend_at) WHERE resend_at > 0;
      `);
    },
  },
  {
    version: 3,
    description: 'small_blobs: object data small enough to live in the database',
    up: (db) => {
      // See tiered-blob-store.ts. The id is the primary key of a rowid table, so a blob's bytes
      // are not copied into an index b-tree.
      db.exec(`
        CREATE TABLE small_blobs (
          id TEXT NOT NULL PRIMARY KEY,
          data BLOB NOT NULL
        ) STRICT;
      `);
    },
  },
  {
    version: 4,
    description: 'deleted_objects: sender-side deletions still awaiting acknowledgements',
    up: (db) => {
      // Not a status of the objects row: every reader of that table would have to tell a
      // deletion in progress from a live object or from one deleted by the other side.
      db.exec(`
        CREATE TABLE deleted_objects (
          org TEXT NOT NULL,
          object_type TEXT NOT NULL,
          object_id TEXT NOT NULL,
          meta TEXT NOT NULL,
          policy_received INTEGER NOT NULL,
          deleted_at INTEGER NOT NULL,
          PRIMARY KEY (org, object_type, object_id)
        ) STRICT;
      `);
    },
  },
  {
    version: 5,
    description: 'acl_entries: objects and destinations ACLs of a CSS',
    up: (db) => {
      // One row per entry, not one row per ACL holding a list: an add or a removal touches the
      // rows it names. The primary key's (org, acl_type, acl_key) prefix serves the lookup of
      // one ACL on every user request, the listing of an org's keys, and an org's deletion;
      // `position` keeps the reference's entry order, which the GET route shows.
      db.exec(`
        CREATE TABLE acl_entries (
          org TEXT NOT NULL,
          acl_type TEXT NOT NULL CHECK (acl_type IN ('objects', 'destinations')),
          acl_key TEXT NOT NULL,
          acl_user_type TEXT NOT NULL CHECK (acl_user_type IN ('user', 'node')),
          username TEXT NOT NULL,
          acl_role TEXT NOT NULL CHECK (acl_role IN ('aclWriter', 'aclReader', 'na')),
          position INTEGER NOT NULL,
          PRIMARY KEY (org, acl_type, acl_key, acl_user_type, username)
        ) STRICT, WITHOUT ROWID;
      `);
    },
  },
];

/** The schema version this code writes. */
export const LATEST_SCHEMA_VERSION: number = MIGRATIONS.at(-1)?.version ?? 0;

function userVersion(db: Database.Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/**
 * Brings the database to {@link LATEST_SCHEMA_VERSION} in one transaction: either every
 * pending step applies or none does.
 * @returns the version the database was at before.
 * @throws InternalError when the database was written by a newer edgesync.
 */
export function migrate(db: Database.Database, migrations: readonly Migration[] = MIGRATIONS): number {
  const latest = migrations.at(-1)?.version ?? 0;
  // IMMEDIATE takes the write lock before reading the version, so two processes opening the
  // same file cannot both apply the same step.
  return db
    .transaction(() => {
      const current = userVersion(db);
      if (current > latest) {
        throw new InternalError(
          `Database ${db.name} has schema version ${current}, newer than the ${latest} this edgesync knows; ` +
            'run a newer edgesync or restore a backup made by this one',
        );
      }
      for (const m of migrations) {
        if (m.version <= current) continue;
        m.up(db);
        // PRAGMA does not take bound parameters; the version is a number from our own table.
        db.pragma(`user_version = ${Math.trunc(m.version)}`);
      }
      return current;
    })
    .immediate();
}
