/**
 * The test-runner helpers as users run them: the example project's Vitest and node:test suites,
 * and a project with failing tests, each run by the real runner in a child process against the
 * shared test server. Imports of `dbfast/...` resolve to dist/ (`npm test` builds it first): in
 * examples/ by the package's self-reference, in a temporary project through node_modules/dbfast.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { cliEnv, dropTemplateAndClones, REPO_ROOT, testServerUrl, uniqueName } from './helpers/cli.js';
import { query } from './helpers/database.js';
import { tempRepo } from './helpers/repo.js';

const EXAMPLE = resolve(REPO_ROOT, 'examples/blog');
const VITEST = resolve(REPO_ROOT, 'node_modules/vitest/vitest.mjs');
/** The example's template: dbfast.toml names blog_template, its default environment is local. */
const EXAMPLE_TEMPLATE = 'blog_template_local';

const cleanup: string[] = [];
afterAll(async () => {
  await dropTemplateAndClones(EXAMPLE_TEMPLATE);
  for (const dir of cleanup) await rm(dir, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs Node with `args` in `cwd`, dbfast pointed at the shared test server, without this run's VITEST_* variables. */
function runNode(args: string[], cwd: string, env: Record<string, string> = {}): Promise<Run> {
  const childEnv = cliEnv({ DBFAST_DATABASE_URL: testServerUrl(), ...env });
  for (const key of Object.keys(childEnv)) if (key.startsWith('VITEST')) delete childEnv[key];
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, args, { cwd, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

/** A state folder of its own, so that the example's build leaves nothing in examples/blog/.dbfast. */
async function stateDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'dbfast-runner-state-'));
  cleanup.push(dir);
  return dir;
}

/** Every clone (not spare, checkpoint or scratch database) of `template` on the test server. */
async function clonesOf(template: string): Promise<string[]> {
  const rows = await query<{ datname: string }>('postgres', `SELECT datname FROM pg_database WHERE datname ~ '^${template}_[0-9a-f]{8}$' ORDER BY 1`);
  return rows.map((row) => row.datname);
}

describe('examples/blog', () => {
  it('passes its Vitest tests (globalSetup: dbfast/vitest), dropping every database it made', async () => {
    // What is there before (a developer's .dbfast/ from running the README's first command, say).
    const before = (await readdir(EXAMPLE)).sort();
    const run = await runNode([VITEST, 'run', '--no-cache', '--reporter=verbose'], EXAMPLE, { DBFAST_STATE_DIR: await stateDir(), NO_COLOR: '1' });
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toMatch(/Tests {2}5 passed \(5\)/);
    expect(run.stderr).not.toMatch(/dbfast/);
    expect(await clonesOf(EXAMPLE_TEMPLATE)).toEqual([]);
    // Vitest wrote nothing into the example either (its cache is off).
    expect((await readdir(EXAMPLE)).sort()).toEqual(before);
  });

  it('passes its node:test tests (withTestDatabase), dropping every database it made', async () => {
    const run = await runNode(['--test', '--test-reporter=tap', 'test/node/posts.test.js'], EXAMPLE, { DBFAST_STATE_DIR: await stateDir() });
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^# pass 3$/m);
    expect(run.stderr).toBe('');
    expect(await clonesOf(EXAMPLE_TEMPLATE)).toEqual([]);
  });
});

describe('a failed test under Vitest', () => {
  it('keeps its database and prints its URL; the databases of the passing, skipped and per-file tests are dropped', async () => {
    const template = uniqueName('runner');
    const root = await tempRepo({
      'dbfast.toml': `[database]\ntemplate_name = "${template}"\n`,
      'db/0_schema/01_items.sql': "CREATE TABLE items (name text PRIMARY KEY);\nINSERT INTO items VALUES ('seeded');",
      'vitest.config.mjs': "export default { test: { globalSetup: ['dbfast/vitest'], include: ['*.test.mjs'] } };",
      'per-test.test.mjs': `
        import pg from 'pg';
        import { useTestDatabase } from 'dbfast/vitest';
        import { expect, test } from 'vitest';
        import { record } from './record.mjs';
        const db = useTestDatabase();
        const insert = async (name) => {
          const client = new pg.Client(db.url);
          await client.connect();
          await client.query('INSERT INTO items VALUES ($1)', [name]);
          await client.end();
        };
        test('passes', async () => { record('passes', db.name); await insert('passed'); });
        test('fails on purpose', async () => { record('fails on purpose', db.name); await insert('failed'); expect(1).toBe(2); });
        test('skips itself', async (context) => { record('skips itself', db.name); context.skip(); });
      `,
      'per-file.test.mjs': `
        import { useTestDatabase } from 'dbfast/vitest';
        import { describe, expect, test } from 'vitest';
        import { record } from './record.mjs';
        describe('all pass', () => {
          const db = useTestDatabase({ per: 'file' });
          test('one', () => record('all pass', db.name));
          test('two', () => record('all pass', db.name));
        });
        describe('one fails', () => {
          const db = useTestDatabase({ per: 'file' });
          test('first', () => record('one fails', db.name));
          test('second', () => expect(db.name).toBe('another'));
        });
      `,
      'record.mjs': "import { appendFileSync } from 'node:fs';\nexport const record = (test, name) => appendFileSync(new URL('./databases.log', import.meta.url), test + '\\t' + name + '\\n');\n",
    });
    cleanup.push(root);
    // As in a project that installed dbfast (here a link to this checkout) and Vitest.
    await mkdir(join(root, 'node_modules'));
    for (const [name, target] of [
      ['dbfast', REPO_ROOT],
      ['vitest', resolve(REPO_ROOT, 'node_modules/vitest')],
      ['pg', resolve(REPO_ROOT, 'node_modules/pg')],
    ] as const) {
      await symlink(target, join(root, 'node_modules', name), 'dir');
    }
    try {
      const run = await runNode([VITEST, 'run', '--no-cache'], root, { DBFAST_STATE_DIR: await stateDir(), NO_COLOR: '1' });
      expect(run.code, run.stdout + run.stderr).toBe(1);
      expect(run.stdout).toMatch(/Tests {2}2 failed \| 4 passed \| 1 skipped \(7\)/);

      const made = new Map<string, string>();
      for (const line of (await readFile(join(root, 'databases.log'), 'utf8')).trim().split('\n')) {
        const [test, name] = line.split('\t') as [string, string];
        made.set(test, name);
      }
      const failed = made.get('fails on purpose')!;
      const fileFailed = made.get('one fails')!;
      const url = (name: string) => `postgresql://postgres@127.0.0.1:${inject('serverPort')}/${name}`;
      const kept = run.stderr.split('\n').filter((line) => line.startsWith('dbfast:'));
      expect(kept.sort()).toEqual(
        [
          `dbfast: kept database ${failed} of the failed test "fails on purpose": ${url(failed)}`,
          `dbfast: kept database ${fileFailed} of the failed test "one fails > second": ${url(fileFailed)}`,
        ].sort(),
      );
      expect(await clonesOf(template)).toEqual([failed, fileFailed].sort());
      expect(made.size).toBe(5);
      // The kept database is as the test left it.
      expect(await query(failed, 'SELECT name FROM items ORDER BY name')).toEqual([{ name: 'failed' }, { name: 'seeded' }]);
    } finally {
      await dropTemplateAndClones(template);
    }
  });
});
