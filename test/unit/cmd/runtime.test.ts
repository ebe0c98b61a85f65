/** Which runtime settings the bin's launcher must add (ADR 11): only those not in effect. */
import { describe, expect, it } from '@jest/globals';
import { HEAP_FLAGS, missingSettings } from '../../../cmd/runtime.js';

describe('missingSettings', () => {
  it('asks for the malloc variable and every node flag when none is given', () => {
    expect(missingSettings({}, [])).toEqual({ malloc: true, flags: [...HEAP_FLAGS] });
    expect(HEAP_FLAGS).toEqual(['--initial-old-space-size=64', '--max-semi-space-size=4']);
  });

  it('keeps what the user set, on the command line, in NODE_OPTIONS or in the environment', () => {
    expect(missingSettings({ MALLOC_MMAP_THRESHOLD_: '262144' }, ['--max-semi-space-size=16'])).toEqual({
      malloc: false,
      flags: ['--initial-old-space-size=64'],
    });
    expect(missingSettings({ NODE_OPTIONS: '--initial-old-space-size=128 --max-semi-space-size=2' }, [])).toEqual({ malloc: true, flags: [] });
  });
});
