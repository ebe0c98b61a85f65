/**
 * The data options of an object, end to end over every transport (HTTP, MQTT through the CSS's
 * embedded broker, MQTT through mosquitto), on real processes: `destinationDataUri` (the ESS
 * writes the data to a file in DESTINATION_DATA_DIRS too), `sourceDataUri` (the publisher reads
 * it from a file in SOURCE_DATA_DIRS), `noData`, `link` and `metaOnly` (delivered with no data
 * transfer). Transfers are counted in the ESS's INFO line `object received from the CSS`, whose
 * `transfer` says how the data came (`none`, `inline` in a poll answer, `download`).
 * [ref rest-api §2 MetaData, sync-protocol §6]
 */
import { constants, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, jest, test } from '@jest/globals';
import { readAll, sha } from '../helpers/bytes.js';
import { Teardown, type RunningProcess } from '../helpers/node-process.js';
import { eventuallyWithin, ORG } from '../helpers/sync-pair.js';
import { describeTransports, netLog, startSyncNet, type EssNode, type SyncNet } from '../helpers/transports.js';

jest.setTimeout(120_000);

const DEADLINE_MS = 45_000;
const eventually = eventuallyWithin(DEADLINE_MS);
const INFO = { LOG_LEVEL: 'info' };

interface LogLine {
  msg: string;
  [field: string]: unknown;
}

/** How each arrival of `objectID` on the ESS came, in order (`none`, `inline`, `download`). */
function arrivals(node: RunningProcess, objectID: string): string[] {
  return node
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine)
    .filter((l) => l.msg === 'object received from the CSS' && l.object === `${ORG}/model/${objectID}`)
    .map((l) => String(l.transfer));
}

describeTransports('data options between a CSS and an ESS', (kind) => {
  const t = new Teardown();
  let net: SyncNet;
  let n1: EssNode;
  let files: string;
  let inbox: string;
  let outbox: string;
  let elsewhere: string;

  beforeAll(async () => {
    files = await mkdtemp(join(tmpdir(), 'edgesync-data-options-'));
    t.add(() => rm(files, { recursive: true, force: true }));
    inbox = join(files, 'inbox');
    outbox = join(files, 'outbox');
    elsewhere = join(files, 'elsewhere');
    for (const d of [inbox, outbox, elsewhere]) await mkdir(d);
    net = await startSyncNet(t, kind, { deadlineMs: DEADLINE_MS, cssEnv: { ...INFO, SOURCE_DATA_DIRS: outbox }, essEnv: { ...INFO, DESTINATION_DATA_DIRS: inbox } });
    n1 = await net.addEss({ id: 'n1' });
  });
  afterAll(() => t.run());

  const log = (): string => netLog(net, n1)();
  const complete = (id: string): Promise<unknown> => eventually(`${id} complete on the ESS`, () => n1.client.getObjectStatus('model', id), (s) => s === 'completelyReceived', log);

  test('destinationDataUri: the ESS writes the data to that file, whole, and still serves it through the API', async () => {
    const data = randomBytes(200 * 1024);
    const uri = `file://${inbox}/model.bin`;
    await net.onCss.updateObject({ objectID: 'to-file', objectType: 'model', destinationType: 'edge', destinationDataUri: uri }, data);
    await complete('to-file');
    expect(sha(await readFile(join(inbox, 'model.bin')))).toBe(sha(data));
    expect(sha(await readAll(await n1.client.fetchObjectData('model', 'to-file')))).toBe(sha(data));
    expect((await n1.client.getObject('model', 'to-file'))?.destinationDataUri).toBe(uri);

    // A new version replaces the file, atomically: no temporary file is left beside it.
    const v2 = randomBytes(50 * 1024);
    await net.onCss.updateObject({ objectID: 'to-file', objectType: 'model', destinationType: 'edge', destinationDataUri: uri, version: '2' }, v2);
    await eventually('v2 in the file', () => readFile(join(inbox, 'model.bin')).then(sha), (s) => s === sha(v2), log);
    expect(await readdir(inbox)).toEqual(['model.bin']);

    // Deleted on the CSS: the ESS removes the file with the object.
    await net.onCss.deleteObject('model', 'to-file');
    await eventually('the file gone', () => readdir(inbox), (names) => names.length === 0, log);
  });

  test('destinationDataUri outside DESTINATION_DATA_DIRS: the object arrives, no file is written', async () => {
    await symlink(elsewhere, join(inbox, 'escape'));
    await net.onCss.updateObject({ objectID: 'escaping', objectType: 'model', destinationType: 'edge', destinationDataUri: `file://${inbox}/escape/x.bin` }, 'data');
    await net.onCss.updateObject({ objectID: 'outside', objectType: 'model', destinationType: 'edge', destinationDataUri: `file://${elsewhere}/y.bin` }, 'data');
    await complete('escaping');
    await complete('outside');
    expect(await readdir(elsewhere)).toEqual([]);
    expect((await readAll(await n1.client.fetchObjectData('model', 'outside'))).toString()).toBe('data');
    await rm(join(inbox, 'escape'));
  });

  test('destinationDataUri of a bad form is refused by the CSS with the reason', async () => {
    const put = (uri: string): Promise<void> => net.onCss.updateObject({ objectID: 'bad-uri', objectType: 'model', destinationType: 'edge', destinationDataUri: uri }, 'x');
    await expect(put(`file://host.example${inbox}/x`)).rejects.toThrow('must not name a host');
    await expect(put(`file://${inbox}/../x`)).rejects.toThrow('`..`');
    await expect(put('https://example.com/x')).rejects.toThrow('file:/// URI');
  });

  test('sourceDataUri: the CSS reads the data from a file in SOURCE_DATA_DIRS; the ESS gets identical bytes', async () => {
    const data = randomBytes(300 * 1024);
    await writeFile(join(outbox, 'src.bin'), data);
    await net.onCss.updateObject({ objectID: 'from-file', objectType: 'model', destinationType: 'edge', sourceDataUri: `file://${outbox}/src.bin` });
    expect((await net.onCss.getObject('model', 'from-file'))?.objectSize).toBe(data.length);
    await complete('from-file');
    expect(sha(await readAll(await n1.client.fetchObjectData('model', 'from-file')))).toBe(sha(data));
  });

  test('sourceDataUri of a signed object: the file is verified as it is read; a mismatch is 400, the object verificationFailed, not delivered', async () => {
    const data = randomBytes(200 * 1024);
    await writeFile(join(outbox, 'signed.bin'), data);
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const signed = (bytes: Buffer): { hashAlgorithm: string; publicKey: string; signature: string } => ({
      hashAlgorithm: 'SHA256',
      publicKey: publicKey.export({ format: 'der', type: 'spki' }).toString('base64'),
      signature: sign('sha256', bytes, { key: privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }).toString('base64'),
    });
    await net.onCss.updateObject({ objectID: 'signed-file', objectType: 'model', destinationType: 'edge', sourceDataUri: `file://${outbox}/signed.bin`, ...signed(data) });
    await complete('signed-file');
    const other = Buffer.from(data);
    other[0] = (other[0]! + 1) % 256;
    await expect(
      net.onCss.updateObject({ objectID: 'forged-file', objectType: 'model', destinationType: 'edge', sourceDataUri: `file://${outbox}/signed.bin`, ...signed(other) }),
    ).rejects.toThrow('data signature verification failed');
    expect(await net.onCss.getObjectStatus('model', 'forged-file')).toBe('verificationFailed');
  });

  test('sourceDataUri outside SOURCE_DATA_DIRS, through a symlink, with data, or on a node without the key: 400 with the reason', async () => {
    await writeFile(join(elsewhere, 'secret'), 'secret');
    await symlink(join(elsewhere, 'secret'), join(outbox, 'link'));
    const put = (uri: string, data?: string): Promise<void> => net.onCss.updateObject({ objectID: 'bad-src', objectType: 'model', destinationType: 'edge', sourceDataUri: uri }, data);
    await expect(put(`file://${elsewhere}/secret`)).rejects.toThrow('outside the directories SOURCE_DATA_DIRS allows');
    await expect(put(`file://${outbox}/link`)).rejects.toThrow('outside the directories SOURCE_DATA_DIRS allows');
    await expect(put(`file://${outbox}/src.bin`, 'inline')).rejects.toThrow('Both source data URI and data are set');
    await expect(put(`file://${outbox}/none`)).rejects.toThrow('no such file');
    expect(await net.onCss.getObject('model', 'bad-src')).toBeNull();
    // The ESS has no SOURCE_DATA_DIRS: the feature is off there.
    await expect(n1.client.updateObject({ objectID: 'up', objectType: 'model', sourceDataUri: `file://${outbox}/src.bin` })).rejects.toThrow('SOURCE_DATA_DIRS is empty');
  });

  test('sourceDataUri on an ESS with SOURCE_DATA_DIRS: the object reaches the CSS with the file’s bytes', async () => {
    const edgeOut = join(files, 'edge-out');
    await mkdir(edgeOut);
    const n2 = await net.addEss({ id: 'n2', env: { SOURCE_DATA_DIRS: edgeOut } });
    const data = randomBytes(120 * 1024);
    await writeFile(join(edgeOut, 'report.bin'), data);
    await n2.client.updateObject({ objectID: 'report', objectType: 'model', sourceDataUri: `file://${edgeOut}/report.bin` });
    await eventually('report on the CSS', () => net.onCss.getObjectStatus('model', 'report'), (s) => s === 'completelyReceived', netLog(net, n2));
    expect(sha(await readAll(await net.onCss.fetchObjectData('model', 'report')))).toBe(sha(data));
    // The CSS does not keep the edge's path.
    expect((await net.onCss.getObject('model', 'report'))?.sourceDataUri).toBe('');
  });

  test('noData and link: delivered complete with no data transfer', async () => {
    await net.onCss.updateObject({ objectID: 'no-data', objectType: 'model', destinationType: 'edge', noData: true });
    await net.onCss.updateObject({ objectID: 'linked', objectType: 'model', destinationType: 'edge', link: 'https://example.com/model.bin' });
    await complete('no-data');
    await complete('linked');
    expect((await n1.client.getObject('model', 'linked'))?.link).toBe('https://example.com/model.bin');
    expect((await n1.client.getObject('model', 'no-data'))?.noData).toBe(true);
    await eventually('arrivals logged', () => Promise.resolve([arrivals(n1.node, 'no-data'), arrivals(n1.node, 'linked')]), (a) => a.every((x) => x.length === 1), log);
    expect([arrivals(n1.node, 'no-data'), arrivals(n1.node, 'linked')]).toEqual([['none'], ['none']]);
  });

  test('metaOnly: the ESS keeps its data and nothing is sent again; metaOnly with data is a 400', async () => {
    const data = randomBytes(100 * 1024);
    await net.onCss.updateObject({ objectID: 'meta', objectType: 'model', destinationType: 'edge', description: 'first' }, data);
    await complete('meta');
    const first = (await n1.client.getObject('model', 'meta'))!;
    await net.onCss.updateObject({ objectID: 'meta', objectType: 'model', destinationType: 'edge', description: 'second', metaOnly: true });
    await eventually('the new metadata on the ESS', () => n1.client.getObject('model', 'meta'), (m) => m?.description === 'second', log);
    await complete('meta');
    const second = (await n1.client.getObject('model', 'meta'))!;
    expect(second.instanceID).not.toBe(first.instanceID);
    expect(second.dataID).toBe(first.dataID);
    expect(sha(await readAll(await n1.client.fetchObjectData('model', 'meta')))).toBe(sha(data));
    await eventually('two arrivals logged', () => Promise.resolve(arrivals(n1.node, 'meta')), (a) => a.length === 2, log);
    // One transfer for the first instance, none for the metaOnly one.
    expect(arrivals(n1.node, 'meta')[1]).toBe('none');
    expect(arrivals(n1.node, 'meta').filter((a) => a !== 'none')).toHaveLength(1);

    await expect(net.onCss.updateObject({ objectID: 'meta', objectType: 'model', destinationType: 'edge', metaOnly: true }, 'data')).rejects.toThrow(
      "Can't update data if MetaOnly is true",
    );
  });
  test('destinationPolicy: stored and listed (O18), delivered to no node; a new version is listed again after policyreceived', async () => {
    const policy = { properties: [{ name: 'color', value: 'blue' }], services: [{ orgID: 'svcorg', arch: 'amd64', serviceName: 'svc', version: '1.0.0' }] };
    await net.onCss.updateObject({ objectID: 'by-policy', objectType: 'model', destinationPolicy: policy }, 'data');
    const listed = await net.onCss.listObjectsWithDestinationPolicy({ service: 'svcorg/svc' });
    expect(listed.map((o) => [o.objectID, o.destinationPolicy?.properties?.[0]?.name])).toEqual([['by-policy', 'color']]);
    const first = listed[0]!.destinationPolicy!.timestamp;
    await net.onCss.markPolicyReceived('model', 'by-policy');
    expect((await net.onCss.listObjectsWithDestinationPolicy()).map((o) => o.objectID)).not.toContain('by-policy');
    expect((await net.onCss.listObjectsWithDestinationPolicy({ received: true })).map((o) => o.objectID)).toContain('by-policy');

    await net.onCss.updateObject({ objectID: 'by-policy', objectType: 'model', destinationPolicy: policy, version: '2' }, 'data 2');
    const again = await net.onCss.listObjectsWithDestinationPolicy();
    expect(again.map((o) => o.objectID)).toEqual(['by-policy']);
    expect(BigInt(again[0]!.destinationPolicy!.timestamp) > BigInt(first)).toBe(true);
    expect((await net.onCss.listObjectsWithDestinationPolicy({ since: BigInt(again[0]!.destinationPolicy!.timestamp) })).map((o) => o.objectID)).toEqual(['by-policy']);
    // No destination is addressed: the ESS never hears of it.
    await new Promise((r) => setTimeout(r, 2000));
    expect(await n1.client.getObject('model', 'by-policy')).toBeNull();
  });
});
