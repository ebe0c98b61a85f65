/**
 * The CSS handles one ESS's MQTT messages one at a time, in order, and several ESS nodes side
 * by side; a flood from one ESS is cut at the queue's limit; a broker outage holds the push loops
 * at one gate.
 */
import { describe, expect, it } from '@jest/globals';
import { ConnectionGate } from '../../../../lib/transport/mqtt/connection-gate.js';
import { PeerQueues } from '../../../../lib/transport/mqtt/peer-queues.js';

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('PeerQueues', () => {
  it("runs one peer's work in order, one at a time, and another peer's meanwhile", async () => {
    const q = new PeerQueues(10);
    const seen: string[] = [];
    const first = deferred();
    q.add('a', async () => {
      seen.push('a1 start');
      await first.promise;
      seen.push('a1 end');
    }, () => undefined);
    q.add('a', () => Promise.resolve(void seen.push('a2')), () => undefined);
    q.add('b', () => Promise.resolve(void seen.push('b1')), () => undefined);
    await new Promise((r) => setImmediate(r));
    expect(seen).toEqual(['a1 start', 'b1']);
    first.resolve();
    await q.drain(1000);
    expect(seen).toEqual(['a1 start', 'b1', 'a1 end', 'a2']);
  });

  it('hands a failure to its handler and goes on with the next', async () => {
    const q = new PeerQueues(10);
    const errors: unknown[] = [];
    const seen: string[] = [];
    q.add('a', () => Promise.reject(new Error('boom')), (e) => errors.push(e));
    q.add('a', () => Promise.resolve(void seen.push('next')), (e) => errors.push(e));
    await q.drain(1000);
    expect(errors.map((e) => (e as Error).message)).toEqual(['boom']);
    expect(seen).toEqual(['next']);
  });

  it('refuses work beyond the limit of one peer, not of another', async () => {
    const q = new PeerQueues(2);
    const gate = deferred();
    expect(q.add('a', () => gate.promise, () => undefined)).toBe(true);
    expect(q.add('a', () => Promise.resolve(), () => undefined)).toBe(true);
    expect(q.add('a', () => Promise.resolve(), () => undefined)).toBe(false);
    expect(q.add('b', () => Promise.resolve(), () => undefined)).toBe(true);
    gate.resolve();
    await q.drain(1000);
    expect(q.add('a', () => Promise.resolve(), () => undefined)).toBe(true);
  });

  it('stops waiting for work that never ends after the given time', async () => {
    const q = new PeerQueues(2);
    q.add('a', () => new Promise(() => undefined), () => undefined);
    await q.drain(50);
  });
});

describe('ConnectionGate', () => {
  it('lets through at once while connected, and holds every waiter until the connection is back', async () => {
    let connected = false;
    const stop = new AbortController();
    const gate = new ConnectionGate(() => connected, 10, stop.signal);
    let passed = 0;
    const waits = [1, 2, 3].map(() => gate.wait('org', new AbortController().signal).then(() => passed++));
    await new Promise((r) => setTimeout(r, 40));
    expect(passed).toBe(0);
    connected = true;
    await Promise.all(waits);
    expect(passed).toBe(3);
    await gate.wait('org', new AbortController().signal);
  });

  it("ends a wait when the waiter's signal or the gate's aborts", async () => {
    const stop = new AbortController();
    const gate = new ConnectionGate(() => false, 10, stop.signal);
    const mine = new AbortController();
    const w = gate.wait('org', mine.signal);
    mine.abort();
    await w;
    const other = gate.wait('org', new AbortController().signal);
    stop.abort();
    await other;
  });
});
