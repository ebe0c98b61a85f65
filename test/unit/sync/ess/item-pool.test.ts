/**
 * The pool an ESS agent hands pushed items to (lib/sync/ess/item-pool.ts): items about one
 * object one after the other in the order they came, items about different objects side by
 * side within their bounds (downloads apart from light items), failures to a handler, and a
 * count the agent's loop waits on before it polls again.
 */
import { describe, expect, it } from '@jest/globals';
import { emptyMetaData } from '../../../../lib/model/index.js';
import type { CssItem } from '../../../../lib/sync/ess/css-link.js';
import { ItemPool } from '../../../../lib/sync/ess/item-pool.js';

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));
const item = (type: string, objectID: string, objectSize = 0): CssItem => ({ type, meta: { ...emptyMetaData(), objectType: 't', objectID, objectSize }, inline: null });
const name = (i: CssItem): string => `${i.type} ${i.meta.objectID}`;

describe('ItemPool', () => {
  it('handles the items of one object in order, one at a time, and other objects meanwhile', async () => {
    const seen: string[] = [];
    const gate = deferred();
    const pool = new ItemPool({
      downloads: 4,
      light: 4,
      isDownload: () => false,
      handle: async (i) => {
        seen.push(`${name(i)} start`);
        if (name(i) === 'update a') await gate.promise;
        seen.push(`${name(i)} end`);
      },
      onError: () => undefined,
    });
    pool.add([item('update', 'a'), item('update', 'b')]);
    pool.add([item('delete', 'a')]);
    await settle();
    expect(seen).toEqual(['update a start', 'update b start', 'update b end']);
    expect(pool.holds('t', 'a')).toBe(true);
    expect(pool.holds('t', 'b')).toBe(false);
    expect(pool.size).toBe(2);
    gate.resolve();
    await pool.idle();
    expect(seen.slice(3)).toEqual(['update a end', 'delete a start', 'delete a end']);
    expect(pool.holds('t', 'a')).toBe(false);
    expect(pool.size).toBe(0);
  });

  it('keeps downloads and light items within their own bounds', async () => {
    const gate = deferred();
    const running = { download: 0, light: 0 };
    const most = { download: 0, light: 0 };
    const pool = new ItemPool({
      downloads: 2,
      light: 3,
      isDownload: (i) => i.meta.objectSize > 100,
      handle: async (i) => {
        const kind = i.meta.objectSize > 100 ? 'download' : 'light';
        running[kind]++;
        most[kind] = Math.max(most[kind], running[kind]);
        await gate.promise;
        running[kind]--;
      },
      onError: () => undefined,
    });
    pool.add(Array.from({ length: 10 }, (_, n) => item('update', `o${n}`, n % 2 === 0 ? 1000 : 10)));
    await settle();
    expect(running).toEqual({ download: 2, light: 3 });
    gate.resolve();
    await pool.idle();
    expect(most).toEqual({ download: 2, light: 3 });
  });

  it('hands a failure to its handler and goes on with the next item of the object', async () => {
    const errors: string[] = [];
    const seen: string[] = [];
    const pool = new ItemPool({
      downloads: 1,
      light: 1,
      isDownload: () => false,
      handle: (i) => (i.type === 'update' ? Promise.reject(new Error('boom')) : Promise.resolve(void seen.push(name(i)))),
      onError: (e) => errors.push((e as Error).message),
    });
    pool.add([item('update', 'a')]);
    pool.add([item('delete', 'a')]);
    await pool.idle();
    expect(errors).toEqual(['boom']);
    expect(seen).toEqual(['delete a']);
  });

  it('tells when fewer than a number of items are in hand', async () => {
    const gates = [deferred(), deferred(), deferred()];
    const pool = new ItemPool({ downloads: 3, light: 3, isDownload: () => false, handle: (i) => gates[Number(i.meta.objectID)]!.promise, onError: () => undefined });
    pool.add([item('update', '0'), item('update', '1'), item('update', '2')]);
    let below2 = false;
    void pool.below(2).then(() => (below2 = true));
    await pool.below(4);
    gates[0]!.resolve();
    await settle();
    expect(below2).toBe(false);
    gates[1]!.resolve();
    await settle();
    expect(below2).toBe(true);
    gates[2]!.resolve();
    await pool.idle();
  });
});
