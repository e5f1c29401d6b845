import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

// Layering (ARCHITECTURE.md): transports -> services -> domain/ports; adapters implement ports;
// only src/app knows concrete adapters. The domain and the DICOM codec do no I/O.
const layer = (files, patterns) => ({
  files,
  rules: { 'no-restricted-imports': ['error', { patterns }] },
});

export default tseslint.config(
  {
    ignores: [
      'scratch',
      'node_modules',
      'dist',
      'coverage',
      'bench/out',
      'test-artifacts',
      'src/dicom/dictionary-data.ts',
      'console/src/api/schema.d.ts',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  layer(
    ['src/domain/**/*.ts', 'src/dicom/**/*.ts'],
    [
      {
        group: ['**/adapters/**', '**/transports/**', '**/services/**', '**/app/**'],
        message: 'domain is pure',
      },
      {
        group: ['node:fs', 'node:fs/*', 'node:net', 'node:http', 'fs', 'net', 'http'],
        message: 'domain does no I/O',
      },
    ],
  ),
  layer(
    ['src/services/**/*.ts'],
    [
      {
        group: ['**/adapters/**', '**/transports/**', '**/app/**'],
        message: 'services depend on ports only',
      },
    ],
  ),
  layer(
    ['src/transports/**/*.ts'],
    [
      { group: ['**/adapters/**', '**/app/**'], message: 'transports call services' },
      { group: ['node:fs', 'node:fs/*', 'fs', 'fs/*'], message: 'transports reach files through ports' },
    ],
  ),
  layer(
    ['src/adapters/**/*.ts'],
    [{ group: ['**/transports/**', '**/services/**', '**/app/**'], message: 'adapters implement ports' }],
  ),
  {
    files: ['bin/**/*.js', 'bench/**/*.{js,ts}', 'scripts/**/*.{js,ts}'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
  // The web console runs in the browser and talks only to the admin API (never imports the server's code).
  {
    files: ['console/**/*.{ts,tsx}'],
    languageOptions: { globals: { ...globals.browser } },
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['**/src/*/**', '../../src/**'], message: 'the console talks to the admin API only' },
          ],
        },
      ],
    },
  },
);
