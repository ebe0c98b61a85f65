import { describe, expect, it } from '@jest/globals';
import { emptyMetaData, type MetaData, type Policy } from '../../../lib/model/index.js';
import {
  authorizeSpiClaim,
  canAccessDestinations,
  canCreateObject,
  canListOrgs,
  canManageOrgs,
  canManageWebhooks,
  canReadHealth,
  canResend,
  canShutdown,
  EMPTY_ACLS,
  isListingRole,
  mayWriteInOrg,
  missingIsNotFound,
  objectReadAccess,
  readAccess,
  serviceMayAccessObject,
  versionInRange,
  type AccessContext,
  type AclEntry,
  type AclLookup,
  type Identity,
  type ReadAccess,
} from '../../../lib/security/index.js';

/** In-memory ACLs keyed `org:key` (a stand-in until the ACL store exists). */
function memoryAcls(objects: Record<string, AclEntry[]>, destinations: Record<string, AclEntry[]> = {}): AclLookup {
  return {
    objectsAcl: (org, key) => Promise.resolve(objects[`${org}:${key}`] ?? []),
    destinationsAcl: (org, key) => Promise.resolve(destinations[`${org}:${key}`] ?? []),
  };
}
const writer = (username: string, aclUserType: 'user' | 'node' = 'user'): AclEntry => ({ username, aclUserType, aclRole: 'aclWriter' });
const reader = (username: string, aclUserType: 'user' | 'node' = 'user'): AclEntry => ({ username, aclUserType, aclRole: 'aclReader' });
const dest = (username: string, aclUserType: 'user' | 'node' = 'user'): AclEntry => ({ username, aclUserType, aclRole: 'na' });

const SA: Identity = { role: 'syncAdmin', orgID: '', userID: 'root' };
const ADM: Identity = { role: 'admin', orgID: 'org1', userID: 'boss' };
const ADM2: Identity = { role: 'admin', orgID: 'org2', userID: 'boss2' };
const OADM: Identity = { role: 'objectAdmin', orgID: 'org1', userID: 'clerk' };
const USR: Identity = { role: 'user', orgID: 'org1', userID: 'joe' };
const USR_OTHER: Identity = { role: 'user', orgID: 'org1', userID: 'ann' };
const USR2: Identity = { role: 'user', orgID: 'org2', userID: 'joe' };
const NODE: Identity = { role: 'node', orgID: 'org1', userID: 'joe' };
const SVC: Identity = { role: 'service', orgID: 'org1', userID: 'svcorg/1.5.0/gps' };
const EN: Identity = { role: 'edgeNode', orgID: 'org1', userID: 'car/car1' };

const cssAcls = memoryAcls(
  { 'org1:model': [reader('ann'), writer('joe')], 'org1:*': [reader('*', 'node')] },
  { 'org1:car': [dest('joe')], 'org1:*': [dest('ann')] },
);
const CSS: AccessContext = { nodeType: 'CSS', nodeOrg: '', acls: cssAcls };
const ESS: AccessContext = { nodeType: 'ESS', nodeOrg: 'org1', acls: EMPTY_ACLS };

function meta(fields: Partial<MetaData>): MetaData {
  return { ...emptyMetaData(), objectID: 'o1', objectType: 'model', destinationOrgID: 'org1', ...fields };
}
function policy(services: Policy['services']): Policy {
  return { properties: null, constraints: null, services, timestamp: 0n };
}

describe('read access (rest-api §4.3)', () => {
  const rows: [string, Identity | null, AccessContext, string, ReadAccess][] = [
    ['anon', null, CSS, 'model', 'none'],
    ['SA, any org', SA, CSS, 'model', 'full'],
    ['EN', EN, CSS, 'model', 'none'],
    ['ADM of the org', ADM, CSS, 'model', 'full'],
    ['ADM of another org is downgraded to a user: public only', ADM2, CSS, 'model', 'public'],
    ['OADM reads like ADM', OADM, CSS, 'model', 'full'],
    ['USR in the type ACL', USR, CSS, 'model', 'full'],
    ['USR as a reader in the type ACL', USR_OTHER, CSS, 'model', 'full'],
    ['USR in no ACL', USR, CSS, 'weights', 'public'],
    ['USR of another org', USR2, CSS, 'model', 'public'],
    ['NODE through `*` of the all-types ACL (type node)', NODE, CSS, 'weights', 'full'],
    ['NODE on the manifest type without ACL', { ...NODE, userID: 'n9' }, { ...CSS, acls: EMPTY_ACLS }, 'agent_upgrade_manifests', 'full'],
    ['USR is not matched by node-type entries', USR_OTHER, CSS, 'weights', 'public'],
    ['SVC on the CSS', SVC, CSS, 'model', 'none'],
    ['ESS: any role of the node org', USR, ESS, 'model', 'full'],
    ['ESS: SVC of the node org (narrowed per object later)', SVC, ESS, 'model', 'full'],
    ['ESS: another org', USR2, ESS, 'model', 'none'],
    ['ESS: EN', EN, ESS, 'model', 'none'],
  ];
  it.each(rows)('%s', async (_label, id, ctx, type, expected) => {
    await expect(readAccess(id, ctx, 'org1', type)).resolves.toBe(expected);
  });
});

describe('access to one object (rest-api §4.3, §4.5)', () => {
  it('a public object is readable without full access, but only as public', async () => {
    await expect(objectReadAccess(USR2, CSS, 'org1', meta({ public: true }))).resolves.toBe('public');
    await expect(objectReadAccess(USR2, CSS, 'org1', meta({ public: false }))).resolves.toBe('none');
    await expect(objectReadAccess(EN, CSS, 'org1', meta({ public: true }))).resolves.toBe('none');
    await expect(objectReadAccess(USR, CSS, 'org1', meta({ public: true }))).resolves.toBe('full');
  });

  it('narrows an ESS service to the objects whose policy names it', async () => {
    const forGps = meta({ destinationPolicy: policy([{ orgID: 'svcorg', arch: 'amd64', serviceName: 'gps', version: '[1.0.0,2.0.0)' }]) });
    const forOther = meta({ destinationPolicy: policy([{ orgID: 'svcorg', arch: 'amd64', serviceName: 'cam', version: '1.0.0' }]) });
    await expect(objectReadAccess(SVC, ESS, 'org1', forGps)).resolves.toBe('full');
    await expect(objectReadAccess(SVC, ESS, 'org1', meta({}))).resolves.toBe('full');
    await expect(objectReadAccess(SVC, ESS, 'org1', forOther)).resolves.toBe('none');
    await expect(objectReadAccess(SVC, ESS, 'org1', { ...forOther, public: true })).resolves.toBe('public');
    const removed = [{ orgID: 'svcorg', arch: 'amd64', serviceName: 'gps', version: '1.0.0' }];
    await expect(objectReadAccess(SVC, ESS, 'org1', forOther, removed)).resolves.toBe('full');
  });

  it('matches service org, name and version range', () => {
    const svc = (version: string, orgID = 'svcorg', serviceName = 'gps') => meta({ destinationPolicy: policy([{ orgID, arch: 'x', serviceName, version }]) });
    expect(serviceMayAccessObject(SVC, svc('1.5.0'))).toBe(true);
    expect(serviceMayAccessObject(SVC, svc('2.0.0'))).toBe(false);
    expect(serviceMayAccessObject(SVC, svc('[1.0.0,1.5.0]'))).toBe(true);
    expect(serviceMayAccessObject(SVC, svc('[1.0.0,1.5.0)'))).toBe(false);
    expect(serviceMayAccessObject(SVC, svc('1.0.0', 'otherorg'))).toBe(false);
    expect(serviceMayAccessObject(SVC, svc('1.0.0', 'svcorg', 'cam'))).toBe(false);
    expect(serviceMayAccessObject({ ...SVC, userID: 'garbage' }, svc('1.0.0'))).toBe(false);
    expect(serviceMayAccessObject(SVC, meta({ destinationPolicy: policy([]) }))).toBe(true);
  });
});

describe('a missing object (rest-api §1.2 O1, §4.3)', () => {
  it('is 404 to who reads the whole type, 403 to the rest, and always 403 to a service on an ESS', () => {
    expect(missingIsNotFound(ADM, CSS, 'full')).toBe(true);
    expect(missingIsNotFound(USR, CSS, 'public')).toBe(false);
    expect(missingIsNotFound(USR, ESS, 'full')).toBe(true);
    expect(missingIsNotFound(SVC, ESS, 'full')).toBe(false);
    expect(missingIsNotFound(SA, ESS, 'full')).toBe(true);
  });
});

describe('version ranges', () => {
  const rows: [string, string, boolean][] = [
    ['1.0.0', '1.0.0', true],
    ['0.9.9', '1.0.0', false],
    ['3.0.0', '1.0.0', true],
    ['1.0.0', '[1.0.0,2.0.0)', true],
    ['1.0.0', '(1.0.0,2.0.0)', false],
    ['2.0.0', '[1.0.0,2.0.0)', false],
    ['2.0.0', '[1.0.0,2.0.0]', true],
    ['99.0.0', '[1.0.0,INFINITY)', true],
    ['1.10', '[1.9,2)', true],
    ['1.2', '1.2.0', true],
    ['1.2.3-beta', '1.0.0', false],
    ['1.0.0', 'latest', false],
  ];
  it.each(rows)('%s in %s → %s', (version, range, expected) => {
    expect(versionInRange(version, range)).toBe(expected);
  });
});

describe('write check (rest-api §4.4)', () => {
  const toCar = meta({ destinationType: 'car' });
  const rows: [string, Identity | null, AccessContext, string, MetaData, boolean][] = [
    ['anon', null, CSS, 'org1', toCar, false],
    ['SA in any org', SA, CSS, 'org9', toCar, true],
    ['EN', EN, CSS, 'org1', toCar, false],
    ['ADM of the org', ADM, CSS, 'org1', toCar, true],
    ['ADM of another org', ADM2, CSS, 'org1', toCar, false],
    ['OADM', OADM, CSS, 'org1', toCar, true],
    ['OADM on the manifest type', OADM, CSS, 'org1', meta({ objectType: 'agent_upgrade_manifests', destinationType: 'car' }), false],
    ['ADM on the manifest type', ADM, CSS, 'org1', meta({ objectType: 'agent_upgrade_manifests' }), true],
    ['USR writer, to a destination type in its ACL', USR, CSS, 'org1', toCar, true],
    ['USR writer, to a list of such destinations', USR, CSS, 'org1', meta({ destinationsList: ['car:c1', 'car:c2'] }), true],
    ['USR writer, to a destination type not in its ACL', USR, CSS, 'org1', meta({ destinationType: 'boat' }), false],
    ['USR writer, broadcast without the `*` destinations ACL', USR, CSS, 'org1', meta({}), false],
    ['USR writer, policy-based: no destination check', USR, CSS, 'org1', meta({ destinationPolicy: policy(null) }), true],
    ['USR reader', USR_OTHER, CSS, 'org1', toCar, false],
    ['USR of another org', USR2, CSS, 'org1', toCar, false],
    ['NODE with only a reader entry', NODE, CSS, 'org1', meta({ objectType: 'weights', destinationType: 'car' }), false],
    ['SVC on the CSS', SVC, CSS, 'org1', toCar, false],
    ['ESS: any role of the node org, SVC included', SVC, ESS, 'org1', meta({}), true],
    ['ESS: USR of the node org', USR, ESS, 'org1', meta({}), true],
    ['ESS: another org', USR2, ESS, 'org1', meta({}), false],
    ['ESS: EN', EN, ESS, 'org1', meta({}), false],
  ];
  it.each(rows)('%s', async (_label, id, ctx, org, m, expected) => {
    await expect(canCreateObject(id, ctx, org, m)).resolves.toBe(expected);
  });

  it('before an object is looked up for a write, only who could write in the org goes on (to a 404 if missing)', () => {
    const cases: [Identity | null, AccessContext, boolean][] = [
      [null, CSS, false],
      [SA, CSS, true],
      [ADM, CSS, true],
      [OADM, CSS, true],
      [USR, CSS, true],
      [NODE, CSS, true],
      [ADM2, CSS, false],
      [USR2, CSS, false],
      [SVC, CSS, false],
      [EN, CSS, false],
      [SVC, ESS, true],
      [USR2, ESS, false],
    ];
    for (const [id, ctx, expected] of cases) expect([id?.userID, ctx.nodeType, mayWriteInOrg(id, ctx, 'org1')]).toEqual([id?.userID, ctx.nodeType, expected]);
  });

  it('lets the type ACL decide before the all-types ACL, first matching entry first', async () => {
    const acls = memoryAcls({ 'org1:model': [reader('*'), writer('joe')], 'org1:*': [writer('joe')] }, { 'org1:*': [dest('*')] });
    await expect(canCreateObject(USR, { ...CSS, acls }, 'org1', meta({}))).resolves.toBe(false);
    const onlyAll = memoryAcls({ 'org1:*': [writer('*')] }, { 'org1:*': [dest('joe')] });
    await expect(canCreateObject(USR, { ...CSS, acls: onlyAll }, 'org1', meta({}))).resolves.toBe(true);
  });
});

describe('route gates (rest-api §4.2)', () => {
  const ids: [string, Identity | null][] = [
    ['anon', null],
    ['SA', SA],
    ['ADM', ADM],
    ['ADM other org', ADM2],
    ['OADM', OADM],
    ['USR', USR],
    ['NODE', NODE],
    ['SVC', SVC],
    ['EN', EN],
  ];
  /** Expected results per gate, in the order of `ids`. */
  const gates: [string, (id: Identity | null) => boolean, boolean[]][] = [
    ['listings O18–O20', isListingRole, [false, true, true, true, true, true, true, false, false]],
    ['destinations of org1', (id) => canAccessDestinations(id, 'org1'), [false, true, true, false, true, true, true, true, false]],
    ['orgs and ACLs of org1', (id) => canManageOrgs(id, 'org1'), [false, true, true, false, false, false, false, false, false]],
    ['the org list', canListOrgs, [false, true, true, true, false, false, false, false, false]],
    ['resend', canResend, [false, true, true, true, false, true, false, false, false]],
    ['resend on an ESS of org1: its org only', (id) => canResend(id, 'org1'), [false, true, true, false, false, true, false, false, false]],
    ['shutdown', canShutdown, [false, true, false, false, false, false, false, false, false]],
    ['health', canReadHealth, [false, true, true, true, true, true, true, true, false]],
  ];
  for (const [gate, check, expected] of gates) {
    it.each(ids.map(([label, id], i) => [label, id, expected[i]] as const))(`${gate}: %s → %s`, (_label, id, allowed) => {
      expect(check(id)).toBe(allowed);
    });
  }

  it('webhooks: no SVC or EN; CSS users need aclWriter; ESS members of the org may', async () => {
    const cases: [Identity | null, AccessContext, string, boolean][] = [
      [null, CSS, 'model', false],
      [SA, CSS, 'model', true],
      [ADM, CSS, 'model', true],
      [ADM2, CSS, 'model', false],
      [OADM, CSS, 'model', true],
      [USR, CSS, 'model', true],
      [USR_OTHER, CSS, 'model', false],
      [USR2, CSS, 'model', false],
      [SVC, CSS, 'model', false],
      [EN, CSS, 'model', false],
      [USR, ESS, 'model', true],
      [SVC, ESS, 'model', false],
      [USR2, ESS, 'model', false],
    ];
    for (const [id, ctx, type, expected] of cases) await expect(canManageWebhooks(id, ctx, 'org1', type)).resolves.toBe(expected);
  });
});

describe('SPI identity claims (rest-api §4.6)', () => {
  it('an EN claims itself only, an ADM any destination of its org, a USR one in its destinations ACL', async () => {
    await expect(authorizeSpiClaim(EN, 'org1/car/car1', cssAcls)).resolves.toEqual({ orgID: 'org1', destType: 'car', destID: 'car1' });
    await expect(authorizeSpiClaim(EN, 'org1/car/car2', cssAcls)).resolves.toBeNull();
    await expect(authorizeSpiClaim(ADM, 'org1/boat/b7', cssAcls)).resolves.toEqual({ orgID: 'org1', destType: 'boat', destID: 'b7' });
    await expect(authorizeSpiClaim(ADM, 'org2/boat/b7', cssAcls)).resolves.toBeNull();
    await expect(authorizeSpiClaim(USR, 'org1/car/c9', cssAcls)).resolves.toEqual({ orgID: 'org1', destType: 'car', destID: 'c9' });
    await expect(authorizeSpiClaim(USR, 'org1/boat/b1', cssAcls)).resolves.toBeNull();
    await expect(authorizeSpiClaim(SA, 'org1/car/car1', cssAcls)).resolves.toBeNull();
    await expect(authorizeSpiClaim(EN, 'org1/car', cssAcls)).resolves.toBeNull();
    await expect(authorizeSpiClaim(null, 'org1/car/car1', cssAcls)).resolves.toBeNull();
  });
});
