import { describe, expect, it } from '@jest/globals';
import { Readable } from 'node:stream';
import { emptyMetaData, type MetaData } from '../../../lib/model/index.js';
import type { Destination, GrowingData } from '../../../lib/store/index.js';
import { EarlyData, MAX_EARLY_READERS } from '../../../lib/sync/early-data.js';

const ORG = 'org1';

function node(type: string, id: string): Destination {
  return { destinationOrgID: ORG, destinationType: type, destinationID: id, communication: 'HTTP', codeVersion: '', lastPing: 1 };
}

function meta(objectID: string, m: Partial<MetaData> = {}): MetaData {
  return { ...emptyMetaData(), destinationOrgID: ORG, objectType: 'model', objectID, destinationType: 'edge', ...m };
}

/** Data of `size` bytes whose every read is a stream the test closes itself. */
function data(size: number): GrowingData {
  return { size, read: () => new Readable({ read: () => undefined }) };
}

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('EarlyData (uploads offered while they arrive)', () => {
  const nodes = [node('edge', 'n1'), node('edge', 'n2'), node('other', 'o1')];

  function registry(): { early: EarlyData; woken: string[] } {
    const woken: string[] = [];
    const early = new EarlyData({
      store: { listDestinations: () => Promise.resolve(nodes) },
      peerSignal: { notify: (_org: string, type: string, id: string) => void woken.push(`${type}:${id}`) },
    });
    return { early, woken };
  }

  it('wakes the registered nodes the object is addressed to, and offers it to each of them once', async () => {
    const { early, woken } = registry();
    early.begin(meta('big'), data(5000));
    await settle();
    expect(woken).toEqual(['edge:n1', 'edge:n2']);
    expect(early.announce(node('edge', 'n1')).map((o) => [o.meta.objectID, o.size])).toEqual([['big', 5000]]);
    expect(early.announce(node('edge', 'n1'))).toEqual([]);
    expect(early.announce(node('edge', 'n2'))).toHaveLength(1);
    expect(early.announce(node('other', 'o1'))).toEqual([]);
  });

  it('opens the data only for a node the object is addressed to, and only until the upload is over', () => {
    const { early } = registry();
    const d = data(10);
    early.begin(meta('big'), d);
    expect(early.open(ORG, 'model', 'big', node('edge', 'n1'))?.size).toBe(10);
    expect(early.open(ORG, 'model', 'big', node('other', 'o1'))).toBeNull();
    expect(early.open(ORG, 'model', 'other', node('edge', 'n1'))).toBeNull();
    early.end(meta('big'), d);
    expect(early.open(ORG, 'model', 'big', node('edge', 'n1'))).toBeNull();
    expect(early.announce(node('edge', 'n1'))).toEqual([]);
  });

  it('keeps a newer upload of the same object when the older one ends', () => {
    const { early } = registry();
    const first = data(10);
    const second = data(20);
    early.begin(meta('big'), first);
    early.begin(meta('big'), second);
    early.end(meta('big'), first);
    expect(early.open(ORG, 'model', 'big', node('edge', 'n1'))?.size).toBe(20);
  });

  it(`offers one upload to ${MAX_EARLY_READERS} nodes at most, and lets as many download it at once`, async () => {
    const { early } = registry();
    early.begin(meta('big'), data(10));
    const many = Array.from({ length: MAX_EARLY_READERS + 1 }, (_, i) => node('edge', `m${i}`));
    expect(many.map((n) => early.announce(n).length)).toEqual([...Array<number>(MAX_EARLY_READERS).fill(1), 0]);
    const open = many.slice(0, MAX_EARLY_READERS).map((n) => early.open(ORG, 'model', 'big', n));
    expect(open.every((o) => o !== null)).toBe(true);
    expect(early.open(ORG, 'model', 'big', many[MAX_EARLY_READERS]!)).toBeNull();
    open[0]!.stream.destroy();
    await settle();
    expect(early.open(ORG, 'model', 'big', many[MAX_EARLY_READERS]!)).not.toBeNull();
  });

  it('offers nothing for an inactive object, one without data, or one addressed by policy', () => {
    const { early } = registry();
    early.begin(meta('inactive', { inactive: true }), data(10));
    early.begin(meta('nodata', { noData: true }), data(10));
    early.begin(meta('policy', { destinationType: '', destinationPolicy: { properties: null, constraints: null, services: null, timestamp: 1n } }), data(10));
    expect(early.announce(node('edge', 'n1'))).toEqual([]);
  });
});
