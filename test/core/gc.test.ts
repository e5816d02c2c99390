import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { listKept } from '../../src/core/kept.js';
import { withClient } from '../../src/core/pg/client.js';
import { lockKeys, withAdvisoryLock } from '../../src/core/pg/locks.js';
import { writeMetadataSql } from '../../src/core/pg/metadata.js';
import { Project } from '../../src/core/project.js';
import { readTemplate } from '../../src/core/template.js';
import { dropTemplateAndClones } from '../helpers/cli.js';
import { query, queryUrl } from '../helpers/database.js';
import { tempRepo, writeFiles } from '../helpers/repo.js';

const serverUrl = () => `postgresql://postgres@127.0.0.1:${inject('serverPort')}/postgres`;
const templates: string[] = [];

afterAll(async () => {
  for (const name of templates) await dropTemplateAndClones(name);
});

const SEED = (name: string) => `INSERT INTO items VALUES (1, '${name}');`;

/** `settings`: lines of [performance] and any tables after it, for the template's name. */
async function makeProject(settings: string | ((template: string) => string)) {
  const templateName = `g_${randomBytes(4).toString('hex')}`;
  templates.push(templateName);
  const warnings: string[] = [];
  const performance = typeof settings === 'string' ? settings : settings(templateName);
  const pool = /pool_size/.test(performance) ? '' : 'pool_size = 0\n';
  const root = await tempRepo({
    'dbfast.toml': `[database]\ntemplate_name = "${templateName}"\n[performance]\n${pool}${performance}\n`,
    'db/0_schema/01_tables.sql': 'CREATE TABLE items (id int PRIMARY KEY, name text);',
    'db/1_seed/01_items.sql': SEED('one'),
  });
  const opened = await Project.open({ cwd: root, env: { DBFAST_DATABASE_URL: serverUrl() }, onWarning: (message) => warnings.push(message) });
  const project = Object.keys(opened.config.environments).length > 0 ? opened.withEnvironment('main') : opened;
  /** Writes the seed file with `name` as the only row's name: one version of the files per name. */
  const files = (name: string) => writeFiles(root, { 'db/1_seed/01_items.sql': SEED(name) });
  return { project, root, templateName, warnings, files };
}

async function databases(template: string): Promise<string[]> {
  const rows = await query<{ datname: string }>('postgres', `SELECT datname FROM pg_database WHERE starts_with(datname, '${template}') ORDER BY datname`);
  return rows.map((row) => row.datname);
}

async function admin<T>(project: Project, work: (client: import('pg').Client) => Promise<T>): Promise<T> {
  return withClient(await project.server(), work);
}

/** Makes a clone look `hours` old, as if it had been made then. */
async function age(project: Project, clone: string, hours: number): Promise<void> {
  const { templateName } = project;
  const createdAt = new Date(Date.now() - hours * 3_600_000).toISOString();
  const template = await admin(project, (client) => readTemplate(client, templateName));
  await query('postgres', writeMetadataSql(clone, { kind: 'clone', template: templateName, fingerprint: template!.fingerprint, createdAt } as { kind: string }, 'setting'));
}

const names = (dropped: { name: string }[]) => dropped.map((database) => database.name);

describe('garbage collection', () => {
  it('drops the orphans of a killed build and filler, and checkpoints without a template; never a lookalike', async () => {
    const { project, templateName: t } = await makeProject('');
    await project.build();
    for (const name of [`${t}__b12345678`, `${t}__o1234abcd`, `${t}__p0badf00d`, `${t}__backup`]) await query('postgres', `CREATE DATABASE "${name}"`);

    const result = await project.gc();
    const sorted = [...result.dropped].sort((a, b) => a.name.localeCompare(b.name));
    expect(sorted.map(({ name, kind, reason }) => ({ name, kind, reason }))).toEqual([
      { name: `${t}__b12345678`, kind: 'orphan', reason: 'crashed run' },
      { name: `${t}__o1234abcd`, kind: 'orphan', reason: 'crashed run' },
      { name: `${t}__p0badf00d`, kind: 'orphan', reason: 'crashed run' },
    ]);
    for (const dropped of result.dropped) expect(dropped.sizeBytes).toBeGreaterThan(0);
    expect(await databases(t)).toEqual([t, `${t}__backup`, `${t}__c0`]);
    await query('postgres', `DROP DATABASE "${t}__backup"`);

    // A template dropped by hand leaves its checkpoint with nothing to rebuild.
    await query('postgres', `ALTER DATABASE "${t}" IS_TEMPLATE false`);
    await query('postgres', `DROP DATABASE "${t}"`);
    expect(names((await project.gc()).dropped)).toEqual([`${t}__c0`]);
    expect(await databases(t)).toEqual([]);
  });

  it('leaves a template alone while its build (or its pool refill) holds the lock, and says so', async () => {
    const { project, templateName: t } = await makeProject('');
    await project.build();
    await query('postgres', `CREATE DATABASE "${t}__b12345678"`);
    const during = await admin(project, (client) => withAdvisoryLock(client, lockKeys.template(t), () => project.gc()));
    expect(during).toMatchObject({ dropped: [], busy: [t] });
    expect(await databases(t)).toContain(`${t}__b12345678`);
    expect(names((await project.gc()).dropped)).toEqual([`${t}__b12345678`]);

    // A spare without metadata is a filler's copy in progress while the pool's lock is held.
    await query('postgres', `CREATE DATABASE "${t}__p0badf00d"`);
    const filling = await admin(project, (client) => withAdvisoryLock(client, lockKeys.pool(t), () => project.gc()));
    expect(filling).toMatchObject({ dropped: [], busy: [t] });
    expect(names((await project.gc()).dropped)).toEqual([`${t}__p0badf00d`]);
  });

  it('drops clones older than clone_ttl and keeps the others', async () => {
    const { project } = await makeProject('clone_ttl = "1h"');
    const old = await project.seed({ refill: false });
    const fresh = await project.seed({ refill: false });
    await age(project, old.database, 2);

    const result = await project.gc();
    expect(result.dropped).toMatchObject([{ name: old.database, kind: 'clone', reason: 'clone_ttl' }]);
    expect((await project.list()).map((clone) => clone.name)).toEqual([fresh.database]);
  });

  it('keep_templates = 1 keeps the previous template, apart from the template and clones, and drops the one before', async () => {
    const { project, templateName: t, files } = await makeProject('keep_templates = 1');
    await project.build();
    const first = await admin(project, (client) => readTemplate(client, t));
    await files('two');
    await project.build();
    const kept = await admin(project, (client) => listKept(client, t));
    expect(kept).toMatchObject([{ kind: 'kept', template: t, fingerprint: first!.fingerprint, builtAt: first!.builtAt }]);
    expect(kept[0]!.name).toMatch(new RegExp(`^${t}__k[0-9a-f]{8}$`));
    expect(await project.list()).toEqual([]);
    const seeded = await project.seed({ refill: false });
    expect(await queryUrl(seeded.url, 'SELECT name FROM items')).toEqual([{ name: 'two' }]);

    const second = await admin(project, (client) => readTemplate(client, t));
    await files('three');
    await project.build();
    expect(await admin(project, (client) => listKept(client, t))).toMatchObject([{ fingerprint: second!.fingerprint }]);
    expect(await databases(t)).not.toContain(kept[0]!.name);
    // Within keep_templates: nothing for the sweep.
    expect((await project.gc()).dropped).toEqual([]);
  });

  it('swaps a kept template back in, without running the files, when the files return to it', async () => {
    const { project, templateName: t, files } = await makeProject('keep_templates = 1');
    await project.build();
    const first = await admin(project, (client) => readTemplate(client, t));
    await files('two');
    await project.build();
    const second = await admin(project, (client) => readTemplate(client, t));

    await files('one');
    const back = await project.build();
    expect(back).toMatchObject({ rebuilt: true, restoredFrom: expect.stringMatching(new RegExp(`^${t}__k`)), template: { fingerprint: first!.fingerprint } });
    expect(back.stats).toBeUndefined();
    // The build it was, not a new one.
    expect(back.template.builtAt).toBe(first!.builtAt);
    expect(await admin(project, (client) => listKept(client, t))).toMatchObject([{ fingerprint: second!.fingerprint }]);
    const seeded = await project.seed({ refill: false });
    expect(seeded.rebuilt).toBe(false);
    expect(await queryUrl(seeded.url, 'SELECT name FROM items')).toEqual([{ name: 'one' }]);

    // --force always builds.
    expect((await project.build({ force: true })).restoredFrom).toBeUndefined();
  });

  it('does not swap back a kept template whose included file changed since', async () => {
    const { project, templateName: t, root } = await makeProject('keep_templates = 1');
    await writeFiles(root, { 'db/1_seed/01_items.sql': '\\i ../../inc/rows.sql\n', 'inc/rows.sql': SEED('one') });
    await project.build();
    await writeFiles(root, { 'db/1_seed/01_items.sql': `${SEED('two')}\n` });
    await project.build();
    await writeFiles(root, { 'db/1_seed/01_items.sql': '\\i ../../inc/rows.sql\n', 'inc/rows.sql': SEED('changed') });
    const back = await project.build();
    expect(back.restoredFrom).toBeUndefined();
    expect(back.stats?.files).toBeGreaterThan(0);
    const seeded = await project.seed({ refill: false });
    expect(await queryUrl(seeded.url, 'SELECT name FROM items')).toEqual([{ name: 'changed' }]);
    expect(await admin(project, (client) => listKept(client, t))).toHaveLength(1);
  });

  it('over max_disk drops kept templates, checkpoints, then spares; never the template or an unexpired clone; reports it', async () => {
    const { project, root, templateName: t, files } = await makeProject('keep_templates = 2\npool_size = 1');
    await project.build();
    await files('two');
    await project.build();
    const kept = await admin(project, (client) => listKept(client, t));
    expect(kept).toHaveLength(1);
    const clone = await project.seed({ refill: false });
    expect((await project.fillPool()).created).toHaveLength(1);
    await writeFiles(root, { 'dbfast.toml': `[database]\ntemplate_name = "${t}"\n[performance]\nkeep_templates = 2\npool_size = 1\nmax_disk = "1B"\n` });
    const limited = await project.reload();

    const dry = await limited.gc({ dryRun: true });
    const result = await limited.gc();
    expect(dry.dropped).toEqual(result.dropped);
    expect(result.dropped.map(({ kind, reason }) => `${kind} ${reason}`)).toEqual(['kept max_disk', 'checkpoint max_disk', 'spare max_disk']);
    expect(result.dropped[0]!.name).toBe(kept[0]!.name);
    expect(result).toMatchObject({ overBudget: true, maxDiskBytes: 1 });
    expect(result.usedBytes).toBeGreaterThan(0);
    expect(await databases(t)).toEqual([t, clone.database]);
    expect((await limited.list()).map((listed) => listed.name)).toEqual([clone.database]);
  });

  it('a build over max_disk warns through onWarning, and succeeds', async () => {
    const { project, warnings } = await makeProject('max_disk = "1B"');
    expect((await project.build()).rebuilt).toBe(true);
    expect(warnings).toEqual([expect.stringMatching(/^dbfast's databases use .+, more than max_disk \(1 B\)/)]);
  });

  it('a sweep that fails after a build is a warning, never the build\'s failure', async () => {
    const { project, warnings } = await makeProject('');
    Object.assign(project, {
      gcPolicy: () => {
        throw new Error('boom');
      },
    });
    expect((await project.build()).rebuilt).toBe(true);
    expect(warnings).toEqual(['garbage collection after the build failed: boom']);
  });

  it('a dry run drops nothing', async () => {
    const { project, templateName: t } = await makeProject('clone_ttl = "1h"\nkeep_templates = 1');
    await project.build();
    const old = await project.seed({ refill: false });
    await age(project, old.database, 2);
    await query('postgres', `CREATE DATABASE "${t}__b12345678"`);
    const before = await databases(t);

    const dry = await project.gc({ dryRun: true });
    expect(dry.dryRun).toBe(true);
    expect(names(dry.dropped).sort()).toEqual([`${t}__b12345678`, old.database].sort());
    expect(await databases(t)).toEqual(before);
  });

  it('runs after each build that rebuilt, for every environment', async () => {
    const other = (t: string) => `${t}_x`;
    const { project, templateName: t, files } = await makeProject(
      (t) => `clone_ttl = "1h"\n[environments.main]\ntemplate_name = "${t}"\n[environments.other]\ntemplate_name = "${other(t)}"`,
    );
    templates.push(other(t));
    await project.build();
    const old = await project.seed({ refill: false });
    await age(project, old.database, 2);
    // An orphan of the other environment's template, whose build is not running.
    await query('postgres', `CREATE DATABASE "${other(t)}__o1234abcd"`);

    // Nothing rebuilt: no sweep.
    expect((await project.build()).rebuilt).toBe(false);
    expect(await project.list()).toHaveLength(1);
    await files('two');
    expect((await project.build()).rebuilt).toBe(true);
    expect(await project.list()).toEqual([]);
    expect(await databases(other(t))).toEqual([]);
  });
});
