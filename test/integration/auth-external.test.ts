/**
 * A real CSS with `AUTHENTICATION_HANDLER=external`, asking a test double of the identity
 * service (a real HTTP server on loopback, test/helpers/identity-service-double.ts): REST and
 * SPI logins both go through it, a changed secret is asked about, and a service that is down
 * gives 503 with the reason, not 403.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startManaged, Teardown, type RunningProcess } from '../helpers/node-process.js';
import { essEnv, eventually, portOf } from '../helpers/sync-pair.js';
import { startIdentityServiceDouble, type IdentityServiceDouble } from '../helpers/identity-service-double.js';

const t = new Teardown();
let idp: IdentityServiceDouble;
let css: RunningProcess;

const auth = (user: string, pass: string): Record<string, string> => ({ Authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` });

async function get(path: string, user: string, pass: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`${css.url}${path}`, { headers: auth(user, pass) });
  return { status: res.status, body: await res.text() };
}

beforeAll(async () => {
  idp = await startIdentityServiceDouble({
    root: { secret: 'root-secret', type: 'syncadmin', orgID: '', username: 'root' },
    'org1/edge/n1': { secret: 'n1-secret', type: 'edgenode', orgID: 'org1', username: 'edge/n1' },
  });
  t.add(() => idp.close());
  css = await startManaged(t, { mode: 'css', env: { AUTHENTICATION_HANDLER: 'external', EXTERNAL_AUTH_URL: idp.url, EXTERNAL_AUTH_TIMEOUT: '2', LOG_LEVEL: 'info' } });
}, 30_000);
afterAll(() => t.run());

describe('a CSS on the external identity service', () => {
  it('makes no sync admin of its own: the service decides who is who', () => {
    expect(css.admin).toBeNull();
  });

  it('lets in whom the service accepts, and answers 403 to whom it refuses', async () => {
    expect((await get('/api/v1/organizations', 'root', 'root-secret')).status).toBe(404);
    expect(await get('/api/v1/organizations', 'root', 'wrong')).toEqual({ status: 403, body: 'Unauthorized' });
    expect((await get('/api/v1/organizations', 'nobody', 'x')).status).toBe(403);
    expect(idp.requests.some((r) => r.appKey === 'root' && r.secret === 'root-secret')).toBe(true);
  });

  it('lets an ESS register over the SPI with credentials the service accepts', async () => {
    const ess = await startManaged(t, { mode: 'ess', env: essEnv(portOf(css), { secret: 'n1-secret' }) });
    expect(ess.url).toBeTruthy();
    await eventually(
      'registration of edge/n1',
      async () => (await fetch(`${css.url}/api/v1/destinations/org1`, { headers: auth('root', 'root-secret') })).status,
      (s) => s === 200,
      20_000,
    );
  });

  it('asks again about a changed secret', async () => {
    idp.accounts.set('root', { secret: 'new-root-secret', type: 'syncadmin', orgID: '', username: 'root' });
    const before = idp.requests.length;
    expect((await get('/api/v1/organizations', 'root', 'new-root-secret')).status).toBe(404);
    expect(idp.requests.slice(before)).toEqual([{ appKey: 'root', secret: 'new-root-secret' }]);
  });

  it('answers 503 with the reason while the service is down, and logs the outage once without a secret', async () => {
    idp.mode = 'error500';
    try {
      for (let i = 0; i < 3; i++) {
        const r = await get('/api/v1/organizations', 'someone', `down-secret-${i}`);
        expect(r.status).toBe(503);
        expect(r.body).toMatch(/identity service did not answer usefully: it answered HTTP 500/);
      }
    } finally {
      idp.mode = 'normal';
    }
    const lines = css.output().split('\n').filter((l) => l.includes('identity service is not answering'));
    expect(lines).toHaveLength(1);
    expect(css.output()).not.toMatch(/down-secret|root-secret|n1-secret/);
  });
});
