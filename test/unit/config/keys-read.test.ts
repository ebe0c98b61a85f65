/**
 * Every accepted configuration key does something: some module outside lib/config/ reads it.
 * A key that is only parsed and validated (lib/config/) counts as unread. Reads are found in the
 * source of lib/ and cmd/ with comments removed, so a key named only in a comment does not count.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from '@jest/globals';
import { CONFIG_KEYS, type ConfigKey } from '../../../lib/config/schema.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/**
 * Keys accepted for the reference's configurations that nothing may read yet, each with the
 * reason. The test also fails when one of them becomes read: then it leaves this list.
 */
const NOT_READ_YET: Partial<Record<ConfigKey, string>> = {};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(path);
    return e.name.endsWith('.ts') ? [path] : [];
  });
}

/** The code without its comments (string contents are kept: `config['key']` is a read). */
function withoutComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
}

const readers: { file: string; code: string }[] = [...sourceFiles(join(ROOT, 'lib')), ...sourceFiles(join(ROOT, 'cmd'))]
  .map((path) => ({ file: relative(ROOT, path), code: withoutComments(readFileSync(path, 'utf8')) }))
  .filter((f) => !f.file.startsWith(join('lib', 'config')));

function readersOf(key: string): string[] {
  const word = new RegExp(`\\b${key}\\b`);
  return readers.filter((f) => word.test(f.code)).map((f) => f.file);
}

describe('configuration keys', () => {
  it('finds the modules it searches (the search itself works)', () => {
    expect(readers.length).toBeGreaterThan(50);
    expect(readersOf('objectActivationInterval')).toContain(join('lib', 'sync', 'maintenance', 'index.ts'));
  });

  it.each(CONFIG_KEYS.filter((k) => NOT_READ_YET[k] === undefined))('%s is read outside lib/config/', (key) => {
    expect(readersOf(key)).not.toEqual([]);
  });

  // One test over the list, which may be empty (every key read): jest refuses an empty `each`.
  it('keys listed as not read yet are indeed not read (else take them off the list)', () => {
    for (const key of Object.keys(NOT_READ_YET)) {
      expect(CONFIG_KEYS).toContain(key);
      expect([key, readersOf(key)]).toEqual([key, []]);
    }
  });
});
