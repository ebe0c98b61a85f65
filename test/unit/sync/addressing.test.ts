import { describe, expect, it } from '@jest/globals';
import { emptyMetaData, isDestinationsListEntry, parseDestinationsListEntry, type MetaData } from '../../../lib/model/index.js';
import { addressingOf, isAddressedTo, namedNodes, namesDestination, reachesLateRegistrations } from '../../../lib/sync/addressing.js';

function meta(m: Partial<MetaData>): MetaData {
  return { ...emptyMetaData(), objectID: 'o', objectType: 't', destinationOrgID: 'org1', ...m };
}
const cam1 = { destinationOrgID: 'org1', destinationType: 'camera', destinationID: 'c1' };
const cam2 = { ...cam1, destinationID: 'c2' };
const gate = { destinationOrgID: 'org1', destinationType: 'gateway', destinationID: 'g1' };
const otherOrg = { ...cam1, destinationOrgID: 'org2' };

describe('addressing an object', () => {
  it('to one node reaches that node only', () => {
    const m = meta({ destinationType: 'camera', destinationID: 'c1' });
    expect(addressingOf(m)).toBe('node');
    expect([cam1, cam2, gate].map((n) => isAddressedTo(m, n))).toEqual([true, false, false]);
  });

  it('to a type reaches every node of the type, including later ones', () => {
    const m = meta({ destinationType: 'camera' });
    expect([cam1, cam2, gate].map((n) => isAddressedTo(m, n))).toEqual([true, true, false]);
    expect(reachesLateRegistrations(m)).toBe(true);
  });

  it('to a list reaches exactly the listed nodes', () => {
    const m = meta({ destinationsList: ['camera:c2', 'gateway:g1'] });
    expect([cam1, cam2, gate].map((n) => isAddressedTo(m, n))).toEqual([false, true, true]);
    expect(reachesLateRegistrations(m)).toBe(false);
  });

  it('to nobody in particular is a broadcast to the whole org', () => {
    const m = meta({});
    expect(addressingOf(m)).toBe('all');
    expect([cam1, gate, otherOrg].map((n) => isAddressedTo(m, n))).toEqual([true, true, false]);
  });

  it('by policy names no node by itself', () => {
    const m = meta({ destinationPolicy: { properties: null, constraints: null, services: null, timestamp: 1n } });
    expect(addressingOf(m)).toBe('policy');
    expect(isAddressedTo(m, cam1)).toBe(false);
  });

  it('never crosses organizations', () => {
    expect(isAddressedTo(meta({ destinationType: 'camera' }), otherOrg)).toBe(false);
  });

  it('names the nodes it addresses explicitly, registered or not', () => {
    expect(namedNodes(meta({ destinationsList: ['camera:c2', 'gateway:g1'] }))).toEqual([
      { destinationType: 'camera', destinationID: 'c2' },
      { destinationType: 'gateway', destinationID: 'g1' },
    ]);
    expect(namedNodes(meta({ destinationType: 'camera', destinationID: 'c1' }))).toEqual([{ destinationType: 'camera', destinationID: 'c1' }]);
    expect(namedNodes(meta({ destinationType: 'camera' }))).toEqual([]);
  });
});

describe("the API's destination filter of an object listing", () => {
  it('matches the type (and id) the object names itself, in its own fields or its list', () => {
    const node = meta({ destinationType: 'camera', destinationID: 'c1' });
    const list = meta({ destinationsList: ['camera:c2', 'gateway:g1'] });
    expect([namesDestination(node, 'camera'), namesDestination(node, 'camera', 'c1'), namesDestination(node, 'camera', 'c2')]).toEqual([true, true, false]);
    expect([namesDestination(list, 'camera'), namesDestination(list, 'camera', 'c2'), namesDestination(list, 'camera', 'c1'), namesDestination(list, 'gate')]).toEqual([true, true, false, false]);
  });

  it('matches neither a broadcast nor a policy-addressed object, as the reference', () => {
    expect(namesDestination(meta({}), 'camera')).toBe(false);
    expect(namesDestination(meta({ destinationPolicy: { properties: null, constraints: null, services: null, timestamp: 1n } }), 'camera')).toBe(false);
  });
});

describe('a destinationsList entry', () => {
  it('is `type:id`, checked and read in one place', () => {
    expect(parseDestinationsListEntry('camera:c1')).toEqual({ destType: 'camera', destID: 'c1' });
    expect(['camera:c1', 'a:b'].map(isDestinationsListEntry)).toEqual([true, true]);
    expect(['camera', ':c1', 'camera:', 'a:b:c', ''].map(isDestinationsListEntry)).toEqual([false, false, false, false, false]);
  });
});
