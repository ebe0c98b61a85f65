/**
 * The INFO lines tell an object's story (issue #10: at INFO a CSS logged no registration,
 * publication, delivery, consumption or refused login, and an ESS no received object): one
 * line per step, with the object's key and the destination, on real processes; and a clean
 * stop logs nothing at error level or above.
 */
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { raw, Teardown, type RunningProcess } from '../helpers/node-process.js';
import { linesOf, type LogLine } from '../helpers/log-lines.js';
import { eventuallyWithin, ORG, portOf, startPair, type Pair } from '../helpers/sync-pair.js';

jest.setTimeout(90_000);

const DEADLINE_MS = 30_000;
const eventually = eventuallyWithin(DEADLINE_MS);
const INFO = { LOG_LEVEL: 'info' };



/** Waits for an INFO line with this message and these fields. */
async function logged(node: RunningProcess, msg: string, fields: Record<string, unknown> = {}): Promise<LogLine> {
  const match = (l: LogLine): boolean => l.msg === msg && l.level === 30 && Object.entries(fields).every(([k, v]) => l[k] === v);
  const found = await eventually(`log line "${msg}" ${JSON.stringify(fields)}`, () => Promise.resolve(linesOf(node).find(match) ?? null), (l) => l !== null, () => node.output());
  return found!;
}

describe('the story of an object in the INFO lines', () => {
  const t = new Teardown();
  let p: Pair;
  beforeAll(async () => {
    p = await startPair(t, { deadlineMs: DEADLINE_MS, cssEnv: INFO, env: INFO });
  });
  afterAll(() => t.run());

  test('the CSS logs the ESS registering as new', async () => {
    await logged(p.css, 'ESS registered', { org: ORG, destination: 'edge/n1', registration: 'new' });
    await logged(p.ess, 'registered with the CSS');
  });

  test('publish on the CSS, delivery to the ESS, consumption by its app, deletion', async () => {
    await p.onCss.updateObject({ objectType: 'model', objectID: 'm1', destinationType: 'edge', destinationID: 'n1' }, 'hello edge');
    await logged(p.css, 'object published', { object: `${ORG}/model/m1`, addressedTo: 'edge/n1', component: 'api' });
    await logged(p.ess, 'object received from the CSS', { object: `${ORG}/model/m1`, destination: 'edge/n1', size: 10 });
    await logged(p.css, 'object delivered', { object: `${ORG}/model/m1`, destination: 'edge/n1' });

    await p.onEss.markObjectConsumed('model', 'm1');
    await logged(p.ess, 'object consumed by the app', { object: `${ORG}/model/m1`, destination: 'edge/n1' });
    await logged(p.css, 'object consumed by destination', { object: `${ORG}/model/m1`, destination: 'edge/n1' });

    // Data uploaded apart from the metadata is logged when it is stored.
    await p.onCss.updateObject({ objectType: 'model', objectID: 'm2', destinationType: 'edge' });
    await p.onCss.updateObjectData('model', 'm2', Buffer.from('data apart'));
    await logged(p.css, 'object data stored', { object: `${ORG}/model/m2`, size: 10 });
    await logged(p.ess, 'object received from the CSS', { object: `${ORG}/model/m2`, size: 10 });

    await p.onCss.deleteObject('model', 'm2');
    await logged(p.css, 'object deleted', { object: `${ORG}/model/m2` });
    await logged(p.css, 'object deleted at destination', { object: `${ORG}/model/m2`, destination: 'edge/n1' });
  });

  test('an object published on the ESS is logged as sent once the CSS has it, and consumed', async () => {
    await p.onEss.updateObject({ objectType: 'report', objectID: 'r1' }, 'hello cloud');
    await logged(p.ess, 'object published', { object: `${ORG}/report/r1` });
    await logged(p.ess, 'object sent to the CSS', { object: `${ORG}/report/r1`, css: `http://127.0.0.1:${portOf(p.css)}` });
    await eventually('r1 on the CSS', () => p.onCss.getObjectStatus('report', 'r1'), (s) => s === 'completelyReceived');
    await p.onCss.markObjectConsumed('report', 'r1');
    await logged(p.ess, 'object consumed by the CSS', { object: `${ORG}/report/r1` });
  });

  test('refused logins name the app key and the address, never the secret', async () => {
    const secret = 'not-the-password-4711';
    expect((await raw(p.css, 'GET', '/api/v1/health', { auth: { user: 'mallory', pass: secret } })).status).toBe(403);
    const api = await logged(p.css, 'login refused', { appKey: 'mallory', path: '/health' });
    expect(api.source).toMatch(/127\.0\.0\.1/);

    const spi = await raw(p.css, 'PUT', '/spi/v1/register/org1/edge/n9', { auth: { user: 'org1/edge/n9', pass: secret }, headers: { 'X-Sync-Service-Dest': 'org1/edge/n9' } });
    expect(spi.status).toBe(403);
    await logged(p.css, 'SPI login refused', { appKey: 'org1/edge/n9', claimed: 'org1/edge/n9', refused: 'credentials' });
    expect(p.css.output()).not.toContain(secret);
  });

  test('a clean stop (SIGTERM, SIGINT) logs nothing at error level or above', async () => {
    // Only what the stops log counts: an ESS that registered before the CSS read its new user
    // rightly logged the refusal as an error.
    const before = new Map([p.css, p.ess].map((n) => [n, linesOf(n).length]));
    const essExit = new Promise((r) => p.ess.child.once('exit', r));
    p.ess.child.kill('SIGINT');
    expect(await essExit).toBe(0);
    expect(await p.css.stop()).toBe(0);
    for (const node of [p.css, p.ess]) {
      const lines = linesOf(node).slice(before.get(node));
      expect(lines.some((l) => l.msg === 'signal received, stopping gracefully')).toBe(true);
      expect(lines.some((l) => l.msg === 'stopped')).toBe(true);
      expect(lines.filter((l) => l.level >= 50)).toEqual([]);
    }
  });
});
