/**
 * Four projects: fast pure tests and contract suites (`unit`), real processes (`integration`),
 * real processes against the reference binary (`interop`: skipped, saying so, without EDGESYNC_REFERENCE_BIN),
 * and real processes under a schema-driven fuzzer (`fuzz`: skipped, saying so, without schemathesis).
 */
const common = {
  preset: 'ts-jest/presets/default-esm',
  testEnvironment: 'node',
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: { '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }] },
};
export default {
  globalSetup: './jest.global-setup.js',
  // Integration tests start real processes; unit tests finish far sooner anyway.
  testTimeout: 60_000,
  // Two test files at a time: the integration files mostly wait on real processes (timers,
  // long-polls, activation ticks), so two of them share the 2 cores well. One at a time took
  // 16-17 min for the whole suite, two take about 9.5 min with the same results.
  maxWorkers: 2,
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts', '<rootDir>/test/contract/**/*.test.ts'] },
    { ...common, displayName: 'integration', testMatch: ['<rootDir>/test/integration/**/*.test.ts'], slowTestThreshold: 30 },
    { ...common, displayName: 'interop', testMatch: ['<rootDir>/test/interop/**/*.test.ts'], slowTestThreshold: 60 },
    { ...common, displayName: 'fuzz', testMatch: ['<rootDir>/test/fuzz/**/*.test.ts'], slowTestThreshold: 120 },
  ],
};
