/**
 * An ESS's health shows its link to the CSS (issue #10: it was green while its CSS was down):
 * yellow at once when the CSS is unreachable, red when it stays so, green once the CSS is up;
 * red at once when the CSS refuses the ESS's credentials.
 */
import { createServer } from 'node:net';
import { afterAll, describe, expect, jest, test } from '@jest/globals';
import type { HealthReport, SyncServiceClient } from '../../sdk/index.js';
import { startManaged, Teardown } from '../helpers/node-process.js';
import { addEssUser, essEnv, eventuallyWithin, ORG } from '../helpers/sync-pair.js';

jest.setTimeout(60_000);

const t = new Teardown();
afterAll(() => t.run());

const eventually = eventuallyWithin(20_000);

/** A loopback port nothing listens on (yet). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

async function healthOf(client: SyncServiceClient): Promise<HealthReport> {
  return client.health();
}

describe('ESS health and its CSS', () => {
  test('a CSS that is down makes the ESS yellow, then red, with the reason; once it is up the ESS is green', async () => {
    const port = await freePort();
    // Polls every second, retries every second: yellow after 3 + 2 s of silence, red after 3 + 6 s (README "Health").
    const ess = await startManaged(t, { mode: 'ess', env: essEnv(String(port)) });
    const onEss = await ess.client();
    t.add(() => Promise.resolve(onEss.close()));

    const yellow = await eventually('yellow', () => healthOf(onEss), (h) => h.cssHealth?.cssConnectionStatus === 'unreachable');
    expect(yellow.general.healthStatus).toBe('yellow');
    expect(yellow.dbHealth.dbStatus).toBe('green');
    expect(yellow.cssHealth).toMatchObject({ cssStatus: 'yellow', css: `http://127.0.0.1:${port}`, registered: false, reason: expect.stringMatching(/ECONNREFUSED/) });
    expect(yellow.cssHealth?.lastSuccessfulExchange).toBeUndefined();

    const red = await eventually('red', () => healthOf(onEss), (h) => h.general.healthStatus === 'red', ess.output);
    expect(red.cssHealth).toMatchObject({ cssStatus: 'red', cssConnectionStatus: 'unreachable', reason: expect.stringMatching(/ECONNREFUSED/) });
    expect(red.cssHealth?.timeSinceLastSuccessfulExchange).toBeGreaterThanOrEqual(9);

    const css = await startManaged(t, { mode: 'css', env: { UNSECURE_LISTENING_PORT: String(port) } });
    const onCss = await css.client({ orgID: ORG });
    t.add(() => Promise.resolve(onCss.close()));
    await onCss.putOrganization({ orgID: ORG });
    await addEssUser(css);

    const green = await eventually('green', () => healthOf(onEss), (h) => h.general.healthStatus === 'green', ess.output);
    expect(green.cssHealth).toMatchObject({ cssStatus: 'green', cssConnectionStatus: 'connected', registered: true, timeSinceLastSuccessfulExchange: expect.any(Number) });
    expect(Date.parse(green.cssHealth?.lastSuccessfulExchange ?? '')).toBeGreaterThan(Date.now() - 60_000);
    expect(green.cssHealth?.reason).toBeUndefined();

    // An ESS whose password the CSS refuses is red at once, saying so.
    const refused = await startManaged(t, { mode: 'ess', env: essEnv(String(port), { destinationID: 'n2', secret: 'wrong' }) });
    const onRefused = await refused.client();
    t.add(() => Promise.resolve(onRefused.close()));
    const r = await eventually('refused', () => healthOf(onRefused), (h) => h.cssHealth?.cssConnectionStatus === 'credentialsRefused', refused.output);
    expect(r.general.healthStatus).toBe('red');
    expect(r.cssHealth).toMatchObject({ cssStatus: 'red', registered: false, reason: expect.stringMatching(/answered 403/) });
  });

  test('a CSS has no cssHealth section', async () => {
    const css = await startManaged(t, { mode: 'css' });
    const onCss = await css.client();
    t.add(() => Promise.resolve(onCss.close()));
    expect((await onCss.health()).cssHealth).toBeUndefined();
  });
});
