/**
 * The ESS's download path verifies a signature on the pass that stages the data: the
 * StagingWriter hands every byte to the object's ReceivedSignature, and a resumed download feeds
 * it the staged prefix it reads back, so the verdict covers the whole data either way.
 */
import { constants, generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeEach, describe, expect, it } from '@jest/globals';
import { emptyMetaData, type MetaData } from '../../../lib/model/index.js';
import { FileBlobStore } from '../../../lib/store/index.js';
import { ReceivedSignature, verifyReceivedData } from '../../../lib/sync/data-check.js';
import { StagingWriter } from '../../../lib/sync/staging-writer.js';

const root = mkdtempSync(join(tmpdir(), 'edgesync-signature-staging-'));
let count = 0;
afterAll(() => rmSync(root, { recursive: true, force: true }));

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const data = Buffer.from(Array.from({ length: 50_000 }, (_, i) => (i * 13 + 5) % 256));

function signedMeta(payload: Buffer): MetaData {
  const signature = sign('sha256', payload, { key: rsa.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST });
  return { ...emptyMetaData(), objectType: 't', objectID: 'o', hashAlgorithm: 'SHA256', publicKey: rsa.publicKey.export({ format: 'der', type: 'spki' }).toString('base64'), signature: signature.toString('base64') };
}

function chunks(b: Buffer, size: number): Readable {
  const parts: Buffer[] = [];
  for (let at = 0; at < b.length; at += size) parts.push(b.subarray(at, at + size));
  return Readable.from(parts);
}

describe('signature checks on the staging pass', () => {
  let blobs: FileBlobStore;
  beforeEach(async () => {
    blobs = new FileBlobStore({ root: join(root, String(++count)) });
    await blobs.init();
  });

  it('verifies a download staged in one go', async () => {
    const signature = new ReceivedSignature(signedMeta(data));
    const writer = StagingWriter.fresh(blobs, await blobs.createStaging(), { segmentBytes: 7000, observer: signature });
    await writer.append(chunks(data, 3001), data.length, () => Promise.resolve());
    expect(signature.check()).toEqual({ ok: true });
  });

  it('verifies a download resumed after a break, the staged part read back into the check', async () => {
    const staging = await blobs.createStaging();
    const first = StagingWriter.fresh(blobs, staging, { segmentBytes: 7000, observer: new ReceivedSignature(signedMeta(data)) });
    await first.append(chunks(data.subarray(0, 21_000), 3000), 21_000, () => Promise.resolve());
    // A new process: a new check, fed the 21 000 staged bytes by the resume.
    const signature = new ReceivedSignature(signedMeta(data));
    const resumed = await StagingWriter.resume(blobs, staging, first.offset, { segmentBytes: 7000, observer: signature });
    await resumed.append(chunks(data.subarray(21_000), 4000), data.length - 21_000, () => Promise.resolve());
    expect(signature.check()).toEqual({ ok: true });
    expect(verifyReceivedData(undefined, resumed.sha256(), { ok: true })).toEqual({ kind: 'unchecked' });
  });

  it('fails data changed in the staged part, and reports the signature before the SHA-256', async () => {
    const staging = await blobs.createStaging();
    const damaged = Buffer.from(data);
    damaged[5] = (damaged[5]! + 1) % 256;
    const signature = new ReceivedSignature(signedMeta(data));
    const writer = StagingWriter.fresh(blobs, staging, { observer: signature });
    await writer.append(chunks(damaged, 8192), damaged.length, () => Promise.resolve());
    const check = signature.check();
    expect(check?.ok).toBe(false);
    const verdict = verifyReceivedData('0'.repeat(64), writer.sha256(), check);
    expect(verdict).toEqual({ kind: 'mismatch', reason: 'data signature verification failed (RSA-PSS with SHA256): the data does not match the signature and public key' });
  });

  it('treats metadata whose statement cannot be parsed as a failed check, and an unsigned object as none', () => {
    const junk = new ReceivedSignature({ ...signedMeta(data), publicKey: Buffer.from('junk').toString('base64') });
    expect(junk.signed).toBe(true);
    expect(junk.check()).toMatchObject({ ok: false, reason: expect.stringMatching(/^data signature cannot be verified/) });
    const none = new ReceivedSignature(emptyMetaData());
    expect(none.signed).toBe(false);
    expect(none.check()).toBeNull();
  });
});
