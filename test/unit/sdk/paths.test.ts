import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { objectPath, withQuery } from '../../../sdk/paths.js';
import { NotFoundError, SyncServiceClient } from '../../../sdk/index.js';
import { json, RecordingServer } from './recording-server.js';

describe('path building', () => {
  it('puts the org first for a CSS and leaves it out for an ESS', () => {
    expect(objectPath('org1', 'type', 'id', 'data')).toBe('/api/v1/objects/org1/type/id/data');
    expect(objectPath(undefined, 'type', 'id', 'data')).toBe('/api/v1/objects/type/id/data');
    expect(objectPath('org1', 'type')).toBe('/api/v1/objects/org1/type');
    expect(objectPath(undefined, 'type')).toBe('/api/v1/objects/type');
  });

  it('encodes each segment so separators inside names cannot change the route', () => {
    expect(objectPath('my org', 'a/b', 'x?y#z%', 'status')).toBe('/api/v1/objects/my%20org/a%2Fb/x%3Fy%23z%25/status');
    expect(objectPath(undefined, 'модель', 'id')).toBe('/api/v1/objects/%D0%BC%D0%BE%D0%B4%D0%B5%D0%BB%D1%8C/id');
  });

  it('drops undefined query values and encodes the rest', () => {
    expect(withQuery('/p', { a: undefined })).toBe('/p');
    expect(withQuery('/p', { a: true, b: 'x/y', c: 5n, d: undefined })).toBe('/p?a=true&b=x%2Fy&c=5');
  });
});

describe('routes the client calls', () => {
  let server: RecordingServer;
  beforeAll(async () => {
    server = await RecordingServer.start();
  });
  afterAll(async () => {
    await server.close();
  });
  beforeEach(() => {
    server.requests.length = 0;
    // Listings answer the server's "empty" 404; health needs a body; mutations get 204.
    server.respond = (req) => (req.url.startsWith('/api/v1/health') ? json({}) : req.method === 'GET' ? { status: 404 } : { status: 204 });
  });

  /** Calls every object-level method once on `client`. */
  async function callObjectRoutes(client: SyncServiceClient): Promise<void> {
    await client.getObject('t', 'i');
    await client.updateObject({ objectType: 't', objectID: 'i' });
    await client.deleteObject('t', 'i');
    await client.updateObjectData('t', 'i', Buffer.from('x'));
    await expect(client.fetchObjectData('t', 'i')).rejects.toBeInstanceOf(NotFoundError);
    await client.getObjectStatus('t', 'i');
    await client.getObjectDestinations('t', 'i');
    await client.updateObjectDestinations('t', 'i', ['dt:di']);
    await client.addOrRemoveDestinations('t', 'i', 'add', ['dt:di']);
    await client.markObjectConsumed('t', 'i');
    await client.markObjectReceived('t', 'i');
    await client.markObjectDeleted('t', 'i');
    await client.activateObject('t', 'i');
    await client.markPolicyReceived('t', 'i');
    await client.listObjects('t');
    await client.listObjects('t', { received: true });
    await client.listAllObjects('t');
    await client.registerWebhook('t', 'http://hook');
    await client.deleteWebhook('t', 'http://hook');
  }

  const objectRoutes = (prefix: string): string[] => [
    `GET ${prefix}/t/i`,
    `PUT ${prefix}/t/i`,
    `DELETE ${prefix}/t/i`,
    `PUT ${prefix}/t/i/data`,
    `GET ${prefix}/t/i/data`,
    `GET ${prefix}/t/i/status`,
    `GET ${prefix}/t/i/destinations`,
    `PUT ${prefix}/t/i/destinations`,
    `POST ${prefix}/t/i/destinations`,
    `PUT ${prefix}/t/i/consumed`,
    `PUT ${prefix}/t/i/received`,
    `PUT ${prefix}/t/i/deleted`,
    `PUT ${prefix}/t/i/activate`,
    `PUT ${prefix}/t/i/policyreceived`,
    `GET ${prefix}/t`,
    `GET ${prefix}/t?received=true`,
    `GET ${prefix}/t?all_objects=true`,
    `PUT ${prefix}/t`,
    `PUT ${prefix}/t`,
  ];

  it('uses /objects/{org}/... and the org-wide routes for a CSS client', async () => {
    const client = new SyncServiceClient({ url: server.url, appKey: 'k', appSecret: 's', orgID: 'org1' });
    await callObjectRoutes(client);
    await client.listObjectsWithDestinationPolicy({ received: true, service: 'svcOrg/svc', since: 1_700_000_000_000_000_001n });
    await client.listObjectsWithDestinationPolicy({ since: new Date(2) });
    await client.listObjectsWithFilters({ destinationPolicy: true, since: new Date(0), objectType: 't', noData: false });
    await client.listObjectTypes();
    await client.getDestinations();
    await client.getDestinationObjects('dt', 'di');
    await client.listOrganizations();
    await client.putOrganization({ orgID: 'org2', address: 'tcp://broker' });
    await client.deleteOrganization('org2');
    await client.health(true);
    await client.health();
    await client.resend();
    client.close();
    expect(server.lines).toEqual([
      ...objectRoutes('/api/v1/objects/org1'),
      'GET /api/v1/objects/org1?destination_policy=true&received=true&service=svcOrg%2Fsvc&since=1700000000000000001',
      'GET /api/v1/objects/org1?destination_policy=true&since=2000000',
      'GET /api/v1/objects/org1?filters=true&destinationPolicy=true&since=1970-01-01T00%3A00%3A00.000Z&objectType=t&noData=false',
      'GET /api/v1/objects/org1?list_object_type=true',
      'GET /api/v1/destinations/org1',
      'GET /api/v1/destinations/org1/dt/di/objects',
      'GET /api/v1/organizations',
      'PUT /api/v1/organizations/org2',
      'DELETE /api/v1/organizations/org2',
      'GET /api/v1/health?details=true',
      'GET /api/v1/health',
      'POST /api/v1/resend',
    ]);
  });

  it('uses /objects/{type}/... for an ESS client and refuses CSS-only routes locally', async () => {
    const client = new SyncServiceClient({ url: server.url, appKey: 'k', appSecret: 's' });
    await callObjectRoutes(client);
    await expect(client.listObjectTypes()).rejects.toThrow(TypeError);
    await expect(client.listObjectsWithFilters({})).rejects.toThrow(TypeError);
    await expect(client.listObjectsWithDestinationPolicy()).rejects.toThrow(TypeError);
    await expect(client.getDestinations()).rejects.toThrow('getDestinations is a CSS route');
    await expect(client.getDestinationObjects('a', 'b')).rejects.toThrow(TypeError);
    client.close();
    expect(server.lines).toEqual(objectRoutes('/api/v1/objects'));
  });

  it('encodes names in the request line', async () => {
    const client = new SyncServiceClient({ url: server.url, appKey: 'k', appSecret: 's', orgID: 'my org' });
    await client.markObjectConsumed('a b', 'x/y?z');
    client.close();
    expect(server.lines).toEqual(['PUT /api/v1/objects/my%20org/a%20b/x%2Fy%3Fz/consumed']);
  });

  it('sends the JSON bodies of the reference', async () => {
    const client = new SyncServiceClient({ url: server.url, appKey: 'k', appSecret: 's', orgID: 'org1' });
    await client.updateObject({ objectType: 't', objectID: 'i', destinationType: 'dt' }, 'héllo');
    await client.registerWebhook('t', 'https://hook/x');
    await client.addOrRemoveDestinations('t', 'i', 'remove', ['dt:1']);
    await client.updateObjectDestinations('t', 'i', ['dt:2']);
    await client.putOrganization({ orgID: 'org2', user: 'u', password: 'p', address: 'a' });
    client.close();
    const bodies = server.requests.map((r) => JSON.parse(r.body.toString('utf8')) as unknown);
    expect(bodies).toEqual([
      { meta: { objectType: 't', objectID: 'i', destinationType: 'dt' }, data: Buffer.from('héllo').toString('base64') },
      { action: 'register', url: 'https://hook/x' },
      { action: 'remove', destinations: ['dt:1'] },
      ['dt:2'],
      { orgID: 'org2', user: 'u', password: 'p', address: 'a' },
    ]);
    expect(server.requests.every((r) => r.headers['content-type'] === 'application/json')).toBe(true);
  });
});
