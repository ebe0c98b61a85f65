/**
 * The embedded broker's packet-size cap: it reads each packet's announced size from the
 * fixed header as bytes stream by, however the bytes are cut into chunks.
 */
import { describe, expect, it } from '@jest/globals';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { MalformedPacketError, PacketSizeGuard, PacketTooLargeError } from '../../../../lib/transport/mqtt/packet-size-guard.js';

/** A packet of type `type` with a body of `n` bytes. */
function packet(type: number, n: number): Buffer {
  const len: number[] = [];
  let x = n;
  do {
    let b = x % 128;
    x = Math.floor(x / 128);
    if (x > 0) b |= 0x80;
    len.push(b);
  } while (x > 0);
  return Buffer.concat([Buffer.from([type, ...len]), Buffer.alloc(n, 7)]);
}

async function run(bytes: Buffer, max: number, chunk: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += chunk) parts.push(bytes.subarray(i, i + chunk));
  const out: Buffer[] = [];
  const guard = new PacketSizeGuard(max);
  guard.on('data', (d: Buffer) => out.push(d));
  await pipeline(Readable.from(parts), guard);
  return Buffer.concat(out);
}

describe('PacketSizeGuard', () => {
  const stream = Buffer.concat([packet(0x10, 20), packet(0x30, 0), packet(0x30, 200), packet(0xc0, 0), packet(0x30, 16_384 - 4)]);

  it.each([1, 2, 3, 7, 64, 100_000])('passes packets up to the cap unchanged, in chunks of %i bytes', async (chunk) => {
    expect((await run(stream, 16_384, chunk)).equals(stream)).toBe(true);
  });

  it.each([1, 3, 1000])('fails on the first packet announcing more than the cap (chunks of %i)', async (chunk) => {
    const big = Buffer.concat([packet(0x30, 10), packet(0x30, 16_384)]);
    await expect(run(big, 16_384, chunk)).rejects.toThrow(PacketTooLargeError);
    await expect(run(big, 16_384, chunk)).rejects.toThrow('MQTT packet of 16388 bytes exceeds the broker\'s maximum of 16384 bytes');
  });

  it('fails on a length field of more than four bytes', async () => {
    await expect(run(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]), 1 << 30, 2)).rejects.toThrow(MalformedPacketError);
  });
});
