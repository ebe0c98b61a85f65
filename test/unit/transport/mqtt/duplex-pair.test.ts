/**
 * The in-memory connection between the CSS's own MQTT client and its embedded broker
 * (lib/transport/mqtt/duplex-pair.ts): the same buffers come out that went in, both ways, a
 * writer waits while the other side does not read, and closing one end closes the other.
 */
import { once } from 'node:events';
import { describe, expect, it } from '@jest/globals';
import { duplexPair } from '../../../../lib/transport/mqtt/duplex-pair.js';

const tick = async (): Promise<void> => {
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
};

describe('duplexPair', () => {
  it('carries what one end writes to the other, the same Buffer objects, both ways', async () => {
    const [a, b] = duplexPair();
    const chunk = Buffer.from('payload');
    const fromA: Buffer[] = [];
    const fromB: Buffer[] = [];
    b.on('data', (c: Buffer) => fromA.push(c));
    a.on('data', (c: Buffer) => fromB.push(c));
    a.write(chunk);
    b.write(Buffer.from('answer'));
    await tick();
    expect(fromA).toHaveLength(1);
    expect(fromA[0]).toBe(chunk);
    expect(Buffer.concat(fromB).toString()).toBe('answer');
    a.destroy();
  });

  it('holds a writer back while the other end does not read, and lets it go on once it does', async () => {
    const [a, b] = duplexPair();
    const big = Buffer.alloc(64 * 1024);
    let done = 0;
    for (let i = 0; i < 8; i++) a.write(big, () => done++);
    await tick();
    // b's reader is paused: its buffer is full, the writes wait.
    expect(done).toBeLessThan(8);
    expect(b.readableLength).toBeLessThan(8 * big.length);
    let got = 0;
    b.on('data', (c: Buffer) => (got += c.length));
    await tick();
    expect(done).toBe(8);
    expect(got).toBe(8 * big.length);
    a.destroy();
  });

  it('ends what the other end reads when one end ends', async () => {
    const [a, b] = duplexPair();
    b.resume();
    a.end(Buffer.from('last'));
    await once(b, 'end');
    a.destroy();
  });

  it('destroys both ends when one is destroyed, with the writes held back', async () => {
    const [a, b] = duplexPair();
    for (let i = 0; i < 8; i++) a.write(Buffer.alloc(64 * 1024));
    await tick();
    const closed = once(a, 'close');
    b.destroy();
    await closed;
    expect(a.destroyed).toBe(true);
    expect(b.destroyed).toBe(true);
  });
});
