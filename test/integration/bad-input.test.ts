/**
 * Refused input on the real binary. Every refusal is a 4xx with a reason a person can act on,
 * and leaves nothing partial behind: the objects a request targeted read back exactly as
 * before (metadata and data), and no object appears that was not there. [ref rest-api §1.1,
 * §1.2 O2/O16/O17, §2.3, §5.10]
 */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { raw, startManaged, Teardown, type RunningProcess } from '../helpers/node-process.js';
import type { MetaData, SyncServiceClient } from '../../sdk/index.js';

jest.setTimeout(30_000);

const ORG = 'org1';
const T = 'bad';
/** The JSON body limit this CSS runs with (EDGESYNC_MAX_BODY_SIZE). */
const LIMIT = 2048;
const ORIGINAL = 'the original data';

const t = new Teardown();
let css: RunningProcess;
let client: SyncServiceClient;
/** The object most bad requests aim at, as it was before them. */
let victim: MetaData;

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

/**
 * A request with the path sent exactly as written (fetch would resolve `..` and `%2E%2E`).
 * A body given as an array of pieces goes out chunked, without a Content-Length.
 */
function send(method: string, path: string, opts: { body?: string | string[]; headers?: Record<string, string>; auth?: boolean } = {}): Promise<Answer> {
  const url = new URL(css.url);
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.auth !== false) headers.authorization = `Basic ${Buffer.from(`${css.admin!.appKey}:${css.admin!.secret}`).toString('base64')}`;
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = httpRequest({ host: url.hostname, port: url.port, method, path, headers, agent: false }, (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
    });
    // The server may answer (413) and close before a long body is written: that is not a failure.
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    if (Array.isArray(opts.body)) {
      for (const piece of opts.body) req.write(piece);
      req.end();
    } else {
      req.end(opts.body);
    }
  });
}

/** The node's log lines at error level or above (pino JSON on its output). */
function errorLines(node: RunningProcess): string[] {
  return node
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{') && (JSON.parse(line) as { level: number }).level >= 50);
}

async function download(type: string, id: string): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of await client.fetchObjectData(type, id)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** The victim reads back exactly as before, data included, and is still the only object of its type. */
async function expectVictimIntact(): Promise<void> {
  expect(await client.getObject(T, 'victim')).toEqual(victim);
  expect(await download(T, 'victim')).toBe(ORIGINAL);
  expect((await client.listAllObjects(T)).map((o) => o.objectID)).toEqual(['victim']);
}

const objectPath = (id: string, type = T): string => `/api/v1/objects/${ORG}/${type}/${id}`;
const metaBody = (meta: Record<string, unknown>, extra: Record<string, unknown> = {}): string =>
  JSON.stringify({ meta: { objectID: 'victim', objectType: T, ...meta }, ...extra });

beforeAll(async () => {
  css = await startManaged(t, { mode: 'css', env: { EDGESYNC_MAX_BODY_SIZE: String(LIMIT) } });
  client = await css.client({ orgID: ORG });
  t.add(() => Promise.resolve(client.close()));
  await client.putOrganization({ orgID: ORG });
  await client.updateObject({ objectID: 'victim', objectType: T, description: 'before' }, ORIGINAL);
  victim = (await client.getObject(T, 'victim'))!;
});
afterAll(() => t.run());

describe('object PUT bodies that are refused (400) and change nothing', () => {
  const cases: [string, string, string | RegExp][] = [
    ['malformed JSON', '{"meta":{"objectID":"victim"', /^Invalid JSON for update\. Error: .+\n$/],
    ['an empty body', '', 'Invalid JSON for update. Error: EOF\n'],
    ['a JSON array instead of an object', '[]', 'Invalid JSON for update. Error: json: cannot unmarshal array into Go value of type objectUpdate\n'],
    ['objectID as a number', metaBody({ objectID: 5 }), /^Invalid JSON for update\. Error: json: cannot unmarshal number into Go struct field .*objectID of type string\n$/],
    ['consumers as a string', metaBody({ consumers: 'x' }), /^Invalid JSON for update\. Error: json: cannot unmarshal string into Go struct field .*consumers of type int/],
    ['destinationsList as a string', metaBody({ destinationsList: 'a' }), /^Invalid JSON for update\. Error: json: cannot unmarshal string into Go struct field .*destinationsList of type \[\]string\n$/],
    ['data that is not base64', metaBody({}, { data: 'not base64!' }), /^Invalid JSON for update\. Error: illegal base64 data/],
    ['no objectID', JSON.stringify({ meta: { objectType: T } }), "Object's meta data does not contain object's ID\n"],
    ['an objectID other than the URL\'s', metaBody({ objectID: 'other' }), "Object ID (victim) in the URL doesn't match the object-id (other) in the payload\n"],
    ['an objectType other than the URL\'s', metaBody({ objectType: 'other' }), "Object type (bad) in the URL doesn't match the object-type (other) in the payload\n"],
    ['a destinationOrgID other than the URL org', metaBody({ destinationOrgID: 'org2' }), /^Destination organization ID \(org2\) in the payload doesn't match the organization \(org1\) in the URL\n$/],
    ['deleted: true', metaBody({ deleted: true }), 'Object marked as deleted\n'],
    ['an expiration in the past', metaBody({ expiration: '2001-01-01T00:00:00Z' }), /^The expiration time \(2001-01-01T00:00:00Z\) is in the past\n$/],
    ['an expiration that is not RFC3339', metaBody({ expiration: 'next week' }), /next week.*RFC3339/],
    ['a description with HTML tags', metaBody({ description: '<script>alert(1)</script>' }), /HTML tags/],
    ['metaOnly together with data', metaBody({ metaOnly: true }, { data: 'AAAA' }), "Can't update data if MetaOnly is true\n"],
    ['a destinationID without a destinationType', metaBody({ destinationID: 'n1' }), /destination type/i],
    ['destinationType together with destinationsList', metaBody({ destinationType: 'edge', destinationsList: ['edge:n1'] }), /destinations list/],
    ['< or > in destinationsList', metaBody({ destinationsList: ['edge:<n1>'] }), 'Unsupported char in destinationsList. Error: destinationsList contains unsupported char: < or > (edge:<n1>)\n'],
    ['an unsupported hashAlgorithm', metaBody({ hashAlgorithm: 'MD5' }), /MD5/],
    ['a version with invalid characters', metaBody({ version: '1 0' }), /version \(1 0\) contains invalid characters/],
  ];

  test.each(cases)('%s', async (_name, body, reason) => {
    const res = await raw(css, 'PUT', objectPath('victim'), { body });
    expect(res.status).toBe(400);
    if (typeof reason === 'string') expect(res.text).toBe(reason);
    else expect(res.text).toMatch(reason);
    await expectVictimIntact();
    expect(await client.getObject(T, 'other')).toBeNull();
    expect(await client.getObject('other', 'victim')).toBeNull();
  });
});

describe('ids and types that are not valid names (400) create nothing', () => {
  const cases: [string, string, string | RegExp][] = [
    ['"/" (as %2F) in the id', objectPath('a%2Fb'), 'object ID (a/b) contains invalid characters\n'],
    ['"/" (as %2F) in the type', `/api/v1/objects/${ORG}/b%2Fd/victim`, 'object Type (b/d) contains invalid characters\n'],
    ['".." (as %2E%2E) as the id', objectPath('%2E%2E'), 'object ID (..) contains invalid characters\n'],
    ['"." (as %2e) as the type', `/api/v1/objects/${ORG}/%2e/victim`, 'object Type (.) contains invalid characters\n'],
    ['a NUL (%00)', objectPath('a%00b'), 'object ID (a\u0000b) contains invalid characters\n'],
    ['a space (%20)', objectPath('a%20b'), 'object ID (a b) contains invalid characters\n'],
    ['a percent sign (%25)', objectPath('a%25b'), 'object ID (a%b) contains invalid characters\n'],
    ['markup, which is HTML-escaped in the reason', objectPath('%3Cb%3E'), 'object ID (&lt;b&gt;) contains invalid characters\n'],
    ['a broken %-escape', objectPath('a%zz'), /^Invalid URL encoding/],
    ['a space in the org', `/api/v1/objects/org%201/${T}/victim`, 'Organization ID (org 1) contains invalid characters\n'],
  ];

  test.each(cases)('%s', async (_name, path, reason) => {
    const res = await send('PUT', path, { body: metaBody({}) });
    expect(res.status).toBe(400);
    if (typeof reason === 'string') expect(res.text).toBe(reason);
    else expect(res.text).toMatch(reason);
    await expectVictimIntact();
  });

  test('a literal ".." or "//" in the path is redirected (301) to the cleaned path, not followed', async () => {
    const dots = await send('PUT', `/api/v1/objects/${ORG}/${T}/../victim`, { body: metaBody({ description: 'after' }) });
    expect([dots.status, dots.headers.location]).toEqual([301, `/api/v1/objects/${ORG}/victim`]);
    const slashes = await send('PUT', `/api/v1/objects/${ORG}//${T}/victim`, { body: metaBody({ description: 'after' }) });
    expect([slashes.status, slashes.headers.location]).toEqual([301, `/api/v1/objects/${ORG}/${T}/victim`]);
    await expectVictimIntact();
  });
});

describe('interrupted uploads', () => {
  /** Declares `declared` bytes, sends `sent` of them, then drops the connection. */
  function cutOff(path: string, declared: number, sent: number, headers: Record<string, string> = {}): Promise<void> {
    const url = new URL(css.url);
    const auth = `Basic ${Buffer.from(`${css.admin!.appKey}:${css.admin!.secret}`).toString('base64')}`;
    return new Promise((resolve) => {
      const req = httpRequest({
        host: url.hostname,
        port: url.port,
        method: 'PUT',
        path,
        agent: false,
        headers: { ...headers, authorization: auth, 'content-length': String(declared) },
      });
      req.on('error', () => resolve());
      req.on('response', (res) => {
        res.resume();
        resolve();
      });
      // Give the server a moment to start storing what it got before the connection drops.
      req.write(Buffer.alloc(sent, 0x5a), () => setTimeout(() => req.destroy(), 100));
      req.on('close', () => resolve());
    });
  }

  test('a data PUT cut off half-way leaves the old data intact and readable', async () => {
    await cutOff(`${objectPath('victim')}/data`, 1024 * 1024, 512 * 1024);
    await expectVictimIntact();
    expect(await client.getObjectStatus(T, 'victim')).toBe('ready');
  });

  test('a chunk cut off half-way can be sent again, and the upload completes correctly', async () => {
    await client.updateObject({ objectID: 'resumed', objectType: 'cut' }, 'before');
    const path = `/api/v1/objects/${ORG}/cut/resumed/data`;
    await cutOff(path, 100, 50, { 'content-range': 'bytes 0-99/200' });
    expect(await download('cut', 'resumed')).toBe('before');
    const first = 'a'.repeat(100);
    const second = 'b'.repeat(100);
    expect((await raw(css, 'PUT', path, { body: first, headers: { 'content-range': 'bytes 0-99/200' } })).status).toBe(204);
    expect((await raw(css, 'PUT', path, { body: second, headers: { 'content-range': 'bytes 100-199/200' } })).status).toBe(204);
    expect(await download('cut', 'resumed')).toBe(first + second);
  });
});

describe('Content-Range uploads that are refused (400) keep both the old data and the upload in progress', () => {
  const path = `/api/v1/objects/${ORG}/chunky/c1/data`;
  let before: MetaData;
  const chunk = (body: string, contentRange: string): ReturnType<typeof raw> => raw(css, 'PUT', path, { body, headers: { 'content-range': contentRange } });

  beforeAll(async () => {
    await client.updateObject({ objectID: 'c1', objectType: 'chunky' }, 'chunky original');
    before = (await client.getObject('chunky', 'c1'))!;
    expect((await chunk('ABCD', 'bytes 0-3/10')).status).toBe(204);
  });

  const cases: [string, string, string, RegExp][] = [
    ['a gap after what was received', 'GH', 'bytes 6-7/10', /gap/],
    ['an overlap with what was received', 'CDEF', 'bytes 2-5/10', /overlaps/],
    ['a range past the total', 'IJK', 'bytes 8-10/10', /^Failed to parse Content-Range header, Error: .*total/],
    ['an end before the start', 'EF', 'bytes 5-4/10', /^Failed to parse Content-Range header, Error: .*before the start/],
    ['garbage', 'EF', 'lots of bytes', /^Failed to parse Content-Range header, Error: /],
    ['a "*" total', 'EF', 'bytes 4-5/*', /^Failed to parse Content-Range header, Error: /],
    ['the Range syntax instead', 'EF', 'bytes=4-5/10', /^Failed to parse Content-Range header, Error: /],
    ['another total mid-upload', 'EFGH', 'bytes 4-7/20', /does not match the upload in progress/],
    ['a Content-Length other than the range length', 'EFG', 'bytes 4-7/10', /^Content-Length \(3\) does not match the Content-Range length \(4\)\n$/],
  ];

  test.each(cases)('%s', async (_name, body, contentRange, reason) => {
    const res = await chunk(body, contentRange);
    expect(res.status).toBe(400);
    expect(res.text).toMatch(reason);
    expect(await client.getObject('chunky', 'c1')).toEqual(before);
    expect(await download('chunky', 'c1')).toBe('chunky original');
  });

  test('a first chunk that does not start at 0 is refused on an object without an upload', async () => {
    await client.updateObject({ objectID: 'c2', objectType: 'chunky' }, 'untouched');
    const res = await raw(css, 'PUT', `/api/v1/objects/${ORG}/chunky/c2/data`, { body: 'XY', headers: { 'content-range': 'bytes 4-5/10' } });
    expect(res.status).toBe(400);
    expect(res.text).toMatch(/first chunk must start at offset 0/);
    expect(await download('chunky', 'c2')).toBe('untouched');
  });

  test('after all those refusals the upload in progress completes with the right bytes', async () => {
    expect((await chunk('EFGHIJ', 'bytes 4-9/10')).status).toBe(204);
    expect(await download('chunky', 'c1')).toBe('ABCDEFGHIJ');
  });
});

describe('Range downloads that cannot be served', () => {
  test.each(['bytes=17-20', 'bytes=100-200'])('%s, outside the object, is 416 with Content-Range: bytes */size', async (range) => {
    const res = await raw(css, 'GET', `${objectPath('victim')}/data`, { headers: { range } });
    expect(res.status).toBe(416);
    expect(res.headers.get('content-range')).toBe(`bytes */${ORIGINAL.length}`);
    expect(res.text).toMatch(/past the end/);
  });

  test.each(['bytes=a-b', 'bytes=5-', 'bytes=-5', 'bytes=0-1,3-4', 'items=0-3', 'bytes', 'bytes=5-2'])('%s is 400', async (range) => {
    const res = await raw(css, 'GET', `${objectPath('victim')}/data`, { headers: { range } });
    expect(res.status).toBe(400);
    expect(res.text).toMatch(/^Invalid Range header/);
    expect(res.headers.get('content-range')).toBeNull();
  });
});

describe(`JSON bodies over the limit (${LIMIT} bytes) are 413`, () => {
  const tooLong = 'x'.repeat(LIMIT);

  test('an object PUT with a declared Content-Length', async () => {
    const res = await raw(css, 'PUT', objectPath('victim'), { body: metaBody({ description: tooLong }) });
    expect([res.status, res.text]).toEqual([413, `Request body is larger than the configured limit of ${LIMIT} bytes\n`]);
    await expectVictimIntact();
  });

  test('an object PUT sent chunked, without a length', async () => {
    const body = metaBody({ description: tooLong });
    const res = await send('PUT', objectPath('victim'), { body: [body.slice(0, 1000), body.slice(1000, 2000), body.slice(2000)] });
    expect(res.status).toBe(413);
    await expectVictimIntact();
  });

  test('inline data counts toward the limit', async () => {
    const res = await raw(css, 'PUT', objectPath('victim'), { body: metaBody({}, { data: Buffer.alloc(LIMIT).toString('base64') }) });
    expect(res.status).toBe(413);
    await expectVictimIntact();
  });

  test('destinations and webhook bodies too', async () => {
    await client.updateObject({ objectID: 'listed', objectType: 'limits', destinationsList: ['edge:n1'] });
    const many = JSON.stringify(Array.from({ length: 300 }, (_, i) => `edge:node${i}`));
    expect((await raw(css, 'PUT', `/api/v1/objects/${ORG}/limits/listed/destinations`, { body: many })).status).toBe(413);
    expect((await client.getObject('limits', 'listed'))!.destinationsList).toEqual(['edge:n1']);
    const hook = JSON.stringify({ action: 'register', url: `http://example.com/${tooLong}` });
    expect((await raw(css, 'PUT', `/api/v1/objects/${ORG}/limits`, { body: hook })).status).toBe(413);
  });

  test('object data is not a JSON body: a data PUT far over the limit is accepted', async () => {
    await client.updateObject({ objectID: 'large', objectType: 'limits' });
    const data = Buffer.alloc(100 * LIMIT, 0x61);
    await client.updateObjectData('limits', 'large', data);
    expect((await client.getObject('limits', 'large'))!.objectSize).toBe(data.length);
  });
});

describe('an org nobody created (orgs are implicit, as in the reference)', () => {
  test('is used at once: an unknown object there is a plain 404, a publish is stored', async () => {
    const fresh = await css.client({ orgID: 'fresh' });
    try {
      const get = await raw(css, 'GET', '/api/v1/objects/fresh/x/o');
      expect([get.status, get.text]).toEqual([404, '']);
      await fresh.updateObject({ objectID: 'o', objectType: 'x' }, 'data');
      expect(await fresh.getObject('x', 'o')).toMatchObject({ objectID: 'o', destinationOrgID: 'fresh' });
      expect((await raw(css, 'GET', '/api/v1/objects/fresh?list_object_type=true')).status).toBe(200);
    } finally {
      fresh.close();
    }
  });

  test('authentication still comes first (403)', async () => {
    expect((await raw(css, 'PUT', '/api/v1/objects/nope/x/o', { body: '{}', auth: null })).status).toBe(403);
  });
});

describe('missing or wrong credentials (403) change nothing', () => {
  const wrong = { user: 'admin', pass: 'not the password' };
  // Every row has its four entries: jest takes a missing one for a `done` callback.
  const requests: [string, string, string, string | null][] = [
    ['object PUT', 'PUT', objectPath('victim'), metaBody({ description: 'hijacked' })],
    ['object DELETE', 'DELETE', objectPath('victim'), null],
    ['data PUT', 'PUT', `${objectPath('victim')}/data`, 'hijacked'],
    ['destinations PUT', 'PUT', `${objectPath('victim')}/destinations`, '["edge:evil"]'],
    ['activate', 'PUT', `${objectPath('victim')}/activate`, null],
    ['object PUT of a new id', 'PUT', objectPath('intruder'), metaBody({ objectID: 'intruder' })],
  ];

  test.each(requests)('%s', async (_name, method, path, body) => {
    for (const auth of [null, wrong]) {
      const res = await raw(css, method, path, { auth, ...(body !== null ? { body } : {}) });
      expect([res.status, res.text]).toEqual([403, 'Unauthorized']);
    }
    await expectVictimIntact();
  });
});

describe('after all of that', () => {
  test('the node still serves normally', async () => {
    const health = await raw(css, 'GET', '/api/v1/health');
    expect(health.status).toBe(200);
    await client.updateObject({ objectID: 'fine', objectType: 'after' });
    await client.updateObjectData('after', 'fine', Buffer.from('all good'));
    expect(await download('after', 'fine')).toBe('all good');
    await client.updateObject({ ...victim, description: 'after' }, 'new data');
    expect((await client.getObject(T, 'victim'))!.description).toBe('after');
    expect(await download(T, 'victim')).toBe('new data');
  });

  test('none of it was taken for a server failure: nothing was logged at error level', () => {
    expect(errorLines(css)).toEqual([]);
  });
});
