import { describe, expect, it } from '@jest/globals';
import { CoalescedSync } from '../../../lib/store/coalesced-sync.js';

describe('CoalescedSync', () => {
  it('settles each caller after a sync that started after its call; callers during a sync share the next', async () => {
    const releases: (() => void)[] = [];
    const sync = new CoalescedSync(() => new Promise<void>((r) => releases.push(r)));
    const order: string[] = [];
    const a = sync.run().then(() => order.push('a'));
    await Promise.resolve();
    expect(releases).toHaveLength(1);
    // b and c arrive while the first sync runs: it may not cover their writes.
    const b = sync.run().then(() => order.push('b'));
    const c = sync.run().then(() => order.push('c'));
    releases[0]!();
    await a;
    expect(order).toEqual(['a']);
    await new Promise((r) => setImmediate(r));
    expect(releases).toHaveLength(2);
    releases[1]!();
    await Promise.all([b, c]);
    expect(order).toEqual(['a', 'b', 'c']);
    await sync.idle();
    expect(releases).toHaveLength(2);
  });

  it('with two in flight, starts a second sync at once for a caller that arrives during the first', async () => {
    const releases: (() => void)[] = [];
    const sync = new CoalescedSync(() => new Promise<void>((r) => releases.push(r)), 2);
    const order: string[] = [];
    const a = sync.run().then(() => order.push('a'));
    await Promise.resolve();
    const b = sync.run().then(() => order.push('b'));
    await Promise.resolve();
    expect(releases).toHaveLength(2);
    // Both slots are taken: c and d share the next sync, started when one slot frees.
    const c = sync.run().then(() => order.push('c'));
    const d = sync.run().then(() => order.push('d'));
    let idle = false;
    const idling = sync.idle().then(() => (idle = true));
    releases[1]!();
    await b;
    await new Promise((r) => setImmediate(r));
    expect(releases).toHaveLength(3);
    releases[2]!();
    await Promise.all([c, d]);
    expect(order).toEqual(['b', 'c', 'd']);
    expect(idle).toBe(false);
    releases[0]!();
    await Promise.all([a, idling]);
    expect(idle).toBe(true);
    expect(releases).toHaveLength(3);
  });

  it('fails the callers of a failed sync only; the next callers get a new one', async () => {
    let fail = true;
    const sync = new CoalescedSync(() => (fail ? Promise.reject(new Error('EIO')) : Promise.resolve()));
    await expect(sync.run()).rejects.toThrow('EIO');
    fail = false;
    await expect(sync.run()).resolves.toBeUndefined();
  });
});
