/**
 * dbfast for Vitest. In vitest.config.ts, `globalSetup: ['dbfast/vitest']` builds the template
 * once per run when its files changed; in a test file, `useTestDatabase()` gives each test (or
 * the file) a seeded database of its own, dropped afterwards, or kept and printed when it failed.
 *
 * ```ts
 * import { useTestDatabase } from 'dbfast/vitest';
 * const db = useTestDatabase();                      // per test; { per: 'file' } for one per file
 * test('creates a post', async () => {
 *   const client = new pg.Client(db.url);            // this test's database
 * });
 * ```
 */
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { createTestDatabase, prepareTemplate, type TestDatabase, type TestProjectOptions } from './testing.js';

export type { PreparedTemplate, TestDatabase, TestProjectOptions } from './testing.js';
export { createTestDatabase, prepareTemplate, withTestDatabase } from './testing.js';

/**
 * Vitest's global setup (`globalSetup: ['dbfast/vitest']`): prepareTemplate() with dbfast.toml
 * found from the working directory, DBFAST_ENV choosing the environment. For other options, a
 * file of your own: `export default () => prepareTemplate({ environment: 'test' })`.
 */
export default async function setup(): Promise<void> {
  await prepareTemplate();
}

export interface UseTestDatabaseOptions extends TestProjectOptions {
  /** `test` (default): a database for each test, made in beforeEach; `file`: one for the file (or the describe block it is called in), made in beforeAll. */
  per?: 'test' | 'file';
}

/** The database of the running test (or file); read inside tests and hooks, not at the top level. */
export interface CurrentTestDatabase {
  readonly name: string;
  readonly url: string;
  readonly template: string;
}

/**
 * Registers the hooks that give each test (or the file) a database of its own. Each is dropped
 * when its test finished, after your afterEach hooks (close your connections there), unless the
 * test failed: then it is kept and a line on stderr names it and its URL. With `per: 'file'`, the
 * database is dropped after the file's tests, or kept when any of them failed.
 */
export function useTestDatabase(options: UseTestDatabaseOptions = {}): CurrentTestDatabase {
  const { per = 'test', ...projectOptions } = options;
  // Keyed by test, so that concurrent tests (test.concurrent) cannot read each other's database.
  const current = new Map<string, TestDatabase>();
  if (per === 'file') {
    const failed: string[] = [];
    beforeAll(async () => {
      current.set('file', await createTestDatabase(projectOptions));
    });
    beforeEach(({ task, onTestFailed }) => onTestFailed(() => void failed.push(task.fullTestName)));
    afterAll(async () => {
      const database = current.get('file');
      current.clear();
      await database?.release({ failed: failed.length > 0, test: failed });
    });
  } else {
    beforeEach(async ({ task, onTestFinished, onTestFailed }) => {
      const database = await createTestDatabase(projectOptions);
      current.set(task.id, database);
      // onTestFinished runs after the afterEach hooks and onTestFailed after that: a failure in a hook counts too.
      onTestFinished(async ({ task: finished }) => {
        if (finished.result?.state !== 'fail') await database.release();
      });
      onTestFailed(() => database.release({ failed: true, test: task.fullTestName }));
      onTestFinished(() => void current.delete(task.id));
    });
  }
  const database = (): TestDatabase => {
    if (current.size === 1) return current.values().next().value!;
    throw new Error(
      current.size === 0
        ? 'useTestDatabase(): no database now; read it inside a test or a hook, not at the top level of the file'
        : 'useTestDatabase(): tests run concurrently; use withTestDatabase() in each of them instead',
    );
  };
  return {
    get name() {
      return database().name;
    },
    get url() {
      return database().url;
    },
    get template() {
      return database().template;
    },
  };
}
