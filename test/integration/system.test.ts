/**
 * Health, resend, shutdown and the API documentation, on the real binary. [ref rest-api §1.6, §3.7]
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { BIN, raw, startManaged, Teardown, type RunningProcess } from '../helpers/node-process.js';

jest.setTimeout(30_000);

const run = promisify(execFile);

const ESS_ENV = { ORG_ID: 'org1', DESTINATION_TYPE: 'edge', DESTINATION_ID: 'n1', HTTP_CSS_HOST: '127.0.0.1', HTTP_CSS_PORT: '1', LISTENING_TYPE: 'unsecure' };

/** Resolves with the exit code once the process has exited; rejects after `ms`. */
function exitCode(child: ChildProcess, ms: number): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the process was still running after ${ms} ms`)), ms);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

/** Adds an org admin with the CLI and waits until the running node authenticates it. */
async function addOrgAdmin(node: RunningProcess, appKey: string, secret: string): Promise<{ user: string; pass: string }> {
  await run(process.execPath, [BIN, 'users', 'add', appKey, '--type', 'admin', '--org', 'org1', '--secret', secret, '--persistence-root-path', node.root]);
  const auth = { user: appKey, pass: secret };
  const deadline = Date.now() + 10_000;
  while ((await raw(node, 'GET', '/api/v1/health', { auth })).status !== 200) {
    if (Date.now() > deadline) throw new Error(`${appKey} is not accepted after 10 s`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return auth;
}

interface Health {
  general: { nodeType: string; healthStatus: string; upTime: number };
  dbHealth: Record<string, unknown>;
  usage?: { clientRequests: number; registeredESS: number; storedObjects: number };
}

describe('health, resend and docs on a CSS', () => {
  const t = new Teardown();
  let css: RunningProcess;

  beforeAll(async () => {
    css = await startManaged(t, { mode: 'css' });
  });
  afterAll(() => t.run());

  test('health for a sync admin has the general and dbHealth sections, and no usage by default', async () => {
    const res = await raw(css, 'GET', '/api/v1/health');
    expect(res.status).toBe(200);
    const health = JSON.parse(res.text) as Health;
    expect(Object.keys(health).sort()).toEqual(['dbHealth', 'general']);
    expect(health.general).toEqual({ nodeType: 'CSS', healthStatus: 'green', upTime: expect.any(Number) });
    expect(health.dbHealth).toEqual({ dbStatus: 'green', disconnectedFromDB: false, dbReadFailures: 0, dbWriteFailures: 0 });
  });

  test('details=true adds usage, whose storedObjects counts the objects', async () => {
    const before = JSON.parse((await raw(css, 'GET', '/api/v1/health?details=true')).text) as Health;
    expect(before.usage).toEqual({ clientRequests: expect.any(Number), registeredESS: 0, storedObjects: 0 });

    expect((await raw(css, 'PUT', '/api/v1/organizations/org1', { body: JSON.stringify({ orgID: 'org1' }) })).status).toBe(204);
    const client = await css.client({ orgID: 'org1' });
    try {
      await client.updateObject({ objectType: 't', objectID: 'a', destinationType: 'edge' }, 'A');
      await client.updateObject({ objectType: 't', objectID: 'b', destinationType: 'edge' }, 'B');
      const after = await client.health(true);
      expect(after.usage?.storedObjects).toBe(2);
      expect(after.usage?.clientRequests).toBeGreaterThan(before.usage?.clientRequests ?? Infinity);
    } finally {
      client.close();
    }
  });

  test('a details value that is not a boolean is 400, checked before authentication', async () => {
    const anon = await raw(css, 'GET', '/api/v1/health?details=bogus', { auth: null });
    expect(anon.status).toBe(400);
    expect(anon.text).toMatch(/bogus/);
    expect((await raw(css, 'GET', '/api/v1/health?details=bogus')).status).toBe(400);
  });

  test('health without credentials, or with a wrong password, is 403 Unauthorized', async () => {
    const anon = await raw(css, 'GET', '/api/v1/health', { auth: null });
    expect(anon.status).toBe(403);
    expect(anon.text).toBe('Unauthorized');
    expect((await raw(css, 'GET', '/api/v1/health', { auth: { user: 'admin', pass: 'wrong' } })).status).toBe(403);
  });

  test('POST /resend on a CSS is 400 with the reference text', async () => {
    const res = await raw(css, 'POST', '/api/v1/resend');
    expect(res.status).toBe(400);
    expect(res.text).toBe("Failed to send resend objects request. Error: CSS can't request to resend objects\n");
  });

  test('GET /resend is 405 with an empty body, but only after authentication (anonymous gets 403)', async () => {
    const res = await raw(css, 'GET', '/api/v1/resend');
    expect(res.status).toBe(405);
    expect(res.text).toBe('');
    expect((await raw(css, 'GET', '/api/v1/resend', { auth: null })).status).toBe(403);
  });

  test('shutdown is refused (403) to anyone but a sync admin, and the node keeps running', async () => {
    const orgAdmin = await addOrgAdmin(css, 'orgadmin', 'secret1');
    const res = await raw(css, 'POST', '/api/v1/shutdown', { auth: orgAdmin });
    expect(res.status).toBe(403);
    expect((await raw(css, 'POST', '/api/v1/shutdown', { auth: null })).status).toBe(403);
    expect((await raw(css, 'GET', '/api/v1/shutdown', { auth: null })).status).toBe(403);
    // Still serving well after the 1 s the reference waits before stopping.
    await new Promise((r) => setTimeout(r, 1500));
    expect(css.child.exitCode).toBeNull();
    expect((await raw(css, 'GET', '/api/v1/health')).status).toBe(200);
  });

  test('/swagger.json is the OpenAPI document of the CSS: object paths carry {orgID}', async () => {
    const res = await raw(css, 'GET', '/swagger.json', { auth: null });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const doc = JSON.parse(res.text) as { openapi: string; paths: Record<string, unknown> };
    expect(doc.openapi).toMatch(/^3\./);
    const paths = Object.keys(doc.paths);
    expect(paths).toEqual(expect.arrayContaining(['/api/v1/objects/{orgID}/{objectType}/{objectID}', '/api/v1/destinations/{orgID}', '/api/v1/health']));
    expect(paths.filter((p) => p.startsWith('/api/v1/objects/')).every((p) => p.startsWith('/api/v1/objects/{orgID}'))).toBe(true);
  });

  test('/swagger/ serves the HTML UI without credentials', async () => {
    const res = await raw(css, 'GET', '/swagger/', { auth: null });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.text).toMatch(/swagger-ui/i);
  });
});

describe('resend and docs on an ESS', () => {
  const t = new Teardown();
  let ess: RunningProcess;

  beforeAll(async () => {
    ess = await startManaged(t, { mode: 'ess', env: ESS_ENV });
  });
  afterAll(() => t.run());

  test('health reports nodeType ESS', async () => {
    const res = await raw(ess, 'GET', '/api/v1/health');
    expect(res.status).toBe(200);
    expect((JSON.parse(res.text) as Health).general.nodeType).toBe('ESS');
  });

  test('POST /resend on an ESS is 204 with an empty body', async () => {
    const res = await raw(ess, 'POST', '/api/v1/resend');
    expect(res.status).toBe(204);
    expect(res.text).toBe('');
  });

  test('/swagger.json of an ESS has object paths without {orgID} and no destinations routes', async () => {
    const res = await raw(ess, 'GET', '/swagger.json', { auth: null });
    expect(res.status).toBe(200);
    const paths = Object.keys((JSON.parse(res.text) as { paths: Record<string, unknown> }).paths);
    expect(paths).toEqual(expect.arrayContaining(['/api/v1/objects/{objectType}', '/api/v1/objects/{objectType}/{objectID}/data']));
    expect(paths.filter((p) => p.startsWith('/api/v1/objects/') && p.includes('{orgID}'))).toEqual([]);
    expect(paths.filter((p) => p.startsWith('/api/v1/destinations'))).toEqual([]);
  });
});

describe('shutdown through the API', () => {
  const t = new Teardown();
  afterAll(() => t.run());

  test('a sync admin gets 204 and the process exits with code 0', async () => {
    const css = await startManaged(t, { mode: 'css' });
    const res = await raw(css, 'POST', '/api/v1/shutdown');
    expect(res.status).toBe(204);
    expect(res.text).toBe('');
    expect(await exitCode(css.child, 10_000)).toBe(0);
  });

  test('?restart=true exits with code 75, asking the supervisor for a restart', async () => {
    const css = await startManaged(t, { mode: 'css' });
    const res = await raw(css, 'POST', '/api/v1/shutdown?restart=true');
    expect(res.status).toBe(204);
    expect(await exitCode(css.child, 10_000)).toBe(75);
  });

  test('an ESS shuts down the same way', async () => {
    const ess = await startManaged(t, { mode: 'ess', env: ESS_ENV });
    expect((await raw(ess, 'POST', '/api/v1/shutdown?restart=YES')).status).toBe(204);
    expect(await exitCode(ess.child, 10_000)).toBe(75);
  });
});
