// Lint: type-aware rules that catch what bites a long-running agent (floating promises, non-exhaustive switches).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  // The status page's scripts are the hand-written .js files that ship: linted too (block at the end).
  { ignores: ['dist/', 'node_modules/', 'models/build/', 'coverage/', '**/*.js', '**/*.cjs', '!agent/status/public/*.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true, allowNullish: true }],
    },
  },
  {
    files: ['tests/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    // A plain browser ES module (no build step, not in the TS project): the recommended rules without types.
    files: ['agent/status/public/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      sourceType: 'module',
      // The browser APIs the page uses (the `globals` package is not installed).
      globals: Object.fromEntries(
        ['clearTimeout', 'createImageBitmap', 'document', 'fetch', 'getComputedStyle', 'history', 'location', 'ResizeObserver', 'sessionStorage', 'setTimeout', 'URL', 'WebSocket', 'window'].map((g) => [g, 'readonly']),
      ),
    },
  },
);
