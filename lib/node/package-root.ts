/** Files shipped beside the code (swagger/) are found from the package root, built or not. */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'swagger'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('Cannot find the edgesync package root (package.json beside swagger/)');
    dir = parent;
  }
}
