/**
 * The API fuzzed against its own OpenAPI document (issue #12): schemathesis reads the document
 * each node serves at /swagger.json (swagger/openapi.yaml in the CSS form, or the ESS form derived
 * from it, see lib/api/openapi.ts) and sends what it generates from it, valid and invalid, to a
 * real CSS and a real ESS syncing with it: as the sync admin and as an org admin on the CSS, as
 * the ESS's own admin on the ESS. Every answer must be a documented 2xx-4xx (never a 5xx, never a
 * dropped connection), both processes must still be up and healthy afterwards, and after a clean
 * stop each store must be intact: a sound SQLite file, every object's data present and matching
 * its hash, nothing partial, no stray blob; the objects of an org the fuzzer never names are
 * unchanged; the CSS, started again, serves every object's data.
 *
 * Seeded (fixed seed, bounded examples per operation) so that a run is reproducible and fits the
 * CI budget. `POST /api/v1/shutdown` is left out: it would end the run. Needs schemathesis
 * (`.ci/run` installs it); skipped, saying so, without it.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { parse as parseYaml } from 'yaml';
import { documentedRoutes, openApiFor, type OpenApiDoc } from '../../lib/api/openapi.js';
import { BIN, raw, startNode, Teardown, type RunningProcess } from '../helpers/node-process.js';
import { startPair, type Pair } from '../helpers/sync-pair.js';
import { checkStore } from '../helpers/fuzz-store.js';
import { runSchemathesis, schemathesisBin, schemathesisVersion, SCHEMATHESIS_MISSING, SCHEMATHESIS_VERSION, summary, type FuzzResult } from '../helpers/fuzz.js';

const run = promisify(execFile);

/** The org and object the document's examples name, so that example requests find something. */
const EXAMPLE_ORG = 'myorg';
/** An org the fuzzer never names: what it holds must come through the run unchanged. */
const UNTOUCHED_ORG = 'fuzz-untouched';
const UNTOUCHED: { objectID: string; data: Buffer }[] = [
  { objectID: 'small', data: Buffer.from('kept in the database\n') },
  // Over the 64 KiB inline limit: kept as a file.
  { objectID: 'large', data: Buffer.alloc(200 * 1024, 42) },
];
const ORG_ADMIN = { user: 'fuzz-org-admin', pass: 'fuzz-org-admin-secret' };
/**
 * Fixed, so that CI sends the same requests every time. EDGESYNC_FUZZ_SEED and
 * EDGESYNC_FUZZ_EXAMPLES explore further by hand (e.g. 1000 examples: a few minutes per run).
 */
const SEED = Number(process.env.EDGESYNC_FUZZ_SEED ?? 20261205);
/** Per operation and phase; about 2,000 requests per CSS run, well under a minute each. */
const MAX_EXAMPLES = Number(process.env.EDGESYNC_FUZZ_EXAMPLES ?? 25);
const RUN_TIMEOUT_MS = MAX_EXAMPLES <= 25 ? 150_000 : 1_800_000;

/**
 * schemathesis's `ignored_auth` check sends wrong credentials on purpose, from 127.0.0.1 like
 * everything else; the failed-login throttle would then answer 429 to every request of the run.
 * The throttle has tests of its own.
 */
const NO_THROTTLE = { LOGIN_FAILURE_LIMIT: '0' };

const bin = schemathesisBin();
/** What the nodes serve at /swagger.json, each in its form. */
const DOCUMENT = parseYaml(readFileSync(join(process.cwd(), 'swagger', 'openapi.yaml'), 'utf8')) as OpenApiDoc;

function alive(node: RunningProcess): boolean {
  return node.child.exitCode === null && node.child.signalCode === null;
}

/** What must hold of every run: a clean exit, no failed check, no 5xx and no dropped connection. */
function expectClean(r: FuzzResult): void {
  const serverErrors = Object.entries(r.statuses).filter(([s]) => s === 'none' || s.startsWith('5'));
  expect({ exitCode: r.exitCode, failures: r.failures, serverErrors }).toEqual({ exitCode: 0, failures: [], serverErrors: [] });
  // A run that sent next to nothing proves nothing (a document that failed to load, say).
  expect(r.requests).toBeGreaterThan(100);
}

if (bin === null) {
  console.warn(`Skipped: API fuzz run (${SCHEMATHESIS_MISSING})`);
  describe('the API under schemathesis', () => {
    test.skip(`skipped: ${SCHEMATHESIS_MISSING}`, () => undefined);
  });
} else {
  describe('the API under schemathesis, against swagger/openapi.yaml', () => {
    const t = new Teardown();
    let pair: Pair;
    let reports: string;
    const totals = { requests: 0, seconds: 0, operations: new Set<string>() };

    async function fuzz(what: string, node: RunningProcess, auth: { user: string; pass: string }): Promise<FuzzResult> {
      const ca = node.url.startsWith('https:') ? join(node.root, 'sync', 'certs', 'cert.pem') : undefined;
      const r = await runSchemathesis(bin!, {
        url: node.url,
        auth,
        ...(ca !== undefined ? { ca } : {}),
        documented: new Set(documentedRoutes(openApiFor(what.startsWith('ESS') ? 'ESS' : 'CSS', DOCUMENT)).map((x) => `${x.method} ${x.path}`)),
        reportDir: join(reports, what.replace(/\W+/g, '-')),
        seed: SEED,
        maxExamples: MAX_EXAMPLES,
        // The fleet's event stream answers 200 and never ends: each call would hold the run for
        // the request timeout. Its refusals (400, 403) are tested in fleet-api.test.ts.
        excludeOperationIds: ['shutdown', 'getFleetEvents'],
        timeoutMs: RUN_TIMEOUT_MS,
      });
      process.stdout.write(`${summary(what, r)}\n`);
      totals.requests += r.requests;
      totals.seconds += r.seconds;
      for (const op of r.operations) totals.operations.add(`${what.split(' ')[0]} ${op}`);
      if (r.exitCode !== 0) process.stdout.write(r.output.slice(-20_000));
      return r;
    }

    beforeAll(async () => {
      // The hooks use schemathesis 4's API; another 4.x may generate other requests from the seed.
      const version = await schemathesisVersion(bin);
      if (!version.startsWith('4.')) throw new Error(`${bin} is schemathesis ${version}; the fuzz run needs 4.x (.ci/run installs ${SCHEMATHESIS_VERSION})`);
      if (version !== SCHEMATHESIS_VERSION) process.stdout.write(`[edgesync] fuzz: schemathesis ${version}, not ${SCHEMATHESIS_VERSION} as in CI: the requests differ from CI's\n`);
      reports = await mkdtemp(join(tmpdir(), 'edgesync-fuzz-'));
      t.add(() => rm(reports, { recursive: true, force: true }));
      pair = await startPair(t, { deadlineMs: 30_000, cssEnv: NO_THROTTLE, env: NO_THROTTLE });
      const { css } = pair;
      // The document's examples name myorg/model/config-1: give them something to find, with
      // data small enough for the database and large enough for a file.
      expect((await raw(css, 'PUT', `/api/v1/organizations/${EXAMPLE_ORG}`, { body: JSON.stringify({ orgID: EXAMPLE_ORG }) })).status).toBe(204);
      const onExample = await css.client({ orgID: EXAMPLE_ORG });
      t.add(() => Promise.resolve(onExample.close()));
      await onExample.updateObject({ objectType: 'model', objectID: 'config-1', destinationType: 'edge-gateway', destinationID: 'node1' }, 'hello world\n');
      await onExample.updateObject({ objectType: 'model', objectID: 'big', destinationType: 'edge-gateway' }, Buffer.alloc(200 * 1024, 7));
      const onUntouched = await css.client({ orgID: UNTOUCHED_ORG });
      t.add(() => Promise.resolve(onUntouched.close()));
      for (const o of UNTOUCHED) await onUntouched.updateObject({ objectType: 'kept', objectID: o.objectID, destinationType: 'edge-gateway' }, o.data);
      await pair.onEss.updateObject({ objectType: 'model', objectID: 'config-1' }, 'from the edge\n');
      await run(process.execPath, [BIN, 'users', 'add', ORG_ADMIN.user, '--type', 'admin', '--org', EXAMPLE_ORG, '--secret', ORG_ADMIN.pass, '--persistence-root-path', css.root]);
      // The CSS reads its users file again when it changes.
      const deadline = Date.now() + 15_000;
      while ((await raw(css, 'GET', '/api/v1/health', { auth: ORG_ADMIN })).status !== 200) {
        if (Date.now() > deadline) throw new Error('the CSS did not take the org admin in 15 s');
        await new Promise((r) => setTimeout(r, 200));
      }
    }, 90_000);

    afterAll(async () => {
      process.stdout.write(`[edgesync] fuzz: ${totals.requests} requests, ${totals.operations.size} operations (CSS and ESS), ${totals.seconds.toFixed(1)} s\n`);
      await t.run();
    });

    test('the CSS, as the sync admin: every answer documented, no 5xx', async () => {
      expectClean(await fuzz('CSS (sync admin)', pair.css, { user: pair.css.admin!.appKey, pass: pair.css.admin!.secret }));
    }, RUN_TIMEOUT_MS + 10_000);

    test('the CSS, as an org admin: every answer documented, no 5xx', async () => {
      expectClean(await fuzz('CSS (org admin)', pair.css, ORG_ADMIN));
    }, RUN_TIMEOUT_MS + 10_000);

    test('the ESS, as its admin: every answer documented, no 5xx', async () => {
      expectClean(await fuzz('ESS (admin)', pair.ess, { user: pair.ess.admin!.appKey, pass: pair.ess.admin!.secret }));
    }, RUN_TIMEOUT_MS + 10_000);

    test('both nodes are still up and healthy', async () => {
      expect({ css: alive(pair.css), ess: alive(pair.ess) }).toEqual({ css: true, ess: true });
      const [onCss, onEss] = await Promise.all([pair.onCss.health(), pair.onEss.health()]);
      expect([onCss.general.healthStatus, onEss.general.healthStatus]).toEqual(['green', 'green']);
    });

    test('after a clean stop both stores are intact, and the CSS started again serves every object it keeps', async () => {
      const admin = { user: pair.css.admin!.appKey, pass: pair.css.admin!.secret };
      expect(await pair.ess.stop()).toBe(0);
      expect(await pair.css.stop()).toBe(0);
      const onCss = checkStore(pair.css.root);
      const onEss = checkStore(pair.ess.root);
      process.stdout.write(`[edgesync] fuzz: stores after the run: CSS ${onCss.objects} objects (${onCss.withData.length} with data), ESS ${onEss.objects} objects (${onEss.withData.length} with data)\n`);
      expect({ css: onCss.integrity, ess: onEss.integrity }).toEqual({ css: ['ok'], ess: ['ok'] });
      expect({ css: onCss.problems, ess: onEss.problems }).toEqual({ css: [], ess: [] });
      const kept = onCss.withData.filter((o) => o.org === UNTOUCHED_ORG);
      const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
      expect(kept.sort((a, b) => a.objectID.localeCompare(b.objectID))).toEqual(
        UNTOUCHED.map((o) => ({ org: UNTOUCHED_ORG, objectType: 'kept', objectID: o.objectID, sha256: sha256(o.data) })).sort((a, b) => a.objectID.localeCompare(b.objectID)),
      );

      const again = await startNode({ mode: 'css', root: pair.css.root });
      try {
        for (const o of onCss.withData) {
          const path = ['/api/v1/objects', o.org, o.objectType, o.objectID, 'data'].map((s, i) => (i === 0 ? s : encodeURIComponent(s))).join('/');
          const res = await fetch(again.url + path, { headers: { authorization: `Basic ${Buffer.from(`${admin.user}:${admin.pass}`).toString('base64')}` } });
          const body = Buffer.from(await res.arrayBuffer());
          expect({ path, status: res.status, sha256: createHash('sha256').update(body).digest('hex') }).toEqual({ path, status: 200, sha256: o.sha256 });
        }
      } finally {
        await again.stop();
      }
    }, 60_000);
  });
}
