/**
 * Webhook delivery in-process: which object changes are events, the request a hook receives
 * (the reference's: POST, `Application/JSON`, the pretty metadata), retries with backoff, the
 * timeout, the bounded log, and the CSS's target policy. A real HTTP server on loopback plays
 * the app's hook (the test double of the app).
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { silentLogger } from '../../../lib/log/logger.js';
import type { Webhook } from '../../../lib/store/index.js';
import { DeliveryLog, TargetPolicy, UnresolvedTargetError, WebhookDispatcher, WebhookTargetError, parseNetworks, webhookEvent } from '../../../lib/sync/webhooks/index.js';
import { storedObject } from '../../helpers/stored-object.js';
import { startHookDouble, type HookDouble } from '../../helpers/webhook-app-double.js';

/** The app's hook: answers each call with the next of `answers` ('hang' never answers), then 200. */
async function hookDouble(answers: (number | 'hang')[] = []): Promise<HookDouble> {
  const hook = await startHookDouble();
  hook.script(...answers);
  return hook;
}

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const open = new TargetPolicy({ open: true });
const hooksOf = (urls: string[]) => ({ listWebhooks: (orgID: string, objectType: string): Promise<Webhook[]> => Promise.resolve(urls.map((url) => ({ orgID, objectType, url }))) });

describe('which changes call the webhooks', () => {
  const v1 = storedObject('org1', 'a', 1n);
  it('a new object stored ready, or a new version, is available', () => {
    expect(webhookEvent(null, v1)).toBe('available');
    expect(webhookEvent(v1, storedObject('org1', 'a', 2n))).toBe('available');
  });
  it('an object that gets its data (notReady → ready) is available', () => {
    expect(webhookEvent(storedObject('org1', 'a', 1n, {}, { status: 'notReady' }), storedObject('org1', 'a', 2n))).toBe('available');
  });
  it('a received object is available when complete, not while partly received', () => {
    const partial = storedObject('org1', 'a', 1n, {}, { status: 'partiallyreceived' });
    expect(webhookEvent(null, partial)).toBeNull();
    expect(webhookEvent(partial, { ...partial, status: 'completelyReceived' })).toBe('available');
  });
  it('marks and in-place changes of an announced version are not events', () => {
    const got = storedObject('org1', 'a', 1n, {}, { status: 'completelyReceived' });
    expect(webhookEvent(got, { ...got, status: 'objreceived' })).toBeNull();
    expect(webhookEvent(v1, { ...v1, meta: { ...v1.meta, destinationID: 'n2' } })).toBeNull();
  });
  it('a received object turning into a deletion placeholder is deleted, once', () => {
    const deleted = storedObject('org1', 'a', 1n, { deleted: true }, { status: 'objdeleted' });
    expect(webhookEvent(v1, deleted)).toBe('deleted');
    expect(webhookEvent(deleted, deleted)).toBeNull();
  });
});

describe('WebhookDispatcher', () => {
  let d: WebhookDispatcher | null = null;
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    d?.stop();
    for (const c of closers.splice(0)) await c();
  });

  it("posts the object's metadata as the reference does, with the event in a header", async () => {
    const hook = await hookDouble();
    closers.push(hook.close);
    d = new WebhookDispatcher({ store: hooksOf([hook.url]), policy: open, log: silentLogger, timeoutMs: 2000, maxAttempts: 1, retryDelayMs: 10 });
    d.onObjectStored(null, storedObject('org1', 'a', 7n, { description: '<x>' }));
    await until('the call', () => hook.calls.length === 1);
    const call = hook.calls[0]!;
    expect([call.method, call.contentType, call.event]).toEqual(['POST', 'Application/JSON', 'available']);
    expect(call.body).toContain('\n  "objectID": "a"');
    expect(call.body).toContain('"instanceID": 7,');
    // Go's encoder escapes <, > and &.
    expect(call.body).toContain('"description": "\\u003cx\\u003e"');
    await until('the log', () => d!.deliveries('org1', 'model')[0]?.state === 'delivered');
  });

  it('a deletion carries deleted: true', async () => {
    const hook = await hookDouble();
    closers.push(hook.close);
    d = new WebhookDispatcher({ store: hooksOf([hook.url]), policy: open, log: silentLogger, timeoutMs: 2000, maxAttempts: 1, retryDelayMs: 10 });
    d.onObjectRemoved(storedObject('org1', 'a', 3n));
    await until('the call', () => hook.calls.length === 1);
    expect(hook.calls[0]!.event).toBe('deleted');
    expect(JSON.parse(hook.calls[0]!.body)).toMatchObject({ objectID: 'a', deleted: true });
  });

  it('retries a failing hook with a doubling wait, logging every attempt', async () => {
    const hook = await hookDouble([503, 500]);
    closers.push(hook.close);
    d = new WebhookDispatcher({ store: hooksOf([hook.url]), policy: open, log: silentLogger, timeoutMs: 2000, maxAttempts: 5, retryDelayMs: 100 });
    d.onObjectStored(null, storedObject('org1', 'a', 1n));
    await until('delivered', () => d!.deliveries('org1', 'model')[0]?.state === 'delivered');
    const [entry] = d.deliveries('org1', 'model');
    expect(entry!.attempts.map((a) => a.status)).toEqual([503, 500, 200]);
    const starts = entry!.attempts.map((a) => Date.parse(a.at));
    expect(starts[1]! - starts[0]!).toBeGreaterThanOrEqual(90);
    expect(starts[2]! - starts[1]!).toBeGreaterThanOrEqual(190);
  });

  it('gives up after the last attempt', async () => {
    const hook = await hookDouble([500, 500, 500]);
    closers.push(hook.close);
    d = new WebhookDispatcher({ store: hooksOf([hook.url]), policy: open, log: silentLogger, timeoutMs: 2000, maxAttempts: 2, retryDelayMs: 10 });
    d.onObjectStored(null, storedObject('org1', 'a', 1n));
    await until('failed', () => d!.deliveries('org1', 'model')[0]?.state === 'failed');
    expect(hook.calls).toHaveLength(2);
  });

  it('a hook that does not answer times out', async () => {
    const hook = await hookDouble(['hang']);
    closers.push(hook.close);
    d = new WebhookDispatcher({ store: hooksOf([hook.url]), policy: open, log: silentLogger, timeoutMs: 200, maxAttempts: 1, retryDelayMs: 10 });
    d.onObjectStored(null, storedObject('org1', 'a', 1n));
    await until('failed', () => d!.deliveries('org1', 'model')[0]?.state === 'failed');
    expect(d.deliveries('org1', 'model')[0]!.attempts[0]!.error).toBe('no answer within 200 ms');
  });

  it('logs a delivery beyond the outstanding limit as failed instead of queueing it', async () => {
    const hook = await hookDouble(['hang']);
    closers.push(hook.close);
    d = new WebhookDispatcher({ store: hooksOf([hook.url]), policy: open, log: silentLogger, timeoutMs: 5000, maxAttempts: 1, retryDelayMs: 10, maxOutstanding: 1 });
    d.onObjectStored(null, storedObject('org1', 'a', 1n));
    await until('the first call', () => hook.calls.length === 1);
    d.onObjectStored(null, storedObject('org1', 'b', 2n));
    await until('the second logged', () => d!.deliveries('org1', 'model').length === 2);
    expect(d.deliveries('org1', 'model').map((x) => [x.objectID, x.state, x.attempts[0]?.error])).toEqual([
      ['b', 'failed', 'not attempted: too many webhook deliveries outstanding'],
      ['a', 'pending', undefined],
    ]);
  });

  it('accepts at registration a name that does not resolve yet, and retries a call while it does not', async () => {
    d = new WebhookDispatcher({
      store: hooksOf(['http://later.example/x']),
      policy: new TargetPolicy({ open: false, resolve: () => Promise.reject(new Error('ENOTFOUND')) }),
      log: silentLogger,
      timeoutMs: 200,
      maxAttempts: 2,
      retryDelayMs: 10,
    });
    await expect(d.checkTarget('http://later.example/x')).resolves.toBeUndefined();
    await expect(d.checkTarget('http://169.254.169.254/')).rejects.toThrow(WebhookTargetError);
    d.onObjectStored(null, storedObject('org1', 'a', 1n));
    await until('failed', () => d!.deliveries('org1', 'model')[0]?.state === 'failed');
    expect(d.deliveries('org1', 'model')[0]!.attempts.map((a) => a.error)).toEqual(['later.example does not resolve (ENOTFOUND)', 'later.example does not resolve (ENOTFOUND)']);
  });

  it('does not call a target the policy refuses at delivery time, and does not retry it', async () => {
    d = new WebhookDispatcher({
      store: hooksOf(['http://hooks.example/x']),
      policy: new TargetPolicy({ open: false, resolve: () => Promise.resolve(['169.254.169.254']) }),
      log: silentLogger,
      timeoutMs: 200,
      maxAttempts: 5,
      retryDelayMs: 10,
    });
    d.onObjectStored(null, storedObject('org1', 'a', 1n));
    await until('failed', () => d!.deliveries('org1', 'model')[0]?.state === 'failed');
    expect(d.deliveries('org1', 'model')[0]!.attempts).toEqual([expect.objectContaining({ error: expect.stringContaining('link-local or cloud metadata') })]);
  });
});

describe('DeliveryLog', () => {
  const entry = (type: string, id: number) => ({ id, url: 'u', event: 'available' as const, objectType: type, objectID: 'o', instanceID: 1n, state: 'pending' as const, createdAt: '', attempts: [] });
  it('keeps the last N deliveries per type and a bounded number of types', () => {
    const log = new DeliveryLog({ perType: 2, types: 2 });
    for (let i = 1; i <= 3; i++) log.add('org1', entry('t1', i));
    expect(log.list('org1', 't1').map((d) => d.id)).toEqual([3, 2]);
    log.add('org1', entry('t2', 4));
    log.add('org1', entry('t3', 5));
    expect(log.list('org1', 't1')).toEqual([]);
    expect(log.list('org1', 't3')).toHaveLength(1);
  });

  it('forgets every type of a deleted org, and nothing of another org', () => {
    const log = new DeliveryLog();
    log.add('org1', entry('t1', 1));
    log.add('org1', entry('t2', 2));
    log.add('org2', entry('t1', 3));
    log.forgetOrg('org1');
    expect([log.list('org1', 't1'), log.list('org1', 't2'), log.list('org2', 't1').map((d) => d.id)]).toEqual([[], [], [3]]);
  });
});

describe('TargetPolicy', () => {
  const css = (resolve: (h: string) => Promise<string[]>, allowed = '') => new TargetPolicy({ open: false, resolve, allowedNetworks: parseNetworks(allowed) });
  const refusal = (p: TargetPolicy, url: string) => p.check(url).then(() => null, (e: unknown) => (e instanceof WebhookTargetError ? e.message : String(e)));

  it('an ESS calls any http(s) URL, localhost included', async () => {
    await expect(open.check('http://localhost:9999/x')).resolves.toEqual([]);
    expect(await refusal(open, 'ftp://localhost/x')).toMatch(/only http and https/);
  });
  it('a CSS refuses link-local and cloud metadata addresses, by address or by name', async () => {
    const p = css((h) => Promise.resolve(h === 'evil.example' ? ['169.254.10.1'] : h === 'v6.example' ? ['fe80::1'] : ['203.0.113.5']));
    expect(await refusal(p, 'http://169.254.169.254/latest/meta-data')).toMatch(/link-local or cloud metadata/);
    expect(await refusal(p, 'http://[fd00:ec2::254]/')).toMatch(/link-local or cloud metadata/);
    expect(await refusal(p, 'http://[::ffff:169.254.169.254]/')).toMatch(/link-local or cloud metadata/);
    expect(await refusal(p, 'http://metadata.google.internal/computeMetadata/v1/')).toMatch(/cloud metadata service/);
    expect(await refusal(p, 'http://evil.example/')).toMatch(/169\.254\.10\.1/);
    expect(await refusal(p, 'http://v6.example/')).toMatch(/fe80::1/);
    await expect(p.check('https://hooks.example/x')).resolves.toEqual(['203.0.113.5']);
  });
  it('with WEBHOOK_ALLOWED_NETWORKS, every address must be inside a listed network', async () => {
    const p = css((h) => Promise.resolve(h === 'inside.example' ? ['10.1.2.3'] : ['10.1.2.3', '192.0.2.1']), '10.0.0.0/8, fd12::/16');
    await expect(p.check('http://inside.example/')).resolves.toEqual(['10.1.2.3']);
    expect(await refusal(p, 'http://mixed.example/')).toMatch(/192\.0\.2\.1 is outside WEBHOOK_ALLOWED_NETWORKS/);
    expect(await refusal(p, 'http://127.0.0.1/')).toMatch(/outside/);
  });
  it('a name that does not resolve is not a refusal, but an error to retry', async () => {
    const p = css(() => Promise.reject(new Error('getaddrinfo ENOTFOUND nowhere.invalid')));
    const err = await p.check('http://nowhere.invalid/').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnresolvedTargetError);
    expect(err).not.toBeInstanceOf(WebhookTargetError);
    expect((err as Error).message).toMatch(/nowhere.invalid does not resolve/);
  });
  it('parseNetworks names a bad entry', () => {
    expect(() => parseNetworks('10.0.0.0/8, nonsense')).toThrow(/"nonsense" is not a network/);
    expect(() => parseNetworks('10.0.0.0/33')).toThrow(/invalid prefix/);
  });
});
