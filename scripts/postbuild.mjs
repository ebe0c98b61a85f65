// The bin must be executable after `npm ci` builds it; tsc does not set the mode.
import { chmodSync } from 'node:fs';
chmodSync(new URL('../dist/cmd/edgesync.js', import.meta.url), 0o755);
