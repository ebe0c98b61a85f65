/**
 * Two CSS processes on one MongoDB (FerretDB here): one of them runs the periodic jobs, and
 * the other takes over when it dies or stops. Leadership is read from each instance's health
 * report and logs. How long a takeover takes is measured by scripts/bench/leader-failover.ts.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { ferretdbPath, MONGO_MISSING, startFerretDb, type FerretDb } from '../helpers/ferretdb.js';
import { raw, startManaged, Teardown, type RunningProcess } from '../helpers/node-process.js';
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
