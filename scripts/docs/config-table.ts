/**
 * Writes the README's configuration table from the config table (`lib/config/help.ts`),
 * between its markers. `test/unit/config/help.test.ts` fails while the README differs.
 *
 *   npm run docs:config
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { configTableMarkdown } from '../../lib/config/index.js';

export const BEGIN = '<!-- config-table: generated from lib/config/help.ts by `npm run docs:config`; do not edit -->';
export const END = '<!-- /config-table -->';

/** The README text with its table replaced; throws when the markers are missing. */
export function withConfigTable(readme: string): string {
  const start = readme.indexOf(BEGIN);
  const end = readme.indexOf(END);
  if (start < 0 || end < start) throw new Error(`README.md lacks the markers ${BEGIN} … ${END}`);
  return `${readme.slice(0, start + BEGIN.length)}\n${configTableMarkdown()}\n${readme.slice(end)}`;
}

if (process.argv[1]?.endsWith('config-table.js') === true) {
  const path = join(process.cwd(), 'README.md');
  const before = readFileSync(path, 'utf8');
  const after = withConfigTable(before);
  if (after !== before) writeFileSync(path, after);
  process.stdout.write(after === before ? 'README.md: configuration table up to date\n' : 'README.md: configuration table rewritten\n');
}
