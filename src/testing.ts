/**
 * dbfast for test runners, whichever runner: a fresh template once per run, then a database of
 * its own for each test (or file), dropped after it, except that a failed test keeps its database
 * and says where it is, so that it can be inspected.
 *
 * ```ts
 * import { prepareTemplate, withTestDatabase } from 'dbfast/testing';
 * await prepareTemplate();                         // once per run (a global setup): rebuilt if the files changed
 * await withTestDatabase(async ({ url }) => {      // a seeded clone, dropped after fn, kept if fn throws
 *   // connect to url, test
 * }, { test: 'creates a post' });
 * ```
 *
 * `dbfast/vitest` wires these into Vitest's hooks.
 */
import { Project } from './core/project.js';

export interface TestProjectOptions {
  /** Path to dbfast.toml; by default it is searched upward from `cwd`. */
  config?: string;
  /** Defaults to process.cwd(). */
  cwd?: string;
  /** Environment for DBFAST_* and PG* variables; defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** The environment whose template is used; else DBFAST_ENV, [database] default_environment or the only one. */
  environment?: string;
  /** What the user should know (the embedded server moved to another port); by default a `dbfast: ` line on stderr. */
  onWarning?: (message: string) => void;
}

export interface PreparedTemplate {
  template: string;
  /** The files had changed since the template was built (or it did not exist): it was built now. */
  rebuilt: boolean;
  /** Spares made for the warm pool, so that the first databases of the run are renames, not copies. */
  spares: number;
}

export interface TestDatabase {
  /** The database's name: `<template>_<short id>`. */
  name: string;
  /** Its connection URL, without a password (node-postgres and libpq find it in PGPASSWORD or ~/.pgpass). */
  url: string;
  template: string;
  /**
   * Drops the database; with `failed`, keeps it instead and prints its name and URL on stderr,
   * naming the failed test (or tests) when given. Only the first call does anything.
   */
  release(outcome?: { failed?: boolean; test?: string | string[] }): Promise<void>;
}

/**
 * For a global setup, once per test run: builds the template when its files changed and fills the
 * warm pool, then lets go of the server. Databases created afterwards check freshness themselves
 * (a seed never hands out a stale template), so this only moves the build out of the first test.
 */
export async function prepareTemplate(options: TestProjectOptions = {}): Promise<PreparedTemplate> {
  const project = await Project.open(openOptions(options));
  try {
    const { rebuilt } = await project.build();
    const { created } = await project.fillPool();
    return { template: project.templateName, rebuilt, spares: created.length };
  } finally {
    await project.close();
  }
}

/** A new database cloned from the template (rebuilt first when its files changed), for one test or file. */
export async function createTestDatabase(options: TestProjectOptions = {}): Promise<TestDatabase> {
  const project = await projectFor(options);
  const { database, url, template } = await project.seed();
  let released: Promise<void> | undefined;
  return {
    name: database,
    url,
    template,
    release(outcome = {}) {
      released ??= outcome.failed ? Promise.resolve(reportKept(database, url, outcome.test)) : project.drop(database).then(() => {});
      return released;
    },
  };
}

/**
 * Runs `fn` with a database of its own and drops it afterwards; when `fn` throws, keeps the
 * database, prints where it is, and rethrows. What a `node:test` test calls:
 * `test('name', (t) => withTestDatabase(async (db) => { ... }, { test: t.name }))`.
 */
export async function withTestDatabase<T>(fn: (database: TestDatabase) => Promise<T> | T, options: TestProjectOptions & { test?: string } = {}): Promise<T> {
  const database = await createTestDatabase(options);
  let result: T;
  try {
    result = await fn(database);
  } catch (error) {
    await database.release({ failed: true, test: options.test });
    throw error;
  }
  await database.release();
  return result;
}

/**
 * One Project per set of options in each process (a test worker): its reused connections make a
 * seed from the warm pool a few milliseconds. It is never closed: idle connections are unref'd,
 * so they never keep a test process alive, and a pool refill it started ends on its own.
 */
const projects: { key: string; env: NodeJS.ProcessEnv | undefined; project: Promise<Project> }[] = [];

function projectFor(options: TestProjectOptions): Promise<Project> {
  const key = JSON.stringify([options.config ?? null, options.cwd ?? process.cwd(), options.environment ?? null]);
  const known = projects.find((entry) => entry.key === key && entry.env === options.env);
  if (known) return known.project;
  const project = Project.open(openOptions(options));
  const entry = { key, env: options.env, project };
  projects.push(entry);
  // A project that failed to open (a broken dbfast.toml) is opened again by the next test.
  project.catch(() => projects.splice(projects.indexOf(entry), 1));
  return project;
}

function openOptions(options: TestProjectOptions) {
  return {
    configPath: options.config,
    cwd: options.cwd,
    env: options.env,
    environment: options.environment,
    onWarning: options.onWarning ?? ((message: string) => process.stderr.write(`dbfast: ${message}\n`)),
  };
}

/** The one line a failed test's kept database gets; its URL never holds a password (ServerTarget.url). */
function reportKept(database: string, url: string, test: string | string[] = []): void {
  const tests = [test].flat().map((name) => JSON.stringify(name));
  const of = tests.length === 0 ? 'a failed test' : `the failed test${tests.length > 1 ? 's' : ''} ${tests.join(', ')}`;
  process.stderr.write(`dbfast: kept database ${database} of ${of}: ${url}\n`);
}
