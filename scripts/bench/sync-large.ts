/**
 * Benchmark: large objects CSS → ESS over HTTP on the real binaries (SQLite, files under temp
 * dirs, random loopback ports, LOG_LEVEL warning, ESS in its default long-poll mode). Each
 * scenario starts fresh nodes; every ESS logs in as its own `edgenode` user made with
 * `users add`. The payload is random bytes written once to a temp file (its SHA-256 computed
 * while writing) and uploaded from that file with the SDK's streamed `updateObjectData` (one
 * PUT with Content-Length), after a metadata-only PUT addressed by type `edge`.
 *
 * - large: one CSS + one ESS, one object of 1 GiB. Times from the data PUT's start and from
 *   its end (its 204) to the object's status on the ESS being `completelyReceived` (polled
 *   every 10 ms). Prints published-to-visible MiB/s (size / (upload start → visible)),
 *   upload-only and transfer-only (upload end → visible) MiB/s, whether the ESS's copy is
 *   intact (read back through the SDK after the timing and SHA-256'd), and each process's peak
 *   RSS (VmHWM from /proc/<pid>/status, read when the object became visible and again just
 *   before stopping, i.e. after the read-back). Targets: ≥ 300 MiB/s, each peak ≤ 150 MB.
 * - fanout: one CSS + 10 ESS (DESTINATION_ID n1..n10, DESTINATION_TYPE edge, all registered
 *   before the upload), one object of 100 MiB, then another: run 1 is each ESS's first
 *   download since it started, run 2 one of warm nodes. Each run is timed from the data PUT's
 *   end until the CSS shows all 10 destinations `delivered` (asked every 20 ms: each ESS said
 *   `received` once it stored and checked the data); then the bench asks each ESS that it is
 *   `completelyReceived`, reads every copy back and SHA-256s it. Prints seconds and aggregate
 *   MiB/s (10 × 100 MiB / seconds) and per-ESS times per run, and the peak RSS of the CSS and
 *   of the largest ESS over both. Targets: ≤ 4 s, ≥ 250 MiB/s.
 *
 * One JSON line per result ({"bench":"sync-large","metric":...,"value":...}); each scenario
 * also prints the 1/5/15 min load average at its start and end (others may share the cores).
 * Every wait is bounded; processes and temp dirs are removed on success, error, SIGINT and
 * SIGTERM. Needs about 3 × the large size of free space under the temp dir (file, CSS, ESS).
 * EDGESYNC_BENCH_NODE_FLAGS runs every node as `node <flags> bin` with the shebang's
 * environment, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` for profiling, or
 * `--max-semi-space-size=1` to try another young generation. The exit code
 * is 1 when a copy is not intact.
 *
 *   npx tsc -p tsconfig.build.json && node dist/scripts/bench/sync-large.js [all|large|fanout] [largeMiB=1024] [fanoutMiB=100] [fanoutNodes=10]
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { SyncServiceClient } from '../../sdk/index.js';
import { adminClients, cleanUpOnSignals, writeRandomFile, cpuSeconds, nowMs, removeDir, round, rssMB, startCssWithEsses, stopNode, tempDir, until, type BenchNode } from './bench-nodes.js';

cleanUpOnSignals('sync-large');

type Scenario = 'large' | 'fanout';

const ORG = 'bench';
const DEST_TYPE = 'edge';
const MiB = 1024 * 1024;
/** Bound of every wait (start-up, registration, upload, delivery, read-back). */
const DEADLINE_MS = 300_000;

function line(scenario: Scenario, o: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ bench: 'sync-large', scenario, ...o })}\n`);
}

function loadLine(scenario: Scenario, when: 'start' | 'end'): void {
  line(scenario, { metric: `loadavg_${when}`, value: loadavg().map((x) => round(x, 2)) });
}

/** Streams an object's data back from a node and returns its SHA-256 and length. */
async function readBack(c: SyncServiceClient, objectType: string, objectID: string): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  const body = await c.fetchObjectData(objectType, objectID, { signal: AbortSignal.timeout(DEADLINE_MS) });
  for await (const chunk of body as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { sha256: hash.digest('hex'), size };
}

/** Runs one scenario: a CSS and `essCount` ESS, all stopped and removed at the end. */
async function withNodes(essCount: number, body: (css: BenchNode, esses: BenchNode[], client: (n: BenchNode, org?: string) => SyncServiceClient) => Promise<void>): Promise<void> {
  const nodes: BenchNode[] = [];
  const { client, closeAll } = adminClients();
  try {
    const ids = Array.from({ length: essCount }, (_, i) => `n${i + 1}`);
    const { css, esses } = await startCssWithEsses(nodes, client, { org: ORG, destType: DEST_TYPE, ids });
    await body(css, esses, client);
  } finally {
    closeAll();
    // ESS first, then CSS.
    for (const node of [...nodes].reverse()) await stopNode(node);
  }
}

/** Metadata-only PUT addressed by type, then the data from `file` in one streamed PUT. */
async function publish(onCss: SyncServiceClient, objectType: string, objectID: string, file: string, size: number): Promise<{ startMs: number; endMs: number }> {
  await onCss.updateObject({ objectID, objectType, destinationType: DEST_TYPE });
  const startMs = nowMs();
  await onCss.updateObjectData(objectType, objectID, createReadStream(file, { highWaterMark: MiB }), { size, signal: AbortSignal.timeout(DEADLINE_MS) });
  return { startMs, endMs: nowMs() };
}

/**
 * Runs one scenario on a payload of `size` random bytes in a temp file (`expected` is its
 * SHA-256), between its start and end load-average lines; the file is removed at the end.
 * @returns what `body` returns: whether every copy was intact
 */
async function withPayload(scenario: Scenario, size: number, body: (file: string, expected: string) => Promise<boolean>): Promise<boolean> {
  loadLine(scenario, 'start');
  const work = await tempDir('edgesync-bench-large-data-');
  try {
    const file = join(work, 'payload');
    return await body(file, await writeRandomFile(file, size));
  } finally {
    await removeDir(work);
    loadLine(scenario, 'end');
  }
}

async function benchLarge(sizeMiB: number): Promise<boolean> {
  const scenario = 'large';
  const size = sizeMiB * MiB;
  return withPayload(scenario, size, async (file, expected) => {
    let intact = false;
    await withNodes(1, async (css, [ess], client) => {
      if (ess === undefined) throw new Error('no ESS');
      const onCss = client(css, ORG);
      const onEss = client(ess);
      // As in fan-out: the bench's first login to the ESS (a scrypt) happens before the clock.
      await onEss.getObjectStatus('large', 'big');
      const beforeUpload = { css: await rssMB(css.pid), ess: await rssMB(ess.pid) };
      const cpu0 = { css: await cpuSeconds(css.pid), ess: await cpuSeconds(ess.pid) };
      const benchCpu0 = process.cpuUsage();
      const { startMs, endMs } = await publish(onCss, 'large', 'big', file, size);
      const benchCpu = process.cpuUsage(benchCpu0);
      const cssAfterUpload = await rssMB(css.pid);
      const cpu1 = { css: await cpuSeconds(css.pid), ess: await cpuSeconds(ess.pid) };
      // The object cannot be complete on the ESS before the CSS committed it (the ESS may hold
      // its data already, with early data), so polling starts here.
      let seenMs = NaN;
      await until(
        'the object completelyReceived on the ESS',
        Date.now() + DEADLINE_MS,
        10,
        async () => {
          const s = await onEss.getObjectStatus('large', 'big');
          if (s !== null && Number.isNaN(seenMs)) seenMs = nowMs();
          return s;
        },
        (s) => s === 'completelyReceived',
      );
      const visibleMs = nowMs();
      const cpu2 = { css: await cpuSeconds(css.pid), ess: await cpuSeconds(ess.pid) };
      const atVisible = { css: await rssMB(css.pid), ess: await rssMB(ess.pid) };
      const total = (visibleMs - startMs) / 1000;
      const up = (endMs - startMs) / 1000;
      const transfer = (visibleMs - endMs) / 1000;
      line(scenario, { metric: 'published_to_visible_MiBps', value: round(sizeMiB / total), seconds: round(total, 2), sizeMiB, target: '>=300' });
      line(scenario, { metric: 'upload_MiBps', value: round(sizeMiB / up), seconds: round(up, 2) });
      line(scenario, { metric: 'transfer_MiBps', value: round(sizeMiB / transfer), seconds: round(transfer, 2), firstSeenOnEssAfterUploadS: round((seenMs - endMs) / 1000, 3) });
      // CPU seconds each process used, for reading the figures (2 cores are shared with the bench).
      line(scenario, {
        metric: 'cpu_seconds',
        value: {
          upload: { css: round(cpu1.css - cpu0.css, 2), ess: round(cpu1.ess - cpu0.ess, 2), bench: round((benchCpu.user + benchCpu.system) / 1e6, 2) },
          transfer: { css: round(cpu2.css - cpu1.css, 2), ess: round(cpu2.ess - cpu1.ess, 2) },
        },
      });

      const got = await readBack(onEss, 'large', 'big');
      intact = got.size === size && got.sha256 === expected;
      line(scenario, { metric: 'intact', value: intact, size: got.size, sha256: got.sha256, expected });
      // Just before stopping (after the read-back, which also goes through the ESS).
      // VmHWM is a high-water mark: beforeUpload is start-up and registration, afterUpload the upload too.
      line(scenario, { metric: 'css_peak_rss_MB', value: await rssMB(css.pid), beforeUpload: beforeUpload.css, afterUpload: cssAfterUpload, atVisible: atVisible.css, target: '<=150' });
      line(scenario, { metric: 'ess_peak_rss_MB', value: await rssMB(ess.pid), beforeUpload: beforeUpload.ess, atVisible: atVisible.ess, target: '<=150' });
    });
    return intact;
  });
}

async function benchFanout(sizeMiB: number, essCount: number): Promise<boolean> {
  const scenario = 'fanout';
  const size = sizeMiB * MiB;
  return withPayload(scenario, size, async (file, expected) => {
    let allIntact = false;
    await withNodes(essCount, async (css, esses, client) => {
      const onCss = client(css, ORG);
      const onEss = esses.map((e) => client(e));
      // The admin's first request to each ESS costs a scrypt verification: done before the
      // clock starts, so that what is measured is the transfer, not the bench's logins.
      await Promise.all(onEss.map((c) => c.getObjectStatus('fan', 'obj')));
      const beforeUpload = await Promise.all([css, ...esses].map((n) => rssMB(n.pid)));
      let cssAfterUpload = 0;
      let atVisible: number[] = [];
      const bad: string[] = [];
      // Twice, as another object: run 1 is every ESS's first download since it started (its
      // code not yet optimized by the JIT), run 2 one of a node that has been running.
      for (const run of [1, 2]) {
        const objectID = `obj${run}`;
        const { startMs, endMs } = await publish(onCss, 'fan', objectID, file, size);
        cssAfterUpload = Math.max(cssAfterUpload, await rssMB(css.pid));
        const cpu1 = await Promise.all([css, ...esses].map((n) => cpuSeconds(n.pid)));
        const deadline = Date.now() + DEADLINE_MS;
        // One request to the CSS tells of all ten: a destination is `delivered` once its ESS
        // stored and checked the data and said so (`received`), a little after it became
        // visible there. Asking each ESS instead cost ten HTTPS requests per round on the cores
        // the transfer runs on.
        const deliveredMs = new Map<string, number>();
        await until('the object delivered to every ESS', deadline, 20, async () => {
          for (const d of await onCss.getObjectDestinations('fan', objectID)) if (d.status === 'delivered' && !deliveredMs.has(d.destinationID)) deliveredMs.set(d.destinationID, nowMs());
          return deliveredMs.size;
        }, (n) => n === essCount);
        const doneMs = esses.map((_, i) => deliveredMs.get(`n${i + 1}`) ?? NaN);
        const allMs = Math.max(...doneMs);
        // What the CSS says, each ESS confirms.
        for (const [i, c] of onEss.entries()) {
          const status = await c.getObjectStatus('fan', objectID);
          if (status !== 'completelyReceived') throw new Error(`ESS n${i + 1} says ${String(status)} of an object the CSS has as delivered`);
        }
        const cpu2 = await Promise.all([css, ...esses].map((n) => cpuSeconds(n.pid)));
        const cpu = cpu2.map((c, i) => c - (cpu1[i] ?? 0));
        const seconds = (allMs - endMs) / 1000;
        const perEss = doneMs.map((t) => round((t - endMs) / 1000, 2));
        line(scenario, { metric: 'all_visible_after_upload_s', value: round(seconds, 2), run, nodes: essCount, sizeMiB, perEss, target: '<=4' });
        line(scenario, { metric: 'aggregate_MiBps', value: round((essCount * sizeMiB) / seconds), run, target: '>=250' });
        line(scenario, { metric: 'upload_MiBps', value: round(sizeMiB / ((endMs - startMs) / 1000)), run, seconds: round((endMs - startMs) / 1000, 2) });
        line(scenario, { metric: 'cpu_seconds', value: { css: round(cpu[0] ?? NaN, 2), essTotal: round(cpu.slice(1).reduce((a, b) => a + b, 0), 2) }, run });
        atVisible = await Promise.all([css, ...esses].map((n) => rssMB(n.pid)));

        // Read back one copy at a time, after the timing.
        for (const [i, c] of onEss.entries()) {
          const got = await readBack(c, 'fan', objectID);
          if (got.size !== size || got.sha256 !== expected) bad.push(`n${i + 1}/${objectID}`);
        }
      }
      allIntact = bad.length === 0;
      line(scenario, { metric: 'intact', value: allIntact, copies: 2 * essCount, bad, expected });
      const final = await Promise.all([css, ...esses].map((n) => rssMB(n.pid)));
      const essFinal = final.slice(1);
      line(scenario, { metric: 'css_peak_rss_MB', value: final[0], beforeUpload: beforeUpload[0], afterUpload: cssAfterUpload, atVisible: atVisible[0], target: '<=150' });
      line(scenario, {
        metric: 'ess_max_peak_rss_MB',
        value: Math.max(...essFinal),
        beforeUploadMax: Math.max(...beforeUpload.slice(1)),
        atVisibleMax: Math.max(...atVisible.slice(1)),
        perEss: essFinal,
        target: '<=150',
      });
    });
    return allIntact;
  });
}

const [which = 'all', largeArg = '1024', fanArg = '100', nodesArg = '10'] = process.argv.slice(2);
if (!['all', 'large', 'fanout'].includes(which)) throw new Error(`unknown scenario ${which}; use all, large or fanout`);
let ok = true;
if (which === 'all' || which === 'large') ok = (await benchLarge(Number(largeArg))) && ok;
if (which === 'all' || which === 'fanout') ok = (await benchFanout(Number(fanArg), Number(nodesArg))) && ok;
if (!ok) process.exitCode = 1;
