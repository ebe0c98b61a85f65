import { accessSync, constants } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';

/** Where test/helpers/fuzz.ts looks for schemathesis (the fuzz suite fails, rather than skips, on a bad EDGESYNC_SCHEMATHESIS). */
function schemathesisFound() {
  const cache = process.env.XDG_CACHE_HOME ? process.env.XDG_CACHE_HOME : join(homedir(), '.cache');
  const candidates = [process.env.EDGESYNC_SCHEMATHESIS, join(cache, 'edgesync-ci', 'venv', 'bin', 'schemathesis'), ...(process.env.PATH ?? '').split(delimiter).filter((d) => d !== '').map((d) => join(d, 'schemathesis'))];
  return candidates.some((path) => {
    if (path === undefined || path === '') return false;
    try {
      accessSync(path, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Where test/helpers/ferretdb.ts looks for FerretDB, which the MongoStore contract suite starts. */
function ferretdbFound() {
  const cache = process.env.XDG_CACHE_HOME ? process.env.XDG_CACHE_HOME : join(homedir(), '.cache');
  const override = process.env.EDGESYNC_TEST_FERRETDB;
  const candidates = override ? [override] : [join(cache, 'edgesync-ci', 'bin', 'ferretdb'), ...(process.env.PATH ?? '').split(delimiter).filter((d) => d !== '').map((d) => join(d, 'ferretdb')), join(homedir(), 'go', 'bin', 'ferretdb')];
  return candidates.some((path) => {
    try {
      accessSync(path, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Says out loud which suites cannot run on this machine, so a skip is never silent. */
export default function globalSetup() {
  if ((process.env.EDGESYNC_TEST_MONGO_URL ?? '') === '' && !ferretdbFound()) {
    process.stdout.write('\n[edgesync] SKIPPED: MongoStore contract suite (no MongoDB here: set EDGESYNC_TEST_MONGO_URL, or install FerretDB as .ci/run does; see test/helpers/ferretdb.ts)\n');
  }
  if (!schemathesisFound()) {
    process.stdout.write('[edgesync] SKIPPED: API fuzz run (schemathesis not installed; .ci/run installs it, or set EDGESYNC_SCHEMATHESIS; see test/helpers/fuzz.ts)\n');
  }
  if (process.env.EDGESYNC_REFERENCE_BIN === undefined || process.env.EDGESYNC_REFERENCE_BIN === '') {
    process.stdout.write('[edgesync] SKIPPED: interop suites against the reference (set EDGESYNC_REFERENCE_BIN to its binary; see docs/interop.md)\n');
  }
}
