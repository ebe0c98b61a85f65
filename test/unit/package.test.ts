/**
 * What package.json promises exists once built (`npm test` builds before jest runs): the entry
 * point (`main`, the client SDK: the package's public API), its types, and the bin.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, test } from '@jest/globals';

const root = process.cwd();
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { main: string; types: string; bin: Record<string, string> };

describe('package.json', () => {
  test('main, types and every bin name a built file', () => {
    for (const file of [pkg.main, pkg.types, ...Object.values(pkg.bin)]) expect({ file, exists: existsSync(join(root, file)) }).toEqual({ file, exists: true });
  });

  test('main exports the client SDK', async () => {
    const entry = (await import(pathToFileURL(join(root, pkg.main)).href)) as Record<string, unknown>;
    expect(typeof entry.SyncServiceClient).toBe('function');
    expect(typeof entry.NotFoundError).toBe('function');
  });
});
