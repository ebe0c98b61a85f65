import { describe, expect, it } from '@jest/globals';
import { BadRequestError } from '../../../lib/model/index.js';
import { parseDestinationHeader, parseSpiPath, spiEarlyPath, spiObjectPath } from '../../../lib/transport/http/spi-paths.js';

describe('SPI paths', () => {
  it('recognises the registration family', () => {
    expect(parseSpiPath('/spi/v1/register/org1/edge/n1')).toEqual({ kind: 'registration', action: 'register', orgID: 'org1', destinationType: 'edge', destinationID: 'n1' });
    expect(parseSpiPath('/spi/v1/register-new/org1/edge/n1/')).toMatchObject({ action: 'register-new', destinationID: 'n1' });
    expect(parseSpiPath('/spi/v1/ping/org1/edge/n1')).toMatchObject({ action: 'ping' });
    expect(parseSpiPath('/spi/v1/unregister/org1/edge/n1')).toMatchObject({ action: 'unregister' });
  });

  it('treats the bare objects collection as the poll', () => {
    expect(parseSpiPath('/spi/v1/objects/')).toEqual({ kind: 'poll' });
    expect(parseSpiPath('/spi/v1/objects')).toEqual({ kind: 'poll' });
  });

  it('parses object actions with and without the data id', () => {
    expect(parseSpiPath('/spi/v1/objects/org1/model/m1/17/16/data')).toEqual({
      kind: 'object',
      orgID: 'org1',
      objectType: 'model',
      objectID: 'm1',
      instanceID: 17n,
      dataID: 16n,
      action: 'data',
    });
    expect(parseSpiPath('/spi/v1/objects/org1/model/m1/17/ackDelete')).toMatchObject({ instanceID: 17n, action: 'ackDelete' });
    expect(parseSpiPath('/spi/v1/objects/org1/model/m1/17/ackDelete')).not.toHaveProperty('dataID');
  });

  it('recognises the resend request', () => {
    expect(parseSpiPath('/spi/v1/objects/org1/resend')).toEqual({ kind: 'resend', orgID: 'org1' });
  });

  it('recognises the early data of an upload (our extension), and round-trips the path an ESS builds', () => {
    expect(parseSpiPath('/spi/v1/early/org1/model/m1')).toEqual({ kind: 'early', orgID: 'org1', objectType: 'model', objectID: 'm1' });
    expect(parseSpiPath(spiEarlyPath({ orgID: 'o', objectType: 't', objectID: 'ид' }))).toEqual({ kind: 'early', orgID: 'o', objectType: 't', objectID: 'ид' });
    expect(() => parseSpiPath('/spi/v1/early/org1/model/m1/extra')).toThrow(BadRequestError);
    expect(() => parseSpiPath('/spi/v1/early/org1/model/<bad>')).toThrow(BadRequestError);
  });

  it('reads ids of any size up to 2^63 − 1 exactly, as the reference sends them, and refuses larger ones', () => {
    const path = '/spi/v1/objects/myorg/demo-b/obj1/1796426501048846235/9223372036854775807/updated';
    expect(parseSpiPath(path)).toMatchObject({ instanceID: 1796426501048846235n, dataID: 9223372036854775807n });
    expect(spiObjectPath({ orgID: 'myorg', objectType: 'demo-b', objectID: 'obj1', instanceID: 1796426501048846235n, dataID: 0n }, 'received')).toBe(
      '/spi/v1/objects/myorg/demo-b/obj1/1796426501048846235/0/received',
    );
    expect(() => parseSpiPath('/spi/v1/objects/myorg/demo-b/obj1/9223372036854775808/1/updated')).toThrow(/out of range/);
  });

  it('round-trips the path an ESS builds', () => {
    const path = spiObjectPath({ orgID: 'o', objectType: 't', objectID: 'ид', instanceID: 5n, dataID: 4n }, 'received');
    expect(parseSpiPath(path)).toMatchObject({ objectID: 'ид', instanceID: 5n, dataID: 4n, action: 'received' });
  });

  it.each([
    ['an unknown action', '/spi/v1/objects/o/t/i/1/1/steal'],
    ['a non-numeric instance id', '/spi/v1/objects/o/t/i/x/1/data'],
    ['traversal', '/spi/v1/objects/o/t/..%2F..%2Fetc/1/1/data'],
    ['a scheme in a name', '/spi/v1/register/o/http:%2F%2Fx/n1'],
    ['a control character', '/spi/v1/register/o/edge/n%0A1'],
    ['a wrong depth', '/spi/v1/objects/o/t/i/data'],
    ['an unknown family', '/spi/v1/admin/o/t/i'],
    ['bad percent-encoding', '/spi/v1/register/o/edge/%E0%A4%A'],
  ])('refuses %s with a 400', (_what, path) => {
    expect(() => parseSpiPath(path)).toThrow(BadRequestError);
  });
});

describe('X-Sync-Service-Dest', () => {
  it('names org, destination type and id', () => {
    expect(parseDestinationHeader('org1/edge/n1')).toEqual({ orgID: 'org1', destinationType: 'edge', destinationID: 'n1' });
  });

  it('is required and must have three valid parts', () => {
    for (const bad of [undefined, '', 'org1/edge', 'org1/edge/n1/x', 'org1/ed ge/n1']) {
      expect(() => parseDestinationHeader(bad)).toThrow(BadRequestError);
    }
  });
});
