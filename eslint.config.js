// ESLint over src/, test/ and bench/ (`make lint`, run first by `make test`). Errors fail the build;
// warnings (function length, complexity) point at code to look at, they do not fail it.
// Typed linting: the rules see TypeScript's types through tsconfig.test.json, which covers all three
// folders, so floating promises and the like are found, not only what the syntax shows.
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig(
  { ignores: ['dist/**', 'node_modules/**', 'native/build/**', 'bench/out/**', '.tap/**', 'eslint.config.js'] },
  {
    files: ['src/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts'],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { project: './tsconfig.test.json', tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // No unused code. A leading `_` marks what a signature or a destructuring needs but the body
      // does not use.
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          args: 'all',
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrors: 'all',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
          ignoreRestSiblings: true,
        },
      ],
      'no-unreachable': 'error',
      'no-unused-private-class-members': 'error',
      'no-unused-labels': 'error',

      // Tuned to this codebase's deliberate style:
      // - tap queues every t.test() itself and reports its outcome, so the suites call it without
      //   await at the top level; any other promise left floating is still an error.
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafePromises: [{ from: 'package', name: 'PromiseWithSubtest', package: '@tapjs/core' }] },
      ],
      // - An async arrow without await is how a synchronous body is passed where a function
      //   returning a promise is expected (eventually(), Session's command queue): a throw then
      //   becomes a rejection instead of escaping the queue.
      '@typescript-eslint/require-await': 'off',

      // Where to look, not a failure.
      'max-lines-per-function': ['warn', { max: 80, skipBlankLines: true, skipComments: true }],
      complexity: ['warn', 15],
    },
  },
);
