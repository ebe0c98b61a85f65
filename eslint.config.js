import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Dependency direction of DESIGN.md, enforced per folder. */
const forbid = (...groups) => ({
  'no-restricted-imports': ['error', { patterns: groups.map((g) => ({ group: [g], message: 'Imports must follow the dependency direction of DESIGN.md' })) }],
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
  { files: ['lib/sync/**/*.ts'], rules: forbid('**/api/**', '**/node/**', '**/transport/**', '**/cmd/**', '**/sdk/**', '**/security/**') },
  { files: ['sdk/**/*.ts'], rules: forbid('**/lib/**', '../lib/*') },
  {
    files: ['test/**/*.ts', 'scripts/**/*.ts'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off', '@typescript-eslint/unbound-method': 'off' },
  },
);
