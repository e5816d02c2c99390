import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rename, rm, utimes, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { Project } from '../../src/core/project.js';
import { query, queryUrl, untilBackend } from '../helpers/database.js';
import { tempRepo, writeFiles } from '../helpers/repo.js';

const serverUrl = () => `postgresql://postgres@127.0.0.1:${inject('serverPort')}/postgres`;
const opened: Project[] = [];

afterEach(async () => {
  for (const project of opened.splice(0)) {
    for (const clone of await project.list()) if (clone.template === project.templateName) await project.drop(clone.name);
  }
});

/** A project on the test server with its own template name, over `files`. */
async function makeProject(files: Record<string, string>, extraToml = '') {
  const templateName = `t_${randomBytes(4).toString('hex')}`;
  const toml = `[database]\ntemplate_name = "${templateName}"\n${extraToml}`;
  const root = await tempRepo({ 'dbfast.toml': toml, ...prefix('db/', files) });
  const project = await Project.open({ cwd: root, env: { DBFAST_DATABASE_URL: serverUrl() } });
  opened.push(project);
  return { project, root, templateName };
}

function prefix(dir: string, files: Record<string, string>) {
  return Object.fromEntries(Object.entries(files).map(([path, content]) => [dir + path, content]));
}

/** Databases matching `pattern`, but for layer checkpoints (`<template>__c<n>`, which a build keeps: layers.test.ts). */
async function databases(pattern: string) {
  const rows = await query<{ datname: string }>(
    'postgres',
    `SELECT datname FROM pg_database WHERE datname LIKE '${pattern}' AND datname !~ '^t_[0-9a-f]{8}__c[0-9]+$' ORDER BY 1`,
  );
  return rows.map((row) => row.datname);
}

const schema = {
  '0_schema/01_tables.sql': 'CREATE TABLE items (id int PRIMARY KEY, name text);',
  '1_seed/01_items.sql': "INSERT INTO items VALUES (1, 'one'), (2, 'two');",
};

describe('template build', () => {
  it('builds a template closed to connections, with its metadata on the server', async () => {
    const { project, templateName } = await makeProject(schema);
    const result = await project.build();
    expect(result.rebuilt).toBe(true);
    expect(result.stats).toMatchObject({ files: 2, statements: 2 });
    const [row] = await query('postgres', `SELECT datistemplate, datallowconn FROM pg_database WHERE datname = '${templateName}'`);
    expect(row).toEqual({ datistemplate: true, datallowconn: false });
    expect(result.template).toMatchObject({ name: templateName, files: 2, fingerprint: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(await databases(`${templateName}\\_\\_%`)).toEqual([]);
  });

  it('rebuilds only when file contents, names or the file set change (a touch is not a change)', async () => {
    const { project, root } = await makeProject(schema);
    expect((await project.build()).rebuilt).toBe(true);
    expect((await project.build()).rebuilt).toBe(false);

    const file = join(root, 'db/1_seed/01_items.sql');
    const later = new Date(Date.now() + 60_000);
    await utimes(file, later, later);
    expect((await project.build()).rebuilt).toBe(false);

    await writeFile(file, "INSERT INTO items VALUES (1, 'uno');");
    expect((await project.build()).rebuilt).toBe(true);

    await writeFiles(root, { 'db/1_seed/02_more.sql': "INSERT INTO items VALUES (3, 'three');" });
    expect((await project.build()).rebuilt).toBe(true);

    await rename(join(root, 'db/1_seed/02_more.sql'), join(root, 'db/1_seed/03_more.sql'));
    expect((await project.build()).rebuilt).toBe(true);

    await rm(join(root, 'db/1_seed/03_more.sql'));
    expect((await project.build()).rebuilt).toBe(true);
    expect((await project.build({ force: true })).rebuilt).toBe(true);
  });

  it('keeps the previous template, still clonable, when a file fails', async () => {
    const { project, root, templateName } = await makeProject(schema);
    const before = (await project.build()).template;
    await writeFiles(root, { 'db/1_seed/02_bad.sql': 'INSERT INTO items VALUES (3);\nINSERT INTO nope VALUES (1);' });
    await expect(project.build()).rejects.toMatchObject({ code: 'SQL_FAILED', file: 'db/1_seed/02_bad.sql', line: 2 });
    expect(await databases(`${templateName}\\_\\_%`)).toEqual([]);

    const clone = await project.seed().catch((error) => error);
    expect(clone).toMatchObject({ code: 'SQL_FAILED' }); // never a stale template while files are broken
    await rm(join(root, 'db/1_seed/02_bad.sql'));
    const fresh = await project.seed();
    expect(fresh.rebuilt).toBe(false);
    expect((await project.build()).template.builtAt).toBe(before.builtAt);
    expect(await query(fresh.database, 'SELECT count(*)::int AS n FROM items')).toEqual([{ n: 2 }]);
  });

  it("never drops a user's database that merely shares the template's prefix", async () => {
    const { project, templateName } = await makeProject(schema);
    const neighbours = [
      `${templateName}__bench`,
      `${templateName}__b1234567`,
      `${templateName}__old_copy`,
      `${templateName}__b12345678_keep`,
      `${templateName}__o9abcdef0_keep`,
      `x${templateName}__b12345678`,
    ];
    for (const name of neighbours) await query('postgres', `CREATE DATABASE ${name}`);
    try {
      await project.build({ force: true });
      expect(await databases(`%${templateName}\\_\\_%`)).toEqual([...neighbours].sort());
    } finally {
      for (const name of neighbours) await query('postgres', `DROP DATABASE IF EXISTS ${name}`);
    }
  });

  it('refuses to replace a database it did not create', async () => {
    const { project, templateName } = await makeProject(schema);
    await query('postgres', `CREATE DATABASE ${templateName}`);
    await expect(project.build()).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('not created by dbfast') });
    await query('postgres', `DROP DATABASE ${templateName}`);
  });

  it('cleans up the temporary database of a build that was killed', async () => {
    const { project, root, templateName } = await makeProject({
      ...schema,
      '1_seed/02_slow.sql': 'SELECT pg_sleep(60);',
    });
    const cli = resolve(import.meta.dirname, '../../dist/cli/main.js');
    const child = spawn(process.execPath, [cli, 'build'], {
      cwd: root,
      env: { ...process.env, DBFAST_DATABASE_URL: serverUrl() },
      stdio: 'ignore',
    });
    // Wait until the build is inside the slow file, then kill it without a chance to clean up.
    for (let i = 0; i < 200; i++) {
      const active = await query('postgres', `SELECT 1 FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(60)%'`);
      if (active.length > 0) break;
      await new Promise((done) => setTimeout(done, 50));
    }
    expect(await databases(`${templateName}\\_\\_b%`)).toHaveLength(1);
    child.kill('SIGKILL');
    await new Promise((done) => child.once('exit', done));

    await writeFiles(root, { 'db/1_seed/02_slow.sql': 'SELECT 1;' });
    expect((await project.build()).rebuilt).toBe(true);
    expect(await databases(`${templateName}\\_\\_%`)).toEqual([]);
  });
});

describe('template validation', () => {
  const validation = (tables: string, functions: string, minimum: number) => `
[validation]
required_tables = [${tables}]
required_functions = [${functions}]
test_queries = [{ query = "SELECT * FROM items", min_expected_results = ${minimum} }]
`;

  it('swaps in a template that passes every check', async () => {
    const { project } = await makeProject(
      { ...schema, '0_schema/02_fn.sql': 'CREATE FUNCTION public.answer() RETURNS int LANGUAGE sql RETURN 42;' },
      validation('"items", "public.items"', '"answer", "public.answer()"', 2),
    );
    expect((await project.build()).rebuilt).toBe(true);
  });

  it('names everything missing and keeps the previous template', async () => {
    const { project, root, templateName } = await makeProject(schema);
    const before = (await project.build()).template;
    await writeFile(join(root, 'dbfast.toml'), `[database]\ntemplate_name = "${templateName}"\n${validation('"items", "orders"', '"missing_fn"', 3)}`);
    await writeFiles(root, { 'db/1_seed/02_more.sql': 'SELECT 1;' });
    const strict = await Project.open({ cwd: root, env: { DBFAST_DATABASE_URL: serverUrl() } });
    opened.push(strict);
    await expect(strict.build()).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
      message: 'template validation failed: missing table orders; missing function missing_fn; test query returned 2 rows, expected at least 3: SELECT * FROM items',
    });
    expect(await databases(`${templateName}\\_\\_%`)).toEqual([]);
    await rm(join(root, 'db/1_seed/02_more.sql'));
    expect((await project.build()).template.builtAt).toBe(before.builtAt);
  });
});

describe('performance limits', () => {
  it('abandons a build past build_timeout_ms, naming the file, and keeps the previous template', async () => {
    const { project, root, templateName } = await makeProject(schema, '[performance]\nbuild_timeout_ms = 500\n');
    const before = (await project.build()).template;
    await writeFiles(root, { 'db/1_seed/02_slow.sql': 'SELECT 1;\nSELECT pg_sleep(30);\n' });
    await expect(project.build()).rejects.toMatchObject({ code: 'TIMEOUT', file: 'db/1_seed/02_slow.sql', line: 2 });
    expect(await databases(`${templateName}\\_\\_%`)).toEqual([]);
    await rm(join(root, 'db/1_seed/02_slow.sql'));
    expect((await project.build()).template.builtAt).toBe(before.builtAt);
  });

  it('abandons a build when its signal aborts: the statement cancelled, the scratch database dropped, the previous template kept', async () => {
    const { project, root, templateName } = await makeProject(schema);
    const before = (await project.build()).template;
    await writeFiles(root, { 'db/1_seed/02_slow.sql': 'SELECT 1;\nSELECT pg_sleep(300);\n' });
    await expect(project.build({ signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
    const controller = new AbortController();
    const pending = project.build({ signal: controller.signal });
    await untilBackend(`query LIKE '%pg_sleep(300)%' AND state = 'active'`);
    controller.abort();
    await expect(pending).rejects.toBe(controller.signal.reason);
    expect(await databases(`${templateName}\\_\\_%`)).toEqual([]);
    await untilBackend(`query LIKE '%pg_sleep(300)%'`, { gone: true });
    await rm(join(root, 'db/1_seed/02_slow.sql'));
    expect((await project.build()).template.builtAt).toBe(before.builtAt);
  });

  it('waits for a free clone slot (max_concurrent_clones) and gives up after clone_timeout_ms', async () => {
    const { project } = await makeProject(schema, '[performance]\nmax_concurrent_clones = 1\nclone_timeout_ms = 1500\n');
    await project.build();
    const pg = (await import('pg')).default;
    const holder = new pg.Client({ host: '127.0.0.1', port: inject('serverPort'), user: 'postgres', database: 'postgres' });
    await holder.connect();
    try {
      await holder.query(`SELECT pg_advisory_lock(hashtextextended('dbfast:clone-slot:0', 0))`);
      await expect(project.seed()).rejects.toMatchObject({ code: 'TIMEOUT', message: expect.stringContaining('clone_timeout_ms (1500 ms)') });
      await holder.query(`SELECT pg_advisory_unlock(hashtextextended('dbfast:clone-slot:0', 0))`);
      await expect(project.seed()).resolves.toMatchObject({ rebuilt: false });
    } finally {
      await holder.end();
    }
  });
});

describe('clones', () => {
  it('has the template data and is independent of it', async () => {
    const { project, templateName } = await makeProject(schema);
    const first = await project.seed();
    expect(first).toMatchObject({ template: templateName, rebuilt: true, database: expect.stringMatching(new RegExp(`^${templateName}_[0-9a-f]{8}$`)) });
    expect(first.url).toBe(`postgresql://postgres@127.0.0.1:${inject('serverPort')}/${first.database}`);
    await query(first.database, "INSERT INTO items VALUES (9, 'only in the clone')");

    const second = await project.seed();
    expect(second.rebuilt).toBe(false);
    expect(await query(second.database, 'SELECT id, name FROM items ORDER BY id')).toEqual([
      { id: 1, name: 'one' },
      { id: 2, name: 'two' },
    ]);
    expect((await project.list()).map((clone) => clone.name).sort()).toEqual([first.database, second.database].sort());
  });

  it('rebuilds exactly once when several seeds race after a change', async () => {
    const { root } = await makeProject(schema);
    await writeFiles(root, { 'db/1_seed/01_items.sql': "INSERT INTO items VALUES (1, 'changed');" });
    const racers = await Promise.all(Array.from({ length: 6 }, () => Project.open({ cwd: root, env: { DBFAST_DATABASE_URL: serverUrl() } })));
    opened.push(...racers);
    const results = await Promise.all(racers.map((racer) => racer.seed()));
    expect(results.filter((result) => result.rebuilt)).toHaveLength(1);
    for (const result of results) {
      expect(await query(result.database, 'SELECT name FROM items WHERE id = 1')).toEqual([{ name: 'changed' }]);
    }
  });

  it('refuses an existing name unless replacing a clone, and validates names', async () => {
    const { project } = await makeProject(schema);
    const name = `c_${randomBytes(4).toString('hex')}`;
    await project.seed({ name });
    await expect(project.seed({ name })).rejects.toMatchObject({ code: 'USAGE', hint: expect.stringContaining('--replace') });
    await expect(project.seed({ name, replace: true })).resolves.toMatchObject({ database: name });
    await expect(project.seed({ name: 'x'.repeat(64) })).rejects.toMatchObject({ code: 'USAGE' });
    await expect(project.seed({ name: 'bad name' })).rejects.toMatchObject({ code: 'USAGE' });
  });
});


describe('template safety', () => {
  it('a swap that fails half-way leaves the previous template intact, still a template', async () => {
    const { project, root, templateName } = await makeProject(schema);
    await project.build();
    // The build's scratch database cannot be renamed while someone is connected to it: the swap
    // renames the previous template away first, then fails on the second rename.
    await writeFiles(root, { 'db/1_seed/02_wait.sql': "INSERT INTO items VALUES (3, 'three'); SELECT pg_sleep(1);" });
    const pending = project.build();
    let scratch: string | undefined;
    while (!scratch) scratch = (await databases(`${templateName}\\_\\_b%`))[0];
    const pg = (await import('pg')).default;
    const intruder = new pg.Client({ host: '127.0.0.1', port: inject('serverPort'), user: 'postgres', database: scratch });
    await intruder.connect();
    intruder.on('error', () => {});
    try {
      await expect(pending).rejects.toThrow(/being accessed by other users/);
    } finally {
      await intruder.end().catch(() => {});
    }
    const [row] = await query('postgres', `SELECT datistemplate, datallowconn FROM pg_database WHERE datname = '${templateName}'`);
    expect(row).toEqual({ datistemplate: true, datallowconn: false });
    expect(await databases(`${templateName}\\_\\_%`)).toEqual([]);
    await rm(join(root, 'db/1_seed/02_wait.sql'));
    const { url, rebuilt } = await project.seed();
    expect(rebuilt).toBe(false);
    expect(await queryUrl(url, 'SELECT count(*)::int AS n FROM items')).toEqual([{ n: 2 }]);
  });

  it("one template's build does not wait for another template's lock", async () => {
    const a = await makeProject({ ...schema, '1_seed/02_slow.sql': 'SELECT pg_sleep(5);' });
    const b = await makeProject(schema);
    const buildA = a.project.build();
    // A holds its template's lock for as long as its build runs.
    while ((await databases(`${a.templateName}\\_\\_b%`)).length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    const buildB = b.project.build();
    expect(await Promise.race([buildB.then(() => 'B'), buildA.then(() => 'A')])).toBe('B');
    expect((await buildB).rebuilt).toBe(true);
    expect((await buildA).rebuilt).toBe(true);
  });
});
