import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/global-server.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // CI also writes a JSON summary (one per Node version run: DBFAST_TEST_RESULTS), from which .ci/run
    // prints its closing "N passed, N failed" line.
    reporters: process.env.CI
      ? ['default', ['json', { outputFile: process.env.DBFAST_TEST_RESULTS ?? '.ci/test-results.json' }]]
      : ['default'],
  },
});
