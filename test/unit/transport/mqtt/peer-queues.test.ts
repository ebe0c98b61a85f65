/**
 * The CSS handles one ESS's MQTT messages about one object in order, one at a time; messages
 * about different objects, and of different ESS nodes, side by side, within an overall bound;
 * a message about the ESS as a whole (a registration) comes between what came before and after
 * it; a flood from one ESS is cut at the queue's limit; a broker outage holds the push loops at
 * one gate.
 */
import { describe, expect, it } from '@jest/globals';
import { ConnectionGate } from '../../../../lib/transport/mqtt/connection-gate.js';
import { PeerQueues, type QueuedWork } from '../../../../lib/transport/mqtt/peer-queues.js';

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A message about `object` (null: about the ESS) that notes its start and end in `seen`. */
function message(seen: string[], name: string, object: string | null, gate?: Promise<void>, extra: Partial<QueuedWork> = {}): QueuedWork {
  return {
    object,
    work: async () => {
      seen.push(`${name} start`);
      await gate;
      seen.push(`${name} end`);
    },
    onError: () => undefined,
    ...extra,
  };
}

describe('PeerQueues', () => {
  it("runs one peer's messages about one object in order, one at a time, and those about other objects and peers meanwhile", async () => {
    const q = new PeerQueues(10, 64, 8);
    const seen: string[] = [];
    const first = deferred();
    q.add('a', message(seen, 'a/x1', 'x', first.promise));
    q.add('a', message(seen, 'a/x2', 'x'));
    q.add('a', message(seen, 'a/y1', 'y'));
    q.add('b', message(seen, 'b/x1', 'x'));
    await settle();
    expect(seen).toEqual(['a/x1 start', 'a/y1 start', 'b/x1 start', 'a/y1 end', 'b/x1 end']);
    first.resolve();
    await q.drain(1000);
    expect(seen.slice(5)).toEqual(['a/x1 end', 'a/x2 start', 'a/x2 end']);
  });

  it("runs a message about the peer after all its earlier messages and before all its later ones, other peers untouched", async () => {
    const q = new PeerQueues(10, 64, 8);
    const seen: string[] = [];
    const x = deferred();
    const reg = deferred();
    q.add('a', message(seen, 'x', 'x', x.promise));
    q.add('a', message(seen, 'register', null, reg.promise));
    q.add('a', message(seen, 'y', 'y'));
    q.add('b', message(seen, 'b', 'y'));
    await settle();
    expect(seen).toEqual(['x start', 'b start', 'b end']);
    x.resolve();
    await settle();
    expect(seen.slice(3)).toEqual(['x end', 'register start']);
    reg.resolve();
    await q.drain(1000);
    expect(seen.slice(5)).toEqual(['register end', 'y start', 'y end']);
  });

  it('handles at most `concurrency` messages at once over every peer, and at most `dataConcurrency` of the data kind', async () => {
    const q = new PeerQueues(100, 3, 1);
    const gate = deferred();
    let running = 0;
    let most = 0;
    let dataRunning = 0;
    let mostData = 0;
    for (let i = 0; i < 10; i++) {
      const data = i % 2 === 0;
      q.add(`peer${i % 3}`, {
        object: `o${i}`,
        kind: data ? 'data' : 'control',
        work: async () => {
          running++;
          if (data) dataRunning++;
          most = Math.max(most, running);
          mostData = Math.max(mostData, dataRunning);
          await gate.promise;
          running--;
          if (data) dataRunning--;
        },
        onError: () => undefined,
      });
    }
    await settle();
    expect(running).toBe(3);
    gate.resolve();
    await q.drain(1000);
    expect(most).toBe(3);
    expect(mostData).toBe(1);
  });

  it('hands a failure to its handler and goes on with the next message about the object', async () => {
    const q = new PeerQueues(10, 64, 8);
    const errors: unknown[] = [];
    const seen: string[] = [];
    q.add('a', { object: 'x', work: () => Promise.reject(new Error('boom')), onError: (e) => errors.push(e) });
    q.add('a', { object: 'x', work: () => Promise.resolve(void seen.push('next')), onError: (e) => errors.push(e) });
    await q.drain(1000);
    expect(errors.map((e) => (e as Error).message)).toEqual(['boom']);
    expect(seen).toEqual(['next']);
  });

  it('refuses messages beyond the limit of one peer, not of another', async () => {
    const q = new PeerQueues(2, 64, 8);
    const gate = deferred();
    const msg = (object: string, work: () => Promise<void> = () => Promise.resolve()): QueuedWork => ({ object, work, onError: () => undefined });
    expect(q.add('a', msg('x', () => gate.promise))).toBe(true);
    expect(q.add('a', msg('y'))).toBe(true);
    expect(q.add('a', msg('z'))).toBe(false);
    expect(q.add('b', msg('x'))).toBe(true);
    gate.resolve();
    await q.drain(1000);
    expect(q.add('a', msg('z'))).toBe(true);
  });

  it('stops waiting for work that never ends after the given time', async () => {
    const q = new PeerQueues(2, 64, 8);
    q.add('a', { object: 'x', work: () => new Promise(() => undefined), onError: () => undefined });
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
