import { describe, expect, it } from '@jest/globals';
import type { PeerWakeBus, PeerWakeHandler } from '../../../lib/store/coordination-types.js';
import { PeerSignal } from '../../../lib/sync/peer-signal.js';

/** 'woken' if the wait ended within `ms`, else 'waiting' (the wait itself is much longer). */
async function settledWithin(p: Promise<void>, ms: number): Promise<'woken' | 'waiting'> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'waiting'>((resolve) => (timer = setTimeout(() => resolve('waiting'), ms)));
  try {
    return await Promise.race([p.then(() => 'woken' as const), late]);
  } finally {
    clearTimeout(timer);
  }
}

const LONG = 60_000;

describe('PeerSignal', () => {
  it('wakes every waiter of the notified peer, and only those', async () => {
    const s = new PeerSignal();
    const a1 = s.wait('org1', 'edge', 'n1', LONG);
    const a2 = s.wait('org1', 'edge', 'n1', LONG);
    const otherId = s.wait('org1', 'edge', 'n2', LONG);
    const otherOrg = s.wait('org2', 'edge', 'n1', LONG);
    const ac = new AbortController();
    // Parts that would join to the same string must still be different peers.
    const lookalike = s.wait('org1', 'edge/n1', '', LONG, ac.signal);
    s.notify('org1', 'edge', 'n1');
    expect(await settledWithin(a1, 1000)).toBe('woken');
    expect(await settledWithin(a2, 1000)).toBe('woken');
    expect(await settledWithin(otherId, 20)).toBe('waiting');
    expect(await settledWithin(otherOrg, 20)).toBe('waiting');
    expect(await settledWithin(lookalike, 20)).toBe('waiting');
    expect(s.waiting).toBe(3);
    s.notify('org1', 'edge', 'n2');
    s.notify('org2', 'edge', 'n1');
    ac.abort();
    await Promise.all([otherId, otherOrg, lookalike]);
    expect(s.waiting).toBe(0);
  });

  it('does not remember a notify that came before the wait', async () => {
    const s = new PeerSignal();
    s.notify('org1', 'edge', 'n1');
    const ac = new AbortController();
    const w = s.wait('org1', 'edge', 'n1', LONG, ac.signal);
    expect(await settledWithin(w, 20)).toBe('waiting');
    ac.abort();
    await w;
  });

  it('resolves after its timeout and leaves nothing behind', async () => {
    const s = new PeerSignal();
    const w = s.wait('org1', 'edge', 'n1', 10);
    expect(s.waiting).toBe(1);
    expect(await settledWithin(w, 2000)).toBe('woken');
    expect(s.waiting).toBe(0);
  });

  it('resolves on abort, removing its listener; an already aborted signal does not wait', async () => {
    const s = new PeerSignal();
    const ac = new AbortController();
    let added = 0;
    let removed = 0;
    const signal = ac.signal;
    const add = signal.addEventListener.bind(signal);
    const remove = signal.removeEventListener.bind(signal);
    signal.addEventListener = (...args: Parameters<AbortSignal['addEventListener']>) => {
      added++;
      add(...args);
    };
    signal.removeEventListener = (...args: Parameters<AbortSignal['removeEventListener']>) => {
      removed++;
      remove(...args);
    };
    const w = s.wait('org1', 'edge', 'n1', LONG, signal);
    ac.abort();
    expect(await settledWithin(w, 1000)).toBe('woken');
    expect(s.waiting).toBe(0);
    expect(await settledWithin(s.wait('org1', 'edge', 'n1', LONG, signal), 1000)).toBe('woken');
    expect(s.waiting).toBe(0);
    expect([added, removed]).toEqual([1, 1]);
  });

  it('a wait ended by notify or timeout drops its abort listener', async () => {
    const s = new PeerSignal();
    const ac = new AbortController();
    let removed = 0;
    const remove = ac.signal.removeEventListener.bind(ac.signal);
    ac.signal.removeEventListener = (...args: Parameters<AbortSignal['removeEventListener']>) => {
      removed++;
      remove(...args);
    };
    const w1 = s.wait('org1', 'edge', 'n1', LONG, ac.signal);
    s.notify('org1', 'edge', 'n1');
    await w1;
    await s.wait('org1', 'edge', 'n1', 5, ac.signal);
    expect(removed).toBe(2);
    expect(s.waiting).toBe(0);
  });
});

/** The instances of a scaled-out CSS, as far as their PeerSignals see: a bus per instance, each publish heard by the others. */
class BusNetwork {
  readonly published: string[] = [];
  private readonly handlers = new Map<number, PeerWakeHandler>();
  private next = 0;

  bus(): Pick<PeerWakeBus, 'publish' | 'subscribe'> {
    const id = this.next++;
    return {
      publish: (org, type, peer) => {
        this.published.push(`${id}:${org}/${type}/${peer}`);
        for (const [other, h] of this.handlers) if (other !== id) h(org, type, peer);
      },
      subscribe: (h) => {
        this.handlers.set(id, h);
        return () => this.handlers.delete(id);
      },
    };
  }
}

describe('PeerSignal across instances (with a wake bus)', () => {
  it('wakes the waiters of the peer on another instance, and here', async () => {
    const net = new BusNetwork();
    const a = new PeerSignal(net.bus());
    const b = new PeerSignal(net.bus());
    const onA = a.wait('org1', 'edge', 'n1', LONG);
    const onB = b.wait('org1', 'edge', 'n1', LONG);
    const otherPeer = new AbortController();
    const onAOther = a.wait('org1', 'edge', 'n2', LONG, otherPeer.signal);
    b.notify('org1', 'edge', 'n1');
    expect(await settledWithin(onA, 1000)).toBe('woken');
    expect(await settledWithin(onB, 1000)).toBe('woken');
    expect(await settledWithin(onAOther, 20)).toBe('waiting');
    otherPeer.abort();
    await onAOther;
  });

  it('publishes each notify once, and never publishes again what another instance published', () => {
    const net = new BusNetwork();
    const a = new PeerSignal(net.bus());
    new PeerSignal(net.bus());
    a.notify('org1', 'edge', 'n1');
    a.notify('org1', 'edge', 'n1');
    expect(net.published).toEqual(['0:org1/edge/n1', '0:org1/edge/n1']);
  });
});
