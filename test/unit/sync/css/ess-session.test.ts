/**
 * The CSS engine's session with one ESS, on a real SQLite store and file blobs, with the real
 * Sender, SenderAcks and UpstreamReceiver behind it: what a transport sees, whatever carries it.
 */
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { ConflictError, FailedDependencyError, NotFoundError, emptyMetaData, type DestinationRef, type MetaData } from '../../../../lib/model/index.js';
import type { NotificationStore, SqliteStore } from '../../../../lib/store/index.js';
import { CssEngine, STALE_DATA_GET } from '../../../../lib/sync/css/ess-session.js';
import { DeletionsInProgress } from '../../../../lib/sync/deletions.js';
import type { ObjectService } from '../../../../lib/sync/object-service.js';
import { PeerSignal } from '../../../../lib/sync/peer-signal.js';
import { Sender } from '../../../../lib/sync/sender.js';
import { SenderAcks } from '../../../../lib/sync/sender-acks.js';
import { UpstreamReceiver } from '../../../../lib/sync/upstream-receiver.js';
import { sha } from '../../../helpers/bytes.js';
import { CSS, objectServiceOf, openStores, ORG, scratchDirs } from '../../../helpers/sync-fixtures.js';

const freshDir = scratchDirs('edgesync-ess-session-');
const NOW = 1_700_000_000_000;
const ADMIN = { orgID: ORG, userID: 'admin' };
const N1: DestinationRef = { orgID: ORG, destType: 'edge', destID: 'n1' };
const DATA = Buffer.from('0123456789');

describe('CssEngine: the session of one ESS', () => {
  let store: SqliteStore;
  let notifications: NotificationStore;
  let objects: ObjectService;
  let engine: CssEngine;
  let peerSignal: PeerSignal;

  beforeEach(async () => {
    const stores = await openStores(freshDir());
    ({ store, notifications } = stores);
    peerSignal = new PeerSignal();
    const deletions = new DeletionsInProgress({ store, notifications });
    const sender = new Sender({ store, notifications, peerSignal, deletions, now: () => NOW });
    let up: UpstreamReceiver | null = null;
    objects = objectServiceOf(CSS, stores, {
      listener: sender,
      deletions,
      receiverListener: {
        onReceivedObjectMarked: async (o) => up?.onReceivedObjectMarked(o),
        onDeletionConfirmed: async (o) => up?.onDeletionConfirmed(o),
        onReceivedObjectDeleted: async (o) => up?.onReceivedObjectDeleted(o),
      },
    });
    const upstream = new UpstreamReceiver({ store, notifications, blobs: stores.blobs, objects, peerSignal, maxDataSize: 0, now: () => NOW });
    up = upstream;
    const acks = new SenderAcks({ store, notifications, objects, peerSignal, deletions, now: () => NOW });
    engine = new CssEngine({ store, notifications, sender, acks, objects, upstream, peerSignal, now: () => NOW });
  });

  afterEach(async () => {
    await store.close();
  });

  /** Publishes model/{id} for every edge node, with DATA, as an app does through the API. */
  async function publish(objectID: string, m: Partial<MetaData> = {}): Promise<MetaData> {
    const meta: MetaData = { ...emptyMetaData(), objectType: 'model', objectID, destinationType: 'edge', ...m };
    return (await objects.update(ORG, 'model', objectID, { meta, data: DATA }, ADMIN)).meta;
  }

  const record = (objectID: string, peer = N1) => notifications.getNotification(ORG, 'model', objectID, peer.destType, peer.destID);
  const refOf = (meta: MetaData) => ({ objectType: meta.objectType, objectID: meta.objectID, instanceID: meta.instanceID, dataID: meta.dataID });

  async function registerNew(peer = N1): Promise<void> {
    expect(await engine.session(peer).register('register-new', { persistent: false, communication: 'http' })).toBe('registered');
  }

  describe('registration', () => {
    it('a register or ping from an ESS the CSS does not know is answered "unknown" and records nothing', async () => {
      const s = engine.session(N1);
      expect(await s.register('register', { persistent: true, communication: 'http' })).toBe('unknown');
      expect(await s.register('ping', { persistent: true, communication: 'http' })).toBe('unknown');
      expect(await s.destination()).toBeNull();
    });

    it('register-new records the ESS with the transport it came over and queues what is addressed to it', async () => {
      const meta = await publish('m1');
      const s = engine.session(N1);
      expect(await s.register('register-new', { persistent: false, communication: 'mqtt' })).toBe('registered');
      expect(await s.destination()).toEqual({ destinationOrgID: ORG, destinationType: 'edge', destinationID: 'n1', communication: 'mqtt', codeVersion: '1.0', lastPing: NOW });
      expect(await record('m1')).toMatchObject({ instanceID: meta.instanceID, deliveryStatus: 'delivering' });
    });

    it('a returning ESS without persistent storage is offered again what it was sent; with it, nothing moves', async () => {
      await registerNew();
      const meta = await publish('m1');
      const s = engine.session(N1);
      await s.pending();
      expect(await s.ack(refOf(meta), 'received')).toBe('applied');
      expect(await s.register('register', { persistent: true, communication: 'http' })).toBe('registered');
      expect((await record('m1'))?.status).toBe('receivedByDest');
      expect(await s.register('register', { persistent: false, communication: 'http' })).toBe('registered');
      expect((await record('m1'))?.status).toBe('update');
    });

    it('unregister forgets the ESS and its records; what it sends next is refused as unregistered', async () => {
      await registerNew();
      await publish('m1');
      expect(await engine.session(N1).register('unregister', { persistent: true, communication: 'http' })).toBe('registered');
      const s = engine.session(N1);
      expect(await s.destination()).toBeNull();
      expect(await record('m1')).toBeNull();
      await expect(s.pending()).rejects.toThrow(FailedDependencyError);
      await expect(s.resend()).rejects.toThrow(FailedDependencyError);
      await expect(s.ack({ objectType: 'model', objectID: 'm1', instanceID: 1n }, 'received')).rejects.toThrow(`Destination ${ORG}/edge/n1 is not registered`);
    });
  });

  describe('pending', () => {
    it('serves an update addressed to the ESS and marks it as served (the ESS may hold it from now on)', async () => {
      await registerNew();
      const meta = await publish('m1');
      expect((await record('m1'))?.status).toBe('updatePending');
      const items = await engine.session(N1).pending();
      expect(items.map((i) => [i.type, i.meta.objectID, i.meta.destinationType, i.meta.destinationID, i.meta.instanceID])).toEqual([['update', 'm1', 'edge', 'n1', meta.instanceID]]);
      expect(items[0]?.object?.dataSha256).toBe(sha(DATA));
      expect((await record('m1'))?.status).toBe('update');
      // Still queued until acked.
      expect((await engine.session(N1).pending()).map((i) => i.type)).toEqual(['update']);
    });

    it('leaves an update unserved when asked (a push the ESS may not hear), until the ESS answers it; deleted meanwhile, it is never announced', async () => {
      await registerNew();
      const meta = await publish('m1');
      const s = engine.session(N1);
      expect((await s.pending(undefined, { markServed: false })).map((i) => i.type)).toEqual(['update']);
      expect((await record('m1'))?.status).toBe('updatePending');
      expect(await s.ack(refOf(meta), 'updated')).toBe('applied');
      expect((await record('m1'))?.status).toBe('updated');
      await publish('m2');
      await s.pending(undefined, { markServed: false });
      await objects.delete(ORG, 'model', 'm2');
      expect((await s.pending(undefined, { markServed: false })).map((i) => [i.type, i.meta.objectID])).toEqual([]);
    });

    it('holds back an object that is not deliverable yet (inactive)', async () => {
      await registerNew();
      await publish('m1', { inactive: true });
      expect(await engine.session(N1).pending()).toEqual([]);
    });

    it('serves the deletion of an object the ESS may hold, described by its kept metadata', async () => {
      await registerNew();
      const meta = await publish('m1');
      await engine.session(N1).pending();
      await objects.delete(ORG, 'model', 'm1');
      const [item] = await engine.session(N1).pending();
      expect([item?.type, item?.meta.deleted, item?.meta.instanceID, item?.meta.destinationID, item?.object]).toEqual(['delete', true, meta.instanceID, 'n1', null]);
    });

    it('waitForWork wakes when something is queued for the ESS', async () => {
      await registerNew();
      const s = engine.session(N1);
      const woken = s.waitForWork(60_000);
      await publish('m1');
      await woken;
      expect((await s.pending()).length).toBe(1);
    });
  });

  describe('openData', () => {
    it('serves the whole data or a range, and the first download moves the record to getdata', async () => {
      await registerNew();
      const meta = await publish('m1');
      const s = engine.session(N1);
      await s.pending();
      const whole = await s.openData(refOf(meta), undefined, new AbortController().signal);
      expect([whole.whole, whole.start, whole.end, whole.total, whole.sha256, await text(whole.stream)]).toEqual([true, 0, 9, 10, sha(DATA), '0123456789']);
      expect((await record('m1'))?.status).toBe('getdata');
      // A parallel chunk download of the same instance goes on.
      const part = await s.openData(refOf(meta), { start: 2, end: 4 }, new AbortController().signal);
      expect([part.whole, part.start, part.end, part.total, await text(part.stream)]).toEqual([false, 2, 4, 10, '234']);
    });

    it('refuses data of another instance or data, or of an object being deleted (409), and with no record (404)', async () => {
      await registerNew();
      const meta = await publish('m1');
      const s = engine.session(N1);
      const signal = new AbortController().signal;
      await expect(s.openData({ ...refOf(meta), instanceID: meta.instanceID - 1n }, undefined, signal)).rejects.toThrow(ConflictError);
      await expect(s.openData({ ...refOf(meta), dataID: meta.dataID + 1n }, undefined, signal)).rejects.toThrow(STALE_DATA_GET);
      await expect(s.openData({ ...refOf(meta), objectID: 'nope' }, undefined, signal)).rejects.toThrow(NotFoundError);
      await s.pending();
      await objects.delete(ORG, 'model', 'm1');
      await expect(s.openData(refOf(meta), undefined, signal)).rejects.toThrow(ConflictError);
      expect((await record('m1'))?.status).toBe('deletePending');
    });

    it('a record another request moved to the delete path meanwhile wins over the download start (compare-and-set)', async () => {
      await registerNew();
      const meta = await publish('m1');
      const s = engine.session(N1);
      await s.pending();
      // The record moves between the session's read and its write: the deletion wins.
      const key = { orgID: ORG, objectType: 'model', objectID: 'm1', peerType: 'edge', peerID: 'n1' };
      const original = notifications.getNotification.bind(notifications);
      let reads = 0;
      notifications.getNotification = async (...args) => {
        const rec = await original(...args);
        if (++reads === 1) await notifications.updateNotificationIf(key, {}, { status: 'deletePending' });
        return rec;
      };
      await expect(s.openData(refOf(meta), undefined, new AbortController().signal)).rejects.toThrow(ConflictError);
      expect((await record('m1'))?.status).toBe('deletePending');
    });
  });

  describe('acks and resend', () => {
    it('walks updated → received → consumed; a repeat is a duplicate; another instance or data is stale', async () => {
      await registerNew();
      const meta = await publish('m1');
      const s = engine.session(N1);
      await s.pending();
      expect(await s.ack(refOf(meta), 'updated')).toBe('applied');
      expect(await s.ack(refOf(meta), 'updated')).toBe('duplicate');
      expect(await s.ack({ ...refOf(meta), dataID: meta.dataID + 1n }, 'received')).toBe('stale');
      expect(await s.ack({ ...refOf(meta), instanceID: meta.instanceID + 1n }, 'received')).toBe('stale');
      expect(await s.ack(refOf(meta), 'received')).toBe('applied');
      expect(await s.ack(refOf(meta), 'consumed')).toBe('applied');
      expect(await record('m1')).toMatchObject({ status: 'consumedByDest', deliveryStatus: 'consumed' });
      expect(await s.ack({ objectType: 'model', objectID: 'other', instanceID: 1n }, 'received')).toBe('unknown');
    });

    it('feedback records the error and schedules a retry', async () => {
      await registerNew();
      const meta = await publish('m1');
      const s = engine.session(N1);
      await s.pending();
      expect(await s.ack(refOf(meta), 'feedback', { code: 1, retryInterval: 5, reason: 'disk full' })).toBe('applied');
      expect(await record('m1')).toMatchObject({ status: 'error', deliveryStatus: 'error', message: 'disk full', resendAt: NOW + 5000 });
    });

    it('resend puts back in the queue what the ESS was sent, and wakes its wait', async () => {
      await registerNew();
      const meta = await publish('m1');
      const s = engine.session(N1);
      await s.pending();
      await s.ack(refOf(meta), 'received');
      const woken = s.waitForWork(60_000);
      await s.resend();
      await woken;
      expect((await record('m1'))?.status).toBe('update');
      expect((await s.pending()).map((i) => i.type)).toEqual(['update']);
    });
  });

  describe('objects the ESS publishes (upstream)', () => {
    const report = (m: Partial<MetaData> = {}): MetaData => ({ ...emptyMetaData(), objectType: 'report', objectID: 'r1', instanceID: 7n, dataID: 7n, objectSize: DATA.length, ...m });
    const ref = { objectType: 'report', objectID: 'r1', instanceID: 7n, dataID: 7n };

    it('update and data store the object from the calling ESS; received is queued, and its ack taken', async () => {
      await registerNew();
      const s = engine.session(N1);
      expect(await s.upstreamUpdate(ref, report({ originID: 'forged' }))).toBe('applied');
      expect(await s.upstreamData(ref, Readable.from([DATA]), { size: DATA.length, sha256: sha(DATA) })).toBe('applied');
      const obj = await store.getObject(ORG, 'report', 'r1');
      expect([obj?.status, obj?.meta.originType, obj?.meta.originID]).toEqual(['completelyReceived', 'edge', 'n1']);
      const items = await s.pending();
      expect(items.map((i) => [i.type, i.meta.objectID])).toEqual([['received', 'r1']]);
      expect(await s.upstreamAck(ref, 'ackreceived')).toBe('applied');
      expect(await s.upstreamAck(ref, 'ackreceived')).toBe('duplicate');
      expect(await s.pending()).toEqual([]);
    });

    it('delete makes the copy objdeleted and awaits the app; an ack of something never queued is unknown', async () => {
      await registerNew();
      const s = engine.session(N1);
      await s.upstreamUpdate(ref, report());
      expect(await s.upstreamDelete(ref, report())).toBe('applied');
      expect((await store.getObject(ORG, 'report', 'r1'))?.status).toBe('objdeleted');
      expect(await s.upstreamAck(ref, 'ackDeleted')).toBe('ignored');
      expect(await s.upstreamAck({ ...ref, objectID: 'r2' }, 'ackconsumed')).toBe('unknown');
    });

    it('is refused from an ESS that is not registered', async () => {
      await expect(engine.session(N1).upstreamUpdate(ref, report())).rejects.toThrow(FailedDependencyError);
    });
  });
});
