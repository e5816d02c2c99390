/**
 * Files included with \i are part of the template's freshness: every file a build read, wherever
 * it lies, is checked against the bytes the build read, and a change or a deletion means a rebuild.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { cp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { openProject, type Project } from '../../src/index.js';
import { type CliProject, cliProject, dropTemplateAndClones, lines } from '../helpers/cli.js';
import { queryUrl } from '../helpers/database.js';
import { tempRepo, writeFiles } from '../helpers/repo.js';

const templates: string[] = [];
const cliProjects: CliProject[] = [];
afterAll(async () => {
  for (const name of templates) await dropTemplateAndClones(name);
  for (const project of cliProjects) await project.remove();
});

const serverUrl = () => `postgresql://postgres@127.0.0.1:${inject('serverPort')}/postgres`;

async function open(root: string, env: Record<string, string> = {}) {
  const project = await openProject({ cwd: root, env: { DBFAST_DATABASE_URL: serverUrl(), ...env } });
  return project;
}

/** A project whose selected files include `inc/...` (outside the repository `db/`), plus `files`. */
async function makeProject(files: Record<string, string>, extraToml = '') {
  const name = `i_${randomBytes(4).toString('hex')}`;
  templates.push(name, `${name}_local`, `${name}_schema`);
  const root = await tempRepo({
    'dbfast.toml': `[database]\ntemplate_name = "${name}"\n${extraToml}`,
    'db/0_schema/01_tables.sql': 'CREATE TABLE items (id int PRIMARY KEY, name text);',
    ...files,
  });
  return { root, project: await open(root) };
}

async function names(url: string): Promise<string[]> {
  return (await queryUrl(url, 'SELECT name FROM items ORDER BY id')).map((row) => row.name);
}

/** Seeds and returns whether it rebuilt and the clone's rows. */
async function seed(project: Project) {
  const { rebuilt, url } = await project.seed();
  return { rebuilt, names: await names(url) };
}

describe('included files', () => {
  it('rebuilds when a file included from outside the repository changes, and only then', async () => {
    const { root, project } = await makeProject({
      'db/1_seed/05_incl.sql': '\\i ../../inc/data.inc\n',
      'inc/data.inc': "INSERT INTO items VALUES (1, 'one');",
    });
    expect(await seed(project)).toEqual({ rebuilt: true, names: ['one'] });
    expect(await seed(project)).toEqual({ rebuilt: false, names: ['one'] });

    await writeFile(join(root, 'inc/data.inc'), "INSERT INTO items VALUES (1, 'uno');");
    expect((await project.check()).fresh).toBe(false);
    expect(await seed(project)).toEqual({ rebuilt: true, names: ['uno'] });
    expect(await seed(project)).toEqual({ rebuilt: false, names: ['uno'] });

    // build() decides under the template's lock, where a seed racing another one decides too.
    await writeFile(join(root, 'inc/data.inc'), "INSERT INTO items VALUES (1, 'eins');");
    expect((await project.build()).rebuilt).toBe(true);
    expect((await project.build()).rebuilt).toBe(false);
  });

  it('of several seeds racing after an included file changed, exactly one rebuilds and all clone the change', async () => {
    const { root, project } = await makeProject({
      'db/1_seed/05_incl.sql': '\\i ../../inc/data.inc\n',
      'inc/data.inc': "INSERT INTO items VALUES (1, 'one');",
    });
    await project.build();
    await writeFile(join(root, 'inc/data.inc'), "INSERT INTO items VALUES (1, 'changed');");
    const racers = await Promise.all([1, 2, 3, 4].map(() => open(root)));
    const results = await Promise.all(racers.map(seed));
    expect(results.filter((result) => result.rebuilt)).toHaveLength(1);
    for (const result of results) expect(result.names).toEqual(['changed']);
  });

  it('follows includes two levels deep, inside the repository and outside the project folder', async () => {
    const elsewhere = await tempRepo({ 'level2.sql': "INSERT INTO items VALUES (2, 'two');" });
    const { root, project } = await makeProject({
      'db/1_seed/05_incl.sql': '\\ir ../lib/level1.inc\n',
      'db/lib/level1.inc': `INSERT INTO items VALUES (1, 'one');\n\\i ${join(elsewhere, 'level2.sql')}\n`,
    });
    expect(await seed(project)).toEqual({ rebuilt: true, names: ['one', 'two'] });
    // Listed once read to the end: the nested file first.
    expect((await project.status()).template?.includes?.map((file) => file.path)).toEqual([
      `../${basename(elsewhere)}/level2.sql`,
      'db/lib/level1.inc',
    ]);

    await writeFile(join(elsewhere, 'level2.sql'), "INSERT INTO items VALUES (2, 'deux');");
    expect(await seed(project)).toEqual({ rebuilt: true, names: ['one', 'deux'] });

    await writeFile(join(root, 'db/lib/level1.inc'), `INSERT INTO items VALUES (1, 'un');\n\\i ${join(elsewhere, 'level2.sql')}\n`);
    expect(await seed(project)).toEqual({ rebuilt: true, names: ['un', 'deux'] });
    expect(await seed(project)).toEqual({ rebuilt: false, names: ['un', 'deux'] });
  });

  it('follows a nested include added inside an included file', async () => {
    const { root, project } = await makeProject({
      'db/1_seed/05_incl.sql': '\\i ../../inc/data.inc\n',
      'inc/data.inc': "INSERT INTO items VALUES (1, 'one');",
    });
    expect(await seed(project)).toEqual({ rebuilt: true, names: ['one'] });

    await writeFiles(root, {
      'inc/more/added.inc': "INSERT INTO items VALUES (2, 'two');",
      'inc/data.inc': "INSERT INTO items VALUES (1, 'one');\n\\ir more/added.inc\n",
    });
    expect(await seed(project)).toEqual({ rebuilt: true, names: ['one', 'two'] });

    await writeFile(join(root, 'inc/more/added.inc'), "INSERT INTO items VALUES (2, 'zwei');");
    expect(await seed(project)).toEqual({ rebuilt: true, names: ['one', 'zwei'] });
  });

  it('refuses to hand out a template whose included file was deleted, naming the line that includes it', async () => {
    const { root, project } = await makeProject({
      'db/1_seed/05_incl.sql': '\\i ../../inc/level1.inc\n',
      'inc/level1.inc': "INSERT INTO items VALUES (1, 'one');\n\\ir level2.inc\n",
      'inc/level2.inc': "INSERT INTO items VALUES (2, 'two');",
    });
    expect(await seed(project)).toEqual({ rebuilt: true, names: ['one', 'two'] });

    await rm(join(root, 'inc/level2.inc'));
    expect((await project.check()).fresh).toBe(false);
    await expect(project.seed()).rejects.toMatchObject({ code: 'FILE_UNREADABLE', file: 'inc/level1.inc', line: 2, column: 1 });
    await expect(project.build()).rejects.toMatchObject({ code: 'FILE_UNREADABLE', file: 'inc/level1.inc', line: 2 });

    // The template the failed builds left in place holds exactly the restored bytes: no rebuild.
    await writeFile(join(root, 'inc/level2.inc'), "INSERT INTO items VALUES (2, 'two');");
    expect(await seed(project)).toEqual({ rebuilt: false, names: ['one', 'two'] });
  });

  it('is checked through a stat cache: a warm check reads no include, an edited one is re-read even with its mtime restored', async () => {
    const { root, project } = await makeProject({
      'db/1_seed/05_incl.sql': '\\i ../../inc/data.inc\n',
      'inc/data.inc': "INSERT INTO items VALUES (1, 'one');",
    });
    const include = join(root, 'inc/data.inc');
    // Whole seconds survive utimes exactly; an hour ago is far outside the racy window.
    const anHourAgo = Math.floor(Date.now() / 1000) - 3600;
    await utimes(include, anHourAgo, anHourAgo);
    expect(await seed(project)).toEqual({ rebuilt: true, names: ['one'] });
    expect((await project.check()).fresh).toBe(true); // hashes the include, writes the cache
    const cache = join(project.config.stateDir, 'templates', `${project.templateName}.includes.tsv`);
    const cached = await readFile(cache, 'utf8');

    // A cache is rewritten (with a new time stamp) only when a file was read.
    expect((await project.check()).fresh).toBe(true);
    expect(await readFile(cache, 'utf8')).toBe(cached);

    // Same size, mtime and inode, but the edit moved the ctime: re-read, as the scanner does.
    await writeFile(include, "INSERT INTO items VALUES (1, 'two');");
    await utimes(include, anHourAgo, anHourAgo);
    expect((await project.check()).fresh).toBe(false);
    expect(await seed(project)).toEqual({ rebuilt: true, names: ['two'] });
  });

  it('records paths relative to the project folder, so another checkout on the same server checks its own files', async () => {
    const { root, project } = await makeProject({
      'db/1_seed/05_incl.sql': '\\i ../../inc/data.inc\n',
      'inc/data.inc': "INSERT INTO items VALUES (1, 'one');",
    });
    expect(await seed(project)).toEqual({ rebuilt: true, names: ['one'] });
    const other = await tempRepo({});
    await cp(root, other, { recursive: true, filter: (path) => !path.includes('.dbfast') });
    const checkout = await open(other);
    expect(await seed(checkout)).toEqual({ rebuilt: false, names: ['one'] });

    await writeFile(join(other, 'inc/data.inc'), "INSERT INTO items VALUES (1, 'other');");
    expect(await seed(checkout)).toEqual({ rebuilt: true, names: ['other'] });
    expect(await seed(project)).toEqual({ rebuilt: true, names: ['one'] });
  });

  it('status and environments report a changed or missing include', async () => {
    const { root, project } = await makeProject(
      {
        'db/1_seed/05_incl.sql': '\\i ../../inc/data.inc\n\\ir ../lib/more.inc\n',
        'db/lib/more.inc': "INSERT INTO items VALUES (2, 'two');",
        'inc/data.inc': "INSERT INTO items VALUES (1, 'one');",
      },
      '[environments.local]\ninclude_directories = ["0_schema", "1_seed"]\n[environments.schema]\ninclude_directories = ["0_schema"]\n',
    );
    const local = await open(root, { DBFAST_ENV: 'local' });
    await local.seed();
    await (await open(root, { DBFAST_ENV: 'schema' })).build();
    expect((await local.status()).repository).toMatchObject({ changed: false, changedFiles: { modified: [] } });

    await writeFile(join(root, 'inc/data.inc'), "INSERT INTO items VALUES (1, 'uno');");
    await rm(join(root, 'db/lib/more.inc'));
    expect((await local.status()).repository).toMatchObject({
      changed: true,
      changedFiles: { added: [], removed: [], modified: ['../inc/data.inc', 'lib/more.inc'] },
    });
    expect((await project.environments()).map((row) => [row.name, row.state])).toEqual([
      ['local', 'stale'],
      ['schema', 'fresh'],
    ]);
  });

  it('does not take a selected file edited during the build as built from its old bytes', async () => {
    const { root, project } = await makeProject({ 'db/1_seed/02_items.sql': "INSERT INTO items VALUES (1, 'before');" });
    const file = join(root, 'db/1_seed/02_items.sql');
    // Scanned as 'before', read as 'during': the template holds 'during'.
    await project.build({
      onFileStart: (_file, index) => {
        if (index === 0) writeFileSync(file, "INSERT INTO items VALUES (1, 'during');");
      },
    });
    await writeFile(file, "INSERT INTO items VALUES (1, 'before');");
    expect((await project.check()).fresh).toBe(false);
    expect(await seed(project)).toEqual({ rebuilt: true, names: ['before'] });
  });
});

describe('included files through the CLI', () => {
  it('seed --json rebuilds after an included file changes, and status --verbose names it', async () => {
    const made = await cliProject({
      'db/0_schema/01_tables.sql': 'CREATE TABLE items (id int PRIMARY KEY, name text);',
      'db/1_seed/05_incl.sql': '\\i ../../inc/data.inc\n',
      'inc/data.inc': "INSERT INTO items VALUES (1, 'one');",
    });
    cliProjects.push(made);
    const seedJson = async () => {
      const result = await made.run(['seed', '--json']);
      expect(result.code).toBe(0);
      const { rebuilt, url } = JSON.parse(result.stdout);
      return { rebuilt, names: await names(url) };
    };
    expect(await seedJson()).toEqual({ rebuilt: true, names: ['one'] });
    await writeFile(join(made.root, 'inc/data.inc'), "INSERT INTO items VALUES (1, 'uno');");

    const status = await made.run(['status', '--verbose']);
    const report = lines(status.stdout);
    expect(report).toContain(`repository  ${join(made.root, 'db')}, 2 files, changed since the template was built`);
    // From the dbfast.toml folder, as the build records included files and as every message names files.
    expect(report).toContain('              modified: inc/data.inc');
    expect(await seedJson()).toEqual({ rebuilt: true, names: ['uno'] });
    expect(await seedJson()).toEqual({ rebuilt: false, names: ['uno'] });
  });
});
