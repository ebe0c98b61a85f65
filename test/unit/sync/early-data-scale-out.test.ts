/**
 * Early data behind a load balancer (docs/scale-out-http-audit.md): the offer lives in the memory
 * of the CSS instance receiving the upload, so an ESS told of it by instance A may send its
 * early download to instance B. B has nothing on offer and answers 404; the ESS's link reads
 * that as "no early data", takes nothing, and the object comes by the usual download.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from '@jest/globals';
import { emptyMetaData, type MetaData } from '../../../lib/model/index.js';
import type { Destination, GrowingData } from '../../../lib/store/index.js';
import { EarlyData } from '../../../lib/sync/early-data.js';
import { EarlyDownloads } from '../../../lib/sync/ess/early.js';
import { HttpCssLink } from '../../../lib/transport/http/http-css-link.js';

const ORG = 'org1';
const quiet = { info: (): void => undefined, warn: (): void => undefined, debug: (): void => undefined, error: (): void => undefined };
const N1: Destination = { destinationOrgID: ORG, destinationType: 'edge', destinationID: 'n1', communication: 'http', codeVersion: '', lastPing: 1 };
const META: MetaData = { ...emptyMetaData(), destinationOrgID: ORG, objectType: 'model', objectID: 'big', destinationType: 'edge', instanceID: 7n, dataID: 7n, objectSize: 10 };

const growing = (size: number): GrowingData => ({ size, read: () => new Readable({ read: () => undefined }) });
const instance = (): EarlyData => new EarlyData({ store: { listDestinations: () => Promise.resolve([N1]) } });

let server: http.Server | null = null;
let link: HttpCssLink | null = null;
afterEach(async () => {
  await link?.close();
  if (server !== null) await new Promise((r) => server!.close(r));
  server = null;
  link = null;
});

describe('an early-data offer heard from one CSS instance, its download sent to another', () => {
  it('is on offer only at the instance receiving the upload: the other has nothing to open', () => {
    const a = instance();
    const b = instance();
    a.begin(META, growing(10));
    expect(a.announce(N1).map((o) => o.meta.objectID)).toEqual(['big']);
    expect(b.announce(N1)).toEqual([]);
    // The SPI route answers this null with 404 (spi-server.ts earlyData).
    expect(b.open(ORG, 'model', 'big', N1)).toBeNull();
    expect(a.open(ORG, 'model', 'big', N1)).not.toBeNull();
  });

  it("is no early data to the ESS's link when that instance answers 404", async () => {
    const seen: string[] = [];
    server = http.createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      res.writeHead(404, { 'content-type': 'text/plain' }).end('No upload of this object is on offer');
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    link = new HttpCssLink({ baseUrl, user: `${ORG}/edge/n1`, password: 'p', orgID: ORG, destinationType: 'edge', destinationID: 'n1', log: quiet, earlyData: true });
    await expect(link.fetchEarly(META, new AbortController().signal)).resolves.toBeNull();
    expect(seen).toEqual([`GET /spi/v1/early/${ORG}/model/big`]);
  });

  it('leaves the ESS nothing staged, and the update then goes the usual way', async () => {
    const made: string[] = [];
    const blobs = {
      createStaging: () => {
        made.push('staging');
        return Promise.resolve('s1');
      },
      appendStaging: () => Promise.reject(new Error('nothing is written')),
      commitStaging: () => Promise.reject(new Error('nothing is committed')),
      deleteStaging: () => Promise.resolve(),
    };
    const early = new EarlyDownloads({ fetch: () => Promise.resolve(null), blobs, signal: new AbortController().signal, log: quiet });
    early.start(META, 10);
    // null: the object's data is downloaded as for any update.
    await expect(early.take(META, 'a'.repeat(64))).resolves.toBeNull();
    expect(made).toEqual([]);
  });
});
