import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { parseSize, publishMeta } from '../../../cmd/cli/object.js';
import { UsageError } from '../../../cmd/cli/exit-codes.js';

describe('object publish: the metadata sent', () => {
  let dir: string;
  let file: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'edgesync-meta-'));
    file = join(dir, 'meta.json');
    // As saved from `object get --json`: server-made ids included, one beyond 2^53.
    await writeFile(file, '{"objectType":"t","objectID":"a","version":"1","destinationType":"edge","instanceID":1733400000123456789,"objectSize":5}');
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('takes the file, then each flag given over it, and drops the ids the server makes', async () => {
    const meta = await publishMeta({ meta: file, id: 'b', version: '2', destId: 'n1', data: true, chunkSize: '8M' });
    expect(meta).toEqual({ objectType: 't', objectID: 'b', version: '2', destinationType: 'edge', destinationID: 'n1' });
  });

  it('builds the metadata from flags alone, with lists and the noData and inactive switches', async () => {
    const meta = await publishMeta({ type: 't', id: 'x', destList: 'edge:n1, edge:n2', inactive: true, data: false, chunkSize: '1' });
    expect(meta).toEqual({ objectType: 't', objectID: 'x', destinationsList: ['edge:n1', 'edge:n2'], inactive: true, noData: true });
  });

  it('needs a type and an ID', async () => {
    await expect(publishMeta({ id: 'x', data: true, chunkSize: '1' })).rejects.toThrow(UsageError);
    await expect(publishMeta({ type: 't', data: true, chunkSize: '1' })).rejects.toThrow(/objectID/);
  });

  it('reads chunk sizes with binary suffixes', () => {
    expect(parseSize('65536')).toBe(65536);
    expect(parseSize('64k')).toBe(65536);
    expect(parseSize('8M')).toBe(8 * 1024 * 1024);
    expect(parseSize('1GiB')).toBe(1024 ** 3);
    expect(() => parseSize('0')).toThrow(UsageError);
    expect(() => parseSize('lots')).toThrow(UsageError);
  });
});
