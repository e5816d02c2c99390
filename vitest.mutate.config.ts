import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The tests `npm run mutate` (Stryker, stryker.config.mjs) runs against each mutant. The pure
 * modules must be killed by their own unit tests; the executor also by the parity and pg_dump
 * suites. The CLI tests run the built dist/, which Stryker does not mutate, and the corpus test
 * reads ../shared/corpus, which Stryker's sandbox copy cannot reach.
 */
const executor = process.env.DBFAST_MUTATE_SUITE === 'executor';
const UNIT = ['test/core/sql/*.test.ts', 'test/core/{scan,patterns,properties,environments,names,fingerprint,config,config-edit,remote}.test.ts'];
const SLOW_LAST = ['test/core/sql/execute.test.ts', 'test/core/sql/pg-dump.test.ts', 'test/core/sql/psql-parity.test.ts'];

/** Stryker stops at a mutant's first failing test: one the unit tests kill then costs milliseconds, not a parity run. */
class FastFilesFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (file: TestSpecification) => SLOW_LAST.findIndex((path) => file.moduleId.endsWith(path));
    return [...files].sort((a, b) => rank(a) - rank(b));
  }
}

export default defineConfig({
  test: {
    include: executor ? ['test/core/sql/*.test.ts'] : UNIT,
    exclude: ['test/core/sql/corpus.test.ts', ...(executor ? [] : SLOW_LAST)],
    sequence: { sequencer: FastFilesFirst },
    globalSetup: ['test/helpers/global-server.ts'],
    // A mutant that leaves a promise pending would hold a test for the usual two minutes: fail it sooner.
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
