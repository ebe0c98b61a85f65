/**
 * Webhooks that fire, on the real binaries: a CSS and an ESS (each alone) call the hook an app
 * registered for an object type when an object of that type becomes available there or is
 * deleted, noData, link and metaOnly objects included, with the request the reference sends (POST,
 * `Application/JSON`, the object's metadata). A failing hook is retried with backoff, a hanging
 * one times out, and the delivery log (`GET /objects/{org}/{type}?webhooks=true`) shows every
 * attempt. A CSS refuses link-local and cloud metadata targets, and those outside
 * WEBHOOK_ALLOWED_NETWORKS. A real HTTP server on loopback plays the app's hook.
 * Sync between the two (HTTP and MQTT) is webhooks-transports.test.ts.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import type { SyncServiceClient, WebhookDelivery } from '../../sdk/index.js';
import { BIN, raw, startManaged, Teardown, type RunningProcess } from '../helpers/node-process.js';
import { eventuallyWithin } from '../helpers/sync-pair.js';
import { startHookDouble, type HookCall, type HookDouble } from '../helpers/webhook-app-double.js';

jest.setTimeout(60_000);

const run = promisify(execFile);
const ORG = 'org1';
const eventually = eventuallyWithin(20_000);
/** Short waits so that retries and timeouts show within a test. */
const FAST = { WEBHOOK_TIMEOUT: '1', WEBHOOK_RETRY_DELAY: '1', WEBHOOK_MAX_ATTEMPTS: '3' };
const STRANGER = { user: 'stranger', pass: 'stranger-s3cret' };

const t = new Teardown();
let css: RunningProcess;
let onCss: SyncServiceClient;
let hook: HookDouble;

const callsFor = (objectID: string): HookCall[] => hook.calls.filter((c) => c.meta.objectID === objectID);
const hookLog = (): string => JSON.stringify(hook.calls.map((c) => [c.event, c.meta.objectID, c.meta.instanceID]));

beforeAll(async () => {
  hook = await startHookDouble();
  t.add(() => hook.close());
  css = await startManaged(t, { mode: 'css', env: FAST });
  onCss = await css.client({ orgID: ORG });
  t.add(() => Promise.resolve(onCss.close()));
  await onCss.putOrganization({ orgID: ORG });
  await onCss.putOrganization({ orgID: 'org2' });
  await run(process.execPath, [BIN, 'users', 'add', STRANGER.user, '--type', 'admin', '--org', 'org2', '--secret', STRANGER.pass, '--persistence-root-path', css.root]);
  await eventually('the stranger can log in', () => raw(css, 'GET', '/api/v1/health', { auth: STRANGER }), (r) => r.status === 200);
  await onCss.registerWebhook('model', hook.url);
});
afterAll(() => t.run());

describe('on a CSS', () => {
  test("publishing an object POSTs its metadata to the type's hook, as the reference does", async () => {
    await onCss.updateObject({ objectID: 'doc', objectType: 'model', destinationType: 'edge', version: '1' }, 'version one');
    const [call] = await eventually('the call', () => Promise.resolve(callsFor('doc')), (c) => c.length === 1, hookLog);
    const meta = (await onCss.getObject('model', 'doc'))!;
    expect([call!.method, call!.path, call!.contentType, call!.event]).toEqual(['POST', '/hook', 'Application/JSON', 'available']);
    // The body is the object's metadata as O1 shows it: same keys, same values, pretty-printed.
    expect(call!.body).toBe((await raw(css, 'GET', `/api/v1/objects/${ORG}/model/doc`)).text);
    expect(call!.meta).toMatchObject({ objectID: 'doc', version: '1', instanceID: Number(meta.instanceID), deleted: false });
  });

  test('a new version calls it again; a change of destinations only does not', async () => {
    await onCss.updateObject({ objectID: 'doc', objectType: 'model', destinationType: 'edge', version: '2' }, 'version two');
    await eventually('the second call', () => Promise.resolve(callsFor('doc')), (c) => c.length === 2, hookLog);
    expect(callsFor('doc')[1]!.meta.version).toBe('2');
    await onCss.updateObjectDestinations('model', 'doc', ['edge:n9']);
    await new Promise((r) => setTimeout(r, 500));
    expect(callsFor('doc')).toHaveLength(2);
  });

  test('noData, link and metaOnly objects are announced too (the reference forgets them)', async () => {
    await onCss.updateObject({ objectID: 'nodata', objectType: 'model', destinationType: 'edge', noData: true });
    await eventually('the noData call', () => Promise.resolve(callsFor('nodata')), (c) => c.length === 1, hookLog);
    await onCss.updateObject({ objectID: 'ln', objectType: 'model', destinationType: 'edge', link: 'https://files.example.com/ln.bin' });
    await eventually('the link call', () => Promise.resolve(callsFor('ln')), (c) => c.length === 1, hookLog);
    await onCss.updateObject({ objectID: 'doc', objectType: 'model', destinationType: 'edge', version: '3', metaOnly: true });
    await eventually('the metaOnly call', () => Promise.resolve(callsFor('doc')), (c) => c.some((x) => x.meta.version === '3' && x.meta.metaOnly === true), hookLog);
  });

  test('an object published without its data is announced when the data arrives, not before', async () => {
    await onCss.updateObject({ objectID: 'later', objectType: 'model', destinationType: 'edge' });
    await new Promise((r) => setTimeout(r, 500));
    expect(callsFor('later')).toEqual([]);
    await onCss.updateObjectData('model', 'later', Buffer.from('the data'));
    const [call] = await eventually('the call', () => Promise.resolve(callsFor('later')), (c) => c.length === 1, hookLog);
    expect(call!.meta.objectSize).toBe(8);
  });

  test('deleting an object calls the hook with deleted: true', async () => {
    await onCss.deleteObject('model', 'nodata');
    const calls = await eventually('the deletion call', () => Promise.resolve(callsFor('nodata')), (c) => c.length === 2, hookLog);
    expect([calls[1]!.event, calls[1]!.meta.deleted]).toEqual(['deleted', true]);
  });

  test('the delivery log lists the hook and its deliveries, newest first, through the API and the SDK', async () => {
    const res = await raw(css, 'GET', `/api/v1/objects/${ORG}/model?webhooks=true`);
    expect(res.status).toBe(200);
    const log = await onCss.getWebhookLog('model');
    expect(log.webhooks).toEqual([hook.url]);
    expect(log.deliveries[0]).toMatchObject({ url: hook.url, event: 'deleted', objectID: 'nodata', state: 'delivered' });
    expect(log.deliveries.every((d) => d.attempts.length === 1 && d.attempts[0]!.status === 200)).toBe(true);
    expect(log.deliveries.map((d) => d.id)).toEqual([...log.deliveries.map((d) => d.id)].sort((a, b) => b - a));
  });

  test('a hook that fails and then succeeds is retried after a wait; the log shows both attempts', async () => {
    hook.script(503);
    await onCss.updateObject({ objectID: 'flaky', objectType: 'model', destinationType: 'edge' }, 'x');
    const calls = await eventually('two calls', () => Promise.resolve(callsFor('flaky')), (c) => c.length === 2, hookLog);
    expect(calls[1]!.at - calls[0]!.at).toBeGreaterThanOrEqual(900);
    const entry = await eventually('delivered', async () => (await onCss.getWebhookLog('model')).deliveries.find((d) => d.objectID === 'flaky'), (d) => d?.state === 'delivered');
    expect(entry!.attempts.map((a) => a.status)).toEqual([503, 200]);
  });

  test('a hook that does not answer times out, and the next attempt is made', async () => {
    hook.script('hang');
    await onCss.updateObject({ objectID: 'slow', objectType: 'model', destinationType: 'edge' }, 'x');
    const entry = await eventually(
      'delivered after a timeout',
      async () => (await onCss.getWebhookLog('model')).deliveries.find((d) => d.objectID === 'slow'),
      (d) => d?.state === 'delivered',
    );
    expect(entry!.attempts).toEqual([expect.objectContaining({ error: 'no answer within 1000 ms' }), expect.objectContaining({ status: 200 })]);
    expect(entry!.attempts[0]!.durationMs).toBeGreaterThanOrEqual(900);
  });

  test('a hook that keeps failing is given up after WEBHOOK_MAX_ATTEMPTS', async () => {
    hook.script(500, 500, 500);
    await onCss.updateObject({ objectID: 'broken', objectType: 'model', destinationType: 'edge' }, 'x');
    const entry = await eventually(
      'failed',
      async () => (await onCss.getWebhookLog('model')).deliveries.find((d: WebhookDelivery) => d.objectID === 'broken'),
      (d) => d?.state === 'failed',
    );
    expect(entry!.attempts.map((a) => a.status)).toEqual([500, 500, 500]);
  });

  test('publishing does not wait for the hook', async () => {
    hook.script('hang');
    const started = Date.now();
    await onCss.updateObject({ objectID: 'quick', objectType: 'model', destinationType: 'edge' }, 'x');
    expect(Date.now() - started).toBeLessThan(900);
  });

  test('link-local and cloud metadata targets are refused with the reason', async () => {
    for (const url of ['http://169.254.169.254/latest/meta-data/', 'http://metadata.google.internal/computeMetadata/v1/', 'http://[fe80::1]/hook', 'http://[fd00:ec2::254]/']) {
      const res = await raw(css, 'PUT', `/api/v1/objects/${ORG}/model`, { body: JSON.stringify({ action: 'register', url }), headers: { 'content-type': 'application/json' } });
      expect([url, res.status]).toEqual([url, 400]);
      expect(res.text).toMatch(/^Invalid webhook: .*(link-local or cloud metadata|cloud metadata service)/);
    }
    expect((await onCss.getWebhookLog('model')).webhooks).toEqual([hook.url]);
  });

  test('a type takes at most 100 webhooks; registering one already there is still fine', async () => {
    for (let i = 0; i < 100; i++) await onCss.registerWebhook('crowded', `http://127.0.0.1:9/h${i}`);
    const res = await raw(css, 'PUT', `/api/v1/objects/${ORG}/crowded`, { body: JSON.stringify({ action: 'register', url: 'http://127.0.0.1:9/one-more' }), headers: { 'content-type': 'application/json' } });
    expect([res.status, res.text]).toEqual([400, 'Invalid webhook: at most 100 webhooks per object type\n']);
    await onCss.registerWebhook('crowded', 'http://127.0.0.1:9/h7');
    expect((await onCss.getWebhookLog('crowded')).webhooks).toHaveLength(100);
  });

  test('only who may manage the type’s webhooks sees its log', async () => {
    expect((await raw(css, 'GET', `/api/v1/objects/${ORG}/model?webhooks=true`, { auth: STRANGER })).status).toBe(403);
    expect((await raw(css, 'GET', `/api/v1/objects/${ORG}/model?webhooks=true`, { auth: null })).status).toBe(403);
  });
});

describe('on a CSS with WEBHOOK_ALLOWED_NETWORKS', () => {
  test('a target outside the listed networks is refused at registration', async () => {
    const fenced = await startManaged(t, { mode: 'css', env: { WEBHOOK_ALLOWED_NETWORKS: '10.0.0.0/8' } });
    const client = await fenced.client({ orgID: ORG });
    t.add(() => Promise.resolve(client.close()));
    await client.putOrganization({ orgID: ORG });
    const res = await raw(fenced, 'PUT', `/api/v1/objects/${ORG}/model`, { body: JSON.stringify({ action: 'register', url: hook.url }), headers: { 'content-type': 'application/json' } });
    expect([res.status, res.text]).toEqual([400, 'Invalid webhook: 127.0.0.1 is outside WEBHOOK_ALLOWED_NETWORKS\n']);
    await client.registerWebhook('model', 'http://10.1.2.3/hook');
    expect((await client.getWebhookLog('model')).webhooks).toEqual(['http://10.1.2.3/hook']);
  });
});

describe('on an ESS', () => {
  test('an app registers a localhost hook, and an object its apps publish calls it', async () => {
    const ess = await startManaged(t, { mode: 'ess', env: { ORG_ID: ORG, DESTINATION_TYPE: 'edge', DESTINATION_ID: 'n1', HTTP_CSS_HOST: '127.0.0.1', HTTP_CSS_PORT: '1' } });
    const onEss = await ess.client();
    t.add(() => Promise.resolve(onEss.close()));
    const local = hook.url.replace('127.0.0.1', 'localhost');
    await onEss.registerWebhook('report', local);
    await onEss.updateObject({ objectID: 'r-local', objectType: 'report' }, 'from the edge');
    const [call] = await eventually('the call', () => Promise.resolve(callsFor('r-local')), (c) => c.length === 1, hookLog);
    expect(call!.meta).toMatchObject({ objectType: 'report', destinationOrgID: ORG });
    const log = await onEss.getWebhookLog('report');
    expect(log.webhooks).toEqual([local]);
    expect(log.deliveries[0]).toMatchObject({ objectID: 'r-local', state: 'delivered' });
  });
});
