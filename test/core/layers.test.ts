import { randomBytes } from 'node:crypto';
import { cp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { Project } from '../../src/core/project.js';
import { catalogSnapshot } from '../helpers/catalog.js';
import { dropTemplateAndClones } from '../helpers/cli.js';
import { query, queryUrl } from '../helpers/database.js';
import { tempRepo, writeFiles } from '../helpers/repo.js';

const serverUrl = () => `postgresql://postgres@127.0.0.1:${inject('serverPort')}/postgres`;
const templates: string[] = [];

afterAll(async () => {
  for (const name of templates) await dropTemplateAndClones(name);
});

const files = {
  '0_schema/01_tables.sql': `
    CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL, role text);
    CREATE TABLE posts (id serial PRIMARY KEY, user_id int REFERENCES users, title text);
    CREATE INDEX posts_user ON posts (user_id);
    CREATE FUNCTION slug(t text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT lower(replace(t, ' ', '-')) $$;
    -- A database property the files set: a checkpoint must carry it to the build that starts from it.
    DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET app.mode = %L', current_database(), 'layered'); END $$;`,
  '0_schema/02_views.sql': 'CREATE VIEW user_posts AS SELECT u.name, p.title FROM users u JOIN posts p ON p.user_id = u.id;',
  '1_seed_common/01_users.sql': "INSERT INTO users (name) SELECT 'user ' || g FROM generate_series(1, 50) g;\n\\i ../shared/roles.sql",
  '2_seed_backend/01_posts.sql': "INSERT INTO posts (user_id, title) SELECT id, 'post of ' || name FROM users;",
  'shared/roles.sql': "UPDATE users SET role = 'member';",
};

async function makeProject(extraToml = '', root?: string) {
  const templateName = `l_${randomBytes(4).toString('hex')}`;
  templates.push(templateName);
  const toml = `[database]\ntemplate_name = "${templateName}"\n[repository]\nexclude_patterns = ["shared/**"]\n[performance]\npool_size = 0\n${extraToml}`;
  const dir = root ?? (await tempRepo(Object.fromEntries(Object.entries(files).map(([path, content]) => [`db/${path}`, content]))));
  await writeFiles(dir, { 'dbfast.toml': toml });
  const project = await Project.open({ cwd: dir, env: { DBFAST_DATABASE_URL: serverUrl() } });
  return { project, root: dir, templateName };
}

/** Builds, recording the files the build ran. */
async function build(project: Project, options: { force?: boolean } = {}) {
  const ran: string[] = [];
  const result = await project.build({ ...options, onFileStart: (file) => ran.push(file.relativePath) });
  return { ...result, ran };
}

async function snapshotOf(project: Project) {
  const { database, url } = await project.seed({ refill: false });
  const [setting] = await queryUrl(url, "SELECT current_setting('app.mode', true) AS mode");
  return { catalog: await catalogSnapshot(database), setting };
}

async function checkpoints(templateName: string) {
  const rows = await query<{ datname: string }>('postgres', `SELECT datname FROM pg_database WHERE datname LIKE '${templateName}\\_\\_c%' ORDER BY 1`);
  return rows.map((row) => row.datname);
}

describe('layered incremental rebuilds', () => {
  it('an edit in the last layer runs only that layer, and the result equals a full build', async () => {
    const { project, root, templateName } = await makeProject();
    const first = await build(project);
    expect(first.reusedLayers).toEqual([]);
    expect(first.ran).toHaveLength(4);
    expect(await checkpoints(templateName)).toEqual([`${templateName}__c0`, `${templateName}__c1`]);

    await writeFiles(root, { 'db/2_seed_backend/01_posts.sql': "INSERT INTO posts (user_id, title) SELECT id, 'draft by ' || name FROM users;" });
    const incremental = await build(project);
    expect(incremental).toMatchObject({ rebuilt: true, reusedLayers: ['0_schema', '1_seed_common'] });
    expect(incremental.ran).toEqual(['db/2_seed_backend/01_posts.sql']);
    expect(incremental.template).toMatchObject({ files: 4 });

    // The same files built from scratch, in another checkout, without checkpoints.
    const copy = await tempRepo({});
    await cp(join(root, 'db'), join(copy, 'db'), { recursive: true });
    const full = await makeProject('layer_checkpoints = false', copy);
    const fullBuild = await build(full.project);
    expect(fullBuild.ran).toHaveLength(4);
    expect(await checkpoints(full.templateName)).toEqual([]);

    const [a, b] = [await snapshotOf(project), await snapshotOf(full.project)];
    expect(a.catalog.tables.map((table) => table.rows)).toEqual([50, 50]);
    expect(a).toEqual(b);
    expect(a.setting).toEqual({ mode: 'layered' });
  });

  it('an edit in a middle layer reruns it and the later ones; an edit in the first layer reruns everything', async () => {
    const { project, root } = await makeProject();
    await build(project);
    await writeFiles(root, { 'db/1_seed_common/01_users.sql': "INSERT INTO users (name) SELECT 'member ' || g FROM generate_series(1, 5) g;" });
    const middle = await build(project);
    expect(middle.reusedLayers).toEqual(['0_schema']);
    expect(middle.ran).toEqual(['db/1_seed_common/01_users.sql', 'db/2_seed_backend/01_posts.sql']);

    await writeFiles(root, { 'db/0_schema/02_views.sql': 'CREATE VIEW user_posts AS SELECT p.title FROM posts p;' });
    const firstLayer = await build(project);
    expect(firstLayer.reusedLayers).toEqual([]);
    expect(firstLayer.ran).toHaveLength(4);
    const { url } = await project.seed({ refill: false });
    expect(await queryUrl(url, 'SELECT count(*)::int AS n FROM user_posts')).toEqual([{ n: 5 }]);
  });

  it('a changed included file invalidates the layer that included it, not the ones before', async () => {
    const { project, root } = await makeProject();
    await build(project);
    await writeFiles(root, { 'db/shared/roles.sql': "UPDATE users SET role = 'admin';" });
    const rebuilt = await build(project);
    expect(rebuilt.reusedLayers).toEqual(['0_schema']);
    const { url } = await project.seed({ refill: false });
    expect(await queryUrl(url, 'SELECT DISTINCT role FROM users')).toEqual([{ role: 'admin' }]);
    expect((await build(project)).rebuilt).toBe(false);
  });

  it('--force ignores the checkpoints; a failing layer keeps the checkpoints before it for the next build', async () => {
    const { project, root } = await makeProject();
    await build(project);
    expect((await build(project, { force: true })).reusedLayers).toEqual([]);

    await writeFiles(root, { 'db/2_seed_backend/01_posts.sql': 'INSERT INTO posts (user_id, title) VALUES (999, oops);' });
    await expect(project.build()).rejects.toMatchObject({ file: 'db/2_seed_backend/01_posts.sql', line: 1 });
    await writeFiles(root, { 'db/2_seed_backend/01_posts.sql': "INSERT INTO posts (user_id, title) VALUES (1, 'fixed');" });
    const fixed = await build(project);
    expect(fixed.reusedLayers).toEqual(['0_schema', '1_seed_common']);
  });

  it('a layer removed drops its checkpoint; turning checkpoints off drops them all', async () => {
    const { project, root, templateName } = await makeProject();
    await build(project);
    await rm(join(root, 'db/2_seed_backend'), { recursive: true });
    const fewer = await build(project);
    expect(fewer.reusedLayers).toEqual(['0_schema']);
    expect(await checkpoints(templateName)).toEqual([`${templateName}__c0`]);

    await writeFiles(root, { 'db/1_seed_common/02_more.sql': "INSERT INTO users (name) VALUES ('late');" });
    const toml = `[database]\ntemplate_name = "${templateName}"\n[repository]\nexclude_patterns = ["shared/**"]\n[performance]\nlayer_checkpoints = false\n`;
    await writeFiles(root, { 'dbfast.toml': toml });
    const off = await Project.open({ cwd: root, env: { DBFAST_DATABASE_URL: serverUrl() } });
    expect((await off.build()).reusedLayers).toEqual([]);
    expect(await checkpoints(templateName)).toEqual([]);
  });

  it('with [[repositories]], a layer is a top-level folder of one repository', async () => {
    const templateName = `l_${randomBytes(4).toString('hex')}`;
    templates.push(templateName);
    const root = await tempRepo({
      'dbfast.toml': `[database]\ntemplate_name = "${templateName}"\n[performance]\npool_size = 0\n\n[[repositories]]\nname = "shared"\npath = "schema"\n\n[[repositories]]\nname = "app"\npath = "db"\n`,
      'schema/0_schema/01.sql': 'CREATE TABLE accounts (id int);',
      'schema/1_seed/01.sql': 'INSERT INTO accounts VALUES (1);',
      'db/0_schema/01.sql': 'CREATE TABLE orders (account int);',
      'db/1_seed/01.sql': 'INSERT INTO orders SELECT id FROM accounts;',
    });
    const project = await Project.open({ cwd: root, env: { DBFAST_DATABASE_URL: serverUrl() } });
    expect((await project.scan()).layers.map((layer) => layer.name)).toEqual(['shared/0_schema', 'shared/1_seed', 'app/0_schema', 'app/1_seed']);
    await build(project);
    await writeFiles(root, { 'db/1_seed/01.sql': 'INSERT INTO orders SELECT id + 1 FROM accounts;' });
    const rebuilt = await build(project);
    expect(rebuilt.reusedLayers).toEqual(['shared/0_schema', 'shared/1_seed', 'app/0_schema']);
    expect(rebuilt.ran).toEqual(['app/1_seed/01.sql']);
  });
});
