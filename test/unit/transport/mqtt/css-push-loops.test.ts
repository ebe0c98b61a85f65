/**
 * The CSS's push to an MQTT ESS (lib/transport/mqtt/css-push-loops.ts), against an engine
 * faked in memory: what is pending goes out without waiting for each PUBACK in turn, what was
 * pushed lately is neither published nor even read again until its resend interval passed, and
 * a publish that fails is tried again; when more are pending than a round lists, the ESS's
 * answers make room for the rest at once.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import type { Logger } from '../../../../lib/log/logger.js';
import { emptyMetaData, type DestinationRef } from '../../../../lib/model/index.js';
import type { CssSyncEngine, EssSession, PendingItemKey, SyncItem } from '../../../../lib/sync/css/types.js';
import { CssPushLoops } from '../../../../lib/transport/mqtt/css-push-loops.js';

const quiet = { info: (): void => undefined, warn: (): void => undefined, debug: (): void => undefined, error: (): void => undefined } as unknown as Logger;
const PEER: DestinationRef = { orgID: 'org', destType: 'edge', destID: 'n1' };

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

async function until(what: string, cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`not before the deadline: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** An engine whose one ESS has `items` pending; it counts the items it describes (reads). */
function fakeEngine(items: SyncItem[]): { engine: CssSyncEngine; described: string[]; wake: () => void } {
  const described: string[] = [];
  let waiter: (() => void) | null = null;
  const session = {
    destination: () => Promise.resolve({ destinationOrgID: 'org', destinationType: 'edge', destinationID: 'n1', communication: 'mqtt', codeVersion: '1.0', lastPing: 0 }),
    pending: (limit = Infinity, opts?: { skip?: (key: PendingItemKey) => boolean }) =>
      Promise.resolve(
        items.slice(0, limit).filter((i) => {
          if (opts?.skip?.({ type: i.type, objectType: i.meta.objectType, objectID: i.meta.objectID, instanceID: i.meta.instanceID }) === true) return false;
          described.push(i.meta.objectID);
          return true;
        }),
      ),
    waitForWork: (ms: number, signal?: AbortSignal) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(done, ms);
        function done(): void {
          clearTimeout(timer);
          waiter = null;
          resolve();
        }
        waiter = done;
        signal?.addEventListener('abort', done, { once: true });
      }),
  } as unknown as EssSession;
  return { engine: { session: () => session }, described, wake: () => waiter?.() };
}

const item = (objectID: string): SyncItem => ({ type: 'update', meta: { ...emptyMetaData(), objectType: 't', objectID, instanceID: 1n }, object: null });

describe('CssPushLoops', () => {
  let loops: CssPushLoops | null = null;
  afterEach(async () => {
    await loops?.stop();
    loops = null;
  });

  it('publishes the pending items without waiting for each acknowledgement in turn, in their order', async () => {
    const { engine } = fakeEngine(Array.from({ length: 10 }, (_, n) => item(`o${n}`)));
    const acks = deferred();
    const started: string[] = [];
    loops = new CssPushLoops({
      engine,
      send: async (_peer, i) => {
        started.push(i.meta.objectID);
        await acks.promise;
      },
      resendIntervalMs: 60_000,
      log: quiet,
    });
    loops.ensure(PEER);
    await until('all ten published', () => started.length === 10);
    expect(started).toEqual(Array.from({ length: 10 }, (_, n) => `o${n}`));
    acks.resolve();
  });

  it('neither publishes nor reads again what it pushed within the resend interval, and publishes it again after', async () => {
    let now = 1_000_000;
    const fake = fakeEngine([item('a'), item('b')]);
    const sent: string[] = [];
    loops = new CssPushLoops({ engine: fake.engine, send: (_peer, i) => Promise.resolve(void sent.push(i.meta.objectID)), resendIntervalMs: 10_000, log: quiet, now: () => now });
    loops.ensure(PEER);
    await until('both published', () => sent.length === 2);
    fake.wake();
    await until('another round', () => fake.described.length === 2 && sent.length === 2);
    await new Promise((r) => setTimeout(r, 50));
    expect(sent).toEqual(['a', 'b']);
    expect(fake.described).toEqual(['a', 'b']);
    now += 10_000;
    fake.wake();
    await until('published again', () => sent.length === 4);
    expect(sent).toEqual(['a', 'b', 'a', 'b']);
  });

  it('publishes again what the broker did not take', async () => {
    const fake = fakeEngine([item('a'), item('b')]);
    const sent: string[] = [];
    let fail = true;
    loops = new CssPushLoops({
      engine: fake.engine,
      send: (_peer, i) => {
        if (i.meta.objectID === 'a' && fail) {
          fail = false;
          return Promise.reject(new Error('no PUBACK'));
        }
        sent.push(i.meta.objectID);
        return Promise.resolve();
      },
      resendIntervalMs: 10_000,
      log: quiet,
    });
    loops.ensure(PEER);
    // After the failure the loop pauses a second, then publishes what was not taken.
    await until('a published after its failure', () => sent.includes('a'));
    expect(sent).toEqual(['b', 'a']);
  });

  it('pushes what waited behind a full listing as soon as the ESS answers, not at the next resend', async () => {
    const pending = Array.from({ length: 600 }, (_, n) => item(`o${n}`));
    const fake = fakeEngine(pending);
    const sent = new Set<string>();
    loops = new CssPushLoops({ engine: fake.engine, send: (_peer, i) => Promise.resolve(void sent.add(i.meta.objectID)), resendIntervalMs: 60_000, log: quiet });
    loops.ensure(PEER);
    await until('the first listing published', () => sent.size === 500);
    await new Promise((r) => setTimeout(r, 50));
    expect(sent.has('o500')).toBe(false);
    // The ESS answers the first 200: they leave what is pending.
    pending.splice(0, 200);
    loops.answered(PEER);
    await until('the rest published', () => sent.size === 600);
  });

  it('once: publishes what is pending in one round and keeps no loop (a CSS that does not own the ESS\'s loop)', async () => {
    const { engine } = fakeEngine([item('o1'), item('o2')]);
    const sent: string[] = [];
    loops = new CssPushLoops({ engine, send: (_peer, i) => {
        sent.push(i.meta.objectID);
        return Promise.resolve();
      }, resendIntervalMs: 60_000, log: quiet });
    loops.once(PEER);
    await until('both published', () => sent.length === 2);
    expect(sent).toEqual(['o1', 'o2']);
    expect(loops.size).toBe(0);
    // A second round publishes everything again: a registration asks for that.
    loops.once(PEER);
    await until('published again', () => sent.length === 4);
  });

  it('stopAll: ends every loop and stays usable (the lease moved away and back)', async () => {
    const { engine } = fakeEngine([item('o1')]);
    const sent: string[] = [];
    loops = new CssPushLoops({ engine, send: (_peer, i) => {
        sent.push(i.meta.objectID);
        return Promise.resolve();
      }, resendIntervalMs: 60_000, log: quiet });
    loops.ensure(PEER);
    await until('published', () => sent.length === 1);
    await loops.stopAll();
    expect(loops.size).toBe(0);
    loops.ensure(PEER);
    // A new loop knows nothing of what the last one sent: it publishes what is pending.
    await until('published by the new loop', () => sent.length === 2);
    expect(loops.size).toBe(1);
  });
});

