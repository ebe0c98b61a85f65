/**
 * The MQTT packet framing of our plain TCP connections to a broker
 * (lib/transport/mqtt/packet-socket.ts): whatever the kernel's reads cut, each packet comes out
 * whole in a buffer of its own, large ones read straight into theirs; and over a real socket, an
 * MQTT client gets the messages a server sends, intact.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Socket } from 'node:net';
import { describe, expect, it } from '@jest/globals';
import { connectPacketSocket, MalformedPacketError, packetLength, PacketFramer } from '../../../../lib/transport/mqtt/packet-socket.js';

/** The remaining length of an MQTT fixed header, 1 to 4 bytes. [MQTT-2.2.3] */
function varint(n: number): Buffer {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return Buffer.from(out);
}

/** A QoS 0 PUBLISH packet's bytes. [MQTT-3.3] */
function publish(payload: Buffer, topic = 't/x'): Buffer {
  const name = Buffer.from(topic);
  const body = Buffer.concat([Buffer.from([name.length >> 8, name.length & 0xff]), name, payload]);
  return Buffer.concat([Buffer.from([0x30]), varint(body.length), body]);
}

/** PINGRESP: a packet of no body. */
const PINGRESP = Buffer.from([0xd0, 0x00]);

/** Feeds `bytes` to a framer in reads of the sizes `cuts` gives, as the kernel would. */
function frame(bytes: Buffer, cut: () => number): Buffer[] {
  const out: Buffer[] = [];
  const framer = new PacketFramer((p) => {
    out.push(p);
    return true;
  });
  let at = 0;
  while (at < bytes.length) {
    const into = framer.buffer();
    const n = Math.min(into.length, bytes.length - at, Math.max(1, cut()));
    bytes.copy(into, 0, at, at + n);
    at += n;
    framer.read(n);
  }
  return out;
}

describe('MQTT packet framing', () => {
  it('reads the length of a fixed header of 1 to 4 length bytes, null while it is cut short', () => {
    expect(packetLength(Buffer.from([0x30, 0x00]), 0, 2)).toBe(2);
    expect(packetLength(Buffer.from([0x30, 0x7f]), 0, 2)).toBe(2 + 127);
    expect(packetLength(Buffer.from([0x30, 0x80, 0x01]), 0, 3)).toBe(3 + 128);
    expect(packetLength(Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f]), 0, 5)).toBe(5 + 268_435_455);
    expect(packetLength(Buffer.from([0x30, 0x80]), 0, 2)).toBeNull();
    expect(packetLength(Buffer.from([0x30]), 0, 1)).toBeNull();
    expect(() => packetLength(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]), 0, 6)).toThrow(MalformedPacketError);
  });

  it('gives every packet whole, in order, whatever the reads cut, large and small', () => {
    const packets = [publish(randomBytes(10)), publish(randomBytes(200_000)), publish(Buffer.alloc(0)), publish(randomBytes(127)), publish(randomBytes(70_000)), PINGRESP];
    const stream = Buffer.concat(packets);
    for (const cut of [() => 1, () => 3, () => 65_536, () => Math.floor(Math.random() * 100_000)]) {
      const out = frame(stream, cut);
      expect(out.map((p) => p.length)).toEqual(packets.map((p) => p.length));
      expect(out.every((p, i) => p.equals(packets[i]!))).toBe(true);
    }
  });

  it('reads a large packet into a buffer of its exact size: no copy of the reads joined afterwards', () => {
    const big = publish(randomBytes(1024 * 1024));
    const framer = new PacketFramer(() => true);
    const first = framer.buffer();
    big.copy(first, 0, 0, first.length);
    framer.read(first.length);
    // The rest goes straight into the packet's own buffer.
    const rest = framer.buffer();
    expect(rest.length).toBe(big.length - first.length);
    expect(rest.buffer.byteLength).toBeGreaterThanOrEqual(big.length);
  });

  it('says to wait when the reader does, and refuses a malformed length', () => {
    const framer = new PacketFramer(() => false);
    const p = publish(randomBytes(5));
    p.copy(framer.buffer());
    expect(framer.read(p.length)).toBe(false);
    const bad = Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]);
    const other = new PacketFramer(() => true);
    bad.copy(other.buffer());
    expect(() => other.read(bad.length)).toThrow(MalformedPacketError);
  });

  it('over a real socket: the packets a server writes, in small writes, come out whole and equal', async () => {
    const packets = [publish(randomBytes(300_000)), publish(randomBytes(50)), publish(randomBytes(2 * 1024 * 1024 + 3))];
    const server = createServer((s: Socket) => {
      const all = Buffer.concat(packets);
      let at = 0;
      const step = (): void => {
        if (at >= all.length) return void s.end();
        const n = 1 + Math.floor(Math.random() * 90_000);
        s.write(all.subarray(at, at + n), step);
        at += n;
      };
      step();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const stream = connectPacketSocket({ host: '127.0.0.1', port });
    const got: Buffer[] = [];
    for await (const p of stream) got.push(p as Buffer);
    await new Promise((r) => server.close(r));
    expect(got.map((p) => p.length)).toEqual(packets.map((p) => p.length));
    expect(got.every((p, i) => p.equals(packets[i]!))).toBe(true);
  });
});
