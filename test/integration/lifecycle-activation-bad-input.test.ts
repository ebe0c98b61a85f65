/**
 * Refused activation and expiration times on the real binary: a time in the past (as an instant,
 * whatever its offset), one that does not parse as RFC 3339 (no offset, an impossible date, a
 * space for the T) is a 400 that names the field and the value, and the object it targeted reads
 * back as before. `PUT …/activate` of an unknown object is refused too. [ref rest-api §2.3]
 */
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { raw, startManaged, Teardown, type RunningProcess } from '../helpers/node-process.js';
import type { MetaData, SyncServiceClient } from '../../sdk/index.js';

jest.setTimeout(30_000);

const ORG = 'org1';
const T = 'timed';

const t = new Teardown();
let css: RunningProcess;
let client: SyncServiceClient;
let victim: MetaData;

/** Instant `ms` written in UTC+09:00: as a string it sorts after the same instant in Z. */
const plusNine = (ms: number): string => new Date(ms + 9 * 3600_000).toISOString().replace('Z', '+09:00');
const objectPath = (id: string): string => `/api/v1/objects/${ORG}/${T}/${id}`;
const metaBody = (meta: Record<string, unknown>): string => JSON.stringify({ meta: { objectID: 'victim', objectType: T, ...meta }, data: Buffer.from('new').toString('base64') });

beforeAll(async () => {
  css = await startManaged(t, { mode: 'css', env: {} });
  client = await css.client({ orgID: ORG });
  t.add(() => Promise.resolve(client.close()));
  await client.updateObject({ objectID: 'victim', objectType: T, inactive: true, activationTime: new Date(Date.now() + 3600_000).toISOString() }, 'original');
  victim = (await client.getObject(T, 'victim'))!;
});
afterAll(() => t.run());

describe('activation and expiration times that are refused (400) and change nothing', () => {
  const minuteAgo = (): number => Date.now() - 60_000;
  const cases: [string, () => Record<string, unknown>, RegExp][] = [
    ['an activationTime in the past', () => ({ inactive: true, activationTime: '2001-01-01T00:00:00Z' }), /^The activation time \(2001-01-01T00:00:00Z\) is in the past\n$/],
    ['an activationTime in the past written with a +09:00 offset', () => ({ inactive: true, activationTime: plusNine(minuteAgo()) }), /activation time .*\+09:00\) is in the past/],
    ['an activationTime without an offset', () => ({ inactive: true, activationTime: '2099-01-01T00:00:00' }), /Failed to parse activation time \(2099-01-01T00:00:00\) as an RFC3339 time/],
    ['an activationTime on 30 February', () => ({ inactive: true, activationTime: '2099-02-30T00:00:00Z' }), /Failed to parse activation time \(2099-02-30T00:00:00Z\)/],
    ['an activationTime that is not a time', () => ({ inactive: true, activationTime: 'tomorrow' }), /Failed to parse activation time \(tomorrow\) as an RFC3339 time, e\.g\. /],
    ['an expiration in the past written with a +09:00 offset', () => ({ expiration: plusNine(minuteAgo()) }), /expiration time .*\+09:00\) is in the past/],
    ['an expiration with a space for the T', () => ({ expiration: '2099-01-01 00:00:00Z' }), /Failed to parse expiration time \(2099-01-01 00:00:00Z\) as an RFC3339 time/],
    ['an expiration hour 24', () => ({ expiration: '2099-01-01T24:00:00Z' }), /Failed to parse expiration time/],
  ];

  test.each(cases)('%s', async (_name, meta, reason) => {
    const res = await raw(css, 'PUT', objectPath('victim'), { body: metaBody(meta()) });
    expect(res.status).toBe(400);
    expect(res.text).toMatch(reason);
    expect(await client.getObject(T, 'victim')).toEqual(victim);
  });

  test('a future time with an offset is accepted: the instant counts, not the string', async () => {
    // One minute ahead, written in -05:00: as a string it sorts before now in Z.
    const soon = new Date(Date.now() + 60_000 - 5 * 3600_000).toISOString().replace('Z', '-05:00');
    const res = await raw(css, 'PUT', objectPath('ok'), { body: JSON.stringify({ meta: { objectID: 'ok', objectType: T, expiration: soon } }) });
    expect(res.status).toBe(204);
    expect((await client.getObject(T, 'ok'))?.expiration).toBe(soon);
  });

  test('PUT …/activate of an unknown object is refused, and creates nothing', async () => {
    const res = await raw(css, 'PUT', `${objectPath('nobody')}/activate`);
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(res.text).toMatch(/not found/i);
    expect(await client.getObject(T, 'nobody')).toBeNull();
  });
});
