/**
 * Benchmark: MongoBlobStore on the server EDGESYNC_BENCH_MONGO_URL names (a FerretDB or a
 * MongoDB). Writes one blob of `sizeMiB`, reads it whole, reads 1 MiB from its middle, and
 * uploads it again in 1 MiB chunks through a staging area, two clients taking turns (as two CSS
 * processes behind a load balancer would). One JSON line per result; the database is dropped.
 *
 *   npm run build && EDGESYNC_BENCH_MONGO_URL=mongodb://127.0.0.1:27017/ node dist/scripts/bench/mongo-blobs.js [sizeMiB=256]
 */
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { MongoClient } from 'mongodb';
import { MongoBlobStore } from '../../lib/store/mongo/mongo-blob-store.js';

const MiB = 1024 * 1024;

/** `size` bytes of a cheap pattern, produced as they are read (never held whole). */
function generated(size: number): Readable {
  let sent = 0;
  const block = Buffer.alloc(MiB);
  for (let i = 0; i < block.length; i++) block[i] = (i * 31) % 251;
  return new Readable({
    read() {
      const n = Math.min(block.length, size - sent);
      sent += n;
      this.push(n > 0 ? block.subarray(0, n) : null);
    },
  });
}

async function drain(source: Readable): Promise<number> {
  let bytes = 0;
  await pipeline(
    source,
    new Writable({
      write: (chunk: Buffer, _encoding, done) => {
        bytes += chunk.length;
        done();
      },
    }),
  );
  return bytes;
}

function report(what: string, bytes: number, startedAt: number): void {
  const seconds = (performance.now() - startedAt) / 1000;
  console.log(JSON.stringify({ bench: 'mongo-blobs', what, bytes, seconds: Number(seconds.toFixed(3)), mibPerSecond: Number((bytes / MiB / seconds).toFixed(1)) }));
}

async function main(): Promise<void> {
  const url = process.env.EDGESYNC_BENCH_MONGO_URL;
  if (url === undefined || url === '') throw new Error('Set EDGESYNC_BENCH_MONGO_URL to a mongodb:// URL');
  const size = Number(process.argv[2] ?? 256) * MiB;
  const a = new MongoClient(url);
  const b = new MongoClient(url);
  const name = `edgesync_bench_blobs_${process.pid}`;
  try {
    const blobsA = new MongoBlobStore({ db: a.db(name) });
    const blobsB = new MongoBlobStore({ db: b.db(name) });
    await blobsA.init();

    let t = performance.now();
    const written = await blobsA.write(generated(size));
    report('write', written.size, t);

    t = performance.now();
    report('read', await drain(blobsB.read(written.blobId)), t);

    t = performance.now();
    const middle = Math.floor(size / 2);
    report('read 1 MiB range', await drain(blobsB.read(written.blobId, { start: middle, end: middle + MiB - 1 })), t);

    t = performance.now();
    const staging = await blobsA.createStaging();
    for (let offset = 0, turn = 0; offset < size; offset += MiB, turn++) {
      const length = Math.min(MiB, size - offset);
      await (turn % 2 === 0 ? blobsA : blobsB).writeStaging(staging, offset, length, generated(length));
    }
    const committed = await blobsB.commitStaging(staging);
    report('chunked upload, 1 MiB chunks alternating between two clients, hashed at commit', committed.size, t);
  } finally {
    await a.db(name).dropDatabase().catch(() => undefined);
    await a.close();
    await b.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
