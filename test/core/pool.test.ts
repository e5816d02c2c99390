import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { Project } from '../../src/core/project.js';
import { withClient } from '../../src/core/pg/client.js';
import { projectDatabases } from '../../src/core/disk.js';
import { readPool } from '../../src/core/pool.js';
import { dropTemplateAndClones, runCli } from '../helpers/cli.js';
import pg from 'pg';
import { query, queryUrl, testClientConfig } from '../helpers/database.js';
import { tempRepo, writeFiles } from '../helpers/repo.js';

const serverUrl = () => `postgresql://postgres@127.0.0.1:${inject('serverPort')}/postgres`;
const templates: string[] = [];

afterAll(async () => {
  for (const name of templates) await dropTemplateAndClones(name);
});

async function makeProject(poolSize: number) {
  const templateName = `p_${randomBytes(4).toString('hex')}`;
  templates.push(templateName);
  const root = await tempRepo({
    'dbfast.toml': `[database]\ntemplate_name = "${templateName}"\n[performance]\npool_size = ${poolSize}\n`,
    'db/0_schema/01_tables.sql': 'CREATE TABLE items (id int PRIMARY KEY, name text); CREATE TABLE marks (who text);',
    'db/1_seed/01_items.sql': "INSERT INTO items VALUES (1, 'one'), (2, 'two');",
  });
  const project = await Project.open({ cwd: root, env: { DBFAST_DATABASE_URL: serverUrl() } });
  return { project, root, templateName };
}

async function pool(project: Project) {
  return withClient(await project.server(), (admin) => readPool(admin, project.templateName));
}

describe('warm clone pool', () => {
  it('32 concurrent takers each get a distinct, fresh, isolated database: the 8 spares, then copies', async () => {
    const { project } = await makeProject(8);
    await project.build();
    expect((await project.fillPool()).created).toHaveLength(8);

    const results = await Promise.all(Array.from({ length: 32 }, () => project.seed({ refill: false })));
    expect(new Set(results.map((result) => result.database)).size).toBe(32);
    expect(results.filter((result) => result.pooled)).toHaveLength(8);
    expect((await pool(project)).spares).toEqual([]);

    // Fresh: the template's rows and nothing else; isolated: each one's write stays its own.
    await Promise.all(results.map((result) => queryUrl(result.url, `INSERT INTO marks VALUES ('${result.database}')`)));
    for (const result of results) {
      expect(await queryUrl(result.url, 'SELECT (SELECT count(*)::int FROM items) AS items, array_agg(who) AS marks FROM marks')).toEqual([
        { items: 2, marks: [result.database] },
      ]);
    }
    // A taken spare is an ordinary clone: listed, with clone metadata.
    const listed = new Set((await project.list()).map((clone) => clone.name));
    for (const result of results) expect(listed.has(result.database)).toBe(true);
  });

  it('refills in the background after a seed, up to pool_size, spares of the current build', async () => {
    const { project } = await makeProject(3);
    const first = await project.seed();
    expect(first).toMatchObject({ rebuilt: true, pooled: false });
    await project.close();
    const view = await pool(project);
    expect(view.spares).toHaveLength(3);
    for (const spare of view.spares) expect(spare).toMatchObject({ templateOid: view.templateOid, fingerprint: view.template!.fingerprint });

    const second = await project.seed();
    expect(second.pooled).toBe(true);
    expect(await queryUrl(second.url, 'SELECT count(*)::int AS n FROM items')).toEqual([{ n: 2 }]);
    await project.close();
    expect((await pool(project)).spares).toHaveLength(3);
  });

  it('a rebuild drops the spares of the old build, and a seed after a file change never gets one', async () => {
    const { project, root } = await makeProject(2);
    await project.build();
    await project.fillPool();
    const old = (await pool(project)).spares.map((spare) => spare.name);
    expect(old).toHaveLength(2);

    await writeFiles(root, { 'db/1_seed/01_items.sql': "INSERT INTO items VALUES (1, 'uno');" });
    const seeded = await project.seed({ refill: false });
    expect(seeded).toMatchObject({ rebuilt: true, pooled: false });
    expect(await queryUrl(seeded.url, 'SELECT name FROM items')).toEqual([{ name: 'uno' }]);
    const names = (await query<{ datname: string }>('postgres', 'SELECT datname FROM pg_database')).map((row) => row.datname);
    for (const name of old) expect(names).not.toContain(name);

    await project.fillPool();
    const taken = await project.seed({ refill: false });
    expect(taken.pooled).toBe(true);
    expect(await queryUrl(taken.url, 'SELECT name FROM items')).toEqual([{ name: 'uno' }]);
  });

  it('never hands out a spare copied from another build of the template, and the next fill drops it', async () => {
    const { project } = await makeProject(1);
    await project.build();
    await project.fillPool();
    const [spare] = (await pool(project)).spares;
    // As a process killed between a rebuild's swap and its cleanup would leave it: right fingerprint, old build.
    const metadata = JSON.stringify({ dbfast: { ...spare, name: undefined, place: undefined, templateOid: 1 } });
    await query('postgres', `ALTER DATABASE "${spare!.name}" SET dbfast.metadata = '${metadata}'`);

    const seeded = await project.seed({ refill: false });
    expect(seeded.pooled).toBe(false);
    expect((await pool(project)).spares.map((each) => each.name)).toEqual([spare!.name]);
    // And a copy a killed filler never marked: only a filler (holding the pool's lock) makes spare names.
    const unfinished = `${project.templateName}__p0badc0de`;
    await query('postgres', `CREATE DATABASE ${unfinished}`);
    const filled = await project.fillPool();
    expect(filled.dropped.sort()).toEqual([spare!.name, unfinished].sort());
    expect(filled.created).toHaveLength(1);
  });

  it('pool_size = 0 makes no spares; clean --all drops the spares with the clones', async () => {
    const off = await makeProject(0);
    await off.project.seed();
    await off.project.close();
    expect((await pool(off.project)).spares).toEqual([]);

    const on = await makeProject(2);
    await on.project.seed();
    await on.project.close();
    expect((await pool(on.project)).spares).toHaveLength(2);
    expect(await on.project.clean({ all: true })).toHaveLength(3);
    expect((await pool(on.project)).spares).toEqual([]);
  });

  it('the CLI refills from a detached process, and the next seed takes a spare', async () => {
    const { root, templateName } = await makeProject(2);
    const env = { DBFAST_DATABASE_URL: serverUrl() };
    const first = await runCli(['seed', '--json'], { cwd: root, env });
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ rebuilt: true, pooled: false });

    const project = await Project.open({ cwd: root, env });
    for (let tries = 0; (await pool(project)).spares.length < 2; tries++) {
      if (tries > 300) throw new Error(`the detached refill made no spares of ${templateName}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const second = await runCli(['seed', '--json'], { cwd: root, env });
    expect(JSON.parse(second.stdout)).toMatchObject({ rebuilt: false, pooled: true });

    // Let the second seed's refill finish before draining, or it would make a spare after.
    for (let tries = 0; (await pool(project)).spares.length < 2; tries++) {
      if (tries > 300) throw new Error('the second refill made no spare');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const drained = await runCli(['pool', 'drain', '--json'], { cwd: root, env });
    expect(JSON.parse(drained.stdout).dropped).toHaveLength(2);
  });

  it('counts an unmarked spare as one being made while a filler holds the pool lock, else as an orphan', async () => {
    const { project } = await makeProject(1);
    await project.build();
    const unfinished = `${project.templateName}__p0dd5a1e5`;
    await query('postgres', `CREATE DATABASE ${unfinished}`);
    const kindOf = async () =>
      (await withClient(await project.server(), (admin) => projectDatabases(admin, [project.templateName]))).find((database) => database.name === unfinished)?.kind;
    expect(await kindOf()).toBe('orphan');
    const filler = new pg.Client(testClientConfig());
    await filler.connect();
    try {
      await filler.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [`dbfast:pool:${project.templateName}`]);
      expect(await kindOf()).toBe('spare');
    } finally {
      await filler.end();
    }
    expect(await kindOf()).toBe('orphan');
  });
});
