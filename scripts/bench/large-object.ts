/**
 * Benchmark: one large object uploaded and downloaded through the SDK against a real CSS.
 * Prints one JSON line per result: throughput each way and the CSS process's peak RSS
 * (VmHWM from /proc), which must stay under 150 MB for a 1 GiB object. The CSS is started as
 * `node dist/cmd/edgesync.js css` (EDGESYNC_BENCH_START=exec: the bin file itself).
 *
 *   npm run build && node dist/scripts/bench/large-object.js [sizeMiB=1024]
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { SyncServiceClient } from '../../sdk/index.js';
import { servingPid } from './bench-nodes.js';

const MiB = 1024 * 1024;

/** Deterministic pseudo-random bytes, produced as they are read (never held whole). */
function generated(size: number, seed: number): Readable {
  let sent = 0;
  let x = seed >>> 0 || 1;
  const block = Buffer.alloc(MiB);
  return new Readable({
    read() {
      if (sent >= size) {
        this.push(null);
        return;
      }
      const n = Math.min(block.length, size - sent);
      for (let i = 0; i < n; i += 4) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        block.writeUInt32LE(x >>> 0, i);
      }
      sent += n;
      this.push(Buffer.from(block.subarray(0, n)));
    },
  });
}

async function peakRssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = /VmHWM:\s+(\d+) kB/.exec(status);
  return m?.[1] !== undefined ? Number(m[1]) * 1024 : NaN;
}

async function main(): Promise<void> {
  const sizeMiB = Number(process.argv[2] ?? 1024);
  const size = sizeMiB * MiB;
  const root = await mkdtemp(join(tmpdir(), 'edgesync-bench-'));
  const bin = join(process.cwd(), 'dist', 'cmd', 'edgesync.js');
  // `node <bin>` as a container's CMD does (the bin's launcher adds its runtime settings), or
  // with EDGESYNC_BENCH_START=exec the bin file itself, as `npx edgesync` does (its shebang does).
  const exec = process.env.EDGESYNC_BENCH_START === 'exec';
  const child = spawn(exec ? bin : process.execPath, exec ? ['css'] : [bin, 'css'], {
    env: { PATH: process.env.PATH ?? '', NODE_OPTIONS: process.env.BENCH_CSS_NODE_OPTIONS ?? '', PERSISTENCE_ROOT_PATH: root, UNSECURE_LISTENING_PORT: '0', LOG_LEVEL: 'warning' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  try {
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`CSS did not start:\n${out}`)), 20_000);
      child.stdout.on('data', () => {
        if (/password:\s+\S+/.test(out)) {
          clearTimeout(t);
          resolve();
        }
      });
      child.once('exit', (c) => reject(new Error(`CSS exited with ${c}`)));
    });
    // The process that serves: the launcher's child, or the bin itself.
    const pid = servingPid(child.pid ?? 0);
    const serverPeakAtStart = await peakRssBytes(pid);
    const url = /API:\s+(\S+)\/api\/v1/.exec(out)?.[1] ?? '';
    const secret = /password:\s+(\S+)/.exec(out)?.[1] ?? '';
    const admin = new SyncServiceClient({ url, appKey: 'admin', appSecret: secret });
    await admin.putOrganization({ orgID: 'bench', user: '', password: '', address: '' });
    const client = new SyncServiceClient({ url, appKey: 'admin', appSecret: secret, orgID: 'bench' });
    await client.updateObject({ objectID: 'big', objectType: 'model' });

    const upHash = createHash('sha256');
    const source = generated(size, 42);
    source.on('data', (c: Buffer) => upHash.update(c));
    let t0 = process.hrtime.bigint();
    await client.updateObjectData('model', 'big', source, { size });
    const upSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const serverPeakAfterUpload = await peakRssBytes(pid);
    const expected = upHash.digest('hex');

    t0 = process.hrtime.bigint();
    const down = await client.fetchObjectData('model', 'big');
    const downHash = createHash('sha256');
    let received = 0;
    for await (const chunk of down as AsyncIterable<Buffer>) {
      downHash.update(chunk);
      received += chunk.length;
    }
    const downSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const intact = received === size && downHash.digest('hex') === expected;
    const serverPeak = await peakRssBytes(pid);
    const clientPeak = await peakRssBytes(process.pid);
    const line = (o: Record<string, unknown>): void => void process.stdout.write(`${JSON.stringify({ bench: 'large-object', sizeMiB, ...o })}\n`);
    line({ metric: 'upload_MiBps', value: +(sizeMiB / upSeconds).toFixed(1), seconds: +upSeconds.toFixed(2) });
    line({ metric: 'download_MiBps', value: +(sizeMiB / downSeconds).toFixed(1), seconds: +downSeconds.toFixed(2), intact });
    line({
      metric: 'css_peak_rss_MB',
      value: +(serverPeak / 1e6).toFixed(1),
      limit: 150,
      atStart: +(serverPeakAtStart / 1e6).toFixed(1),
      afterUpload: +(serverPeakAfterUpload / 1e6).toFixed(1),
    });
    line({ metric: 'client_peak_rss_MB', value: +(clientPeak / 1e6).toFixed(1) });
    client.close();
    admin.close();
    if (!intact) process.exitCode = 1;
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await rm(root, { recursive: true, force: true });
  }
}

await main();
