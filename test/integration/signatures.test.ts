/**
 * Signed objects end to end, over every transport: the CSS verifies the data at upload (RSA-PSS
 * as the reference, ECDSA, Ed25519), an object whose signature fails is `verificationFailed` and
 * never delivered, and the ESS verifies again before its app may see the object: data damaged at
 * the CSS after its check is refused, the reason showing on the CSS as the destination's error.
 * Real processes on loopback. [ref core/dataVerifier, rest-api §2.1, sync-protocol §6]
 */
import { constants, createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { expect, jest, test } from '@jest/globals';
import { blobFileOf, readAll, sha } from '../helpers/bytes.js';
import { eventuallyWithin } from '../helpers/sync-pair.js';
import { deliveries, describeTransports, netLog, withOneEss, type EssNode, type SyncNet } from '../helpers/transports.js';
import { DEFAULT_INLINE_LIMIT } from '../../lib/store/index.js';

jest.setTimeout(120_000);

const DEADLINE_MS = 45_000;
const eventually = eventuallyWithin(DEADLINE_MS);

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ed25519 = generateKeyPairSync('ed25519');

const spki = (key: KeyObject): string => key.export({ format: 'der', type: 'spki' }).toString('base64');

/** RSA-PSS as the reference's verifier expects it: the data hashed with SHA256, PSS with MGF1-SHA256. */
function rsaSigned(data: Buffer): { hashAlgorithm: string; publicKey: string; signature: string } {
  const signature = sign('sha256', data, { key: rsa.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST });
  return { hashAlgorithm: 'SHA256', publicKey: spki(rsa.publicKey), signature: signature.toString('base64') };
}

const REFUSED = 'data signature verification failed (RSA-PSS with SHA256): the data does not match the signature and public key';

describeTransports('signed objects between a CSS and an ESS', (kind) => {
  let net: SyncNet;
  let n1: EssNode;
  withOneEss(kind, DEADLINE_MS, (s) => ({ net, n1 } = s));

  const log = (): string => netLog(net, n1)();

  async function arrives(objectType: string, objectID: string, data: Buffer): Promise<void> {
    await eventually(`${objectID} complete on the ESS`, () => n1.client.getObjectStatus(objectType, objectID), (s) => s === 'completelyReceived', log);
    expect(sha(await readAll(await n1.client.fetchObjectData(objectType, objectID)))).toBe(sha(data));
  }

  test('objects signed with RSA-PSS, ECDSA P-256 and Ed25519 are verified, become ready, and are delivered', async () => {
    // RSA, data streamed in its own PUT, large enough for the ESS's resumable download.
    const big = randomBytes(1536 * 1024);
    await net.onCss.updateObject({ objectID: 'rsa', objectType: 'signed', destinationType: 'edge', ...rsaSigned(big) });
    expect(await net.onCss.getObjectStatus('signed', 'rsa')).toBe('notReady');
    await net.onCss.updateObjectData('signed', 'rsa', big);
    expect(await net.onCss.getObjectStatus('signed', 'rsa')).toBe('ready');

    // ECDSA P-256 with SHA1, uploaded in chunks: verified once the last one is in.
    const chunked = randomBytes(200 * 1024);
    const ecSig = sign('sha1', chunked, p256.privateKey).toString('base64');
    await net.onCss.updateObject({ objectID: 'ec', objectType: 'signed', destinationType: 'edge', hashAlgorithm: 'SHA1', publicKey: spki(p256.publicKey), signature: ecSig });
    await net.onCss.updateObjectDataChunked('signed', 'ec', Readable.from([chunked]), { chunkSize: 64 * 1024, size: chunked.length });

    // Ed25519 (over the SHA256 digest), small data inline in the PUT.
    const small = Buffer.from('a small signed object');
    const edSig = sign(null, createHash('sha256').update(small).digest(), ed25519.privateKey).toString('base64');
    await net.onCss.updateObject({ objectID: 'ed', objectType: 'signed', destinationType: 'edge', hashAlgorithm: 'SHA256', publicKey: spki(ed25519.publicKey), signature: edSig }, small);

    await arrives('signed', 'rsa', big);
    await arrives('signed', 'ec', chunked);
    await arrives('signed', 'ed', small);
    const held = await n1.client.getObject('signed', 'rsa');
    expect([held?.hashAlgorithm, held?.publicKey]).toEqual(['SHA256', spki(rsa.publicKey)]);
    await eventually('O13 of rsa', () => deliveries(net, 'signed', 'rsa'), (d) => d.join() === 'edge/n1:delivered', log);
  });

  test('an object without data is verifying while its signed data streams in', async () => {
    const data = randomBytes(256 * 1024);
    await net.onCss.updateObject({ objectID: 'slow', objectType: 'signed', destinationType: 'edge', ...rsaSigned(data) });
    let release = (): void => undefined;
    const held = new Promise<void>((r) => (release = r));
    const body = Readable.from(
      (async function* () {
        yield data.subarray(0, 1024);
        await held;
        yield data.subarray(1024);
      })(),
    );
    const upload = net.onCss.updateObjectData('signed', 'slow', body, { size: data.length });
    try {
      await eventually('slow verifying', () => net.onCss.getObjectStatus('signed', 'slow'), (s) => s === 'verifying', log);
    } finally {
      release();
    }
    await upload;
    expect(await net.onCss.getObjectStatus('signed', 'slow')).toBe('ready');
    await arrives('signed', 'slow', data);
  });

  test('data that does not match its signature is refused with 400: verificationFailed on the CSS, nothing delivered', async () => {
    const data = randomBytes(64 * 1024);
    const forged = Buffer.from(data);
    forged[100] = (forged[100]! + 1) % 256;
    await net.onCss.updateObject({ objectID: 'forged', objectType: 'signed', destinationType: 'edge', ...rsaSigned(data) });
    await expect(net.onCss.updateObjectData('signed', 'forged', forged)).rejects.toMatchObject({ status: 400, body: expect.stringContaining(REFUSED) });
    expect(await net.onCss.getObjectStatus('signed', 'forged')).toBe('verificationFailed');
    await expect(net.onCss.fetchObjectData('signed', 'forged')).rejects.toMatchObject({ status: 404 });

    // Inline in the PUT of a new object: kept as verificationFailed, without data.
    await expect(net.onCss.updateObject({ objectID: 'forged2', objectType: 'signed', destinationType: 'edge', ...rsaSigned(data) }, forged)).rejects.toMatchObject({ status: 400 });
    expect(await net.onCss.getObjectStatus('signed', 'forged2')).toBe('verificationFailed');

    // A version that was verified stays as it was when a new upload of data fails.
    await net.onCss.updateObjectData('signed', 'forged', data);
    expect(await net.onCss.getObjectStatus('signed', 'forged')).toBe('ready');
    await expect(net.onCss.updateObjectData('signed', 'forged', forged)).rejects.toMatchObject({ status: 400 });
    expect(await net.onCss.getObjectStatus('signed', 'forged')).toBe('ready');
    expect(sha(await readAll(await net.onCss.fetchObjectData('signed', 'forged')))).toBe(sha(data));

    // Sent after them: once it is on the ESS, they would be too, had they been delivered.
    await net.onCss.updateObject({ objectID: 'marker', objectType: 'signed', destinationType: 'edge' }, 'after the forged ones');
    await arrives('signed', 'forged', data);
    await eventually('marker on the ESS', () => n1.client.getObjectStatus('signed', 'marker'), (s) => s === 'completelyReceived', log);
    expect(await n1.client.getObjectStatus('signed', 'forged2')).toBeNull();
  });

  test('data damaged at the CSS after its check is refused by the ESS, the signature failure in O13', async () => {
    const good = randomBytes(DEFAULT_INLINE_LIMIT + 4096);
    // For another destination type first, so that the ESS cannot fetch it before the bytes are
    // damaged; a metaOnly update then addresses it to n1, data, digest and signature kept.
    await net.onCss.updateObject({ objectID: 'damaged', objectType: 'signed', destinationType: 'other', ...rsaSigned(good) }, good);
    const file = await blobFileOf(net.css.root, good);
    const bad = Buffer.from(good);
    bad[0] = (bad[0]! + 1) % 256;
    await writeFile(file, bad);
    await net.onCss.updateObject({ objectID: 'damaged', objectType: 'signed', destinationType: 'edge', metaOnly: true });
    await eventually('O13 of damaged', () => net.onCss.getObjectDestinations('signed', 'damaged'), (d) => d.length === 1 && d[0]?.status === 'error', log);
    expect(await net.onCss.getObjectDestinations('signed', 'damaged')).toEqual([{ destinationType: 'edge', destinationID: 'n1', status: 'error', message: REFUSED }]);
    expect(await n1.client.getObjectStatus('signed', 'damaged')).not.toBe('completelyReceived');
    expect((await n1.client.listObjects('signed')).map((m) => m.objectID)).not.toContain('damaged');
    // Repaired at the CSS: the ESS's next retry verifies it, and the error clears.
    await writeFile(file, good);
    await arrives('signed', 'damaged', good);
    await eventually('O13 of damaged', () => deliveries(net, 'signed', 'damaged'), (d) => d.join() === 'edge/n1:delivered', log);
  });

  test('an object published on the ESS is verified there too before it goes to the CSS', async () => {
    const data = randomBytes(32 * 1024);
    const forged = Buffer.from(data);
    forged[0] = (forged[0]! + 1) % 256;
    await expect(n1.client.updateObject({ objectID: 'up-forged', objectType: 'report', ...rsaSigned(data) }, forged)).rejects.toMatchObject({ status: 400, body: expect.stringContaining(REFUSED) });
    expect(await n1.client.getObjectStatus('report', 'up-forged')).toBe('verificationFailed');
    await n1.client.updateObject({ objectID: 'up', objectType: 'report', ...rsaSigned(data) }, data);
    await eventually('up on the CSS', () => net.onCss.getObjectStatus('report', 'up'), (s) => s === 'completelyReceived', log);
    expect(sha(await readAll(await net.onCss.fetchObjectData('report', 'up')))).toBe(sha(data));
    expect(await net.onCss.getObjectStatus('report', 'up-forged')).toBeNull();
  });
});
