/**
 * Benchmark: memory and listing time as objects pile up. A CSS and one ESS (the real bin,
 * default long-poll mode) take four batches of 10 000 small objects (256 bytes each, 16
 * concurrent SDK publishers, one object type per batch). After each batch has reached the ESS
 * and the nodes had 3 s to settle, it prints the batch's objects/s and each node's RSS now
 * (VmRSS) and peak so far (VmHWM). Then it times the ESS's listing of one batch's 10 000
 * objects (O4, three times) and prints the ESS's peak RSS after it.
 *
 * It answers: does memory grow with the number of objects held, or level off; and what does
 * a large listing cost. One JSON line per result.
 *
 *   npx tsc -p tsconfig.build.json && node dist/scripts/bench/many-objects.js [batches]
 */
import { randomBytes } from 'node:crypto';
import { adminClients, cleanUpOnSignals, nowMs, round, rssMB, sleep, startCssWithEsses, stopNode, until, type BenchNode } from './bench-nodes.js';

cleanUpOnSignals('many-objects');

const ORG = 'bench';
const BATCH = 10_000;
const PUBLISHERS = 16;
const DEADLINE_MS = 300_000;
const batches = Number(process.argv[2] ?? 4);

function line(o: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ bench: 'many-objects', ...o })}\n`);
}

async function memory(css: BenchNode, ess: BenchNode): Promise<Record<string, number>> {
  return {
    cssRssMB: await rssMB(css.pid, 'VmRSS'),
    cssPeakMB: await rssMB(css.pid),
    essRssMB: await rssMB(ess.pid, 'VmRSS'),
    essPeakMB: await rssMB(ess.pid),
  };
}

async function main(): Promise<void> {
  const nodes: BenchNode[] = [];
  const { client, closeAll } = adminClients();
  try {
    const { css, esses } = await startCssWithEsses(nodes, client, { org: ORG, destType: 'edge', ids: ['n1'] });
    const ess = esses[0]!;
    const onEss = client(ess);
    const publishers = Array.from({ length: PUBLISHERS }, () => client(css, ORG));
    line({ metric: 'memory', held: 0, ...(await memory(css, ess)) });
    for (let b = 0; b < batches; b++) {
      const objectType = `many${b}`;
      let next = 0;
      const t0 = nowMs();
      await Promise.all(
        publishers.map(async (c) => {
          while (next < BATCH) await c.updateObject({ objectID: `o-${next++}`, objectType, destinationType: 'edge' }, randomBytes(256));
        }),
      );
      const last = Array.from({ length: PUBLISHERS }, (_, i) => `o-${BATCH - 1 - i}`);
      await until(`batch ${b} on the ESS`, Date.now() + DEADLINE_MS, 50, () => Promise.all(last.map((id) => onEss.getObjectStatus(objectType, id))), (all) => all.every((s) => s === 'completelyReceived'));
      const seconds = (nowMs() - t0) / 1000;
      await sleep(3000);
      line({ metric: 'batch', held: (b + 1) * BATCH, objectsPerS: round(BATCH / seconds), seconds: round(seconds, 2), ...(await memory(css, ess)) });
    }
    for (let i = 0; i < 3; i++) {
      const t0 = nowMs();
      const listed = await onEss.listObjects('many0');
      line({ metric: 'ess_listing_ms', value: round(nowMs() - t0), objects: listed.length, essPeakMB: await rssMB(ess.pid) });
    }
  } finally {
    closeAll();
    for (const node of [...nodes].reverse()) await stopNode(node);
  }
}

await main();
