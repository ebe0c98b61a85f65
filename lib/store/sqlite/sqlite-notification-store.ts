/**
 * Notification records in the SQLite file of a SqliteStore, on the same connection: one
 * writer per file, and a later change can commit a record together with its object.
 */
import type Database from 'better-sqlite3';
import { DELIVERY_STATUSES, InternalError, type DeliveryStatus } from '../../model/index.js';
import type {
  Notification,
  NotificationExpectation,
  NotificationKey,
  NotificationCount,
  NotificationPatch,
  NotificationStatus,
  NotificationStore,
} from '../notification-types.js';

/**
 * Columns aliased to the field names, so that a row is a Notification once its ids are
 * bigints: they are read as text, since SQLite hands an INTEGER column to JS as a number.
 */
const COLUMNS = `org AS orgID, object_type AS objectType, object_id AS objectID, peer_type AS peerType, peer_id AS peerID,
  status, CAST(instance_id AS TEXT) AS instanceID, CAST(data_id AS TEXT) AS dataID, delivery_status AS deliveryStatus, message,
  resend_at AS resendAt, attempts, data_offset AS "offset", last_update AS lastUpdate`;
const WHERE_KEY = 'org = @orgID AND object_type = @objectType AND object_id = @objectID AND peer_type = @peerType AND peer_id = @peerID';
const WHERE_OBJECT = 'org = ? AND object_type = ? AND object_id = ?';
const WHERE_PEER = 'org = ? AND peer_type = ? AND peer_id = ?';

type NotificationRow = Omit<Notification, 'instanceID' | 'dataID'> & { instanceID: string; dataID: string };

function toNotification(row: NotificationRow): Notification {
  return { ...row, instanceID: BigInt(row.instanceID), dataID: BigInt(row.dataID) };
}

/** Parameters of the compare-and-set: the key, the expectation and the patch; null = "not given". */
interface CasParams extends NotificationKey {
  expStatus: string | null;
  expInstanceID: bigint | null;
  status: string | null;
  instanceID: bigint | null;
  dataID: bigint | null;
  deliveryStatus: string | null;
  message: string | null;
  resendAt: number | null;
  attempts: number | null;
  offset: number | null;
  lastUpdate: number | null;
}

/** Every statement, prepared once per connection. */
function prepareStatements(db: Database.Database) {
  return {
    put: db.prepare<Notification>(
      `INSERT OR REPLACE INTO notifications (org, object_type, object_id, peer_type, peer_id, status, instance_id, data_id,
         delivery_status, message, resend_at, attempts, data_offset, last_update)
       VALUES (@orgID, @objectType, @objectID, @peerType, @peerID, @status, @instanceID, @dataID,
         @deliveryStatus, @message, @resendAt, @attempts, @offset, @lastUpdate)`,
    ),
    get: db.prepare<NotificationKey, NotificationRow>(`SELECT ${COLUMNS} FROM notifications WHERE ${WHERE_KEY}`),
    // One UPDATE is the whole compare-and-set: SQLite's write lock makes the WHERE check and
    // the write atomic against every other connection, with no read-modify-write window.
    // coalesce keeps a column the patch does not give (no column is nullable, so null is free
    // to mean "absent").
    compareAndSet: db.prepare<CasParams>(
      `UPDATE notifications SET
         status = coalesce(@status, status), instance_id = coalesce(@instanceID, instance_id),
         data_id = coalesce(@dataID, data_id), delivery_status = coalesce(@deliveryStatus, delivery_status),
         message = coalesce(@message, message), resend_at = coalesce(@resendAt, resend_at),
         attempts = coalesce(@attempts, attempts), data_offset = coalesce(@offset, data_offset),
         last_update = coalesce(@lastUpdate, last_update)
       WHERE ${WHERE_KEY}
         AND (@expStatus IS NULL OR status = @expStatus) AND (@expInstanceID IS NULL OR instance_id = @expInstanceID)`,
    ),
    delete: db.prepare<NotificationKey>(`DELETE FROM notifications WHERE ${WHERE_KEY}`),
    listForObject: db.prepare<[string, string, string], NotificationRow>(
      `SELECT ${COLUMNS} FROM notifications WHERE ${WHERE_OBJECT} ORDER BY peer_type, peer_id`,
    ),
    // The status list is bound as one JSON array so that its length does not change the SQL.
    listPendingForPeer: db.prepare<[string, string, string, string, number], NotificationRow>(
      `SELECT ${COLUMNS} FROM notifications
       WHERE ${WHERE_PEER} AND status IN (SELECT value FROM json_each(?))
       ORDER BY last_update, object_type, object_id LIMIT ?`,
    ),
    // `resend_at > 0` is spelled out so that the planner may use the partial index.
    listDue: db.prepare<[number, number], NotificationRow>(
      `SELECT ${COLUMNS} FROM notifications
       WHERE resend_at > 0 AND resend_at <= ?
       ORDER BY resend_at, org, object_type, object_id, peer_type, peer_id LIMIT ?`,
    ),
    deleteForObject: db.prepare<[string, string, string]>(`DELETE FROM notifications WHERE ${WHERE_OBJECT}`),
    deleteForPeer: db.prepare<[string, string, string]>(`DELETE FROM notifications WHERE ${WHERE_PEER}`),
    countNotifications: db.prepare<[], NotificationCount>(
      'SELECT org AS orgID, status, delivery_status AS deliveryStatus, count(*) AS count FROM notifications GROUP BY org, status, delivery_status',
    ),
    countByDeliveryStatus: db.prepare<[string, string, string], { deliveryStatus: string; n: number }>(
      `SELECT delivery_status AS deliveryStatus, count(*) AS n FROM notifications WHERE ${WHERE_OBJECT} GROUP BY delivery_status`,
    ),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

/**
 * Runs synchronous database work and reports its outcome as a promise, so that a thrown
 * SqliteError (or a closed store) becomes a rejection like any other store failure.
 */
function settle<T>(work: () => T): Promise<T> {
  return new Promise<T>((resolve) => {
    resolve(work());
  });
}

/** A caller bug, not a storage failure: SQLite would read a negative LIMIT as "no limit". */
function checkLimit(limit: number): void {
  if (!Number.isSafeInteger(limit) || limit < 0) throw new InternalError(`A listing limit must be a non-negative integer, not ${limit}`);
}

/** NotificationStore on the connection of a SqliteStore; get one from `SqliteStore.notifications()`. */
export class SqliteNotificationStore implements NotificationStore {
  private readonly connection: () => Database.Database;
  /** Runs a write and resolves once it is durable: the owning store's group commit. */
  private readonly write: <T>(work: () => T) => Promise<T>;
  /** Statements of the connection they were prepared on; re-prepared when the store reopens. */
  private prepared: { db: Database.Database; s: Statements } | null = null;

  /**
   * @param connection returns the owning store's open connection, and throws when it is
   *   closed; it is asked on every call, so this object keeps working across close and init.
   * @param write runs a write and resolves once it committed (the owner's group commit)
   */
  constructor(connection: () => Database.Database, write: <T>(work: () => T) => Promise<T>) {
    this.connection = connection;
    this.write = write;
  }

  putNotification(n: Notification): Promise<void> {
    return this.write(() => {
      this.statements().put.run(n);
    });
  }

  getNotification(orgID: string, objectType: string, objectID: string, peerType: string, peerID: string): Promise<Notification | null> {
    return settle(() => {
      const row = this.statements().get.get({ orgID, objectType, objectID, peerType, peerID });
      return row === undefined ? null : toNotification(row);
    });
  }

  updateNotificationIf(key: NotificationKey, expected: NotificationExpectation, patch: NotificationPatch): Promise<boolean> {
    return this.write(() => {
      const result = this.statements().compareAndSet.run({
        // Spread first: the fields below win over any extra ones a caller's key object carries.
        ...key,
        expStatus: expected.status ?? null,
        expInstanceID: expected.instanceID ?? null,
        status: patch.status ?? null,
        instanceID: patch.instanceID ?? null,
        dataID: patch.dataID ?? null,
        deliveryStatus: patch.deliveryStatus ?? null,
        message: patch.message ?? null,
        resendAt: patch.resendAt ?? null,
        attempts: patch.attempts ?? null,
        offset: patch.offset ?? null,
        lastUpdate: patch.lastUpdate ?? null,
      });
      return result.changes === 1;
    });
  }

  deleteNotification(key: NotificationKey): Promise<boolean> {
    return this.write(() => this.statements().delete.run(key).changes === 1);
  }

  listForObject(orgID: string, objectType: string, objectID: string): Promise<Notification[]> {
    return settle(() => this.statements().listForObject.all(orgID, objectType, objectID).map(toNotification));
  }

  listPendingForPeer(
    orgID: string,
    peerType: string,
    peerID: string,
    statuses: readonly NotificationStatus[],
    limit: number,
  ): Promise<Notification[]> {
    return settle(() => {
      checkLimit(limit);
      const s = this.statements();
      if (statuses.length === 0 || limit === 0) return [];
      return s.listPendingForPeer.all(orgID, peerType, peerID, JSON.stringify(statuses), limit).map(toNotification);
    });
  }

  listDue(now: number, limit: number): Promise<Notification[]> {
    return settle(() => {
      checkLimit(limit);
      const s = this.statements();
      return limit === 0 ? [] : s.listDue.all(now, limit).map(toNotification);
    });
  }

  deleteForObject(orgID: string, objectType: string, objectID: string): Promise<number> {
    return this.write(() => this.statements().deleteForObject.run(orgID, objectType, objectID).changes);
  }

  deleteForPeer(orgID: string, peerType: string, peerID: string): Promise<number> {
    return this.write(() => this.statements().deleteForPeer.run(orgID, peerType, peerID).changes);
  }

  countNotifications(): Promise<NotificationCount[]> {
    return settle(() => this.statements().countNotifications.all());
  }

  countByDeliveryStatus(orgID: string, objectType: string, objectID: string): Promise<Record<DeliveryStatus, number>> {
    return settle(() => {
      const counts = Object.fromEntries(DELIVERY_STATUSES.map((d) => [d, 0])) as Record<DeliveryStatus, number>;
      for (const row of this.statements().countByDeliveryStatus.all(orgID, objectType, objectID)) {
        counts[row.deliveryStatus as DeliveryStatus] = row.n;
      }
      return counts;
    });
  }

  /** The statements of the current connection; throws (through the owner) when it is closed. */
  private statements(): Statements {
    const db = this.connection();
    if (this.prepared?.db !== db) this.prepared = { db, s: prepareStatements(db) };
    return this.prepared.s;
  }
}
