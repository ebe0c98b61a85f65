#!/usr/bin/env -S MALLOC_MMAP_THRESHOLD_=131072 node --initial-old-space-size=64 --max-semi-space-size=4
/**
 * The bin. Executed as a file, its shebang gives node the runtime settings of `runtime.ts`.
 * Started any other way (`node dist/cmd/edgesync.js`, a container's CMD, a process manager),
 * it starts itself again once with them and waits (ADR 11). Then, with the V8 flags that may
 * be set at run time set, `cli.ts` is the program.
 */
import { applyLiveFlags, attachToLauncher, launched, missingSettings, runLaunched } from './runtime.js';

const missing = missingSettings(process.env, process.execArgv);
if (launched()) {
  attachToLauncher();
  applyLiveFlags();
  await import('./cli.js');
} else if (missing.malloc || missing.flags.length > 0) {
  runLaunched(missing);
} else {
  applyLiveFlags();
  await import('./cli.js');
}
