/** Which runtime settings the bin's launcher must add (ADR 11): only those not in effect. */
import { describe, expect, it } from '@jest/globals';
import { HEAP_FLAGS, LIVE_V8_FLAGS, liveFlagsToSet, missingSettings } from '../../../cmd/runtime.js';

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

describe('liveFlagsToSet', () => {
  it('sets the V8 flags the program may set while it runs, when the user gave none of them', () => {
    expect(LIVE_V8_FLAGS).toEqual(['--no-concurrent-array-buffer-sweeping']);
    expect(liveFlagsToSet({}, ['--initial-old-space-size=64', '--max-semi-space-size=4'])).toEqual(['--no-concurrent-array-buffer-sweeping']);
  });

  it('keeps what the user chose, either way and in either spelling, on the command line or in NODE_OPTIONS', () => {
    expect(liveFlagsToSet({}, ['--concurrent-array-buffer-sweeping'])).toEqual([]);
    expect(liveFlagsToSet({}, ['--no_concurrent_array_buffer_sweeping'])).toEqual([]);
    expect(liveFlagsToSet({ NODE_OPTIONS: '--max-semi-space-size=2 --concurrent_array_buffer_sweeping' }, [])).toEqual([]);
  });
});
