/**
 * An ESS whose disk is full when data arrives: the ESS agent over HTTP against a stand-in CSS on loopback.
 * The operator reads what is wrong (not "cannot reach the CSS"), the CSS hears it as feedback,
 * and once space is freed the object completes. The ESS side is real (SqliteStore, a
 * FileBlobStore that reports ENOSPC while `full`, ObjectService, Receiver).
 */
import { createHash } from 'node:crypto';
import type http from 'node:http';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { stringifyJson } from '../../../lib/model/index.js';
import { FileBlobStore, type StagingAppender } from '../../../lib/store/index.js';
import { Receiver } from '../../../lib/sync/receiver.js';
import type { EssAgent } from '../../../lib/sync/ess/agent.js';
import { httpEssAgent } from '../../helpers/http-ess-agent.js';
import { n1ClientDeps, startStandInCss } from '../../helpers/stand-in-css.js';
import { ESS_N1, modelForEdge, objectServiceOf, openStores, ORG, scratchDirs, type Stores } from '../../helpers/sync-fixtures.js';

const DATA = Buffer.alloc(2 * 1024 * 1024, 7);
const SHA = createHash('sha256').update(DATA).digest('hex');

/** Blob files on a disk that is full while `full` is set, as the system reports it. */
class DiskThatFills extends FileBlobStore {
  full = true;
  override appendStaging(stagingId: string, offset: number): Promise<StagingAppender> {
    if (this.full) return Promise.reject(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }));
    return super.appendStaging(stagingId, offset);
  }
}

describe('an ESS whose storage is full when an object arrives', () => {
  const freshDir = scratchDirs('edgesync-storage-full-');
  let stores: Stores;
  let disk: DiskThatFills;
  let server: http.Server;
  let client: EssAgent;
  let feedback: string[];
  const logged: { level: string; msg: string }[] = [];

  /** A CSS whose first poll announces model/big, 2 MiB, to be downloaded. */
  async function startCss(): Promise<string> {
    let polled = false;
    const started = await startStandInCss((req, body, res) => {
      if (req.url?.startsWith('/spi/v1/objects/?') === true && !polled) {
        polled = true;
        const meta = { ...modelForEdge('big', { objectSize: DATA.length }), destinationID: 'n1' };
        res.writeHead(200, { 'content-type': 'application/json' }).end(stringifyJson([{ Type: 'update', MetaData: meta }]));
        return true;
      }
      if (req.url?.endsWith('/data') === true) {
        res.writeHead(200, { 'content-length': DATA.length, 'x-edgesync-data-sha256': SHA }).end(DATA);
        return true;
      }
      if (req.url?.endsWith('/feedback') === true) feedback.push(body);
      return false;
    });
    server = started.server;
    return started.url;
  }

  beforeEach(async () => {
    const dir = freshDir();
    stores = await openStores(dir);
    disk = new DiskThatFills({ root: join(dir, 'data') });
    await disk.init();
    stores = { ...stores, blobs: disk };
    feedback = [];
    logged.length = 0;
    const objects = objectServiceOf(ESS_N1, stores);
    const receiver = new Receiver({ notifications: stores.notifications, objects, orgID: ORG, downloads: { sessions: stores.store, blobs: disk } });
    const record = (level: string) => (_o: object, msg: string): void => void logged.push({ level, msg });
    const log = { info: record('info'), warn: record('warn'), debug: record('debug'), error: record('error') };
    client = httpEssAgent(n1ClientDeps(await startCss(), receiver, disk, log));
    client.start();
  });

  afterEach(async () => {
    await client.stop();
    await new Promise((r) => server.close(r));
    await stores.store.close();
  });

  async function until(what: string, done: () => Promise<boolean> | boolean): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (!(await done())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  it('says so in an error line and in feedback to the CSS, and completes the object once space is freed', async () => {
    await until('the feedback', () => feedback.length > 0);
    expect(JSON.parse(feedback[0]!)).toMatchObject({ Reason: expect.stringContaining('not enough storage space') });
    expect(logged).toContainEqual({ level: 'error', msg: expect.stringContaining("this node's storage is full") });
    expect(logged.filter((l) => l.msg.includes('cannot reach the CSS'))).toEqual([]);
    expect((await stores.store.getObject(ORG, 'model', 'big'))?.status).toBe('partiallyreceived');

    disk.full = false;
    await until('the object', async () => (await stores.store.getObject(ORG, 'model', 'big'))?.status === 'completelyReceived');
    expect((await stores.store.getObject(ORG, 'model', 'big'))?.dataSha256).toBe(SHA);
  });
});
