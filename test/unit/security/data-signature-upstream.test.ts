/**
 * The CSS verifies the data of a signed object an ESS published before its apps may see it, as
 * the reference CSS does: data that fails is refused with the reason, and nothing is kept; data
 * that verifies completes the object, whole or in chunks.
 */
import { constants, generateKeyPairSync, sign } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { BadRequestError, emptyMetaData, type MetaData } from '../../../lib/model/index.js';
import type { FileBlobStore, SqliteStore } from '../../../lib/store/index.js';
import { UpstreamReceiver, type UpstreamPeer } from '../../../lib/sync/upstream-receiver.js';
import { sha } from '../../helpers/bytes.js';
import { CSS, objectServiceOf, openStores, ORG, scratchDirs } from '../../helpers/sync-fixtures.js';

const freshDir = scratchDirs('edgesync-signed-upstream-');
const N1: UpstreamPeer = { orgID: ORG, peerType: 'edge', peerID: 'n1' };
const INSTANCE = 1796425024462912487n;
const DATA = Buffer.from('data an edge app signed, twenty-five+');
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });

function signedMeta(objectID: string, signedData: Buffer): MetaData {
  const signature = sign('sha1', signedData, { key: rsa.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_MAX_SIGN });
  return {
    ...emptyMetaData(),
    objectType: 'report',
    objectID,
    instanceID: INSTANCE,
    dataID: INSTANCE,
    objectSize: DATA.length,
    originType: 'edge',
    originID: 'n1',
    hashAlgorithm: 'SHA1',
    publicKey: rsa.publicKey.export({ format: 'der', type: 'spki' }).toString('base64'),
    signature: signature.toString('base64'),
  };
}

const ref = (objectID: string) => ({ objectType: 'report', objectID, instanceID: INSTANCE });

describe('signed objects an ESS publishes, on the CSS', () => {
  let store: SqliteStore;
  let blobs: FileBlobStore;
  let upstream: UpstreamReceiver;

  beforeEach(async () => {
    const stores = await openStores(freshDir());
    ({ store, blobs } = stores);
    const objects = objectServiceOf(CSS, stores, {});
    upstream = new UpstreamReceiver({ store, notifications: stores.notifications, blobs, objects, maxDataSize: 0, now: () => 1_700_000_000_000 });
  });
  afterEach(async () => {
    await store.close();
  });

  const status = async (id: string): Promise<string | undefined> => (await store.getObject(ORG, 'report', id))?.status;

  it('completes an object whose data verifies, sent whole or in chunks', async () => {
    await upstream.applyUpdate(N1, ref('whole'), signedMeta('whole', DATA));
    expect(await upstream.putData(N1, ref('whole'), Readable.from([DATA]), { size: DATA.length, sha256: sha(DATA) })).toBe('applied');
    expect(await status('whole')).toBe('completelyReceived');

    await upstream.applyUpdate(N1, ref('chunks'), signedMeta('chunks', DATA));
    expect(await upstream.putData(N1, ref('chunks'), Readable.from([DATA.subarray(0, 10)]), { range: { start: 0, end: 9, total: DATA.length } })).toBe('applied');
    const last = { start: 10, end: DATA.length - 1, total: DATA.length };
    expect(await upstream.putData(N1, ref('chunks'), Readable.from([DATA.subarray(10)]), { range: last })).toBe('applied');
    expect(await status('chunks')).toBe('completelyReceived');
  });

  it('refuses data that does not match its signature, even with a matching SHA-256, and keeps none of it', async () => {
    await upstream.applyUpdate(N1, ref('bad'), signedMeta('bad', Buffer.from('something else')));
    const refused = upstream.putData(N1, ref('bad'), Readable.from([DATA]), { size: DATA.length, sha256: sha(DATA) });
    await expect(refused).rejects.toThrow(BadRequestError);
    await expect(upstream.putData(N1, ref('bad'), Readable.from([DATA]), { size: DATA.length })).rejects.toThrow(
      'data signature verification failed (RSA-PSS with SHA1): the data does not match the signature and public key',
    );
    expect([await status('bad'), (await store.getObject(ORG, 'report', 'bad'))?.blobId, await blobs.list()]).toEqual(['partiallyreceived', null, []]);
  });
});
