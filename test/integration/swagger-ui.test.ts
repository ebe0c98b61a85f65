/**
 * The Swagger UI the start banner advertises, loaded in a real headless Chromium from a real CSS
 * and a real ESS: the page must list every operation of the node's own OpenAPI document. (It was
 * once a blank page: the document, inlined into `swagger-ui-init.js` through `String.replace`,
 * had a `$\`` in its text, and the script was not JavaScript any more.)
 *
 * Needs the Debian `chromium` package at /usr/bin/chromium (`.ci/run` installs it); never
 * downloads a browser. Without it the suite is reported as skipped, by name.
 */
import { Script } from 'node:vm';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import type { Browser } from 'playwright-core';
import { CHROMIUM, chromiumPresent, launchChromium } from '../helpers/chromium.js';
import { raw, startManaged, Teardown, type RunningProcess } from '../helpers/node-process.js';

jest.setTimeout(60_000);

const METHODS = new Set(['get', 'put', 'post', 'delete', 'patch', 'head', 'options']);

/** Every operation of a node's document (its `/swagger.json`), as `METHOD path` the way the UI shows it. */
function operationsOf(doc: { paths: Record<string, Record<string, unknown>> }): string[] {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.keys(item)
      .filter((m) => METHODS.has(m))
      .map((m) => `${m.toUpperCase()} ${path}`),
  );
}

/** Opens `/swagger` as a user would and returns the operations the page lists, plus any page error. */
async function listedOperations(browser: Browser, node: RunningProcess): Promise<{ expected: string[]; listed: string[]; errors: string[] }> {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  try {
    const doc = await context.request.get(`${node.url}/swagger.json`);
    expect(doc.status()).toBe(200);
    const expected = operationsOf((await doc.json()) as { paths: Record<string, Record<string, unknown>> });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${node.url}/swagger`);
    await page.locator('.opblock-summary').first().waitFor({ timeout: 20_000 });
    // The DOM as far as this callback needs it (the test's tsconfig has no DOM library).
    type El = { textContent: string | null; getAttribute(n: string): string | null; querySelector(s: string): El | null };
    const listed = await page.locator('.opblock-summary').evaluateAll((blocks: El[]) =>
      blocks.map((b) => `${(b.querySelector('.opblock-summary-method')?.textContent ?? '').trim()} ${b.querySelector('.opblock-summary-path')?.getAttribute('data-path') ?? ''}`),
    );
    return { expected, listed, errors };
  } finally {
    await context.close();
  }
}

if (!chromiumPresent()) {
  console.warn(`Skipped: Swagger UI in a browser (${CHROMIUM} not found)`);
  describe.skip(`Swagger UI in a browser (skipped: ${CHROMIUM} not found)`, () => {
    test('lists the operations of the CSS and of the ESS', () => {});
  });
} else {
  describe('Swagger UI in headless Chromium', () => {
    const t = new Teardown();
    let browser: Browser;
    let css: RunningProcess;
    let ess: RunningProcess;

    beforeAll(async () => {
      css = await startManaged(t, { mode: 'css' });
      const { port } = new URL(css.url);
      ess = await startManaged(t, {
        mode: 'ess',
        env: { ORG_ID: 'org1', DESTINATION_TYPE: 'edge', DESTINATION_ID: 'n1', HTTP_CSS_HOST: '127.0.0.1', HTTP_CSS_PORT: port },
      });
      browser = await launchChromium();
      t.add(() => browser.close());
    });
    afterAll(() => t.run());

    test('the CSS page lists every operation of its document', async () => {
      const { expected, listed, errors } = await listedOperations(browser, css);
      expect(expected.length).toBeGreaterThan(10);
      expect(errors).toEqual([]);
      expect([...listed].sort()).toEqual([...expected].sort());
      expect(listed).toContain('PUT /api/v1/objects/{orgID}/{objectType}/{objectID}');
    });

    test('the ESS page (HTTPS, self-signed) lists every operation of its own document', async () => {
      expect(ess.url).toMatch(/^https:/);
      const { expected, listed, errors } = await listedOperations(browser, ess);
      expect(expected.length).toBeGreaterThan(10);
      expect(errors).toEqual([]);
      expect([...listed].sort()).toEqual([...expected].sort());
      expect(listed).toContain('PUT /api/v1/objects/{objectType}/{objectID}');
    });

    test('swagger-ui-init.js is valid JavaScript and does not carry the document', async () => {
      const res = await raw(css, 'GET', '/swagger/swagger-ui-init.js', { auth: null });
      expect(res.status).toBe(200);
      expect(() => new Script(res.text)).not.toThrow();
      expect(res.text).not.toMatch(/edge-sync-service/);
    });
  });
}
