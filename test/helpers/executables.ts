/** The first of `paths` that is an executable file here, or null (test helpers that start programs). */
import { accessSync, constants } from 'node:fs';

export function firstExecutable(paths: readonly string[]): string | null {
  for (const p of paths) {
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // Not there; try the next.
    }
  }
  return null;
}
