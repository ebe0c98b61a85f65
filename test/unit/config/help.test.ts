/**
 * `--help` and the README's configuration table come from one table: every setting, named as
 * each source spells it, with the schema's default.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { CONFIG_KEYS, configTableMarkdown, flagsHelp, KEY_NAMES, settingsHelp } from '../../../lib/config/index.js';
import { withConfigTable } from '../../../scripts/docs/config-table.js';

describe('the settings help', () => {
  test('covers every setting, in schema order, with all its names', () => {
    expect(settingsHelp().map((s) => s.key)).toEqual(CONFIG_KEYS);
    const help = flagsHelp();
    for (const n of KEY_NAMES) {
      expect(help).toContain(`--${n.flag}`);
      for (const e of n.env) expect(help).toContain(e);
    }
    expect(help).toContain('--no-http-css-use-ssl');
  });

  test('defaults come from the schema, in units people read', () => {
    const byKey = new Map(settingsHelp().map((s) => [s.key, s.default]));
    expect(byKey.get('unsecureListeningPort')).toBe('`8080`');
    expect(byKey.get('maxDataChunkSize')).toBe('5 MiB');
    expect(byKey.get('maxRequestBodySize')).toBe('64 MiB');
    expect(byKey.get('resendInterval')).toBe('10 s');
    expect(byKey.get('essPingInterval')).toBe('1 h');
    expect(byKey.get('persistenceRootPath')).toBe('`./data`');
    expect(byKey.get('unixSocketFilePermissions')).toBe('`0660`');
    expect(byKey.get('orgID')).toBe('–');
  });

  test('the README holds the generated table (run `npm run docs:config` after changing a setting)', () => {
    const readme = readFileSync(join(process.cwd(), 'README.md'), 'utf8');
    expect(readme).toContain(configTableMarkdown());
    expect(withConfigTable(readme)).toBe(readme);
  });
});
