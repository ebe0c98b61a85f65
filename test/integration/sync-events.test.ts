/**
 * The sync engine tells its observers (lib/sync/sync-events.ts) how a delivery goes: a CSS run
 * in this process with a recording observer, a real ESS process (dist/) syncing with it over
 * HTTP. A publish is heard as queued, then its data sent, then delivered, then consumed, in
 * that order, about the same instance and the same destination.
 */
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { loadConfig } from '../../lib/config/index.js';
import { createLogger } from '../../lib/log/logger.js';
import { startNode as startInProcess, type RunningNode } from '../../lib/node/node.js';
import type { DeliveryRef, PeerRef, SyncEvents, TransportKind } from '../../lib/sync/sync-events.js';
import type { DeliveryStatus } from '../../lib/model/index.js';
import { SyncServiceClient } from '../../sdk/index.js';
import { BIN, startManaged, tempRoot, Teardown } from '../helpers/node-process.js';
import { essEnv, eventuallyWithin, ORG } from '../helpers/sync-pair.js';

jest.setTimeout(60_000);

const run = promisify(execFile);
const eventually = eventuallyWithin(30_000);

interface Heard {
  event: string;
  obj: DeliveryRef | { orgID: string };
  peer?: PeerRef;
  detail?: string | number;
}

/** An observer that writes down what it hears, as plain values. */
class Recorder implements SyncEvents {
  readonly heard: Heard[] = [];
  objectPublished(obj: DeliveryRef, info: { destinations: number }): void {
    this.heard.push({ event: 'objectPublished', obj: { ...obj }, detail: info.destinations });
  }
  deliveryQueued(obj: DeliveryRef, peer: PeerRef): void {
    this.heard.push({ event: 'deliveryQueued', obj: refOf(obj), peer: peerOf(peer) });
  }
  /** Every `dataSent`, with where its bytes started. */
  readonly sent: { objectID: string; bytes: number; offset: number }[] = [];
  dataSent(obj: DeliveryRef, peer: PeerRef, transport: TransportKind, bytes: number, offset: number): void {
    this.heard.push({ event: `dataSent:${transport}`, obj: refOf(obj), peer: peerOf(peer), detail: bytes });
    this.sent.push({ objectID: obj.objectID, bytes, offset });
  }
  deliveryStatus(obj: DeliveryRef, peer: PeerRef, status: DeliveryStatus): void {
    this.heard.push({ event: `deliveryStatus:${status}`, obj: refOf(obj), peer: peerOf(peer) });
  }
  about(objectID: string): Heard[] {
    return this.heard.filter((h) => 'objectID' in h.obj && h.obj.objectID === objectID);
  }
}

// Records passed as refs carry more fields: keep those the events promise.
const refOf = (o: DeliveryRef): DeliveryRef => ({ orgID: o.orgID, objectType: o.objectType, objectID: o.objectID, instanceID: o.instanceID });
const peerOf = (p: PeerRef): PeerRef => ({ peerType: p.peerType, peerID: p.peerID });

describe('the sync events of a delivery from a CSS to a real ESS', () => {
  const t = new Teardown();
  const recorder = new Recorder();
  let css: RunningNode;
  let onCss: SyncServiceClient;
  let onEss: SyncServiceClient;

  beforeAll(async () => {
    const root = await tempRoot(t, 'edgesync-events-css-');
    const env = { PERSISTENCE_ROOT_PATH: root, LISTENING_ADDRESS: '127.0.0.1', UNSECURE_LISTENING_PORT: '0', SECURE_LISTENING_PORT: '0', RESEND_INTERVAL: '1' };
    const config = loadConfig({ mode: 'CSS', argv: [], env });
    css = await startInProcess(config, { nodeType: 'CSS', orgID: '', destinationType: 'Cloud', destinationID: 'Cloud' }, createLogger({ level: 'error' }), { syncObservers: [recorder] });
    t.add(() => css.stop());
    const admin = css.createdAdmin!;
    onCss = new SyncServiceClient({ url: css.urls[0]!, appKey: admin.appKey, appSecret: admin.secret, orgID: ORG });
    t.add(() => Promise.resolve(onCss.close()));
    await onCss.putOrganization({ orgID: ORG });
    await run(process.execPath, [BIN, 'users', 'add', `${ORG}/edge/n1`, '--type', 'edgenode', '--org', ORG, '--username', 'edge/n1', '--secret', 's', '--persistence-root-path', root]);
    const ess = await startManaged(t, { mode: 'ess', env: essEnv(new URL(css.urls[0]!).port) });
    onEss = await ess.client();
    t.add(() => Promise.resolve(onEss.close()));
    await eventually('registration of edge/n1', () => onCss.getDestinations(), (d) => d.some((x) => x.destinationID === 'n1'), () => ess.output());
  });
  afterAll(() => t.run());

  test('publish, data, delivered, consumed: heard in that order, about one instance and one destination', async () => {
    await onCss.updateObject({ objectType: 'model', objectID: 'm1', destinationType: 'edge', destinationID: 'n1' }, 'hello edge');
    await eventually('m1 on the ESS', () => onEss.getObjectStatus('model', 'm1'), (s) => s === 'completelyReceived');
    await onEss.markObjectConsumed('model', 'm1');
    await eventually('consumed heard', () => Promise.resolve(recorder.about('m1').map((h) => h.event)), (e) => e.includes('deliveryStatus:consumed'));

    const heard = recorder.about('m1');
    expect(heard.map((h) => h.event)).toEqual(['objectPublished', 'deliveryQueued', 'deliveryStatus:delivering', 'dataSent:http', 'deliveryStatus:delivered', 'deliveryStatus:consumed']);
    const first = heard[0]!;
    const peer = { peerType: 'edge', peerID: 'n1' };
    for (const h of heard) {
      expect(h.obj).toEqual(first.obj);
      if (h.peer !== undefined) expect(h.peer).toEqual(peer);
    }
    expect(heard.find((h) => h.event === 'objectPublished')?.detail).toBe(1);
    expect(heard.find((h) => h.event === 'dataSent:http')?.detail).toBe('hello edge'.length);
  });

  test('the data of a large object is heard as it goes, in steps that add up to the whole', async () => {
    const size = 3 * 1024 * 1024 + 5;
    await onCss.updateObject({ objectType: 'model', objectID: 'big', destinationType: 'edge', destinationID: 'n1' });
    await onCss.updateObjectData('model', 'big', Buffer.alloc(size, 7));
    await eventually('big delivered', () => Promise.resolve(recorder.about('big').map((h) => h.event)), (e) => e.includes('deliveryStatus:delivered'));

    const steps = recorder.sent.filter((s) => s.objectID === 'big');
    // Told every MiB (of one range, or of the early-data answer taking the upload as it arrives):
    // the live view moves while the bytes go, not only at the end.
    expect(steps.length).toBeGreaterThanOrEqual(3);
    let next = 0;
    for (const step of steps) {
      expect(step.offset).toBe(next);
      next += step.bytes;
    }
    expect(next).toBe(size);
  });
});
