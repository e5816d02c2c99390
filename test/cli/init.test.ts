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

async function folder() {
  const root = await tempRepo({ 'db/0_schema/.keep': '', 'db/1_seed/.keep': '', 'db/6_migration/.keep': '' });
  cleanup.push(() => rm(root, { recursive: true, force: true }));
  return root;
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
    cleanup.push(() => dropTemplateAndClones(`${templateName}_local`));
    const run = (args: string[]) => runCli(args, { cwd: root, env: { DBFAST_DATABASE_URL: testServerUrl() } });

    const first = await run(['init', '--template-name', templateName]);
    expect(first.code).toBe(0);
    expect(first.stdout).toBe('');
    expect(first.errLines).toEqual([
      'wrote dbfast.toml',
      '  local: 0_schema, 1_seed, 6_migration',
      '  production: 0_schema, 6_migration',
    ]);
    const written = await readFile(join(root, 'dbfast.toml'), 'utf8');
    expect(written).toContain(`template_name = "${templateName}"`);
    expect(written).toContain('include_directories = ["0_schema", "1_seed", "6_migration"]');
    // Remotes are not implemented yet: the file must not offer them.
    expect(written).not.toMatch(/deploy|remote/i);

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
    expect(lines(result.stderr)).toEqual(['wrote dbfast.toml', 'no numbered folders found in sql/; environments are commented out']);
    const written = await readFile(join(root, 'dbfast.toml'), 'utf8');
    expect(written).toContain('path = "sql"');
    expect(written).toContain('# [environments.local]');
  });

  it('refuses an invalid --template-name with exit 2 and writes nothing', async () => {
    const root = await folder();
    const result = await runCli(['init', '--template-name', 'Bad Name'], { cwd: root });
    expect(result.code).toBe(2);
    expect(result.errLines[0]).toMatch(/^error: template name "Bad Name" must be a lowercase identifier/);
    await expect(readFile(join(root, 'dbfast.toml'), 'utf8')).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
