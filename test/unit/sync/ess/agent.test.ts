/**
 * The ESS agent's protocol decisions (lib/sync/ess/agent.ts), against a CSS scripted in memory
 * (ScriptedCssLink, a test double of the CssLink port): what it sends, in which order, and what
 * it commits. The ESS side is real: SqliteStore, FileBlobStore, ObjectService, Receiver,
 * OriginSender.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { emptyMetaData, type MetaData } from '../../../../lib/model/index.js';
import type { StoredObject } from '../../../../lib/store/types.js';
import { EssAgent } from '../../../../lib/sync/ess/agent.js';
import type { CssItem } from '../../../../lib/sync/ess/css-link.js';
import type { ObjectService } from '../../../../lib/sync/object-service.js';
import { OriginSender } from '../../../../lib/sync/origin-sender.js';
import { Receiver } from '../../../../lib/sync/receiver.js';
import { ScriptedCssLink } from '../../../helpers/scripted-css-link.js';
import { cloudRecord, ESS_N1, modelForEdge, objectServiceOf, openStores, ORG, scratchDirs, type Stores } from '../../../helpers/sync-fixtures.js';

const quiet = { info: (): void => undefined, warn: (): void => undefined, debug: (): void => undefined, error: (): void => undefined };
const freshDir = scratchDirs('edgesync-agent-');

async function until(what: string, cond: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`not before the deadline: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const update = (objectID: string, size: number): CssItem => ({ type: 'update', meta: { ...modelForEdge(objectID, { objectSize: size }), destinationID: 'n1' }, inline: null });

describe.each([
  ['items polled (HTTP)', false],
  ['items pushed (MQTT)', true],
])('the ESS agent, against a scripted CSS, %s', (_mode, itemsPushed) => {
  let stores: Stores;
  let receiver: Receiver;
  let link: ScriptedCssLink;
  let agent: EssAgent | null;

  beforeEach(async () => {
    stores = await openStores(freshDir());
    const objects = objectServiceOf(ESS_N1, stores);
    receiver = new Receiver({ notifications: stores.notifications, objects, orgID: ORG, downloads: { sessions: stores.store, blobs: stores.blobs } });
    link = new ScriptedCssLink({ itemsPushed });
    agent = null;
  });

  afterEach(async () => {
    await agent?.stop();
    await stores.store.close();
  });

  function start(): EssAgent {
    agent = new EssAgent({
      link,
      receiver,
      blobs: stores.blobs,
      self: { orgID: ORG, destinationType: 'edge', destinationID: 'n1' },
      pollingIntervalMs: 20,
      resendIntervalMs: 20,
      longPollSeconds: 1,
      log: quiet,
    });
    agent.start();
    return agent;
  }

  const callsAbout = (objectID: string): string[] => link.calls.filter((c) => c.endsWith(`model/${objectID}`) || c.includes(`model/${objectID} `));

  it('registers as new when the CSS does not know it, dropping what it had agreed with the CSS first', async () => {
    // A download owed from before: void once the CSS forgot this ESS.
    await receiver.applyUpdate({ ...modelForEdge('old', { objectSize: 3 }), destinationID: 'n1' });
    link.registerAnswers.push('unknown');
    start();
    await until('registerNew', () => link.calls.includes('registerNew'));
    expect(link.calls.slice(0, 2)).toEqual(['register', 'registerNew']);
    expect(await cloudRecord(stores.notifications, 'model', 'old')).toBeNull();
    expect(callsAbout('old')).toEqual([]);
  });

  it('acks an update with `updated`, fetches the data, stores it, then sends `received`', async () => {
    link.data.set('a', Buffer.from('hello'));
    start();
    link.queue(update('a', 5));
    await until('received acked', async () => (await cloudRecord(stores.notifications, 'model', 'a'))?.status === 'ackreceived');
    expect(callsAbout('a')).toEqual(['send updated model/a', 'fetchData model/a', 'send received model/a']);
    const obj = await stores.store.getObject(ORG, 'model', 'a');
    expect(obj?.status).toBe('completelyReceived');
    const out: Buffer[] = [];
    for await (const c of stores.blobs.read(obj!.blobId!)) out.push(c as Buffer);
    expect(Buffer.concat(out).toString()).toBe('hello');
  });

  it('applies a deletion and acks it with `ackDelete`', async () => {
    link.data.set('a', Buffer.from('hello'));
    start();
    link.queue(update('a', 5));
    await until('received', () => link.calls.includes('send received model/a'));
    link.queue({ type: 'delete', meta: { ...modelForEdge('a'), destinationID: 'n1', deleted: true }, inline: null });
    await until('ackDelete', () => link.calls.includes('send ackDelete model/a'));
    expect((await stores.store.getObject(ORG, 'model', 'a'))?.status).toBe('objdeleted');
    expect((await cloudRecord(stores.notifications, 'model', 'a'))?.status).toBe('delete');
  });

  it('sends a refused `received` again after RESEND_INTERVAL, until the CSS takes it', async () => {
    link.data.set('b', Buffer.from('data'));
    let refusals = 1;
    link.sendAnswer = (_ref, action) => action !== 'received' || refusals-- <= 0;
    start();
    link.queue(update('b', 4));
    await until('received acked', async () => (await cloudRecord(stores.notifications, 'model', 'b'))?.status === 'ackreceived');
    expect(callsAbout('b')).toEqual(['send updated model/b', 'fetchData model/b', 'send received model/b (refused)', 'send received model/b']);
    // The data was fetched once: only the ack was owed again.
    expect(link.calls.filter((c) => c.startsWith('fetchData'))).toHaveLength(1);
  });

  it('keeps the order of what the CSS sends about one object: a delete waits for the update before it', async () => {
    link.data.set('a', Buffer.from('hello'));
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    link.sendGate = (ref, action) => (ref.objectID === 'a' && action === 'received' ? held : Promise.resolve());
    start();
    link.queue(update('a', 5));
    await until('the data fetched', () => link.calls.includes('fetchData model/a'));
    link.queue({ type: 'delete', meta: { ...modelForEdge('a'), destinationID: 'n1', deleted: true }, inline: null });
    await new Promise((r) => setTimeout(r, 100));
    expect(link.calls).not.toContain('send ackDelete model/a');
    release();
    await until('ackDelete', () => link.calls.includes('send ackDelete model/a'));
    expect(callsAbout('a')).toEqual(['send updated model/a', 'fetchData model/a', 'send received model/a', 'send ackDelete model/a']);
  });
});

describe('the ESS agent, against a scripted CSS that pushes items (MQTT)', () => {
  let stores: Stores;
  let receiver: Receiver;
  let link: ScriptedCssLink;
  let agent: EssAgent | null;

  beforeEach(async () => {
    stores = await openStores(freshDir());
    const objects = objectServiceOf(ESS_N1, stores);
    receiver = new Receiver({ notifications: stores.notifications, objects, orgID: ORG, downloads: { sessions: stores.store, blobs: stores.blobs } });
    link = new ScriptedCssLink({ itemsPushed: true });
    agent = null;
  });

  afterEach(async () => {
    await agent?.stop();
    await stores.store.close();
  });

  function start(longPollSeconds: number): void {
    agent = new EssAgent({
      link,
      receiver,
      blobs: stores.blobs,
      self: { orgID: ORG, destinationType: 'edge', destinationID: 'n1' },
      pollingIntervalMs: 20,
      resendIntervalMs: 20,
      longPollSeconds,
      log: quiet,
    });
    agent.start();
  }

  it('handles what comes later while an earlier object still waits for its ack', async () => {
    link.data.set('slow', Buffer.from('slow'));
    link.data.set('fast', Buffer.from('fast'));
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    link.sendGate = (ref, action) => (ref.objectID === 'slow' && action === 'received' ? held : Promise.resolve());
    start(1);
    link.queue(update('slow', 4));
    await until('the slow one fetched', () => link.calls.includes('fetchData model/slow'));
    link.queue(update('fast', 4));
    await until('the fast one acked', async () => (await cloudRecord(stores.notifications, 'model', 'fast'))?.status === 'ackreceived');
    expect(link.calls).not.toContain('send received model/slow');
    release();
    await until('the slow one acked', async () => (await cloudRecord(stores.notifications, 'model', 'slow'))?.status === 'ackreceived');
    // Its `received` went once: the loop's reading of owed records left it to the item in hand.
    expect(link.calls.filter((c) => c === 'send received model/slow')).toHaveLength(1);
  });

  it('sends a refused `received` again within seconds, though the poll in flight was to be held longer', async () => {
    link.data.set('b', Buffer.from('data'));
    let refusals = 1;
    link.sendAnswer = (_ref, action) => action !== 'received' || refusals-- <= 0;
    start(30);
    link.queue(update('b', 4));
    await until('refused once', () => link.calls.includes('send received model/b (refused)'));
    const refusedAt = Date.now();
    await until('received acked', async () => (await cloudRecord(stores.notifications, 'model', 'b'))?.status === 'ackreceived');
    // The retry is due 20 ms later; holds are counted in whole seconds.
    expect(Date.now() - refusedAt).toBeLessThan(2500);
  });
});

describe('the ESS agent sending what its apps published, to a scripted CSS', () => {
  const ADMIN = { orgID: ORG, userID: 'admin' };
  let stores: Stores;
  let objects: ObjectService;
  let origin: OriginSender | null;
  let agent: EssAgent | null;

  beforeEach(async () => {
    stores = await openStores(freshDir());
    origin = null;
    agent = null;
    objects = objectServiceOf(ESS_N1, stores, {
      maxDataChunkSize: 4,
      listener: {
        onObjectPublished: async (o) => {
          await origin?.onObjectPublished(o);
          agent?.wake();
        },
        onObjectDeleted: async (o) => {
          await origin?.onObjectDeleted(o);
          agent?.wake();
        },
      },
    });
    origin = new OriginSender({ store: stores.store, notifications: stores.notifications, objects, orgID: ORG });
  });

  afterEach(async () => {
    await agent?.stop();
    await stores.store.close();
  });

  function start(link: ScriptedCssLink, resendIntervalMs = 10_000): void {
    const receiver = new Receiver({ notifications: stores.notifications, objects, orgID: ORG, downloads: { sessions: stores.store, blobs: stores.blobs } });
    agent = new EssAgent({
      link,
      receiver,
      origin: origin!,
      blobs: stores.blobs,
      self: { orgID: ORG, destinationType: 'edge', destinationID: 'n1' },
      pollingIntervalMs: 20,
      // By default long enough that a pulled object is not announced again during the test.
      resendIntervalMs,
      longPollSeconds: 1,
      uploadChunkSize: 4,
      log: quiet,
    });
    agent.start();
  }

  const publish = (objectID: string, data: string, m: Partial<MetaData> = {}): Promise<StoredObject> =>
    objects.update(ORG, 'report', objectID, { meta: { ...emptyMetaData(), objectType: 'report', objectID, ...m }, data: Buffer.from(data) }, ADMIN);
  const record = (objectID: string) => cloudRecord(stores.notifications, 'report', objectID);

  it('pushes the data after the update, a chunk at a time, to a CSS that takes pushes (HTTP)', async () => {
    const link = new ScriptedCssLink();
    start(link);
    await publish('a', 'hello world');
    await until('the data sent', async () => (await record('a'))?.status === 'updated');
    expect(link.calls.filter((c) => c.includes('report/a'))).toEqual(['publish report/a', 'pushData report/a 0-3/11', 'pushData report/a 4-7/11', 'pushData report/a 8-10/11']);
  });

  it('serves the ranges a CSS that pulls (MQTT) asks for, recording each, and only of the published instance', async () => {
    const link = new ScriptedCssLink({ pushesData: false });
    start(link);
    const obj = await publish('b', 'hello world');
    await until('the update taken', async () => (await record('b'))?.status === 'data');
    expect(link.calls.filter((c) => c.includes('report/b'))).toEqual(['publish report/b']);
    // Owed until the CSS asked for it all: due again (announced anew) if it stops asking.
    expect((await record('b'))?.resendAt).toBeGreaterThan(Date.now());
    const ref = { objectType: 'report', objectID: 'b', instanceID: obj.meta.instanceID, dataID: obj.meta.dataID };
    expect((await link.pull(ref, { start: 0, end: 3 }))?.toString()).toBe('hell');
    expect([(await record('b'))?.status, (await record('b'))?.offset]).toEqual(['data', 4]);
    expect(await link.pull({ ...ref, instanceID: obj.meta.instanceID - 1n }, { start: 4, end: 10 })).toBeNull();
    expect((await link.pull(ref, { start: 4, end: 10 }))?.toString()).toBe('o world');
    expect((await record('b'))?.status).toBe('updated');
    // The CSS may ask again for a chunk it lost; it is still served.
    expect((await link.pull(ref, { start: 8, end: 10 }))?.toString()).toBe('rld');
    expect(link.calls.filter((c) => c.startsWith('pushData'))).toEqual([]);
  });

  it('announces the object again when a CSS that pulls stops asking for its data', async () => {
    const link = new ScriptedCssLink({ pushesData: false });
    start(link, 20);
    await publish('c', 'hello world');
    await until('a second update', () => link.calls.filter((c) => c === 'publish report/c').length >= 2);
    expect((await record('c'))?.status).toBe('data');
  });
});
