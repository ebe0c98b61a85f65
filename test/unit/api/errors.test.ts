import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import express from 'express';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { createErrorHandler } from '../../../lib/api/errors.js';
import { HealthMonitor } from '../../../lib/api/health-monitor.js';
import type { Logger } from '../../../lib/log/logger.js';
import { UnavailableError } from '../../../lib/model/index.js';
import type { Store } from '../../../lib/store/types.js';

/** Errors as the system and SQLite raise them. */
const diskFull = (): Error => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', syscall: 'write' });
const dbFull = (): Error => Object.assign(new Error('database or disk is full'), { name: 'SqliteError', code: 'SQLITE_FULL' });

const logged: { level: string; obj: object | string; msg?: string }[] = [];
const record =
  (level: string) =>
  (obj: object | string, msg?: string): void => {
    logged.push({ level, obj, ...(msg !== undefined ? { msg } : {}) });
  };
const logger: Logger = {
  trace: record('trace'),
  debug: record('debug'),
  info: record('info'),
  warn: record('warn'),
  error: record('error'),
  fatal: record('fatal'),
  child: () => logger,
  flush: () => undefined,
};
const health = new HealthMonitor('CSS', { ping: () => Promise.resolve() } as unknown as Store, () => Promise.resolve([]));

let server: Server;
let base: string;
beforeAll(async () => {
  const app = express();
  app.put('/disk', () => {
    throw diskFull();
  });
  app.put('/db', () => {
    throw dbFull();
  });
  app.put('/other', () => {
    throw new Error('something else');
  });
  app.get('/stopping', () => {
    throw new UnavailableError('SqliteStore used before init() or after close()');
  });
  app.use(createErrorHandler(logger, health));
  server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise((resolve) => server.close(resolve)));

describe('the error handler, for a full disk or database', () => {
  it('answers 507 with the reason when the disk is full, and logs the system error for the operator', async () => {
    const res = await fetch(`${base}/disk`, { method: 'PUT' });
    expect(res.status).toBe(507);
    expect(await res.text()).toBe('Not enough storage space on this node to keep the request; nothing of it was stored\n');
    expect(logged.at(-1)).toMatchObject({ level: 'error', obj: { err: { code: 'ENOSPC' } } });
  });

  it('answers 507 for SQLITE_FULL too, and counts it as a failed database write in health', async () => {
    const res = await fetch(`${base}/db`, { method: 'PUT' });
    expect(res.status).toBe(507);
    expect((await health.report(false)).dbHealth.dbWriteFailures).toBe(1);
  });

  it('leaves other errors as a 500 naming the request', async () => {
    const res = await fetch(`${base}/other`, { method: 'PUT' });
    expect(res.status).toBe(500);
    expect(await res.text()).toMatch(/^Internal error \(request .*\)\n$/);
  });
});

describe('the error handler, while the node stops', () => {
  it('answers a request that raced the stop (its store closed under it) 503, logged for us only, not as an error', async () => {
    logged.length = 0;
    const res = await fetch(`${base}/stopping`);
    expect([res.status, await res.text()]).toEqual([503, '']);
    expect(logged.map((l) => l.level)).toEqual(['debug']);
  });
});
