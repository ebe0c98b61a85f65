import { describe, expect, it } from '@jest/globals';
import { BadRequestError, parseJson, stringifyJson } from '../../../lib/model/index.js';
import { AckBatcher, SEND_ALONE } from '../../../lib/transport/http/spi-ack-batcher.js';
import { MAX_BATCH, parseBatch, type BatchedAck } from '../../../lib/transport/http/spi-batch-acks.js';

const ack = (objectID: string, action: BatchedAck['action'] = 'received'): BatchedAck => ({ action, objectType: 'model', objectID, instanceID: 7n, dataID: 7n });
const quiet = { info: (): void => undefined };
const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('parseBatch', () => {
  it('reads an array of body-less acks', () => {
    expect(parseBatch(stringifyJson([ack('a'), ack('b', 'updated'), ack('c', 'consumed'), ack('d', 'ackDelete')]))).toEqual([
      ack('a'),
      ack('b', 'updated'),
      ack('c', 'consumed'),
      ack('d', 'ackDelete'),
    ]);
    expect(parseBatch('[]')).toEqual([]);
  });

  it('refuses garbage, acks that carry a body, bad names and oversized batches with a 400', () => {
    const bad = [
      '',
      'not json',
      '{}',
      '[1]',
      stringifyJson([{ ...ack('a'), action: 'feedback' }]),
      stringifyJson([{ ...ack('a'), action: 'deleted' }]),
      stringifyJson([{ ...ack('a'), instanceID: -1 }]),
      stringifyJson([{ ...ack('a'), instanceID: 1.5 }]),
      stringifyJson([{ ...ack('a'), objectID: '../x' }]),
      stringifyJson([{ ...ack('a'), objectType: '' }]),
      JSON.stringify([{ action: 'received', objectType: 'model', objectID: 'a' }]),
      stringifyJson(Array.from({ length: MAX_BATCH + 1 }, (_, i) => ack(`o${i}`))),
    ];
    for (const body of bad) expect(() => parseBatch(body)).toThrow(BadRequestError);
  });
});

describe('AckBatcher', () => {
  it('sends the acks of one event-loop turn in one request and hands each its own status', async () => {
    const calls: { path: string; body: BatchedAck[] }[] = [];
    const batcher = new AckBatcher(
      (_m, path, payload) => {
        const body = parseJson(payload ?? '[]', new Set(['instanceID', 'dataID'])) as BatchedAck[];
        calls.push({ path, body });
        return Promise.resolve({ status: 200, body: JSON.stringify(body.map((a) => (a.objectID === 'stale' ? 409 : 204))) });
      },
      'org1',
      quiet,
    );
    const statuses = await Promise.all([batcher.send(ack('a')), batcher.send(ack('stale')), batcher.send(ack('c', 'updated'))]);
    expect(statuses).toEqual([204, 409, 204]);
    expect(calls).toEqual([{ path: '/spi/v1/objects/org1/acks', body: [ack('a'), ack('stale'), ack('c', 'updated')] }]);
    // A later turn gets its own request.
    await nextTurn();
    expect(await batcher.send(ack('d'))).toBe(204);
    expect(calls).toHaveLength(2);
  });

  it('turns itself off for a CSS without the extension: every ack is then sent alone', async () => {
    let calls = 0;
    const batcher = new AckBatcher(
      () => {
        calls++;
        return Promise.resolve({ status: 400, body: 'Unexpected number of path segments\n' });
      },
      'org1',
      quiet,
    );
    expect(await Promise.all([batcher.send(ack('a')), batcher.send(ack('b'))])).toEqual([SEND_ALONE, SEND_ALONE]);
    expect(batcher.enabled).toBe(false);
    expect(await batcher.send(ack('c'))).toBe(SEND_ALONE);
    expect(calls).toBe(1);
  });

  it('fails every ack of a batch whose request failed, and one whose answer does not match', async () => {
    const down = new AckBatcher(() => Promise.reject(new Error('ECONNRESET')), 'org1', quiet);
    await expect(Promise.all([down.send(ack('a')), down.send(ack('b'))])).rejects.toThrow('ECONNRESET');
    const short = new AckBatcher(() => Promise.resolve({ status: 200, body: '[204]' }), 'org1', quiet);
    const both = [short.send(ack('a')), short.send(ack('b'))];
    await expect(both[0]).rejects.toThrow(/batch of 2 acks/);
    await expect(both[1]).rejects.toThrow(/batch of 2 acks/);
    expect(short.enabled).toBe(true);
  });

  it('answers 424 to every ack when the ESS is not registered, so the client registers again', async () => {
    const batcher = new AckBatcher(() => Promise.resolve({ status: 424, body: 'not registered\n' }), 'org1', quiet);
    expect(await Promise.all([batcher.send(ack('a')), batcher.send(ack('b'))])).toEqual([424, 424]);
    expect(batcher.enabled).toBe(true);
  });
});
