/**
 * Benchmark: CSS → ESS over HTTP on the real binaries, in both ESS modes (long-poll, the
 * default, and EDGESYNC_REFERENCE_PROTOCOL=true). Per mode a fresh CSS and ESS are started
 * (temp dirs, random ports, LOG_LEVEL warning, default polling and resend intervals), then:
 *
 * - latency: 50 objects of 1 KiB inline data, addressed by type `edge`, published one after
 *   another; each is timed from its PUT's 204 to its status on the ESS being
 *   `completelyReceived` (polled every 2 ms). Prints p50, p95 and max in ms.
 * - throughput: 2000 objects of 1 KiB published by 16 concurrent SDK clients, twice (run 1 on
 *   freshly started nodes, run 2 warm); each timed from the first PUT to all 2000 listed by the
 *   ESS (probed once the last PUT is accepted: the status of the last 16 objects every 5 ms,
 *   then the listing every 20 ms until it has all 2000). Prints objects/s, seconds and each
 *   node's CPU seconds per run.
 *
 * One JSON line per result. EDGESYNC_BENCH_NODE_FLAGS adds node flags to both nodes (profiling).
 *
 *   npx tsc -p tsconfig.build.json && node dist/scripts/bench/sync-http.js [longpoll|reference]
 */
import { randomBytes } from 'node:crypto';
import { adminClients, cleanUpOnSignals, cpuSeconds, nowMs, round, sleep, startCssWithEsses, stopNode, until, type BenchNode } from './bench-nodes.js';

cleanUpOnSignals('sync-http');

type Mode = 'longpoll' | 'reference';

const ORG = 'bench';
const KiB = 1024;
const LATENCY_OBJECTS = 50;
const THROUGHPUT_OBJECTS = 2000;
const PUBLISHERS = 16;
/** Bound of every waiting loop. */
const DEADLINE_MS = 120_000;

function line(mode: Mode, o: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ bench: 'sync-http', mode, ...o })}\n`);
}

function percentile(sorted: number[], p: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] ?? NaN;
}


async function benchMode(mode: Mode): Promise<void> {
  const nodes: BenchNode[] = [];
  const { client, closeAll } = adminClients();
  try {
    const { css, esses } = await startCssWithEsses(nodes, client, { org: ORG, destType: 'edge', ids: ['n1'], essEnv: { EDGESYNC_REFERENCE_PROTOCOL: String(mode === 'reference') } });
    const onCss = client(css, ORG);
    const ess = esses[0]!;
    const onEss = client(ess);

    // 1. latency, one object at a time.
    const latencies: number[] = [];
    const latDeadline = Date.now() + DEADLINE_MS;
    for (let i = 0; i < LATENCY_OBJECTS; i++) {
      const objectID = `lat-${i}`;
      await onCss.updateObject({ objectID, objectType: 'lat', destinationType: 'edge' }, randomBytes(KiB));
      const t0 = nowMs();
      await until(`${objectID} on the ESS`, latDeadline, 2, () => onEss.getObjectStatus('lat', objectID), (s) => s === 'completelyReceived');
      latencies.push(nowMs() - t0);
    }
    const sorted = [...latencies].sort((a, b) => a - b);
    line(mode, { metric: 'latency_p50_ms', value: round(percentile(sorted, 50)) });
    line(mode, { metric: 'latency_p95_ms', value: round(percentile(sorted, 95)) });
    line(mode, { metric: 'latency_max_ms', value: round(sorted[sorted.length - 1] ?? NaN) });

    // 2. throughput, 16 publishers sharing one queue of 2000 objects, twice: the first run
    // finds both nodes just started (their code not yet optimized by the JIT), the second
    // measures them warm, as a service that has been running is. Both are printed.
    const publishers = Array.from({ length: PUBLISHERS }, () => client(css, ORG));
    const payload = randomBytes(KiB);
    for (const run of [1, 2]) {
      const objectType = `thr${run}`;
      let next = 0;
      const thrDeadline = Date.now() + DEADLINE_MS;
      const cpu0 = { css: await cpuSeconds(css.pid), ess: await cpuSeconds(ess.pid), clients: await cpuSeconds(process.pid) };
      const t0 = nowMs();
      await Promise.all(
        publishers.map(async (c) => {
          while (next < THROUGHPUT_OBJECTS && Date.now() < thrDeadline) {
            const objectID = `thr-${next++}`;
            await c.updateObject({ objectID, objectType, destinationType: 'edge' }, payload);
          }
        }),
      );
      const publishedAt = nowMs();
      // The probe must not slow down what it measures: listing 2000 objects costs the ESS (and
      // this process) real CPU. Nothing can be complete before the last PUT is accepted, so the
      // probe starts then, with the status of the last objects put (cheap, every 5 ms); the
      // listing that decides is taken once those are there, every 20 ms until all 2000 are.
      const last = Array.from({ length: PUBLISHERS }, (_, i) => `thr-${THROUGHPUT_OBJECTS - 1 - i}`);
      await until('the last objects on the ESS', thrDeadline, 5, () => Promise.all(last.map((id) => onEss.getObjectStatus(objectType, id))), (all) => all.every((st) => st === 'completelyReceived'));
      for (let seen = (await onEss.listObjects(objectType)).length; seen < THROUGHPUT_OBJECTS; seen = (await onEss.listObjects(objectType)).length) {
        if (Date.now() > thrDeadline) throw new Error(`all objects on the ESS: ${seen} before the deadline`);
        await sleep(20);
      }
      const seconds = (nowMs() - t0) / 1000;
      const cpu = {
        css: round((await cpuSeconds(css.pid)) - cpu0.css, 2),
        ess: round((await cpuSeconds(ess.pid)) - cpu0.ess, 2),
        clients: round((await cpuSeconds(process.pid)) - cpu0.clients, 2),
      };
      const about = { run, objects: THROUGHPUT_OBJECTS, publishers: PUBLISHERS };
      line(mode, { metric: 'throughput_objects_per_s', value: round(THROUGHPUT_OBJECTS / seconds), ...about });
      // How long the CSS took to accept the 2000 PUTs, for reading the figure.
      line(mode, { metric: 'throughput_seconds', value: round(seconds, 2), publishSeconds: round((publishedAt - t0) / 1000, 2), ...about });
      // CPU seconds (user + system, all threads) of each node, and of this process (the 16 SDK
      // clients and the probe), over the run: all share the machine's cores.
      line(mode, { metric: 'throughput_cpu_seconds', value: cpu, ...about });
    }
  } finally {
    closeAll();
    // ESS first, then CSS.
    for (const node of [...nodes].reverse()) await stopNode(node);
  }
}

const MODES = ['longpoll', 'reference'] as const;
// `node sync-http.js longpoll` runs one mode; no argument runs both.
const only = process.argv[2];
for (const mode of MODES) if (only === undefined || only === mode) await benchMode(mode);
