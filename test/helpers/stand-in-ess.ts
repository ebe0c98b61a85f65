/**
 * The real ESS side of a sync (SqliteStore, FileBlobStore, ObjectService, Receiver, EssAgent over the HTTP link of
 * edge node n1) against a CSS played by the test (stand-in-css.ts). Call standInEss() inside a
 * describe: it opens fresh stores before each test and stops everything after it.
 */
import type http from 'node:http';
import { afterEach, beforeEach } from '@jest/globals';
import { Receiver } from '../../lib/sync/receiver.js';
import type { EssAgent } from '../../lib/sync/ess/agent.js';
import { httpEssAgent, type HttpAgentDeps } from './http-ess-agent.js';
import { n1ClientDeps } from './stand-in-css.js';
import { ESS_N1, objectServiceOf, openStores, ORG, scratchDirs, type Stores } from './sync-fixtures.js';

export interface StandInEss {
  /** This test's stores. */
  readonly stores: Stores;
  /** Starts the agent over HTTP (with batched acks) against the stand-in CSS; both are stopped after the test. */
  start(css: { server: http.Server; url: string }, deps?: Partial<HttpAgentDeps>): void;
  /** The object's data once it is `completelyReceived` on the ESS; fails after 10 s. */
  completed(objectType: string, objectID: string): Promise<Buffer>;
}

/**
 * Answers a batch of acks (`PUT /spi/v1/objects/org1/acks`) with 204 for each, recording their
 * actions in `actions`; false for any other request.
 */
export function answerAcks(req: http.IncomingMessage, body: string, res: http.ServerResponse, actions: string[] = []): boolean {
  if (req.url !== `/spi/v1/objects/${ORG}/acks`) return false;
  const batch = JSON.parse(body) as { action: string }[];
  actions.push(...batch.map((a) => a.action));
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(batch.map(() => 204)));
  return true;
}

export function standInEss(prefix: string): StandInEss {
  const freshDir = scratchDirs(prefix);
  let stores: Stores | null = null;
  let client: EssAgent | null = null;
  let server: http.Server | null = null;

  beforeEach(async () => {
    stores = await openStores(freshDir());
  });

  afterEach(async () => {
    await client?.stop();
    const s = server;
    if (s !== null) await new Promise((r) => s.close(r));
    await stores?.store.close();
    client = null;
    server = null;
  });

  const current = (): Stores => {
    if (stores === null) throw new Error('standInEss is used outside a test');
    return stores;
  };

  return {
    get stores() {
      return current();
    },
    start(css, deps = {}) {
      const s = current();
      server = css.server;
      const objects = objectServiceOf(ESS_N1, s);
      const receiver = new Receiver({ notifications: s.notifications, objects, orgID: ORG, downloads: { sessions: s.store, blobs: s.blobs } });
      const quiet = { info: (): void => undefined, warn: (): void => undefined, debug: (): void => undefined, error: (): void => undefined };
      client = httpEssAgent({ ...n1ClientDeps(css.url, receiver, s.blobs, quiet), batchAcks: true, ...deps });
      client.start();
    },
    async completed(objectType, objectID) {
      const s = current();
      const deadline = Date.now() + 10_000;
      for (;;) {
        const obj = await s.store.getObject(ORG, objectType, objectID);
        if (obj?.status === 'completelyReceived' && obj.blobId !== null) {
          const out: Buffer[] = [];
          for await (const c of s.blobs.read(obj.blobId)) out.push(c as Buffer);
          return Buffer.concat(out);
        }
        if (Date.now() > deadline) throw new Error(`${objectType}/${objectID} not complete: ${obj?.status ?? 'absent'}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
  };
}
