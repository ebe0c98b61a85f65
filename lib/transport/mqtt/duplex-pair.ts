/**
 * Two connected in-memory streams: what is written to one is read from the other, the same Buffer
 * objects, no copy. The CSS's own MQTT client talks to its embedded broker through such a pair
 * instead of a loopback socket: every chunk it serves would otherwise be written into the kernel
 * by the client, read back by the broker in 64 KiB pieces and joined into one buffer again by the
 * broker's parser (a copy, and garbage) before the broker writes it to the ESS. Through the pair
 * the broker's parser finds each payload whole in one buffer and takes a view of it.
 *
 * Backpressure is kept: a write waits (its callback is held) while the other side's reader has
 * its buffer full. Ending one side ends what the other reads; destroying one destroys both (and
 * with it the writes still waiting).
 */
import { Duplex } from 'node:stream';

type Callback = (err?: Error | null) => void;

class PairEnd extends Duplex {
  other: PairEnd | null = null;
  /** The callback of a write whose chunk the other side's reader did not want more of. */
  private held: Callback | null = null;

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: Callback): void {
    const other = this.other;
    if (other === null || other.destroyed) return done(new Error('the other end of the in-memory connection is closed'));
    if (other.push(chunk)) done();
    else other.holdUntilRead(done);
  }

  override _writev(chunks: { chunk: Buffer }[], done: Callback): void {
    const other = this.other;
    if (other === null || other.destroyed) return done(new Error('the other end of the in-memory connection is closed'));
    let more = true;
    for (const { chunk } of chunks) more = other.push(chunk);
    if (more) done();
    else other.holdUntilRead(done);
  }

  override _read(): void {
    const held = this.held;
    this.held = null;
    held?.();
  }

  override _final(done: Callback): void {
    this.other?.push(null);
    done();
  }

  override _destroy(err: Error | null, done: Callback): void {
    // The write held back belongs to the other end, destroyed below: its writes are over.
    this.held = null;
    const other = this.other;
    this.other = null;
    if (other !== null && !other.destroyed) other.destroy();
    done(err);
  }

  private holdUntilRead(done: Callback): void {
    this.held = done;
  }
}

/** Two ends of one in-memory connection. */
export function duplexPair(): [Duplex, Duplex] {
  const a = new PairEnd();
  const b = new PairEnd();
  a.other = b;
  b.other = a;
  return [a, b];
}
