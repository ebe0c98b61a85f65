import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import {
  BadRequestError,
  ConflictError,
  NetworkError,
  NotFoundError,
  SyncServiceClient,
  SyncServiceError,
  TimeoutError,
  TooManyRequestsError,
  UnauthorizedError,
} from '../../../sdk/index.js';
import { json, metaData, RecordingServer } from './recording-server.js';

describe('error mapping', () => {
  let server: RecordingServer;
  let client: SyncServiceClient;
  beforeAll(async () => {
    server = await RecordingServer.start();
    client = new SyncServiceClient({ url: server.url, appKey: 'k', appSecret: 's', orgID: 'org1' });
  });
  afterAll(async () => {
    client.close();
    await server.close();
  });
  beforeEach(() => {
    server.requests.length = 0;
  });

  it.each([
    [400, BadRequestError, 'Failed to delete the object. Error: Object not found\n'],
    [403, UnauthorizedError, 'Unauthorized'],
    [404, NotFoundError, ''],
    [409, ConflictError, 'ignored\n'],
    [429, TooManyRequestsError, ''],
    [500, SyncServiceError, 'Failed to store\n'],
    [503, SyncServiceError, ''],
  ])('maps %i to its class with the plain-text body, method and path', async (status, kind, body) => {
    server.respond = () => ({ status, body });
    const failure = client.deleteObject('t', 'i');
    await expect(failure).rejects.toBeInstanceOf(kind);
    await expect(failure).rejects.toMatchObject({ status, body, method: 'DELETE', path: '/api/v1/objects/org1/t/i' });
  });

  it('keeps the body in the message, trimmed', async () => {
    server.respond = () => ({ status: 400, body: 'Invalid JSON for update. Error: EOF\n' });
    await expect(client.updateObject({ objectType: 't', objectID: 'i' })).rejects.toThrow(
      'PUT /api/v1/objects/org1/t/i failed with status 400: Invalid JSON for update. Error: EOF',
    );
  });

  it('turns empty-listing 404s into [] and a missing object into null', async () => {
    server.respond = () => ({ status: 404 });
    await expect(client.listObjects('t')).resolves.toEqual([]);
    await expect(client.listAllObjects('t')).resolves.toEqual([]);
    await expect(client.getObjectDestinations('t', 'i')).resolves.toEqual([]);
    await expect(client.listObjectTypes()).resolves.toEqual([]);
    await expect(client.getDestinations()).resolves.toEqual([]);
    await expect(client.listOrganizations()).resolves.toEqual([]);
    await expect(client.getObject('t', 'i')).resolves.toBeNull();
    await expect(client.getObjectStatus('t', 'i')).resolves.toBeNull();
  });

  it('does not hide a 404 on a mutation', async () => {
    server.respond = () => ({ status: 404 });
    await expect(client.updateObjectData('t', 'i', Buffer.from('x'))).rejects.toBeInstanceOf(NotFoundError);
    await expect(client.markObjectConsumed('t', 'i')).rejects.toBeInstanceOf(NotFoundError);
  });

  it('does not hide a 403 on a listing', async () => {
    server.respond = () => ({ status: 403, body: 'Unauthorized' });
    await expect(client.listObjects('t')).rejects.toBeInstanceOf(UnauthorizedError);
  });

  it('accepts a JSON null listing as empty and parses real ones', async () => {
    server.respond = () => json(null);
    await expect(client.listObjects('t')).resolves.toEqual([]);
    const listed = [metaData({ objectID: 'a' })];
    server.respond = () => json(listed);
    await expect(client.listObjects('t')).resolves.toEqual(listed);
  });

  it('returns the bare status string', async () => {
    server.respond = () => ({ status: 200, headers: { 'content-type': 'plain/text' }, body: 'completelyReceived' });
    await expect(client.getObjectStatus('t', 'i')).resolves.toBe('completelyReceived');
  });

  it('wraps a refused connection in NetworkError and keeps the cause', async () => {
    const closed = await RecordingServer.start();
    const url = closed.url;
    await closed.close();
    const orphan = new SyncServiceClient({ url, appKey: 'k', appSecret: 's' });
    const failure = orphan.listObjects('t');
    await expect(failure).rejects.toBeInstanceOf(NetworkError);
    await expect(failure).rejects.toMatchObject({ status: 0, cause: { code: 'ECONNREFUSED' } });
    orphan.close();
  });

  it('gives up on an idle socket after timeoutMs', async () => {
    server.respond = () => new Promise(() => undefined);
    const impatient = new SyncServiceClient({ url: server.url, appKey: 'k', appSecret: 's', timeoutMs: 50 });
    const failure = impatient.getObject('t', 'i');
    await expect(failure).rejects.toBeInstanceOf(NetworkError);
    await expect(failure).rejects.toHaveProperty('cause', expect.any(TimeoutError));
    impatient.close();
  });

  it('passes an abort through as the abort error, not a network error', async () => {
    server.respond = () => new Promise(() => undefined);
    const controller = new AbortController();
    const failure = client.listObjects('t', { signal: controller.signal });
    controller.abort();
    await expect(failure).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('reports malformed JSON as a SyncServiceError with the parse error as cause', async () => {
    server.respond = () => ({ status: 200, body: '{"objectID":' });
    const failure = client.getObject('t', 'i');
    await expect(failure).rejects.toBeInstanceOf(SyncServiceError);
    await expect(failure).rejects.toHaveProperty('cause', expect.any(SyntaxError));
  });
});

describe('a server that answers before reading the upload', () => {
  it('surfaces its 403 and stops reading the source', async () => {
    // Not the recording server: that one always reads the whole body before answering.
    const early = createServer((_req, res) => {
      res.writeHead(403, { connection: 'close' }).end('Unauthorized');
    });
    early.listen(0, '127.0.0.1');
    await once(early, 'listening');
    const { port } = early.address() as AddressInfo;
    let produced = 0;
    const endless = new Readable({
      read(): void {
        produced += 65_536;
        this.push(Buffer.alloc(65_536));
      },
    });
    // The source is destroyed with the socket's error (EPIPE); events.once would reject on it.
    const closed = new Promise((resolve) => endless.once('close', resolve));
    const client = new SyncServiceClient({ url: `http://127.0.0.1:${port}`, appKey: 'k', appSecret: 's' });
    try {
      const failure = client.updateObjectData('t', 'i', endless);
      await expect(failure).rejects.toBeInstanceOf(UnauthorizedError);
      await expect(failure).rejects.toMatchObject({ body: 'Unauthorized' });
      await closed;
      expect(produced).toBeLessThan(64 * 1024 * 1024);
    } finally {
      client.close();
      early.closeAllConnections();
      await new Promise((resolve) => early.close(resolve));
    }
  });
});
