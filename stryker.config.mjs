// Mutation testing of the pure modules: `npm run mutate` (slow, so not part of `npm run check`).
// Reports go to reports/mutation/; the incremental file (reports/stryker-incremental.json) lets a
// rerun test only the mutants whose code or tests changed. Both stay out of git.

/** Modules whose mutants the tests must kill. Add 'src/core/config/**\/*.ts' once config settles there. */
const MUTATE = [
  'src/core/sql/**/*.ts',
  'src/core/scan.ts',
  'src/core/fingerprint.ts',
  'src/core/environments.ts',
  'src/core/names.ts',
];

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  mutate: MUTATE,
  testRunner: 'vitest',
  plugins: ['@stryker-mutator/vitest-runner'],
  // Only the tests that exercise these modules (see the file); Stryker reuses its pool of test files.
  vitest: { configFile: 'vitest.mutate.config.ts', related: false },
  // Each mutant runs only the tests that reached it during the first (dry) run.
  coverageAnalysis: 'perTest',
  // Each worker runs its own vitest and PostgreSQL server: two fit a 2-core machine.
  concurrency: 2,
  incremental: true,
  incrementalFile: 'reports/stryker-incremental.json',
  tempDirName: '.stryker-tmp',
  ignorePatterns: ['dist', 'bench/.work', '.dbfast', '.ci/test-results.json'],
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/index.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  thresholds: { high: 90, low: 80, break: null },
};
