import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * Dependency direction of DESIGN.md, enforced per folder. A group is a pattern, or an array of
 * patterns where `!pattern` lets through what the others forbid.
 */
const forbid = (...groups) => ({
  'no-restricted-imports': ['error', { patterns: groups.map((g) => ({ group: Array.isArray(g) ? g : [g], message: 'Imports must follow the dependency direction of DESIGN.md' })) }],
});

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'data/**', 'coverage/**', '*.config.js', 'jest.global-setup.js', 'scripts/*.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  { files: ['lib/model/**/*.ts', 'lib/config/**/*.ts', 'lib/log/**/*.ts'], rules: forbid('**/store/**', '**/security/**', '**/api/**', '**/node/**', '**/sync/**', '**/transport/**', '**/cmd/**', '**/sdk/**') },
  { files: ['lib/store/**/*.ts'], rules: forbid('**/security/**', '**/api/**', '**/node/**', '**/sync/**', '**/transport/**', '**/cmd/**', '**/sdk/**', '**/config/**') },
  { files: ['lib/security/**/*.ts'], rules: forbid('**/api/**', '**/node/**', '**/sync/**', '**/transport/**', '**/cmd/**', '**/sdk/**') },
  { files: ['lib/api/**/*.ts'], rules: forbid('**/node/**', '**/transport/**', '**/cmd/**', '**/sdk/**') },
  { files: ['lib/sync/**/*.ts'], rules: forbid('**/api/**', '**/node/**', '**/transport/**', '**/cmd/**', '**/sdk/**', '**/security/**', '**/telemetry/**') },
  // Request/response helpers shared by the API and the HTTP transport: the model only.
  { files: ['lib/http/**/*.ts'], rules: forbid('**/store/**', '**/security/**', '**/api/**', '**/node/**', '**/sync/**', '**/transport/**', '**/cmd/**', '**/sdk/**', '**/config/**', '**/log/**') },
  // A transport moves bytes and calls the engine: never the API, nor a store implementation
  // (the store's ports, types.ts and notification-types.ts, are what it may name).
  {
    files: ['lib/transport/**/*.ts'],
    rules: forbid('**/api/**', '**/node/**', '**/cmd/**', '**/sdk/**', '**/telemetry/**', ['**/store/**', '!**/store/types.js', '!**/store/notification-types.js']),
  },
  // Observers of the node (metrics, traces): the model, logs, config, the sync events and the
  // store's ports; only node and api import them.
  {
    files: ['lib/telemetry/**/*.ts'],
    rules: forbid('**/api/**', '**/node/**', '**/transport/**', '**/cmd/**', '**/sdk/**', '**/security/**', '**/http/**', ['**/sync/**', '!**/sync/sync-events.js'], ['**/store/**', '!**/store/types.js', '!**/store/notification-types.js']),
  },
  { files: ['sdk/**/*.ts'], rules: forbid('**/lib/**', '../lib/*') },
  // The dashboard's browser modules: plain JavaScript, no type information, browser globals.
  {
    files: ['dashboard/**/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      sourceType: 'module',
      globals: Object.fromEntries(
        ['window', 'document', 'location', 'fetch', 'btoa', 'TextEncoder', 'TextDecoderStream', 'URLSearchParams', 'AbortController', 'setTimeout'].map((g) => [g, 'readonly']),
      ),
    },
  },
  {
    files: ['test/**/*.ts', 'scripts/**/*.ts'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off', '@typescript-eslint/unbound-method': 'off' },
  },
);
