import { defineConfig } from 'vitest/config';

/**
 * The tests `npm run mutate` (Stryker, stryker.config.mjs) runs against each mutant: those that
 * exercise the mutated modules directly. The CLI tests run the built dist/, which Stryker does not
 * mutate, and the corpus test reads ../shared/corpus, which Stryker's sandbox copy cannot reach.
 */
export default defineConfig({
  test: {
    include: [
      'test/core/sql/lexer.test.ts',
      'test/core/sql/execute.test.ts',
      'test/core/sql/psql-parity.test.ts',
      'test/core/sql/pg-dump.test.ts',
      'test/core/scan.test.ts',
      'test/core/environments.test.ts',
      'test/core/names.test.ts',
      'test/core/fingerprint.test.ts',
    ],
    globalSetup: ['test/helpers/global-server.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
