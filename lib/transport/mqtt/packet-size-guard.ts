/**
 * Caps the size of the MQTT packets a client may send to the embedded broker. aedes has no such
 * limit: its parser buffers a packet whole before handing it on, so one client announcing a
 * 256 MiB PUBLISH would make the CSS hold 256 MiB. This transform reads each packet's fixed
 * header (type byte, then the remaining length as a variable-length integer [MQTT-2.2.3]) as
 * the bytes stream by, and fails the stream as soon as a packet announces more than the cap,
 * before its body arrives. Bytes pass through unchanged.
 */
import { Transform, type TransformCallback } from 'node:stream';

/** A client announced a packet larger than the broker takes. */
export class PacketTooLargeError extends Error {
  readonly size: number;
  constructor(size: number, max: number) {
    super(`MQTT packet of ${size} bytes exceeds the broker's maximum of ${max} bytes`);
    this.name = 'PacketTooLargeError';
    this.size = size;
  }
}

/** A length field longer than four bytes: not MQTT. */
export class MalformedPacketError extends Error {
  constructor() {
    super('malformed MQTT remaining length');
    this.name = 'MalformedPacketError';
  }
}

export class PacketSizeGuard extends Transform {
  /** Bytes of the current packet's body still to pass. */
  private toSkip = 0;
  /** Reading a fixed header: -1 before its type byte, else how many length bytes were read. */
  private lengthBytes = -1;
  private length = 0;
  private multiplier = 1;

  constructor(private readonly maxPacketSize: number) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.toSkip > 0) {
        const n = Math.min(this.toSkip, chunk.length - at);
        this.toSkip -= n;
        at += n;
        continue;
      }
      if (this.lengthBytes < 0) {
        // The type byte.
        at++;
        this.lengthBytes = 0;
        this.length = 0;
        this.multiplier = 1;
        continue;
      }
      const byte = chunk[at++]!;
      this.length += (byte & 0x7f) * this.multiplier;
      this.multiplier *= 128;
      this.lengthBytes++;
      if ((byte & 0x80) !== 0) {
        if (this.lengthBytes === 4) return done(new MalformedPacketError());
        continue;
      }
      const size = 1 + this.lengthBytes + this.length;
      if (size > this.maxPacketSize) return done(new PacketTooLargeError(size, this.maxPacketSize));
      this.toSkip = this.length;
      this.lengthBytes = -1;
    }
    done(null, chunk);
  }
}
