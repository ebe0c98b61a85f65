/**
 * Whether a stopped node's store is intact, read straight from its files (the SQLite database
 * and the blob directory under PERSISTENCE_ROOT_PATH): what a fuzz run must leave behind.
 * Integration tests only.
 */
import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { NO_DATA_STATUSES, OBJECT_STATUSES } from '../../lib/model/index.js';

export interface StoreReport {
  /** `PRAGMA integrity_check`: ['ok'] when the file is sound. */
  integrity: string[];
  objects: number;
  /** Objects whose data is readable by their status (a blob that exists and matches its hash). */
  withData: { org: string; objectType: string; objectID: string; sha256: string }[];
  /** Everything found wrong, one line each; empty when the store is intact. */
  problems: string[];
}

interface ObjectRow {
  org: string;
  object_type: string;
  object_id: string;
  meta: string;
  status: string;
  blob_id: string | null;
  data_sha256: string | null;
}

/** Reads the database of the node whose persistence root is `root`; the node must be stopped. */
export function checkStore(root: string): StoreReport {
  const sync = join(root, 'sync');
  const blobsDir = join(sync, 'data', 'blobs');
  const stagingDir = join(sync, 'data', 'staging');
  const db = new Database(join(sync, 'db', 'edgesync.db'), { readonly: true, fileMustExist: true });
  const problems: string[] = [];
  const withData: StoreReport['withData'] = [];
  try {
    const integrity = (db.pragma('integrity_check') as { integrity_check: string }[]).map((r) => r.integrity_check);
    const smallBlob = db.prepare<[string], Buffer>('SELECT data FROM small_blobs WHERE id = ?').pluck();
    const rows = db.prepare<[], ObjectRow>('SELECT org, object_type, object_id, meta, status, blob_id, data_sha256 FROM objects').all();
    const referenced = new Set<string>();
    for (const row of rows) {
      const name = `${row.org}/${row.object_type}/${row.object_id}`;
      if (!(OBJECT_STATUSES as readonly string[]).includes(row.status)) problems.push(`${name}: unknown status ${row.status}`);
      let meta: { noData?: unknown; objectSize?: unknown };
      try {
        meta = JSON.parse(row.meta) as typeof meta;
      } catch {
        problems.push(`${name}: metadata is not JSON`);
        continue;
      }
      // A deleted object (objdeleted) and one its destinations consumed (consumedByDest) keep
      // their metadata without their data.
      const hasData = ![...NO_DATA_STATUSES, 'objdeleted', 'consumedByDest'].includes(row.status) && meta.noData !== true;
      if (row.blob_id === null) {
        // Readable by its status, with a size, and no bytes: a partial object.
        if (hasData && typeof meta.objectSize === 'number' && meta.objectSize > 0) problems.push(`${name}: ${row.status} with objectSize ${meta.objectSize} but no data`);
        continue;
      }
      referenced.add(row.blob_id);
      let data: Buffer | undefined;
      if (row.blob_id.startsWith('s-')) data = smallBlob.get(row.blob_id);
      else if (existsSync(join(blobsDir, row.blob_id))) data = readFileSync(join(blobsDir, row.blob_id));
      if (data === undefined) {
        problems.push(`${name}: its blob ${row.blob_id} is missing`);
        continue;
      }
      if (row.data_sha256 !== null && createHash('sha256').update(data).digest('hex') !== row.data_sha256) {
        problems.push(`${name}: its data does not match its hash (${data.length} bytes)`);
        continue;
      }
      if (hasData) withData.push({ org: row.org, objectType: row.object_type, objectID: row.object_id, sha256: createHash('sha256').update(data).digest('hex') });
    }
    // Chunked uploads in progress keep their bytes in a staging file until the last chunk.
    const uploads = db.prepare<[], { org: string; object_type: string; object_id: string; staging_id: string }>('SELECT org, object_type, object_id, staging_id FROM uploads').all();
    for (const u of uploads) {
      if (!existsSync(join(stagingDir, u.staging_id))) problems.push(`${u.org}/${u.object_type}/${u.object_id}: upload staging file ${u.staging_id} is missing`);
    }
    // Nothing is left behind by a refused or failed write: every blob belongs to an object.
    const smallIds = db.prepare<[], string>('SELECT id FROM small_blobs').pluck().all();
    const files = existsSync(blobsDir) ? readdirSync(blobsDir) : [];
    for (const id of [...smallIds, ...files]) if (!referenced.has(id)) problems.push(`blob ${id} belongs to no object`);
    return { integrity, objects: rows.length, withData, problems };
  } finally {
    db.close();
  }
}
