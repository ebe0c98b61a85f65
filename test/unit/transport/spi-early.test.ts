/**
 * Early data on the ESS (lib/sync/ess/early.ts): the agent over HTTP against a stand-in CSS on loopback that
 * offers an upload still arriving, serves it on the early route, and then announces the object
 * with the SHA-256 of its committed data. The ESS side is real: SqliteStore, FileBlobStore,
 * ObjectService, Receiver.
 */
import { createHash, randomBytes } from 'node:crypto';
import type http from 'node:http';
import { beforeEach, describe, expect, it } from '@jest/globals';
import { stringifyJson } from '../../../lib/model/index.js';
import { startStandInCss } from '../../helpers/stand-in-css.js';
import { answerAcks, standInEss } from '../../helpers/stand-in-ess.js';
import { modelForEdge, ORG } from '../../helpers/sync-fixtures.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('an ESS offered the data of an upload still arriving at the CSS', () => {
  const ess = standInEss('edgesync-early-');
  const DATA = randomBytes(3 * 1024 * 1024 + 321);
  let requests: string[];

  /**
   * A CSS whose first poll answer offers model/big early; the early route sends half the data,
   * then the rest, as an upload arriving would. Once it is all sent, the next poll announces the
   * object with `digest` stated for its data; a data GET serves the data too.
   */
  async function startCss(digest: string): Promise<{ server: http.Server; url: string }> {
    let offered = false;
    let served = false;
    let announced = false;
    const meta = { ...modelForEdge('big', { objectSize: DATA.length }), destinationID: 'n1' };
    return startStandInCss((req, body, res) => {
      requests.push(`${req.method} ${req.url}`);
      const url = req.url ?? '';
      if (url.startsWith('/spi/v1/objects/?') && !offered) {
        offered = true;
        res.writeHead(200, { 'content-type': 'application/json' }).end(stringifyJson([{ Type: 'edgesync-early', MetaData: { ...meta, objectSize: 0 }, Size: DATA.length }]));
        return true;
      }
      if (url.startsWith('/spi/v1/objects/?') && served && !announced) {
        announced = true;
        res.writeHead(200, { 'content-type': 'application/json' }).end(stringifyJson([{ Type: 'update', MetaData: meta, DataSHA256: digest }]));
        return true;
      }
      if (url === `/spi/v1/early/${ORG}/model/big`) {
        res.writeHead(200, { 'content-length': DATA.length });
        res.write(DATA.subarray(0, DATA.length / 2));
        setTimeout(() => {
          res.end(DATA.subarray(DATA.length / 2));
          served = true;
        }, 100);
        return true;
      }
      if (url.endsWith('/data')) {
        res.writeHead(200, { 'content-length': DATA.length, 'x-edgesync-data-sha256': sha(DATA) }).end(DATA);
        return true;
      }
      return answerAcks(req, body, res);
    });
  }

  beforeEach(() => {
    requests = [];
  });

  /** Staging areas left; a dropped early download's goes a moment after the update is handled. */
  async function stagingLeft(): Promise<string[]> {
    const deadline = Date.now() + 5_000;
    let left = await ess.stores.blobs.listStaging();
    while (left.length > 0 && Date.now() < deadline) {
      await pause(20);
      left = await ess.stores.blobs.listStaging();
    }
    return left;
  }

  it('asks for offers, downloads the offered data as it comes, and completes the object with it: no data GET', async () => {
    ess.start(await startCss(sha(DATA)), { earlyData: true });
    expect((await ess.completed('model', 'big')).equals(DATA)).toBe(true);
    expect(requests.find((l) => l.startsWith('GET /spi/v1/objects/?'))).toMatch(/[?&]early=1(&|$)/);
    expect(requests.filter((l) => l.startsWith('GET /spi/v1/early/'))).toHaveLength(1);
    expect(requests.filter((l) => l.endsWith('/data'))).toEqual([]);
    expect(await stagingLeft()).toEqual([]);
  });

  it('drops the early bytes when the update states another digest, and downloads the data as usual', async () => {
    ess.start(await startCss('0'.repeat(64)), { earlyData: true });
    expect((await ess.completed('model', 'big')).equals(DATA)).toBe(true);
    expect(requests.filter((l) => l.endsWith('/data'))).toHaveLength(1);
    expect(await stagingLeft()).toEqual([]);
  });
});
