// Mutation testing: `npm run mutate` (the pure modules) and `npm run mutate:executor` (the SQL
// executor, which needs PostgreSQL and psql for every mutant: hours on two cores). Both are slow, so
// neither is part of `npm run check`. Reports go to reports/<suite>/; the incremental file lets a
// rerun test only the mutants whose code or tests changed. Both stay out of git.

const suite = process.env.DBFAST_MUTATE_SUITE === 'executor' ? 'executor' : 'pure';

/** The executor talks to PostgreSQL; its guards are the parity, pg_dump and executor suites. */
const EXECUTOR = ['src/core/sql/execute.ts', 'src/core/sql/protocol.ts'];

/** Modules whose mutants the tests must kill: the pure ones compute without a server. */
const MUTATE = {
  pure: [
    'src/core/sql/**/*.ts',
    ...EXECUTOR.map((path) => `!${path}`),
    'src/core/config/**/*.ts',
    'src/core/scan.ts',
    'src/core/patterns.ts',
    'src/core/fingerprint.ts',
    'src/core/environments.ts',
    'src/core/names.ts',
  ],
  executor: EXECUTOR,
};

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  mutate: MUTATE[suite],
  testRunner: 'vitest',
  plugins: ['@stryker-mutator/vitest-runner'],
  // vitest.mutate.config.ts picks the suite's tests from the same variable.
  vitest: { configFile: 'vitest.mutate.config.ts', related: false },
  // Each mutant runs only the tests that reached it during the first (dry) run.
  coverageAnalysis: 'perTest',
  // Each worker runs its own vitest and PostgreSQL server: two fit a 2-core machine.
  concurrency: 2,
  incremental: true,
  incrementalFile: `reports/stryker-incremental-${suite}.json`,
  tempDirName: '.stryker-tmp',
  ignorePatterns: ['dist', 'bench/.work', '.dbfast', '.ci/test-results*.json'],
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: `reports/${suite}/index.html` },
  jsonReporter: { fileName: `reports/${suite}/mutation.json` },
  thresholds: { high: 90, low: 80, break: null },
};
