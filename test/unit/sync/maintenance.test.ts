/**
 * The maintenance jobs on a real SQLite store, with a CSS ObjectService and its Sender: what one
 * pass changes at a given instant, and that a second pass (or one on another instance) changes
 * nothing more.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { emptyMetaData, parseRfc3339, type MetaData } from '../../../lib/model/index.js';
import type { Destination } from '../../../lib/store/index.js';
import { DeletionsInProgress } from '../../../lib/sync/deletions.js';
import { ActivationJob, ExpiryJob, MaintenanceScheduler, RegistrationJob, TrimJob, type MaintenanceJob } from '../../../lib/sync/maintenance/index.js';
import type { ObjectService } from '../../../lib/sync/object-service.js';
import { Sender } from '../../../lib/sync/sender.js';
import { CSS, ORG, objectServiceOf, openStores, scratchDirs, type Stores } from '../../helpers/sync-fixtures.js';

const dirs = scratchDirs('edgesync-maintenance-');
/** 2030-01-01T00:00:00Z: after every time the fixtures publish with. */
const T0 = Date.UTC(2030, 0, 1);
const CALLER = { orgID: ORG, userID: 'admin' };

function destination(destinationID: string, lastPing: number): Destination {
  return { destinationOrgID: ORG, destinationType: 'edge', destinationID, communication: 'http', codeVersion: '1.0', lastPing };
}

describe('maintenance jobs', () => {
  let stores: Stores;
  let objects: ObjectService;
  let deletions: DeletionsInProgress;
  /** The clock the ObjectService validates against: publishing happens before T0. */
  let clock: number;

  beforeEach(async () => {
    stores = await openStores(dirs());
    deletions = new DeletionsInProgress({ store: stores.store, notifications: stores.notifications });
    const sender = new Sender({ store: stores.store, notifications: stores.notifications, deletions });
    clock = T0 - 2 * 3600_000;
    objects = objectServiceOf(CSS, stores, { listener: sender, deletions, now: () => new Date(clock) });
    await stores.store.putDestination(destination('n1', T0));
  });
  afterEach(() => stores.store.close());

  const publish = (objectID: string, meta: Partial<MetaData>): Promise<unknown> =>
    objects.update(ORG, 'model', objectID, { meta: { ...emptyMetaData(), objectID, objectType: 'model', destinationType: 'edge', ...meta }, data: Buffer.from('data') }, CALLER);
  const record = (objectID: string) => stores.notifications.getNotification(ORG, 'model', objectID, 'edge', 'n1');

  describe('activation', () => {
    it('activates an object at its activationTime, compared as an instant, and queues its delivery', async () => {
      // 01:00+02:00 is 23:00Z the day before: before T0, although it sorts after "2030-01-01T00:00:00Z".
      await publish('due', { inactive: true, activationTime: '2030-01-01T01:00:00+02:00' });
      await publish('later', { inactive: true, activationTime: '2029-12-31T19:00:01-05:00' });
      await publish('manual', { inactive: true });
      expect((await record('due'))?.deliveryStatus).toBe('pending');

      const job = new ActivationJob({ store: stores.store, objects });
      expect(await job.run(T0)).toBe(1);
      expect((await stores.store.getObject(ORG, 'model', 'due'))?.meta.inactive).toBe(false);
      expect((await record('due'))?.deliveryStatus).toBe('delivering');
      expect((await stores.store.getObject(ORG, 'model', 'later'))?.meta.inactive).toBe(true);
      expect((await stores.store.getObject(ORG, 'model', 'manual'))?.meta.inactive).toBe(true);
      // Idempotent: the next pass finds nothing more to do until 'later' comes.
      expect(await job.run(T0)).toBe(0);
      expect(await job.run(T0 + 1000)).toBe(1);
      expect((await stores.store.getObject(ORG, 'model', 'later'))?.meta.inactive).toBe(false);
    });

    it('does not activate an instance published anew meanwhile without a time', async () => {
      await publish('raced', { inactive: true, activationTime: '2029-12-31T23:30:00Z' });
      const stale = await stores.store.listTimedObjects();
      await publish('raced', { inactive: true });
      const job = new ActivationJob({ store: { listTimedObjects: () => Promise.resolve(stale) }, objects });
      expect(await job.run(T0)).toBe(0);
      expect((await stores.store.getObject(ORG, 'model', 'raced'))?.meta.inactive).toBe(true);
    });
  });

  describe('expiry', () => {
    it('removes an expired object and turns its delivered records into deletions', async () => {
      await publish('old', { expiration: '2029-12-31T23:59:59.999Z' });
      await publish('young', { expiration: '2030-01-01T00:00:00.001Z' });
      await stores.notifications.updateNotificationIf(
        { orgID: ORG, objectType: 'model', objectID: 'old', peerType: 'edge', peerID: 'n1' },
        { status: 'updatePending', instanceID: (await record('old'))!.instanceID },
        { status: 'receivedByDest', deliveryStatus: 'delivered' },
      );
      const job = new ExpiryJob({ store: stores.store, objects });
      expect(await job.run(T0)).toBe(1);
      expect(await stores.store.getObject(ORG, 'model', 'old')).toBeNull();
      expect((await record('old'))?.status).toBe('deletePending');
      expect((await objects.getOrDeleted(ORG, 'model', 'old'))?.status).toBe('objdeleted');
      expect(await stores.store.getObject(ORG, 'model', 'young')).not.toBeNull();
      expect(await job.run(T0)).toBe(0);
    });

    it('leaves alone an object republished without expiration since it was listed', async () => {
      await publish('kept', { expiration: '2029-12-31T23:00:00Z' });
      const stale = await stores.store.listTimedObjects();
      await publish('kept', { version: '2' });
      const job = new ExpiryJob({ store: { listTimedObjects: () => Promise.resolve(stale), getObject: (o, t, i) => stores.store.getObject(o, t, i) }, objects });
      expect(await job.run(T0)).toBe(0);
      expect((await stores.store.getObject(ORG, 'model', 'kept'))?.meta.version).toBe('2');
    });
  });

  describe('registrations', () => {
    it('removes an ESS silent longer than the limit with its records; a recent one stays', async () => {
      await stores.store.putDestination(destination('n2', T0 - 10_000));
      await publish('obj', {});
      expect(await stores.notifications.getNotification(ORG, 'model', 'obj', 'edge', 'n2')).not.toBeNull();
      const job = new RegistrationJob({ store: stores.store, notifications: stores.notifications, removeAfterMs: 5_000 });
      expect(await job.run(T0)).toBe(1);
      expect((await stores.store.listDestinations(ORG)).map((d) => d.destinationID)).toEqual(['n1']);
      expect(await stores.notifications.getNotification(ORG, 'model', 'obj', 'edge', 'n2')).toBeNull();
      expect(await record('obj')).not.toBeNull();
      expect(await job.run(T0)).toBe(0);
    });

    it('touching a destination moves its last contact forward only, and never re-creates a removed one', async () => {
      expect(await stores.store.touchDestination(ORG, 'edge', 'n1', T0 + 5)).toBe(true);
      expect(await stores.store.touchDestination(ORG, 'edge', 'n1', T0 - 5)).toBe(true);
      expect((await stores.store.getDestination(ORG, 'edge', 'n1'))?.lastPing).toBe(T0 + 5);
      expect(await stores.store.touchDestination(ORG, 'edge', 'gone', T0)).toBe(false);
      expect(await stores.store.getDestination(ORG, 'edge', 'gone')).toBeNull();
    });
  });

  describe('trimming', () => {
    it('drops a deletion whose destinations are gone, and keeps one still awaiting an acknowledgement', async () => {
      for (const id of ['a', 'b']) {
        await publish(id, {});
        await stores.notifications.updateNotificationIf(
          { orgID: ORG, objectType: 'model', objectID: id, peerType: 'edge', peerID: 'n1' },
          { status: 'updatePending', instanceID: (await record(id))!.instanceID },
          { status: 'receivedByDest', deliveryStatus: 'delivered' },
        );
        await objects.delete(ORG, 'model', id);
      }
      expect((await stores.store.listDeletions(ORG)).length).toBe(2);
      // The record of 'a' went without the deletion being settled (e.g. with a removed registration).
      await stores.notifications.deleteForObject(ORG, 'model', 'a');
      const job = new TrimJob({ store: stores.store, deletions });
      expect(await job.run()).toBe(1);
      expect((await stores.store.listDeletions(ORG)).map((d) => d.meta.objectID)).toEqual(['b']);
      expect(await job.run()).toBe(0);
    });
  });
});

describe('MaintenanceScheduler', () => {
  it('runs each job at start, never overlaps passes of one job, logs a failed pass and goes on, and waits for a pass on stop', async () => {
    let release!: () => void;
    let calls = 0;
    const slow: MaintenanceJob = {
      name: 'slow',
      run: () => {
        calls++;
        return new Promise<number>((r) => (release = () => r(1)));
      },
    };
    const errors: string[] = [];
    const failing: MaintenanceJob = { name: 'failing', run: () => Promise.reject(new Error('disk gone')) };
    const s = new MaintenanceScheduler({
      jobs: [
        { job: slow, intervalMs: 3_600_000 },
        { job: failing, intervalMs: 3_600_000 },
      ],
      log: { info: () => undefined, error: (o) => errors.push((o as { job: string }).job) },
      now: () => T0,
    });
    s.start();
    void s.tick(slow);
    expect(calls).toBe(1);
    await s.tick(failing);
    expect(errors).toEqual(['failing']);
    let stopped = false;
    const stopping = s.stop().then(() => (stopped = true));
    await Promise.resolve();
    expect(stopped).toBe(false);
    release();
    await stopping;
    await s.tick(slow);
    expect(calls).toBe(1);
  });
});

describe('parseRfc3339', () => {
  it.each([
    ['2030-01-01T00:00:00Z', T0],
    ['2030-01-01T02:00:00+02:00', T0],
    ['2029-12-31T19:00:00-05:00', T0],
    ['2030-01-01t00:00:00.123456789z', T0 + 123],
    ['2029-12-31T23:59:60Z', T0 - 1000],
  ])('reads %s as an instant', (text, ms) => {
    expect(parseRfc3339(text)).toBe(ms);
  });

  it.each(['2030-01-01T00:00:00', '2030-02-30T00:00:00Z', '2030-01-01T24:00:00Z', '2030-01-01 00:00:00Z', 'next week', '', '2030-01-01T00:00:00+24:00'])(
    'refuses %j',
    (text) => {
      expect(parseRfc3339(text)).toBeNull();
    },
  );
});
