/**
 * Hardening of logins on the real binaries: no secret in any log line whatever the transport
 * (REST, SPI, MQTT) and whether the login succeeds; failed logins throttled with 429 and
 * `Retry-After` (MQTT: CONNACK "not authorized"), logged once per episode; security headers;
 * a 413 with its reason; the start-up warning of a CSS that listens beyond loopback without TLS.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { connectAsync } from 'mqtt';
import { freePort } from '../helpers/mosquitto.js';
import { startManaged, Teardown, type RunningProcess } from '../helpers/node-process.js';
import { ORG, addEssUser, startPair } from '../helpers/sync-pair.js';

const t = new Teardown();
afterAll(() => t.run());

const basic = (user: string, pass: string): string => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

async function call(node: RunningProcess, method: string, path: string, user: string, pass: string, extra: RequestInit = {}): Promise<Response> {
  return fetch(`${node.url}${path}`, { method, ...extra, headers: { Authorization: basic(user, pass), ...(extra.headers as Record<string, string> | undefined) } });
}

/** The JSON log lines a node wrote (not the banner, which shows a created admin's password once, by design). */
function logLines(node: RunningProcess): string[] {
  return node
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'));
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('no secret in any log line', () => {
  it('after good and bad logins over REST, SPI and MQTT, at the most verbose log level', async () => {
    const brokerPort = await freePort();
    const ESS_SECRET = 'ess-good-secret-Q7ZK';
    const p = await startPair(t, {
      deadlineMs: 30_000,
      secret: ESS_SECRET,
      env: { LOG_LEVEL: 'trace' },
      cssEnv: { LOG_LEVEL: 'trace', COMMUNICATION_PROTOCOL: 'http,mqtt', BROKER_ADDRESS: '', EMBEDDED_BROKER_PORT: String(brokerPort) },
    });
    const bad = ['bad-rest-secret-X1', 'bad-ess-rest-secret-X2', 'bad-spi-secret-X3', 'bad-mqtt-secret-X4'];
    // REST, good (the pair's clients already did) and bad, on both nodes.
    expect((await call(p.css, 'GET', `/api/v1/objects/${ORG}?all_objects=true`, p.css.admin!.appKey, bad[0]!)).status).toBe(403);
    const wrongOnEss = await p.ess.client({ appSecret: bad[1]! });
    await expect(wrongOnEss.getObject('model', 'm1')).rejects.toMatchObject({ status: 403 });
    wrongOnEss.close();
    await p.onCss.updateObject({ objectType: 'model', objectID: 'm1', destinationType: 'edge' }, 'payload');
    // SPI: the ESS logs in (good) all the time; one bad login.
    const spi = await call(p.css, 'PUT', `/spi/v1/register/${ORG}/edge/n1`, `${ORG}/edge/n1`, bad[2]!, { headers: { 'X-Sync-Service-Dest': `${ORG}/edge/n1` } });
    expect(spi.status).toBe(403);
    // MQTT on the embedded broker: good and bad.
    const good = await connectAsync({ host: '127.0.0.1', port: brokerPort, reconnectPeriod: 0, username: `${ORG}/edge/n1`, password: ESS_SECRET });
    await good.endAsync();
    await expect(connectAsync({ host: '127.0.0.1', port: brokerPort, reconnectPeriod: 0, username: `${ORG}/edge/n1`, password: bad[3]! })).rejects.toThrow(/Bad username or password/);
    // The SPI's JSON bodies have their own bound (1 MiB of metadata): 413 with the reason.
    const huge = await call(p.css, 'PUT', `/spi/v1/objects/${ORG}/model/big/1/update`, `${ORG}/edge/n1`, ESS_SECRET, {
      headers: { 'X-Sync-Service-Dest': `${ORG}/edge/n1`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ objectType: 'model', objectID: 'big', description: 'x'.repeat(2 * 1024 * 1024) }),
    });
    expect(huge.status).toBe(413);
    expect(await huge.text()).toMatch(/larger than the configured limit of 1048576 bytes/);
    await sleep(500);

    const css = logLines(p.css);
    const ess = logLines(p.ess);
    expect(css.length).toBeGreaterThan(5);
    const secrets = [ESS_SECRET, p.css.admin!.secret, p.ess.admin!.secret, ...bad];
    for (const line of [...css, ...ess]) for (const s of secrets) expect(line).not.toContain(s);
    // The refusals are logged, naming the app key and the address.
    const refusal = (msg: string): Record<string, unknown> | undefined => css.map((l) => JSON.parse(l) as Record<string, unknown>).find((o) => o.msg === msg);
    expect(refusal('login refused')).toMatchObject({ appKey: p.css.admin!.appKey, source: expect.stringMatching(/127\.0\.0\.1/) });
    expect(refusal('SPI login refused')).toMatchObject({ appKey: `${ORG}/edge/n1`, refused: 'credentials' });
    expect(refusal('MQTT login refused')).toMatchObject({ username: `${ORG}/edge/n1`, address: expect.stringMatching(/127\.0\.0\.1/) });
  }, 90_000);
});

describe('throttled logins, headers, size limits', () => {
  let css: RunningProcess;
  let brokerPort: number;

  it('starts a CSS with 3 failures per 3 s, a 4 KiB body limit and the embedded broker', async () => {
    brokerPort = await freePort();
    css = await startManaged(t, {
      mode: 'css',
      env: {
        LOG_LEVEL: 'info',
        LOGIN_FAILURE_LIMIT: '3',
        LOGIN_FAILURE_WINDOW: '3',
        EDGESYNC_MAX_BODY_SIZE: '4096',
        COMMUNICATION_PROTOCOL: 'http,mqtt',
        BROKER_ADDRESS: '',
        EMBEDDED_BROKER_PORT: String(brokerPort),
      },
    });
    await addEssUser(css, { secret: 'n1-secret' });
  }, 30_000);

  it('sends the reference\'s headers and X-Content-Type-Options: nosniff', async () => {
    const res = await call(css, 'GET', '/api/v1/health', css.admin!.appKey, css.admin!.secret);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('strict-transport-security')).toBe('max-age=63072000; includeSubDomains; preload');
    expect(res.headers.get('cache-control')).toBe('no-store, no-cache, must-revalidate');
  });

  it('answers a JSON body over the limit 413 with the reason', async () => {
    const body = JSON.stringify({ data: [], meta: { objectType: 't', objectID: 'big', description: 'x'.repeat(8192) } });
    const res = await call(css, 'PUT', `/api/v1/objects/${ORG}/t/big`, css.admin!.appKey, css.admin!.secret, { body, headers: { 'Content-Type': 'application/json' } });
    expect(res.status).toBe(413);
    expect(await res.text()).toMatch(/larger than the configured limit of 4096 bytes/);
  });

  it('after 3 failures refuses every login from that address unchecked: 429 + Retry-After on REST and SPI, "not authorized" on MQTT, one log line', async () => {
    for (let i = 0; i < 3; i++) expect((await call(css, 'GET', '/api/v1/health', 'mallory', `guess-${i}`)).status).toBe(403);
    for (let i = 0; i < 20; i++) {
      const res = await call(css, 'GET', '/api/v1/health', css.admin!.appKey, css.admin!.secret);
      expect(res.status).toBe(429);
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(Number(res.headers.get('retry-after'))).toBeLessThanOrEqual(3);
      expect(await res.text()).toMatch(/Too many failed logins from this address; try again in \d+ s/);
    }
    const spi = await call(css, 'PUT', `/spi/v1/register/${ORG}/edge/n1`, `${ORG}/edge/n1`, 'n1-secret', { headers: { 'X-Sync-Service-Dest': `${ORG}/edge/n1` } });
    expect(spi.status).toBe(429);
    expect(spi.headers.get('retry-after')).toMatch(/^\d+$/);
    await expect(connectAsync({ host: '127.0.0.1', port: brokerPort, reconnectPeriod: 0, username: `${ORG}/edge/n1`, password: 'n1-secret' })).rejects.toThrow(/Not authorized/);
    const episodes = logLines(css).filter((l) => l.includes('too many failed logins'));
    expect(episodes).toHaveLength(1);
    expect(episodes[0]).toContain('"appKey"');
    expect(episodes[0]).not.toMatch(/guess-|n1-secret/);
    expect(logLines(css).join('\n')).not.toContain(css.admin!.secret);
  });

  it('lets logins in again once the window has passed', async () => {
    await sleep(3100);
    expect((await call(css, 'GET', '/api/v1/health', css.admin!.appKey, css.admin!.secret)).status).toBe(200);
  });
});

describe('the start-up warning of a CSS without TLS beyond loopback', () => {
  it('is one WARN line naming the address and the setting to change', async () => {
    const open = await startManaged(t, { mode: 'css', env: { LISTENING_ADDRESS: '0.0.0.0', LOG_LEVEL: 'warning' } });
    const lines = logLines(open).filter((l) => l.includes('listening without TLS beyond loopback'));
    expect(lines).toHaveLength(1);
    const o = JSON.parse(lines[0]!) as { level: number; addresses: string[]; setting: string };
    expect(o.level).toBe(40);
    expect(o.setting).toBe('LISTENING_TYPE');
    expect(o.addresses).toEqual([expect.stringMatching(/^http:\/\/0\.0\.0\.0:\d+$/)]);
  });

  it('is absent on loopback', async () => {
    const local = await startManaged(t, { mode: 'css', env: { LOG_LEVEL: 'warning' } });
    await sleep(200);
    expect(local.output()).not.toContain('listening without TLS');
  });
});
