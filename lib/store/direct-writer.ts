/**
 * A Writable that appends to a file with direct I/O (O_DIRECT): the bytes go from an aligned
 * buffer to the disk without passing through the page cache. A long download written the usual
 * way fills the page cache with pages nobody reads soon: on a small edge node that evicts what
 * its apps do read, and on the 2-core bench machine (a virtual machine, where a page the guest
 * touches for the first time in a while costs a fault to the host) copying into new page-cache
 * pages was the largest part of the ESS's CPU per downloaded byte (docs/benchmarks.md).
 *
 * Direct I/O wants the memory, the file offset and the length aligned to the device's block.
 * Incoming chunks are copied into one of two aligned buffers (WebAssembly memory, whose base is
 * page-aligned); a full buffer is written at an aligned offset while the other fills. Whatever
 * is not a whole aligned block (the bytes before the first aligned offset, the end of the data,
 * and the partial block a flush() makes durable) is written through a second, ordinary
 * descriptor of the same file; a later direct write covering the same block rewrites it with
 * the same bytes. If the file system refuses a direct write (EINVAL), the writer goes on with
 * ordinary writes only.
 *
 * Both descriptors belong to the caller, who closes them once the writer is done with them
 * (after 'close').
 */
import fs from 'node:fs';
import { Writable } from 'node:stream';

type Done = (err?: Error | null) => void;

/** The part of the WebAssembly global this module uses (the project's TypeScript libs do not declare it). */
declare const WebAssembly: { Memory: new (descriptor: { initial: number; maximum: number }) => { readonly buffer: ArrayBuffer } };

/** Alignment of offsets, lengths and memory: the largest logical block size in common use. */
export const DIRECT_ALIGN = 4096;

/** Bytes per direct write: at 1 MiB a direct dd ran at 900 MB/s here, at 256 KiB 870. */
const BUFFER_BYTES = 1024 * 1024;

const WASM_PAGE = 64 * 1024;

/** Buffer pairs kept for reuse once released; more may exist while more downloads run. */
const POOL_LIMIT = 8;
const pool: Buffer[][] = [];

/** Two aligned buffers, from the pool when one is free. */
function takeBuffers(): Buffer[] {
  const reused = pool.pop();
  if (reused !== undefined) return reused;
  // The backing store of a WebAssembly memory is page-aligned (its own mapping).
  const memory = new WebAssembly.Memory({ initial: (2 * BUFFER_BYTES) / WASM_PAGE, maximum: (2 * BUFFER_BYTES) / WASM_PAGE });
  const all = Buffer.from(memory.buffer);
  return [all.subarray(0, BUFFER_BYTES), all.subarray(BUFFER_BYTES)];
}

function releaseBuffers(buffers: Buffer[]): void {
  if (pool.length < POOL_LIMIT) pool.push(buffers);
}

function writeAt(fd: number, buf: Buffer, length: number, position: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const step = (done: number): void => {
      if (done === length) return resolve();
      fs.write(fd, buf, done, length - done, position + done, (err, n) => {
        if (err !== null) return reject(err);
        // A short write (disk full, say) is retried with the rest; none at all is an error.
        if (n === 0) return reject(new Error(`no byte of ${length - done} could be written`));
        step(done + n);
      });
    };
    step(0);
  });
}

export interface DirectWriterOptions {
  /** Descriptor opened with O_DIRECT. */
  directFd: number;
  /** Ordinary descriptor of the same file. */
  fd: number;
  /** Offset of the first byte. */
  start: number;
}

export class DirectWriter extends Writable {
  private readonly directFd: number;
  private readonly fd: number;
  private readonly start: number;
  private buffers: Buffer[] | null = takeBuffers();
  private current = 0;
  /** Bytes in the current buffer. */
  private fill = 0;
  /** File offset of the current buffer's first byte. */
  private base: number;
  /** Every byte before this offset is in the file (disk operations run one at a time, in order). */
  private landed: number;
  /** The last disk operation; each starts when the one before has ended. */
  private chain: Promise<void> = Promise.resolve();
  /** The disk operation still reading each buffer, if any: the buffer is refilled only after it. */
  private readonly busy: (Promise<void> | null)[] = [null, null];
  private failure: Error | null = null;
  private direct = true;

  constructor(opts: DirectWriterOptions) {
    super({ highWaterMark: BUFFER_BYTES });
    this.directFd = opts.directFd;
    this.fd = opts.fd;
    this.start = opts.start;
    this.base = opts.start;
    this.landed = opts.start;
  }

  /** Bytes in the file from the start offset (what reached it, not what is still buffered). */
  get bytesWritten(): number {
    return this.landed - this.start;
  }

  /** False once the file system refused a direct write: everything then goes the ordinary way. */
  get usesDirectIo(): boolean {
    return this.direct;
  }

  /**
   * Writes what is buffered (its whole blocks directly, the rest the ordinary way), so that a
   * following fsync covers every byte handed to write() so far. Resolves with the offset all
   * the bytes in the file reach.
   */
  async flush(): Promise<number> {
    if (this.fill > 0 && this.buffers !== null) this.enqueue(this.current, this.fill, this.base, false);
    await this.chain;
    if (this.failure !== null) throw this.failure;
    return this.landed;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: Done): void {
    this.take(chunk, 0, done);
  }

  override _final(done: Done): void {
    this.flush().then(
      () => done(),
      (err: Error) => done(err),
    );
  }

  override _destroy(err: Error | null, done: Done): void {
    // The descriptors stay open (their owner closes them), but not before the last disk
    // operation is done with them; only then may the buffers serve another writer.
    void this.chain.then(() => {
      if (this.buffers !== null) releaseBuffers(this.buffers);
      this.buffers = null;
      done(err);
    });
  }

  /** Copies `chunk` from `offset` into the buffers, handing each full one to the disk. */
  private take(chunk: Buffer, offset: number, done: Done): void {
    const buffers = this.buffers;
    if (buffers === null) return done(new Error('the writer was destroyed'));
    let at = offset;
    while (at < chunk.length) {
      if (this.failure !== null) return done(this.failure);
      const waiting = this.busy[this.current];
      if (waiting !== null && waiting !== undefined) {
        // Two buffers are with the disk: go on once the older one is free.
        void waiting.then(() => this.take(chunk, at, done));
        return;
      }
      const room = this.capacity() - this.fill;
      const n = Math.min(room, chunk.length - at);
      chunk.copy(buffers[this.current] as Buffer, this.fill, at, at + n);
      this.fill += n;
      at += n;
      if (this.fill === this.capacity()) {
        this.enqueue(this.current, this.fill, this.base, true);
        this.base += this.fill;
        this.fill = 0;
        this.current ^= 1;
      }
    }
    done(this.failure);
  }

  /** Before the first aligned offset, a buffer holds only the bytes up to it. */
  private capacity(): number {
    const misaligned = this.base % DIRECT_ALIGN;
    return misaligned === 0 ? BUFFER_BYTES : DIRECT_ALIGN - misaligned;
  }

  /**
   * Queues the write of the first `length` bytes of buffer `index` at `position`. A `handedOff`
   * buffer is done with once written; one flushed in place keeps its bytes, and the next write
   * of it starts again at the same aligned offset.
   */
  private enqueue(index: number, length: number, position: number, handedOff: boolean): void {
    const buf = (this.buffers as Buffer[])[index] as Buffer;
    const op = this.chain.then(async () => {
      if (this.failure !== null) return;
      try {
        await this.writeOut(buf, length, position);
        this.landed = Math.max(this.landed, position + length);
      } catch (e) {
        this.failure ??= e as Error;
      }
    });
    this.chain = op;
    if (handedOff) {
      this.busy[index] = op;
      void op.then(() => {
        if (this.busy[index] === op) this.busy[index] = null;
      });
    }
  }

  /** The whole blocks directly (when `position` is aligned), the rest through the ordinary descriptor. */
  private async writeOut(buf: Buffer, length: number, position: number): Promise<void> {
    const whole = position % DIRECT_ALIGN === 0 ? length - (length % DIRECT_ALIGN) : 0;
    if (this.direct && whole > 0) {
      try {
        await writeAt(this.directFd, buf, whole, position);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
        this.direct = false;
        await writeAt(this.fd, buf, length, position);
        return;
      }
      if (whole < length) await writeAt(this.fd, buf.subarray(whole), length - whole, position + whole);
      return;
    }
    await writeAt(this.fd, buf, length, position);
  }
}
