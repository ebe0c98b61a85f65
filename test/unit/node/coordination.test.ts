/**
 * What a node coordinates with on a store only it uses (SQLite): it always leads, wakes no
 * other instance, and says nothing about leadership in its logs. The MongoDB side runs in
 * test/integration/css-leader-lease.test.ts (two CSS processes on FerretDB).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { Logger } from '../../../lib/log/logger.js';
import { coordinationFor } from '../../../lib/node/coordination.js';
import { SqliteStore } from '../../../lib/store/index.js';
import { NoPeerWakeBus, SoleLeaderLease } from '../../../lib/store/single-process-coordination.js';

function recordingLogger(lines: string[]): Logger {
  const log = (o: object | string, msg?: string): void => void lines.push(typeof o === 'string' ? o : (msg ?? ''));
  const logger: Logger = { trace: log, debug: log, info: log, warn: log, error: log, fatal: log, child: () => logger, flush: () => undefined };
  return logger;
}

describe('coordinationFor a SQLite store', () => {
  let dir: string;
  let store: SqliteStore;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'edgesync-coordination-'));
    store = new SqliteStore({ path: join(dir, 'db') });
    await store.init();
  });

  afterAll(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('leads from start to stop, alone, without a word in the logs', async () => {
    const lines: string[] = [];
    const c = coordinationFor(store, recordingLogger(lines));
    expect(c.shared).toBe(false);
    expect(c.lease).toBeInstanceOf(SoleLeaderLease);
    expect(c.wakes).toBeInstanceOf(NoPeerWakeBus);
    const changes: boolean[] = [];
    c.lease.onChange((leading) => changes.push(leading));
    expect(c.lease.isLeader()).toBe(false);
    await c.start();
    expect(c.lease.isLeader()).toBe(true);
    expect(c.lease.holder()).toBe(c.lease.instanceId);
    expect(c.lease.instanceId).toMatch(/^.+:\d+:[0-9a-f]{8}$/);
    await c.stop();
    expect(c.lease.isLeader()).toBe(false);
    expect(changes).toEqual([true, false]);
    expect(lines).toEqual([]);
  });
});
