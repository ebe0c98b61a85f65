/**
 * The MQTT transport's part of the sync events (lib/sync/sync-events.ts), which the metrics count
 * as bytes sent over `mqtt`: each chunk the CSS serves to a `getdata` is told as it leaves, with
 * where it starts, its length and the object's size, about the instance and the ESS asking.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { emptyMetaData, type DestinationRef, type MetaData } from '../../../lib/model/index.js';
import type { DeliveryRef, PeerRef, SyncEvents, TransportKind } from '../../../lib/sync/sync-events.js';
import { CssChunkServer } from '../../../lib/transport/mqtt/css-chunk-server.js';
import { CssEngineDouble } from '../../helpers/ess-session-double.js';

const PEER: DestinationRef = { orgID: 'myorg', destType: 'edge', destID: 'node1' };

describe('chunks served over MQTT, as the sync events tell them', () => {
  it('tells each chunk once, in order, with its offset, length and the total', async () => {
    const engine = new CssEngineDouble();
    const data = randomBytes(7000);
    engine.script.data.set('big/o1', data);
    const told: string[] = [];
    const events: SyncEvents = {
      dataSent(obj: DeliveryRef, peer: PeerRef, transport: TransportKind, bytes: number, offset: number, total: number | null): void {
        told.push(`${obj.orgID}/${obj.objectType}/${obj.objectID}#${obj.instanceID} to ${peer.peerType}/${peer.peerID} over ${transport}: ${bytes}@${offset}/${total}`);
      },
    };
    const stop = new AbortController();
    const server = new CssChunkServer({ maxPayload: () => 1024 * 1024, maxDataChunkSize: 4096, signal: stop.signal, events });
    const meta: MetaData = { ...emptyMetaData(), objectType: 'big', objectID: 'o1', destinationOrgID: 'myorg', objectSize: data.length, chunkSize: 3000, instanceID: 7n };
    for (const offset of [0, 3000, 6000]) await server.message(engine.session(PEER), PEER, meta, offset);
    stop.abort();
    expect(told).toEqual([
      'myorg/big/o1#7 to edge/node1 over mqtt: 3000@0/7000',
      'myorg/big/o1#7 to edge/node1 over mqtt: 3000@3000/7000',
      'myorg/big/o1#7 to edge/node1 over mqtt: 1000@6000/7000',
    ]);
  });
});
