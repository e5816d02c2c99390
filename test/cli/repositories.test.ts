/**
 * [[repositories]] through the CLI, on a real server: a shared schema repository and an application
 * repository combined into one template, built repository after repository, their files named after
 * the repository in errors, progress and reports.
 */
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliProjects, withoutProgress } from '../helpers/cli.js';
import { query } from '../helpers/database.js';

const tracked = cliProjects();

/** Names that sort the other way round, and folders that differ from the names. */
const REPOSITORIES = `
[[repositories]]
name = "shared"
path = "schema-repo/db"

[[repositories]]
name = "app"
path = "app-repo/sql"
`;

// By path alone app/1_seed would run before shared/2_seed, and find no account to copy.
const FILES = {
  'schema-repo/db/0_schema/01_accounts.sql': 'CREATE TABLE accounts (id int PRIMARY KEY, name text);\n',
  'schema-repo/db/2_seed/01_accounts.sql': "INSERT INTO accounts VALUES (1, 'ada');\n",
  'app-repo/sql/0_schema/01_orders.sql': 'CREATE TABLE orders (account int REFERENCES accounts, name text);\n',
  'app-repo/sql/1_seed/01_orders.sql': 'INSERT INTO orders SELECT id, name FROM accounts;\n',
};

const ENVIRONMENTS = `
[environments.local]

[environments.production]
include_directories = ["shared/0_schema", "app/0_schema"]
`;

describe('[[repositories]]', () => {
  it('builds the repositories one after the other, in configured order, each in path order', async () => {
    const project = await tracked(FILES, REPOSITORIES);
    const built = await project.run(['build']);
    expect(built.code, built.stderr).toBe(0);
    expect(built.errLines.slice(0, 4)).toEqual([
      '  [1/4] shared/0_schema/01_accounts.sql',
      '  [2/4] shared/2_seed/01_accounts.sql',
      '  [3/4] app/0_schema/01_orders.sql',
      '  [4/4] app/1_seed/01_orders.sql',
    ]);

    const seeded = await project.run(['seed', '--json']);
    expect(seeded.code, seeded.stderr).toBe(0);
    const { database } = JSON.parse(seeded.stdout);
    expect(await query(database, 'SELECT account, name FROM orders')).toEqual([{ account: 1, name: 'ada' }]);

    const status = await project.run(['status']);
    expect(status.stdout.split('\n')[1]).toBe('repository  shared (schema-repo/db), app (app-repo/sql), 4 files, unchanged');
    await writeFile(join(project.root, 'app-repo/sql/1_seed/01_orders.sql'), 'INSERT INTO orders SELECT id, name || 1 FROM accounts;\n');
    const changed = await project.run(['status', '--verbose']);
    expect(changed.stdout).toContain('\n              modified: app/1_seed/01_orders.sql\n');
  });

  it('names the repository and the file of a failing statement', async () => {
    const project = await tracked({ ...FILES, 'app-repo/sql/1_seed/02_orphans.sql': "SELECT 1;\nINSERT INTO orders VALUES (42, 'nobody');\n" }, REPOSITORIES);
    const result = await project.run(['build']);
    expect(result.code).toBe(1);
    expect(withoutProgress(result)[0]).toMatch(/^error: app\/1_seed\/02_orphans\.sql:2:1: insert or update on table "orders" violates foreign key constraint/);
  });

  it('names a missing repository folder and an empty repository by key and name (exit 2)', async () => {
    const project = await tracked(FILES, REPOSITORIES);
    await rm(join(project.root, 'app-repo/sql/0_schema'), { recursive: true });
    await rm(join(project.root, 'app-repo/sql/1_seed'), { recursive: true });
    const empty = await project.run(['build']);
    expect(empty.code).toBe(2);
    expect(empty.errLines).toEqual([
      'error: repositories[1] (app): no SQL files in app-repo/sql',
      '  hint: nothing matches **/*.sql; add files or change repositories[1].include_patterns',
    ]);

    await rm(join(project.root, 'app-repo/sql'), { recursive: true });
    const missing = await project.run(['build']);
    expect(missing.code).toBe(2);
    expect(missing.errLines).toEqual([
      `error: repositories[1] (app): repository folder not found: ${join(project.root, 'app-repo/sql')}`,
      '  hint: create it, or set repositories[1].path in dbfast.toml',
    ]);
  });

  it('refuses [repository] beside [[repositories]] (exit 2)', async () => {
    const project = await tracked(FILES, `${REPOSITORIES}\n[repository]\npath = "db"\n`);
    const result = await project.run(['build']);
    expect(result.code).toBe(2);
    expect(result.errLines[0]).toBe('error: dbfast.toml: [repository] and [[repositories]] cannot both be set');
  });
});

describe('dbfast repo list', () => {
  it('lists the repositories in build order with their files, and what each environment selects', async () => {
    const project = await tracked(FILES, REPOSITORIES + ENVIRONMENTS);
    const listed = await project.run(['repo', 'list']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout.split('\n')).toEqual([
      'shared\tschema-repo/db\t2 files\tlocal: 2, production: 1',
      'app\tapp-repo/sql\t2 files\tlocal: 2, production: 1',
      '',
    ]);
    const json = await project.run(['repo', 'list', '--json']);
    expect(JSON.parse(json.stdout)).toEqual([
      { name: 'shared', path: 'schema-repo/db', files: 2, environments: { local: 2, production: 1 } },
      { name: 'app', path: 'app-repo/sql', files: 2, environments: { local: 2, production: 1 } },
    ]);
  });

  it('shows [repository] as the one repository', async () => {
    const project = await tracked({ 'db/0_schema/01.sql': 'SELECT 1;' });
    const listed = await project.run(['repo', 'list', '--json']);
    expect(JSON.parse(listed.stdout)).toEqual([{ path: 'db', files: 1, environments: {} }]);
    expect((await project.run(['repo', 'list'])).stdout).toBe('[repository]\tdb\t1 file\n');
  });
});

describe('environments over [[repositories]]', () => {
  it('show and check paths that start with the repository name', async () => {
    const project = await tracked(FILES, `${REPOSITORIES}\n[environments.production]\ninclude_directories = ["0_schema"]\n`);
    const invalid = await project.run(['validate-env', 'production']);
    expect(invalid.code).toBe(1);
    expect(invalid.stdout).toContain(
      'error: environments.production.include_directories: "0_schema" is not a directory of the repository (did you mean "shared/0_schema"? a name without "/" matches a top-level directory only)',
    );

    const fixed = await tracked(FILES, REPOSITORIES + ENVIRONMENTS);
    const listed = await fixed.run(['environments', '--verbose']);
    expect(listed.stdout).toContain('    shared/0_schema/01_accounts.sql\n    app/0_schema/01_orders.sql\n');
  });
});
