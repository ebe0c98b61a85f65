/**
 * A plain TCP connection to an MQTT broker that hands the MQTT client whole packets, each in one
 * buffer, the large ones read straight into it by the kernel (net.Socket `onread`).
 *
 * Over an ordinary socket every read is a new 64 KiB buffer, and the client's parser joins the
 * reads that make a data message (up to the chunk size, 1 MiB and more) into one more buffer: a
 * copy of every byte received, and twice the data's size in garbage for the collector. Here the
 * reads go into one reused 64 KiB buffer until a packet's fixed header says how long it is; a
 * packet that does not fit what was read gets a buffer of its exact size, and the rest of it is
 * read into that buffer directly. The parser then finds each packet whole and takes a view of its
 * payload. Small packets are copied out of the reused buffer (they are small).
 *
 * Writes go to the socket as they come; those of one turn of the event loop leave in one write
 * (write-coalescing.ts), Nagle off, as on the client's own sockets.
 */
import { connect, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { coalesceWrites } from './write-coalescing.js';

/** The reused read buffer: a socket read brings at most this much anyway. */
const READ_BUFFER = 64 * 1024;
/** An MQTT fixed header: one byte, then the remaining length in 1 to 4 bytes. [MQTT-2.2] */
const MAX_HEADER = 5;

/** Bytes a broker sent that are no MQTT packet (a remaining length of more than four bytes). */
export class MalformedPacketError extends Error {
  constructor() {
    super('the broker sent a packet whose remaining length takes more than four bytes');
    this.name = 'MalformedPacketError';
  }
}

/**
 * The length of the packet whose fixed header starts at `at`: null when the header is not all
 * there yet. @throws MalformedPacketError
 */
export function packetLength(buf: Buffer, at: number, end: number): number | null {
  let remaining = 0;
  let factor = 1;
  for (let i = 1; i <= 4; i++) {
    if (at + i >= end) return null;
    const byte = buf[at + i] as number;
    remaining += (byte & 0x7f) * factor;
    if ((byte & 0x80) === 0) return 1 + i + remaining;
    factor *= 128;
  }
  throw new MalformedPacketError();
}

/** Splits what is read from a socket into MQTT packets; `emit` gets each whole, in its own buffer. */
export class PacketFramer {
  private readonly scratch = Buffer.allocUnsafe(READ_BUFFER);
  /** Bytes at the start of `scratch` left from the last read: the start of a fixed header. */
  private kept = 0;
  /** The packet being read straight into its own buffer, and how much of it is there. */
  private packet: Buffer | null = null;
  private filled = 0;

  constructor(private readonly emit: (packet: Buffer) => boolean) {}

  /** Where the next read goes. */
  buffer(): Buffer {
    return this.packet !== null ? this.packet.subarray(this.filled) : this.scratch.subarray(this.kept);
  }

  /**
   * `n` bytes were read into the last `buffer()`. @returns false when `emit` asked to wait
   * @throws MalformedPacketError
   */
  read(n: number): boolean {
    if (this.packet !== null) {
      this.filled += n;
      if (this.filled < this.packet.length) return true;
      const whole = this.packet;
      this.packet = null;
      return this.emit(whole);
    }
    const end = this.kept + n;
    let at = 0;
    let more = true;
    while (at < end) {
      const length = packetLength(this.scratch, at, end);
      if (length === null) break;
      if (end - at >= length) {
        // Copied out: the read buffer is read into again.
        more = this.emit(Buffer.from(this.scratch.subarray(at, at + length))) && more;
        at += length;
        continue;
      }
      // The rest of this packet is read into its own buffer.
      this.packet = Buffer.allocUnsafe(length);
      this.filled = this.scratch.copy(this.packet, 0, at, end);
      at = end;
    }
    this.kept = end - at;
    if (this.kept > 0) {
      if (this.kept >= MAX_HEADER) throw new MalformedPacketError();
      this.scratch.copyWithin(0, at, end);
    }
    return more;
  }
}

export interface PacketSocketOptions {
  host: string;
  port: number;
}

/** A connection to host:port whose readable side gives whole MQTT packets. */
export function connectPacketSocket(opts: PacketSocketOptions): Duplex {
  let socket: Socket | null = null;
  let waiting = false;
  let flush: () => void = () => undefined;
  const stream = new Duplex({
    read() {
      if (!waiting) return;
      waiting = false;
      socket?.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      flush();
      if (socket!.write(chunk)) callback();
      else socket!.once('drain', () => callback());
    },
    final(callback) {
      socket!.end(() => callback());
    },
    destroy(err, callback) {
      socket?.destroy();
      callback(err);
    },
  });
  const framer = new PacketFramer((packet) => stream.push(packet));
  socket = connect({
    host: opts.host,
    port: opts.port,
    noDelay: true,
    onread: {
      buffer: () => framer.buffer(),
      callback: (n: number) => {
        let more: boolean;
        try {
          more = framer.read(n);
        } catch (err) {
          stream.destroy(err as Error);
          return false;
        }
        // false pauses the socket until the client reads again.
        if (!more) waiting = true;
        return more;
      },
    },
  });
  flush = coalesceWrites(socket);
  socket.on('connect', () => stream.emit('connect'));
  socket.on('end', () => stream.push(null));
  socket.on('error', (err) => stream.destroy(err));
  socket.on('close', () => stream.destroy());
  return stream;
}
