import { describe, expect, it } from '@jest/globals';
import { BadRequestError, decodeObjectUpdate, validateObjectUpdate, type ObjectUpdate } from '../../../lib/model/index.js';

const ctx = { orgID: 'org1', objectType: 'model', objectID: 'm1', nodeType: 'CSS' as const, now: new Date('2030-01-01T00:00:00Z') };

function update(meta: Record<string, unknown>, extra: Record<string, unknown> = {}): ObjectUpdate {
  return decodeObjectUpdate({ meta: { objectID: 'm1', objectType: 'model', ...meta }, ...extra });
}

function reason(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof BadRequestError) return e.message;
    throw e;
  }
  return '';
}

describe('decoding an object update body', () => {
  it('matches keys case-insensitively and ignores unknown ones, as Go does', () => {
    const u = decodeObjectUpdate({ META: { OBJECTID: 'm1', objecttype: 'model', doNotSend: true, Public: true } });
    expect(u.meta).toMatchObject({ objectID: 'm1', objectType: 'model', public: true });
  });

  it('reads base64 data, and "" as present but empty', () => {
    expect(update({}, { data: 'aGk=' }).data?.toString()).toBe('hi');
    expect(update({}, { data: '' }).data?.length).toBe(0);
    expect(update({}).data).toBeUndefined();
  });

  it('refuses values of the wrong type with the reference prefix', () => {
    expect(reason(() => decodeObjectUpdate({ meta: { objectID: 5 } }))).toMatch(/^Invalid JSON for update\. Error: json: cannot unmarshal number into Go struct field MetaData\.objectID of type string/);
    expect(reason(() => decodeObjectUpdate({ meta: { consumers: 1.5 } }))).toMatch(/of type int64/);
    expect(reason(() => decodeObjectUpdate({ meta: { destinationsList: 'a:b' } }))).toMatch(/\[\]string/);
    expect(reason(() => decodeObjectUpdate({ meta: {}, data: '***' }))).toMatch(/base64/);
  });

  it('leaves a field at its zero value when it is null', () => {
    expect(decodeObjectUpdate({ meta: { description: null, destinationsList: null } }).meta).toMatchObject({ description: '', destinationsList: null });
  });
});

describe('validating an object update against its URL', () => {
  it('reports a URL/body id mismatch in the reference wording', () => {
    expect(reason(() => validateObjectUpdate(update({ objectID: 'other' }), ctx))).toBe("Object ID (m1) in the URL doesn't match the object-id (other) in the payload");
  });

  it('checks in the reference order: the id comes before the hash algorithm', () => {
    expect(reason(() => validateObjectUpdate(update({ objectID: '', hashAlgorithm: 'MD5' }), ctx))).toBe("Object's meta data does not contain object's ID");
  });

  it('refuses a destinations list together with a destination type, and on the ESS', () => {
    expect(reason(() => validateObjectUpdate(update({ destinationType: 't', destinationsList: ['t:1'] }), ctx))).toMatch(/both/);
    expect(reason(() => validateObjectUpdate(update({ destinationsList: [] }), { ...ctx, nodeType: 'ESS' }))).toMatch(/ESS/);
  });

  it('refuses expiration in the past, and any expiration on the ESS', () => {
    expect(reason(() => validateObjectUpdate(update({ expiration: '2020-01-01T00:00:00Z' }), ctx))).toMatch(/past/);
    expect(reason(() => validateObjectUpdate(update({ expiration: '2031-01-01T00:00:00Z' }), { ...ctx, nodeType: 'ESS' }))).toBe('Object expiration is disabled on ESS');
  });

  it('refuses deleted=true, metaOnly with data, and HTML in the description', () => {
    expect(reason(() => validateObjectUpdate(update({ deleted: true }), ctx))).toBe('Object marked as deleted');
    expect(reason(() => validateObjectUpdate(update({ metaOnly: true }, { data: 'aGk=' }), ctx))).toBe("Can't update data if MetaOnly is true");
    expect(reason(() => validateObjectUpdate(update({ description: 'a <b>bold</b> claim' }), ctx))).toMatch(/HTML/);
  });

  it('defaults destinationOrgID to the URL org and refuses another org', () => {
    const u = update({});
    validateObjectUpdate(u, ctx);
    expect(u.meta.destinationOrgID).toBe('org1');
    expect(reason(() => validateObjectUpdate(update({ destinationOrgID: 'org2' }), ctx))).toMatch(/doesn't match the organization/);
  });

  it('accepts a well-formed policy and refuses a service without a version', () => {
    const service = { orgID: 'o', arch: 'amd64', serviceName: 's', version: '[1.0.0,2.0.0)' };
    expect(() => validateObjectUpdate(update({ destinationPolicy: { properties: [{ name: 'p', value: 1 }], services: [service] } }), ctx)).not.toThrow();
    expect(reason(() => validateObjectUpdate(update({ destinationPolicy: { services: [{ ...service, version: '' }] } }), ctx))).toMatch(/service/);
  });
});
