import pg from 'pg';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { lockKeys } from '../../src/core/pg/locks.js';
import { Project } from '../../src/core/project.js';
import { type WatchEvent, type WatchOptions, watchProject } from '../../src/core/watch.js';
import { dropTemplateAndClones, testServerUrl, uniqueName } from '../helpers/cli.js';
import { query, testClientConfig, untilBackend } from '../helpers/database.js';
import { tempRepo, writeFiles } from '../helpers/repo.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const schema = {
  'db/0_schema/01_items.sql': 'CREATE TABLE items (id int PRIMARY KEY, name text);',
  'db/1_seed/01_items.sql': "INSERT INTO items VALUES (1, 'one'), (2, 'two');",
};

/** A project on the test server, with `toml` after its template_name; `env` adds to its variables. */
async function makeProject(files: Record<string, string>, toml = '', env: (root: string) => NodeJS.ProcessEnv = () => ({})) {
  const templateName = uniqueName('w');
  const root = await tempRepo({ 'dbfast.toml': `[database]\ntemplate_name = "${templateName}"\n${toml}`, ...files });
  cleanups.push(async () => {
    // The base template, and those of environments (`<name>_<environment>`).
    for (const { datname } of await query<{ datname: string }>('postgres', `SELECT datname FROM pg_database WHERE datname LIKE '${templateName}%'`)) {
      await dropTemplateAndClones(datname);
    }
    await rm(root, { recursive: true, force: true });
  });
  const project = await Project.open({ cwd: root, env: { DBFAST_DATABASE_URL: testServerUrl(), ...env(root) } });
  return { root, templateName, project };
}

/** A project on the test server, watched; `until` waits for a number of events of a kind. */
async function watched(files: Record<string, string>, options: WatchOptions = {}, toml = '', env?: (root: string) => NodeJS.ProcessEnv) {
  const { root, templateName, project } = await makeProject(files, toml, env);
  const events: WatchEvent[] = [];
  const watcher = await watchProject(project, { debounceMs: 300, ...options, onEvent: (event) => events.push(event) });
  cleanups.push(() => watcher.close());
  const count = (kind: WatchEvent['kind']) => events.filter((event) => event.kind === kind).length;
  return {
    root,
    templateName,
    project,
    events,
    watcher,
    count,
    /** Waits (up to 60 s) until `count(kind)` reaches `n`. */
    async until(kind: WatchEvent['kind'], n: number) {
      for (let waited = 0; count(kind) < n; waited += 20) {
        if (waited > 60_000) throw new Error(`waited for ${n} "${kind}" events; got ${JSON.stringify(events)}`);
        await sleep(20);
      }
    },
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Long enough after the last event for any further build to have been scheduled (several debounces). */
const settle = () => sleep(1500);

async function scratchDatabases(templateName: string) {
  return query('postgres', `SELECT datname FROM pg_database WHERE datname LIKE '${templateName}\\_\\_b%'`);
}

async function rowsInTemplate(templateName: string) {
  const clone = uniqueName('wc');
  await query('postgres', `CREATE DATABASE ${clone} TEMPLATE ${templateName}`);
  try {
    return (await query<{ n: number }>(clone, 'SELECT count(*)::int AS n FROM items'))[0]!.n;
  } finally {
    await query('postgres', `DROP DATABASE ${clone}`);
  }
}

describe('watchProject', () => {
  it('builds at start, then once for edits in quick succession', async () => {
    const w = await watched(schema);
    await w.until('built', 1);
    expect(w.events.slice(0, 3)).toEqual([
      { kind: 'watching', paths: ['db', 'dbfast.toml'], environments: [{ environment: null, template: w.templateName }] },
      { kind: 'building', environment: null, template: w.templateName },
      expect.objectContaining({ kind: 'built', template: w.templateName, files: 2, statements: 2 }),
    ]);

    for (const n of [3, 4, 5]) await writeFile(join(w.root, `db/1_seed/0${n}_more.sql`), `INSERT INTO items VALUES (${n}, 'more');`);
    await w.until('built', 2);
    await settle();
    expect(w.count('changed')).toBe(1);
    expect(w.count('built')).toBe(2);
    expect(w.events.find((event) => event.kind === 'changed')).toEqual({
      kind: 'changed',
      paths: ['db/1_seed/03_more.sql', 'db/1_seed/04_more.sql', 'db/1_seed/05_more.sql'],
    });
    expect(w.events.at(-1)).toMatchObject({ kind: 'built', files: 5 });
    expect(await rowsInTemplate(w.templateName)).toBe(5);
  });

  it('ignores dotfiles, editor backups and the state folder, even inside the repository', async () => {
    const w = await watched(schema, {}, '', (root) => ({ DBFAST_STATE_DIR: join(root, 'db/state') }));
    await w.until('built', 1);
    await writeFiles(w.root, { 'db/.DS_Store': 'x', 'db/1_seed/01_items.sql~': 'x', 'db/1_seed/#01_items.sql#': 'x', 'db/1_seed/4913': '' });
    await settle();
    expect(w.events.map((event) => event.kind)).toEqual(['watching', 'building', 'built']);
  });

  it('reports a broken edit with its file and line, keeps the last good template, and rebuilds once fixed', async () => {
    const w = await watched(schema);
    await w.until('built', 1);
    const good = (await w.project.check()).template!;

    await writeFiles(w.root, { 'db/1_seed/02_bad.sql': "INSERT INTO items VALUES (3, 'three');\nINSERT INTO items VALUES (4, 'four'" });
    await w.until('failed', 1);
    expect(w.events.at(-1)).toMatchObject({
      kind: 'failed',
      template: w.templateName,
      error: { code: 'SQL_FAILED', file: 'db/1_seed/02_bad.sql', line: 2 },
    });
    expect((await w.project.check()).template).toMatchObject({ builtAt: good.builtAt, fingerprint: good.fingerprint });
    expect(await rowsInTemplate(w.templateName)).toBe(2);
    expect(await scratchDatabases(w.templateName)).toEqual([]);

    await writeFiles(w.root, { 'db/1_seed/02_bad.sql': "INSERT INTO items VALUES (3, 'three');\nINSERT INTO items VALUES (4, 'four');" });
    await w.until('built', 2);
    expect(await rowsInTemplate(w.templateName)).toBe(4);
  });

  it('builds exactly once more after changes made during a build, with every change', async () => {
    const w = await watched(schema);
    await w.until('built', 1);
    // Holding the template's lock keeps the next build running (waiting for it) for as long as the test needs.
    const holder = new pg.Client(testClientConfig());
    await holder.connect();
    cleanups.push(() => holder.end());
    await holder.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [lockKeys.template(w.templateName)]);

    await writeFiles(w.root, { 'db/1_seed/03_a.sql': "INSERT INTO items VALUES (3, 'a');" });
    await w.until('building', 2);
    await untilBackend(`wait_event_type = 'Lock' AND query LIKE '%pg_advisory_lock%'`);
    await writeFiles(w.root, { 'db/1_seed/04_b.sql': "INSERT INTO items VALUES (4, 'b');" });
    await w.until('changed', 2);
    await writeFiles(w.root, { 'db/1_seed/05_c.sql': "INSERT INTO items VALUES (5, 'c');" });
    await w.until('changed', 3);
    expect(w.count('building')).toBe(2);

    await holder.query('SELECT pg_advisory_unlock_all()');
    await w.until('built', 3);
    await settle();
    expect(w.events.filter((event) => event.kind === 'built').map((event) => event.kind === 'built' && event.files)).toEqual([2, 3, 5]);
    expect(w.count('building')).toBe(3);
    expect(await rowsInTemplate(w.templateName)).toBe(5);
  });

  it('close() cancels a running build and drops its scratch database', async () => {
    const w = await watched({ ...schema, 'db/1_seed/02_slow.sql': 'SELECT pg_sleep(20);' });
    await untilBackend(`query LIKE '%pg_sleep(20)%' AND state = 'active'`);
    expect(await scratchDatabases(w.templateName)).toHaveLength(1);
    await w.watcher.close();
    expect(await scratchDatabases(w.templateName)).toEqual([]);
    expect(await query('postgres', `SELECT 1 FROM pg_database WHERE datname = '${w.templateName}'`)).toEqual([]);
    await untilBackend(`query LIKE '%pg_sleep(20)%'`, { gone: true });
    expect(w.events.map((event) => event.kind)).toEqual(['watching', 'building']);
  });

  it('reads dbfast.toml again when it changes, and waits for a broken one to be fixed', async () => {
    const w = await watched(schema);
    await w.until('built', 1);
    const toml = join(w.root, 'dbfast.toml');
    const good = `[database]\ntemplate_name = "${w.templateName}"\n[repository]\nexclude_patterns = ["1_seed/**"]\n`;

    await writeFile(toml, `${good}[performance]\nnot_a_setting = 1\nbuild_timeout_ms = "x"\n`);
    await w.until('failed', 1);
    expect(w.events.at(-1)).toMatchObject({ kind: 'failed', error: { code: 'CONFIG_INVALID' } });
    expect(w.events.at(-1)).not.toHaveProperty('template');

    await writeFile(toml, good);
    await w.until('built', 2);
    expect(w.events.slice(-5).map((event) => event.kind)).toEqual(['changed', 'reloaded', 'watching', 'building', 'built']);
    expect(w.events.at(-1)).toMatchObject({ kind: 'built', files: 1 });
  });

  it('watches the own environment and those already built, or the ones it is given', async () => {
    const environments = '[environments.a]\n[environments.b]\n[environments.c]\n';
    const { project } = await makeProject(schema, environments);
    /** The environments a new watcher watches (it is closed again at once). */
    const watchedBy = async (of: Project, options: WatchOptions = {}) => {
      const events: WatchEvent[] = [];
      await (await watchProject(of, { ...options, onEvent: (event) => events.push(event) })).close();
      return events[0]?.kind === 'watching' ? events[0].environments.map((watched) => watched.environment) : events;
    };
    await expect(watchProject(project)).rejects.toMatchObject({ code: 'ENVIRONMENT_REQUIRED' });
    await project.withEnvironment('b').build();
    expect(await watchedBy(project)).toEqual(['b']);
    expect(await watchedBy(project, { environments: ['c'] })).toEqual(['c']);
    await expect(watchProject(project, { environments: ['nope'] })).rejects.toMatchObject({ code: 'USAGE' });

    const withDefault = await makeProject(schema, `default_environment = "c"\n${environments}`);
    await withDefault.project.withEnvironment('a').build();
    expect(await watchedBy(withDefault.project)).toEqual(['a', 'c']);
  });
});
