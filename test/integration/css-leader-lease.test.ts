/**
 * Two CSS processes on one MongoDB (FerretDB here): one of them runs the periodic jobs, and
 * the other takes over when it dies or stops; a long-poll held by one is woken by a publish on
 * the other. Leadership is read from each instance's health report and logs. How long a
 * takeover takes is measured by scripts/bench/leader-failover.ts.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { parseJson } from '../../lib/model/index.js';
import { ferretdbPath, MONGO_MISSING, startFerretDb, type FerretDb } from '../helpers/ferretdb.js';
import { BIN, raw, startManaged, Teardown, type RunningProcess } from '../helpers/node-process.js';
import { eventually } from '../helpers/sync-pair.js';

const runnable = ferretdbPath() !== null;
/** Lease TTL 8 s + two heartbeats, with room for a loaded machine. */
const TAKEOVER_DEADLINE_MS = 40_000;

interface Leadership {
  leader: boolean;
  instanceId: string;
  holder?: string;
}

const leadership = async (css: RunningProcess): Promise<Leadership | undefined> =>
  (JSON.parse((await raw(css, 'GET', '/api/v1/health')).text) as { leadership?: Leadership }).leadership;

if (!runnable) {
  console.warn(`Skipped: two CSS processes sharing a leader lease (${MONGO_MISSING})`);
  describe.skip(`two CSS processes sharing a leader lease (${MONGO_MISSING})`, () => {
    test('one leads; another takes over when it is killed or stops', () => undefined);
  });
} else {
  describe('two CSS processes on one MongoDB', () => {
    const t = new Teardown();
    let db: FerretDb;
    const start = (): Promise<RunningProcess> =>
      startManaged(t, { mode: 'css', env: { STORAGE_PROVIDER: 'mongo', MONGO_ADDRESS_CSV: db.url, MONGO_DB_NAME: 'edge_lease', COMMUNICATION_PROTOCOL: 'http', LOG_LEVEL: 'info' } });
    let a: RunningProcess;
    let b: RunningProcess;

    beforeAll(async () => {
      db = await startFerretDb();
      t.add(() => db.stop());
      a = await start();
      b = await start();
    }, 60_000);
    afterAll(() => t.run());

    test('one of them leads the periodic jobs, and both name it in their health report', async () => {
      const [la, lb] = await eventually('one leader', () => Promise.all([leadership(a), leadership(b)]), ([x, y]) => x?.leader !== y?.leader, 20_000);
      expect(la?.holder).toBeDefined();
      expect(lb?.holder).toBe(la?.holder);
      const leader = la?.leader === true ? a : b;
      expect(leader.output()).toMatch(/this instance leads the periodic jobs/);
      expect((la?.leader === true ? b : a).output()).toMatch(/another instance leads the periodic jobs/);
    }, 30_000);

    test('a long-poll held by one instance answers when the object is published on the other, long before its wait', async () => {
      const n1 = { user: 'org1/edge/n1', pass: 's1' };
      const asN1 = { auth: n1, headers: { 'X-Sync-Service-Dest': 'org1/edge/n1' } };
      const onA = await a.client({ orgID: 'org1' });
      try {
        await onA.putOrganization({ orgID: 'org1' });
        // Each instance has its own users file.
        for (const css of [a, b]) {
          await promisify(execFile)(process.execPath, [BIN, 'users', 'add', n1.user, '--type', 'edgenode', '--org', 'org1', '--username', 'edge/n1', '--secret', n1.pass, '--persistence-root-path', css.root]);
        }
        await eventually('b knows the edge node', () => raw(b, 'GET', '/spi/v1/objects/', asN1), (r) => r.status !== 403, 10_000);
        expect((await raw(b, 'PUT', '/spi/v1/register-new/org1/edge/n1?persistent-storage=true', asN1)).status).toBe(204);
        const held = raw(b, 'GET', '/spi/v1/objects/?wait=60', asN1);
        // Let b start holding, so that it is the wake, not the first listing, that answers.
        await new Promise((r) => setTimeout(r, 1000));
        await onA.updateObject({ objectID: 'x1', objectType: 'model', destinationType: 'edge', noData: true });
        const res = await held;
        expect(res.status).toBe(200);
        expect((parseJson(res.text) as { MetaData: { objectID: string } }[]).map((e) => e.MetaData.objectID)).toEqual(['x1']);
      } finally {
        onA.close();
      }
    }, 30_000);

    test('when the leader is killed (kill -9), the other takes over once the lease has expired', async () => {
      const [la] = await Promise.all([leadership(a), leadership(b)]);
      const [leader, other] = la?.leader === true ? [a, b] : [b, a];
      await leader.kill();
      const after = await eventually('the other leads', () => leadership(other), (l) => l?.leader === true, TAKEOVER_DEADLINE_MS);
      expect(after?.holder).toBe(after?.instanceId);
      expect(other.output()).toMatch(/this instance leads the periodic jobs/);
      // The survivor becomes `a` for the next test.
      a = other;
    }, TAKEOVER_DEADLINE_MS + 10_000);

    test('when the leader stops cleanly it resigns, and the newcomer takes over', async () => {
      const c = await start();
      const leaderId = (await leadership(a))?.instanceId;
      await eventually('the newcomer follows', () => leadership(c), (l) => l?.leader === false && l.holder === leaderId, 20_000);
      await a.stop();
      expect(a.output()).toMatch(/this instance no longer leads the periodic jobs/);
      await eventually('the newcomer leads', () => leadership(c), (l) => l?.leader === true, 20_000);
    }, 60_000);
  });
}
