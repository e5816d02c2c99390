import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type CliProject, cliProject, dropTemplateAndClones, lines } from '../helpers/cli.js';
import { query } from '../helpers/database.js';

const repository = {
  'db/0_schema/01_tables.sql': 'CREATE TABLE users (id int PRIMARY KEY, name text);',
  'db/1_seed_common/01_users.sql': "INSERT INTO users VALUES (1, 'ada');",
  'db/1_seed_common/prod_secrets.sql': "INSERT INTO users VALUES (99, 'secret');",
  'db/6_migration/001_add_email.sql': 'ALTER TABLE users ADD COLUMN email text;',
  'db/6_migration/test_fixture.sql': "INSERT INTO users VALUES (2, 'fixture');",
};
const environments = `
[environments.local]
include_directories = ["0_schema", "1_seed_common"]
exclude_files = ["**/prod_*.sql"]

[environments.production]
include_directories = ["0_schema", "6_migration"]
exclude_files = ["**/test_*.sql"]
`;

const projects: CliProject[] = [];
afterAll(async () => {
  for (const project of projects) {
    for (const env of ['local', 'production']) await dropTemplateAndClones(`${project.templateName}_${env}`);
    await project.remove();
  }
});

async function makeProject(extraToml = environments) {
  const project = await cliProject(repository, extraToml);
  projects.push(project);
  return project;
}

describe('environments', () => {
  it('builds one template per environment from one repository, with the files each selects', async () => {
    const project = await makeProject();
    const local = await project.run(['--env', 'local', 'seed', '--json']);
    expect(local.code, local.stderr).toBe(0);
    const localClone = JSON.parse(local.stdout);
    expect(localClone.template).toBe(`${project.templateName}_local`);
    expect(await query(localClone.database, 'SELECT id, name FROM users ORDER BY id')).toEqual([{ id: 1, name: 'ada' }]);

    const production = await project.run(['seed', '--json'], { env: { DBFAST_ENV: 'production' } });
    expect(production.code, production.stderr).toBe(0);
    const productionClone = JSON.parse(production.stdout);
    expect(productionClone.template).toBe(`${project.templateName}_production`);
    expect(await query(productionClone.database, 'SELECT count(*)::int AS n FROM users')).toEqual([{ n: 0 }]);
    const columns = await query(productionClone.database, "SELECT column_name FROM information_schema.columns WHERE table_name = 'users' ORDER BY 1");
    expect(columns.map((row) => row.column_name)).toEqual(['email', 'id', 'name']);
  });

  it('tracks freshness per environment: a file only local selects makes only local stale', async () => {
    const project = await makeProject();
    for (const env of ['local', 'production']) expect((await project.run(['--env', env, 'build'])).code).toBe(0);
    await writeFile(join(project.root, 'db/1_seed_common/01_users.sql'), "INSERT INTO users VALUES (1, 'grace');");

    const listed = JSON.parse((await project.run(['environments', '--json'])).stdout);
    expect(listed.map((row: { name: string; state: string; files: number }) => [row.name, row.state, row.files])).toEqual([
      ['local', 'stale', 2],
      ['production', 'fresh', 2],
    ]);
    const production = JSON.parse((await project.run(['--env', 'production', 'seed', '--json'])).stdout);
    expect(production.rebuilt).toBe(false);
    const local = JSON.parse((await project.run(['--env', 'local', 'seed', '--json'])).stdout);
    expect(local.rebuilt).toBe(true);
    expect(await query(local.database, 'SELECT name FROM users')).toEqual([{ name: 'grace' }]);

    const status = JSON.parse((await project.run(['--env', 'local', 'status', '--json'])).stdout);
    expect(status.environment).toBe('local');
    expect(status.environments.map((row: { state: string }) => row.state)).toEqual(['fresh', 'fresh']);
  });

  it('lists the rules and the selected files in execution order with --verbose', async () => {
    const project = await makeProject();
    const listed = JSON.parse((await project.run(['environments', '--verbose', '--json'])).stdout);
    expect(listed[0]).toMatchObject({
      name: 'local',
      rules: { includeDirectories: ['0_schema', '1_seed_common'], excludeFiles: ['**/prod_*.sql'] },
      files: 2,
      selected: ['db/0_schema/01_tables.sql', 'db/1_seed_common/01_users.sql'],
      state: 'missing',
    });
    // The details belong to the listing: stdout, with the rules spelled as in dbfast.toml.
    const text = await project.run(['environments', '--verbose']);
    expect(text.code).toBe(0);
    expect(text.stderr).toBe('');
    expect(lines(text.stdout).slice(0, 5)).toEqual([
      `local\t2 files\t${project.templateName}_local\tmissing`,
      '  include_directories = ["0_schema","1_seed_common"]',
      '  exclude_files = ["**/prod_*.sql"]',
      '    db/0_schema/01_tables.sql',
      '    db/1_seed_common/01_users.sql',
    ]);
  });

  it('needs a choice when several environments exist and no default is set, and refuses unknown ones', async () => {
    const project = await makeProject();
    const ambiguous = await project.run(['seed']);
    expect(ambiguous.code).toBe(2);
    expect(ambiguous.errLines[0]).toContain('choose one with --env');
    const unknown = await project.run(['--env', 'staging', 'seed']);
    expect(unknown.code).toBe(2);
    expect(unknown.errLines).toEqual(['error: unknown environment "staging"', '  hint: available: local, production']);
  });

  it('status shows every environment even when none is chosen', async () => {
    const project = await makeProject();
    expect((await project.run(['--env', 'production', 'build'])).code).toBe(0);
    const status = await project.run(['status', '--json']);
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({
      environment: null,
      template: null,
      environments: [
        { name: 'local', state: 'missing' },
        { name: 'production', state: 'fresh' },
      ],
    });
  });

  it('uses default_environment when no --env is given', async () => {
    const project = await makeProject(`default_environment = "production"\n${environments}`);
    const seeded = JSON.parse((await project.run(['seed', '--json'])).stdout);
    expect(seeded.template).toBe(`${project.templateName}_production`);
  });
});

describe('validate-env', () => {
  it('passes a valid environment (exit 0) and fails an empty selection (exit 1)', async () => {
    const project = await makeProject(`${environments}\n[environments.empty]\ninclude_directories = ["0_schema"]\nexclude_files = ["**/*.sql"]\n`);
    const valid = await project.run(['validate-env', 'production', '--json']);
    expect(valid.code, valid.stderr).toBe(0);
    expect(JSON.parse(valid.stdout)).toMatchObject({ environment: 'production', valid: true });
    const empty = await project.run(['validate-env', 'empty']);
    expect(empty.code).toBe(1);
    // The findings are the report the user asked for: stdout, so they can be piped or saved.
    const report = lines(empty.stdout);
    expect(report[0]).toMatch(/^error: environment "empty" selects no file \(/);
    expect(report.at(-1)).toBe('empty: invalid');
    expect(empty.stderr).toBe('');
  });

  it('warns when production selects seed data, and --strict makes that a failure', async () => {
    const project = await makeProject(`
[environments.production]
include_directories = ["0_schema", "1_seed_common", "6_migration"]
`);
    const loose = await project.run(['validate-env', '--env', 'production', '--json']);
    expect(loose.code).toBe(0);
    const report = JSON.parse(loose.stdout);
    expect(report.issues.some((issue: { code: string }) => issue.code === 'production-dev-data')).toBe(true);
    const text = await project.run(['validate-env', 'production']);
    expect(text.code).toBe(0);
    expect(report.issues).toHaveLength(2);
    expect(lines(text.stdout).at(-1)).toBe('production: valid with 2 warnings');
    expect((await project.run(['validate-env', 'production', '--strict'])).code).toBe(1);
  });

  it('refuses an unknown environment with exit 2, listing the available ones', async () => {
    const project = await makeProject();
    const result = await project.run(['validate-env', 'staging']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('available: local, production');
  });
});
