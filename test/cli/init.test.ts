import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dropTemplateAndClones, lines, runCli, testServerUrl, uniqueName } from '../helpers/cli.js';
import { query } from '../helpers/database.js';
import { tempRepo } from '../helpers/repo.js';

const cleanup: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const step of cleanup) await step();
});

async function folder(files: Record<string, string> = { 'db/0_schema/.keep': '', 'db/1_seed/.keep': '', 'db/6_migration/.keep': '' }) {
  const root = await tempRepo(files);
  cleanup.push(() => rm(root, { recursive: true, force: true }));
  return root;
}

/** Runs in `root` against the shared test server; drops what `templateName` builds afterwards. */
function runner(root: string, templateName: string) {
  cleanup.push(() => dropTemplateAndClones(`${templateName}_local`));
  return (args: string[]) => runCli(args, { cwd: root, env: { DBFAST_DATABASE_URL: testServerUrl() } });
}

describe('dbfast init', () => {
  it('writes the file named by -c, which -c then reads', async () => {
    const root = await folder();
    const written = await runCli(['-c', 'conf/custom.toml', 'init', '--repo-dir', '../db'], { cwd: root });
    expect(written.code).toBe(0);
    expect(await readFile(join(root, 'conf/custom.toml'), 'utf8')).toContain('[repository]');
    const again = await runCli(['-c', 'conf/custom.toml', 'init'], { cwd: root });
    expect(again.errLines[0]).toBe('error: conf/custom.toml: already exists');
  });

  it('writes dbfast.toml once, refuses to overwrite it without --force, and the file it writes works', async () => {
    const root = await folder();
    const templateName = uniqueName();
    const run = runner(root, templateName);

    const first = await run(['init', '--template-name', templateName]);
    expect(first.code).toBe(0);
    expect(first.stdout).toBe('');
    expect(first.errLines).toEqual([
      'wrote dbfast.toml (repository: db/)',
      '  local: 0_schema, 1_seed, 6_migration',
      '  production: 0_schema, 6_migration',
    ]);
    const written = await readFile(join(root, 'dbfast.toml'), 'utf8');
    expect(written).toContain(`template_name = "${templateName}"`);
    expect(written).toContain('include_directories = ["0_schema", "1_seed", "6_migration"]');
    // A remote is offered as a commented example only: nothing connects to it until it is uncommented.
    expect(written).toContain('\n# [remotes.staging]\n');
    expect(written).not.toMatch(/^\[remotes/m);

    await writeFile(join(root, 'dbfast.toml'), `${written}\n# my own notes\n`);
    const second = await run(['init', '--template-name', templateName]);
    expect(second.code).toBe(2);
    expect(second.stdout).toBe('');
    expect(second.errLines[0]).toBe('error: dbfast.toml: already exists');
    expect(second.stderr).toContain('--force');
    expect(await readFile(join(root, 'dbfast.toml'), 'utf8')).toContain('# my own notes');

    const forced = await run(['init', '--template-name', templateName, '--force']);
    expect(forced.code).toBe(0);
    expect(await readFile(join(root, 'dbfast.toml'), 'utf8')).toBe(written);

    // The written file loads: with no SQL yet, seed says so; with a file, it seeds.
    const empty = await run(['seed']);
    expect(empty.code).toBe(2);
    expect(empty.stderr).not.toContain('warning:');
    await writeFile(join(root, 'db/0_schema/01_tables.sql'), 'CREATE TABLE items (id int);\nINSERT INTO items VALUES (1);\n');
    const seeded = await run(['seed', '--json']);
    expect(seeded.code).toBe(0);
    expect(seeded.stderr).not.toContain('warning:');
    const result = JSON.parse(seeded.stdout);
    // init proposes environments with local as the default: its template is <name>_local.
    expect(result).toMatchObject({ template: `${templateName}_local`, rebuilt: true });
    expect(await query(result.database, 'SELECT id FROM items')).toEqual([{ id: 1 }]);
  });

  it('proposes a valid template name from the folder name when none is given', async () => {
    const root = await folder();
    const result = await runCli(['init'], { cwd: root });
    expect(result.code).toBe(0);
    const written = await readFile(join(root, 'dbfast.toml'), 'utf8');
    expect(written).toMatch(/^template_name = "[a-z_][a-z0-9_]*_template"$/m);
  });

  it('without numbered folders, leaves the environments commented out', async () => {
    const root = await tempRepo({});
    cleanup.push(() => rm(root, { recursive: true, force: true }));
    await mkdir(join(root, 'sql'));
    const result = await runCli(['init', '--repo-dir', 'sql', '--template-name', 'plain_template'], { cwd: root });
    expect(result.code).toBe(0);
    expect(lines(result.stderr)).toEqual([
      'wrote dbfast.toml (repository: sql/)',
      'no numbered folders found in sql/; environments are commented out',
    ]);
    const written = await readFile(join(root, 'dbfast.toml'), 'utf8');
    expect(written).toContain('path = "sql"');
    expect(written).toContain('# [environments.local]');
  });

  it('finds numbered folders beside dbfast.toml: path = ".", and the SQL of node_modules stays out', async () => {
    const root = await folder({
      '0_schema/01_tables.sql': 'CREATE TABLE items (id int);\n',
      '1_seed/01_items.sql': 'INSERT INTO items VALUES (1);\n',
      'node_modules/some-package/sql/setup.sql': 'SELECT 1/0;\n',
      'README.md': 'notes\n',
    });
    const templateName = uniqueName();
    const run = runner(root, templateName);
    const written = await run(['init', '--template-name', templateName]);
    expect(written.code).toBe(0);
    expect(written.errLines).toEqual(['wrote dbfast.toml (repository: ./)', '  local: 0_schema, 1_seed', '  production: 0_schema']);
    const content = await readFile(join(root, 'dbfast.toml'), 'utf8');
    expect(content).toContain('path = "."');
    expect(content).toContain('exclude_patterns = ["**/node_modules/**"]');
    const seeded = await run(['seed', '--json']);
    expect(seeded.code).toBe(0);
    expect(seeded.stderr).not.toContain('warning:');
    expect(await query(JSON.parse(seeded.stdout).database, 'SELECT id FROM items')).toEqual([{ id: 1 }]);
  });

  it('finds .sql files directly beside dbfast.toml: path = "."', async () => {
    const root = await folder({ 'schema.sql': 'CREATE TABLE items (id int);\n', 'migrations/001_init.js': '' });
    const result = await runCli(['init'], { cwd: root });
    expect(result.code).toBe(0);
    expect(result.errLines[0]).toBe('wrote dbfast.toml (repository: ./)');
    expect(await readFile(join(root, 'dbfast.toml'), 'utf8')).toContain('path = "."');
  });

  it('finds the SQL in sql/ when db/ has none', async () => {
    const root = await folder({ 'db/schema.rb': '', 'sql/tables/items.sql': 'CREATE TABLE items (id int);\n', 'migrations/001_init.js': '' });
    const result = await runCli(['init'], { cwd: root });
    expect(result.code).toBe(0);
    expect(lines(result.stderr)).toEqual([
      'wrote dbfast.toml (repository: sql/)',
      'no numbered folders found in sql/; environments are commented out',
    ]);
    expect(await readFile(join(root, 'dbfast.toml'), 'utf8')).toContain('path = "sql"\ninclude_patterns = ["**/*.sql"]\nexclude_patterns = []');
  });

  it('prefers the folder with numbered folders over one with loose .sql files', async () => {
    const root = await folder({ 'db/0_schema/01.sql': 'SELECT 1;\n', 'migrations/001_init.sql': 'SELECT 1;\n' });
    const result = await runCli(['init'], { cwd: root });
    expect(result.code).toBe(0);
    expect(result.errLines[0]).toBe('wrote dbfast.toml (repository: db/)');
  });

  it('refuses to guess between two places with numbered folders, and writes nothing', async () => {
    const root = await folder({ '0_schema/01.sql': 'SELECT 1;\n', 'db/0_schema/01.sql': 'SELECT 1;\n' });
    const result = await runCli(['init'], { cwd: root });
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.errLines).toEqual([
      'error: cannot tell where the SQL repository is: numbered folders in ./ and in db/',
      '  hint: choose one with --repo-dir, e.g. --repo-dir .',
    ]);
    await expect(readFile(join(root, 'dbfast.toml'), 'utf8')).rejects.toMatchObject({ code: 'ENOENT' });
    const chosen = await runCli(['init', '--repo-dir', 'db'], { cwd: root });
    expect(chosen.errLines[0]).toBe('wrote dbfast.toml (repository: db/)');
  });

  it('takes a --template-name of 52 bytes and refuses 53', async () => {
    const root = await folder();
    const longest = `t${'x'.repeat(51)}`;
    const refused = await runCli(['init', '--template-name', `${longest}x`], { cwd: root });
    expect(refused.code).toBe(2);
    expect(refused.errLines[0]).toBe(
      `error: template name "${longest}x" is longer than 52 bytes: dbfast appends up to 11 to it, within PostgreSQL's 63`,
    );
    // Nothing is built: no template to drop afterwards.
    const run = (args: string[]) => runCli(args, { cwd: root, env: { DBFAST_DATABASE_URL: testServerUrl() } });
    const taken = await run(['init', '--template-name', longest]);
    expect(taken.code).toBe(0);
    // Its environments' templates are shortened to the same limit, so the file loads.
    const listed = await run(['environments', '--json']);
    expect(listed.code).toBe(0);
    const templates = JSON.parse(listed.stdout).map((environment: { template: string }) => environment.template);
    expect(templates).toEqual([`${longest.slice(0, 46)}_local`, `${longest.slice(0, 41)}_production`]);
  });

  it('refuses an invalid --template-name with exit 2 and writes nothing', async () => {
    const root = await folder();
    const result = await runCli(['init', '--template-name', 'Bad Name'], { cwd: root });
    expect(result.code).toBe(2);
    expect(result.errLines[0]).toMatch(/^error: template name "Bad Name" must be a lowercase identifier/);
    await expect(readFile(join(root, 'dbfast.toml'), 'utf8')).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
