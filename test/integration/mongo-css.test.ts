/**
 * A CSS on MongoDB (FerretDB here) as an operator meets it: the MONGO_* settings, a database
 * that goes away and comes back, and a start against a database that is not there.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { ferretdbPath, MONGO_MISSING, startFerretDb, type FerretDb } from '../helpers/ferretdb.js';
import { raw, startManaged, startNode, tempRoot, Teardown, type RunningProcess } from '../helpers/node-process.js';
import { eventually } from '../helpers/sync-pair.js';
import { freePort } from '../helpers/mosquitto.js';

const runnable = ferretdbPath() !== null;
const DEADLINE_MS = 20_000;

interface Health {
  general: { healthStatus: string };
  dbHealth: { dbStatus: string; disconnectedFromDB: boolean };
}

const health = async (css: RunningProcess): Promise<Health> => JSON.parse((await raw(css, 'GET', '/api/v1/health')).text) as Health;

if (!runnable) {
  console.warn(`Skipped: a CSS on MongoDB (${MONGO_MISSING})`);
  describe.skip(`a CSS on MongoDB (${MONGO_MISSING})`, () => {
    test('stores on MongoDB, answers 503 while the database is away, and resumes', () => undefined);
  });
} else {
  describe('a CSS on MongoDB', () => {
    const t = new Teardown();
    let db: FerretDb;
    let css: RunningProcess;
    const put = (id: string, body: string): Promise<{ status: number }> =>
      raw(css, 'PUT', `/api/v1/objects/org1/model/${id}`, { body, headers: { 'content-type': 'application/json' } });

    beforeAll(async () => {
      db = await startFerretDb();
      t.add(() => db.stop());
      // The reference's form of the address: host:port entries, the database named apart.
      const address = db.url.replace(/^mongodb:\/\//, '').replace(/\/$/, '');
      css = await startManaged(t, { mode: 'css', env: { STORAGE_PROVIDER: 'mongo', MONGO_ADDRESS_CSV: address, MONGO_DB_NAME: 'edge_one' } });
    }, 60_000);
    afterAll(() => t.run());

    test('keeps objects and their data in the database it is given', async () => {
      const meta = JSON.stringify({ meta: { objectID: 'm1', objectType: 'model', destinationType: 'edge' } });
      expect((await put('m1', meta)).status).toBe(204);
      expect((await raw(css, 'PUT', '/api/v1/objects/org1/model/m1/data', { body: 'weights' })).status).toBe(204);
      expect((await raw(css, 'GET', '/api/v1/objects/org1/model/m1/data')).text).toBe('weights');
      expect(css.output()).toMatch(/Store: +MongoDB database edge_one at mongodb:\/\/127\.0\.0\.1:\d+\//);
      const { MongoClient } = await import('mongodb');
      const client = new MongoClient(db.url);
      try {
        expect(await client.db('edge_one').collection('objects').countDocuments({ objectID: 'm1' })).toBe(1);
      } finally {
        await client.close();
      }
    });

    test('while the database is away: health red, requests refused with 503 and the reason, nothing half-written; then it resumes', async () => {
      await db.down();
      const during = await health(css);
      expect([during.general.healthStatus, during.dbHealth.dbStatus, during.dbHealth.disconnectedFromDB]).toEqual(['red', 'red', true]);

      const read = await raw(css, 'GET', '/api/v1/objects/org1/model/m1');
      expect(read.status).toBe(503);
      expect(read.text).toMatch(/database is unreachable/);
      expect(read.headers.get('retry-after')).toBe('5');
      const write = await put('m2', JSON.stringify({ meta: { objectID: 'm2', objectType: 'model', destinationType: 'edge', noData: true } }));
      expect(write.status).toBe(503);

      await db.up();
      // The driver reconnects by itself to the configured address. The failures just seen keep
      // the database yellow for a minute (health-monitor.ts): connected, but not red.
      const after = await eventually('the database connected again', () => health(css), (h) => !h.dbHealth.disconnectedFromDB, DEADLINE_MS);
      expect(after.dbHealth.dbStatus).toBe('yellow');
      expect((await raw(css, 'GET', '/api/v1/objects/org1/model/m1/data')).text).toBe('weights');
      expect((await raw(css, 'GET', '/api/v1/objects/org1/model/m2')).status).toBe(404);
      expect((await put('m2', JSON.stringify({ meta: { objectID: 'm2', objectType: 'model', destinationType: 'edge', noData: true } }))).status).toBe(204);
      expect(css.output()).not.toMatch(/"level":50.*unexpected error/);
    }, 60_000);
  });

  describe('a CSS whose database cannot be reached at start', () => {
    const t = new Teardown();
    afterAll(() => t.run());

    test('exits, naming the database and its address', async () => {
      const port = await freePort();
      const root = await tempRoot(t, 'css-nodb');
      const started = startNode({ mode: 'css', root, env: { STORAGE_PROVIDER: 'mongo', MONGO_ADDRESS_CSV: `mongodb://127.0.0.1:${port}/edge_two` } });
      await expect(started).rejects.toThrow(/cannot open the MongoDB database edge_two at mongodb:\/\/127\.0\.0\.1:\d+\/edge_two/);
    }, 30_000);

    test('refuses an address that is neither a URI nor host:port entries', async () => {
      const root = await tempRoot(t, 'css-badaddr');
      await expect(startNode({ mode: 'css', root, env: { STORAGE_PROVIDER: 'mongo', MONGO_ADDRESS_CSV: 'http://db.example' } })).rejects.toThrow(/MONGO_ADDRESS_CSV must be a mongodb:\/\/ URI or host\[:port\] entries/);
    });
  });
}
