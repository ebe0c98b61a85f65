/**
 * The web dashboard in a real headless Chromium against a real CSS with a real HTTP ESS: log in,
 * see the node, publish an object with the CLI, watch its delivery turn `delivered` and then `consumed` on
 * the page without reloading, reach the object's page with the keyboard, and use it on a phone's
 * width. Screenshots go to .tmp/dashboard/ (git-ignored); docs/dashboard.png is one of them.
 *
 * Needs the Debian `chromium` package at /usr/bin/chromium; never downloads a browser. Without it
 * the suite is reported as skipped, by name.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { CHROMIUM, chromiumPresent, launchChromium } from '../helpers/chromium.js';
import { BIN, raw, Teardown, type RunningProcess } from '../helpers/node-process.js';
import { ORG, startPair } from '../helpers/sync-pair.js';
import type { SyncServiceClient } from '../../sdk/index.js';

jest.setTimeout(60_000);

const SHOTS = join(process.cwd(), '.tmp', 'dashboard');
const run = promisify(execFile);

/** The chip of one delivery in the objects table. */
const chipOf = (page: Page, object: string, dest: string) => page.locator(`tr[data-object="${object}"] li[data-dest="${dest}"] .chip`);

async function logIn(page: Page, node: RunningProcess): Promise<void> {
  await page.goto(`${node.url}/dashboard/`);
  await page.getByLabel('User', { exact: true }).fill(node.admin!.appKey);
  await page.getByLabel('Password').fill(node.admin!.secret);
  await page.getByLabel(/^Organization/).fill(ORG);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { name: 'Fleet' }).waitFor();
}

if (!chromiumPresent()) {
  console.warn(`Skipped: the dashboard in a browser (${CHROMIUM} not found)`);
  describe.skip(`the dashboard in a browser (skipped: ${CHROMIUM} not found)`, () => {
    test('shows the node and an object turning delivered then consumed', () => {});
  });
} else {
  describe('the dashboard in headless Chromium', () => {
    const t = new Teardown();
    let browser: Browser;
    let context: BrowserContext;
    let page: Page;
    let css: RunningProcess;
    let ess: RunningProcess;
    let onCss: SyncServiceClient;
    let onEss: SyncServiceClient;
    const pageErrors: string[] = [];

    beforeAll(async () => {
      mkdirSync(SHOTS, { recursive: true });
      ({ css, ess, onCss, onEss } = await startPair(t, { deadlineMs: 20_000 }));
      browser = await launchChromium();
      t.add(() => browser.close());
      context = await browser.newContext({ viewport: { width: 1100, height: 720 }, ignoreHTTPSErrors: true });
      page = await context.newPage();
      page.on('pageerror', (e) => pageErrors.push(e.message));
      // A CSP violation or a failed module load shows as a console error.
      page.on('console', (m) => {
        if (m.type() === 'error') pageErrors.push(m.text());
      });
    });
    afterAll(() => t.run());

    test('is served with a strict same-origin CSP, and refuses to log in with a wrong password', async () => {
      const res = await raw(css, 'GET', '/dashboard/', { auth: null });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-security-policy')).toMatch(/^default-src 'self'/);
      expect(res.text).not.toMatch(/https?:\/\//);
      const bare = await raw(css, 'GET', '/dashboard', { auth: null });
      expect([bare.status, bare.headers.get('location')]).toEqual([301, 'dashboard/']);
      await page.goto(`${css.url}/dashboard/`);
      await page.getByLabel('User', { exact: true }).fill(css.admin!.appKey);
      await page.getByLabel('Password').fill('wrong');
      await page.getByLabel(/^Organization/).fill(ORG);
      await page.getByRole('button', { name: 'Log in' }).click();
      await expect(page.getByRole('alert').textContent()).resolves.toBeDefined();
      await page.getByRole('alert').filter({ hasText: 'not accepted' }).waitFor();
    });

    test('logs in and shows the ESS node with its health', async () => {
      await logIn(page, css);
      const row = page.locator('tr[data-node="edge/n1"]');
      await row.waitFor();
      expect(await row.locator('.chip').getAttribute('data-status')).toBe('ok');
      expect(await row.textContent()).toContain('http');
      await expect(page.locator('#conn').textContent()).resolves.toBeDefined();
      await page.locator('#conn', { hasText: 'Live' }).waitFor();
    });

    test('shows a published object turn delivered, then consumed, without reloading', async () => {
      let reloaded = false;
      page.on('framenavigated', (f) => {
        if (f === page.mainFrame()) reloaded = true;
      });
      const file = join(SHOTS, 'model-one.bin');
      writeFileSync(file, 'model one');
      await run(process.execPath, [BIN, 'object', 'publish', '-t', 'model', '-i', 'm1', '--dest-type', 'edge', '--dest-id', 'n1', '--description', 'the model', '-f', file], {
        env: { ...process.env, EDGESYNC_URL: css.url, EDGESYNC_USER: css.admin!.appKey, EDGESYNC_PASSWORD: css.admin!.secret, EDGESYNC_ORG: ORG, HOME: SHOTS },
      });
      await chipOf(page, 'model/m1', 'edge/n1').and(page.locator('[data-status="delivered"]')).waitFor({ timeout: 20_000 });
      await page.screenshot({ path: join(SHOTS, 'fleet-delivered.png'), fullPage: true });

      await onEss.markObjectConsumed('model', 'm1');
      await chipOf(page, 'model/m1', 'edge/n1').and(page.locator('[data-status="consumed"]')).waitFor({ timeout: 20_000 });
      await page.locator('#announce', { hasText: 'model/m1 to edge/n1: consumed' }).waitFor();
      await page.screenshot({ path: join(SHOTS, 'fleet-consumed.png'), fullPage: true });
      expect(reloaded).toBe(false);
    });

    test("reaches the object's page with the keyboard alone", async () => {
      await page.locator('#home').focus();
      let onLink = false;
      for (let i = 0; i < 40 && !onLink; i++) {
        await page.keyboard.press('Tab');
        onLink = await page.evaluate(() => {
          // The test's tsconfig has no DOM library: the page's globals, as far as used here.
          const doc = (globalThis as unknown as { document: { activeElement: { getAttribute(n: string): string | null } | null } }).document;
          return doc.activeElement?.getAttribute('href') === '#/object/model/m1';
        });
      }
      expect(onLink).toBe(true);
      await page.keyboard.press('Enter');
      const title = page.getByRole('heading', { name: 'Object model/m1' });
      await title.waitFor();
      expect(page.url()).toMatch(/#\/object\/model\/m1$/);
      // Focus moves to the page's heading, so a screen reader starts there.
      expect(await title.evaluate((e) => e === (e as unknown as { ownerDocument: { activeElement: unknown } }).ownerDocument.activeElement)).toBe(true);
      const row = page.locator('#detail-table tr[data-dest="edge/n1"]');
      expect(await row.locator('.chip').getAttribute('data-status')).toBe('consumed');
      await page.screenshot({ path: join(SHOTS, 'object.png'), fullPage: true });
    });

    test("is usable 390 px wide: nothing makes the page scroll sideways, the node's page opens", async () => {
      await page.setViewportSize({ width: 390, height: 844 });
      await page.goto(`${css.url}/dashboard/#/`);
      await logIn(page, css);
      await chipOf(page, 'model/m1', 'edge/n1').waitFor();
      const widths = await page.evaluate(() => {
        const doc = (globalThis as unknown as { document: { documentElement: { scrollWidth: number; clientWidth: number } } }).document;
        return { scroll: doc.documentElement.scrollWidth, client: doc.documentElement.clientWidth };
      });
      expect(widths.scroll).toBeLessThanOrEqual(widths.client);
      await page.screenshot({ path: join(SHOTS, 'phone.png'), fullPage: true });
      await page.getByRole('link', { name: 'n1' }).click();
      await page.getByRole('heading', { name: 'Node edge/n1' }).waitFor();
      await page.locator('#detail-table tr[data-object="model/m1"]').waitFor();
    });

    test('the ESS serves the smaller page: its CSS as its one node, and objects as they arrive', async () => {
      const essPage = await context.newPage();
      try {
        await logIn(essPage, ess);
        await essPage.locator('tr[data-node="Cloud/Cloud"]').waitFor();
        await onCss.updateObject({ objectType: 'model', objectID: 'm2', destinationType: 'edge', destinationID: 'n1' }, 'model two');
        await essPage.locator('tr[data-object="model/m2"]').waitFor({ timeout: 20_000 });
      } finally {
        await essPage.close();
      }
    });

    test('raised no page error and no CSP violation', () => {
      // The wrong-password login's 403 is the one expected console error.
      expect(pageErrors.filter((e) => !/status of 403/.test(e))).toEqual([]);
    });
  });
}
