import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { Project } from '../../src/core/project.js';
import { dropTemplateAndClones } from '../helpers/cli.js';
import { query } from '../helpers/database.js';
import { tempRepo, writeFiles } from '../helpers/repo.js';
import pg from 'pg';

const serverUrl = (user = 'postgres') => `postgresql://${user}@127.0.0.1:${inject('serverPort')}/postgres`;
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const hex = () => randomBytes(4).toString('hex');

/** A project over `files` (under db/), connecting as `user`; its template, clones and folder go away after the test. */
async function makeProject(files: Record<string, string>, user = 'postgres', extraToml = '') {
  const templateName = `p_${hex()}`;
  const root = await tempRepo({
    'dbfast.toml': `[database]\ntemplate_name = "${templateName}"\n${extraToml}`,
    ...Object.fromEntries(Object.entries(files).map(([path, content]) => [`db/${path}`, content])),
  });
  const project = await Project.open({ cwd: root, env: { DBFAST_DATABASE_URL: serverUrl(user) } });
  cleanups.push(async () => {
    await project.close();
    await dropTemplateAndClones(templateName);
  });
  return { project, templateName, root };
}

/** Server-wide roles for one test, dropped after its databases. */
async function makeRoles(...options: string[]): Promise<string[]> {
  const names = options.map(() => `r_${hex()}`);
  for (const [index, name] of names.entries()) await query('postgres', `CREATE ROLE ${name} ${options[index]}`);
  cleanups.unshift(async () => {
    for (const name of names) await query('postgres', `DROP ROLE IF EXISTS ${name}`);
  });
  return names;
}

/** What the files can set on a database, read from the catalogs, without dbfast's own metadata. */
interface Properties {
  owner: string;
  connection_limit: number;
  comment: string | null;
  acl: string[] | null;
  settings: string[] | null;
}

async function properties(database: string): Promise<Properties> {
  const [row] = await query<Properties>(
    'postgres',
    `SELECT pg_get_userbyid(d.datdba) AS owner, d.datconnlimit AS connection_limit, shobj_description(d.oid, 'pg_database') AS comment,
            (SELECT array_agg(x ORDER BY x COLLATE "C") FROM (
               SELECT format('%s %s %s %s', pg_get_userbyid(a.grantor), CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END,
                             a.privilege_type, a.is_grantable) AS x FROM aclexplode(d.datacl) a) acl) AS acl,
            (SELECT array_agg(x ORDER BY x COLLATE "C") FROM (
               SELECT format('%s %s', coalesce(pg_get_userbyid(nullif(s.setrole, 0)), '*'), c) AS x
                 FROM pg_db_role_setting s, unnest(s.setconfig) c WHERE s.setdatabase = d.oid AND c NOT LIKE 'dbfast.metadata=%') settings) AS settings
       FROM pg_database d WHERE d.datname = '${database}'`,
  );
  return { ...row!, acl: row!.acl?.sort() ?? null, settings: row!.settings?.sort() ?? null };
}

/** Values a new session on `database` starts with, connecting as `user`. */
async function sessionDefaults(database: string, user = 'postgres') {
  const client = new pg.Client({ host: '127.0.0.1', port: inject('serverPort'), user, database });
  await client.connect();
  try {
    const { rows } = await client.query(
      `SELECT current_setting('search_path') AS search_path, current_setting('request.jwt.claim.id', true) AS claim,
              current_setting('work_mem') AS work_mem`,
    );
    return rows[0];
  } finally {
    await client.end();
  }
}

describe('database properties', () => {
  it('gives every clone the settings, comment, owner, connection limit and privileges the files gave the template', async () => {
    const [app, owner] = await makeRoles('LOGIN', 'NOLOGIN');
    const { project, templateName } = await makeProject({
      '0_schema/01_database.sql': `
        CREATE SCHEMA app;
        ALTER DATABASE :"DBNAME" SET search_path = app, "$user", public;
        ALTER DATABASE :"DBNAME" SET request.jwt.claim.id = '-1';
        ALTER ROLE ${app} IN DATABASE :"DBNAME" SET work_mem = '8MB';
        COMMENT ON DATABASE :"DBNAME" IS 'the app''s database';
        ALTER DATABASE :"DBNAME" CONNECTION LIMIT 42;
        REVOKE ALL ON DATABASE :"DBNAME" FROM PUBLIC;
        GRANT CONNECT ON DATABASE :"DBNAME" TO ${app};
        ALTER DATABASE :"DBNAME" OWNER TO ${owner};
        CREATE TABLE app.built AS SELECT current_setting('search_path') AS search_path;`,
      '0_schema/02_next.sql': 'CREATE TABLE app.items (id int);',
    });
    const { database } = await project.seed();
    const [{ work_mem }] = (await query<{ work_mem: string }>('postgres', `SELECT current_setting('work_mem') AS work_mem`)) as [{ work_mem: string }];
    const built = await properties(templateName);
    expect(built).toEqual({
      owner,
      connection_limit: 42,
      comment: "the app's database",
      acl: [`${owner} ${app} CONNECT f`, `${owner} ${owner} CONNECT f`, `${owner} ${owner} CREATE f`, `${owner} ${owner} TEMPORARY f`].sort(),
      settings: ['* request.jwt.claim.id=-1', '* search_path=app, "$user", public', `${app} work_mem=8MB`].sort(),
    });
    expect(await properties(database)).toEqual(built);
    expect(await sessionDefaults(database)).toEqual({ search_path: 'app, "$user", public', claim: '-1', work_mem });
    expect(await sessionDefaults(database, app)).toEqual({ search_path: 'app, "$user", public', claim: '-1', work_mem: '8MB' });
    expect(await project.list()).toEqual([expect.objectContaining({ name: database, template: templateName })]);
  });

  it('leaves a clone with the defaults when the files set nothing', async () => {
    const { project, templateName } = await makeProject({ '0_schema/01.sql': 'CREATE TABLE t (id int);' });
    const { database } = await project.seed();
    const [postgres] = await query('postgres', 'SELECT current_user AS name');
    const defaults = { owner: postgres!.name, connection_limit: -1, comment: null, acl: null, settings: null };
    expect(await properties(templateName)).toEqual(defaults);
    expect(await properties(database)).toEqual(defaults);
  });

  it('drops the clone when a property cannot be copied', async () => {
    const { project, templateName } = await makeProject({ '0_schema/01.sql': 'CREATE TABLE t (id int);' });
    await project.build();
    // A value ALTER DATABASE SET refuses (the template's row exists: it holds dbfast's metadata).
    await query('postgres', `UPDATE pg_db_role_setting SET setconfig = setconfig || '{work_mem=not a size}'
                              WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = '${templateName}') AND setrole = 0`);
    const error = await project.seed().catch((caught) => caught);
    expect(error).toMatchObject({ code: 'SQL_FAILED', message: expect.stringContaining(`the properties of ${templateName}`) });
    expect(await project.list()).toEqual([]);
    expect(await query('postgres', `SELECT datname FROM pg_database WHERE datname LIKE '${templateName}\\_%'`)).toEqual([]);
  });

  it('makes the clone again when a rebuild swaps in a new template while the clone waits for a slot', async () => {
    const file = (version: string) => `COMMENT ON DATABASE :"DBNAME" IS '${version}';\nCREATE TABLE t AS SELECT '${version}' AS version;`;
    const { project, templateName, root } = await makeProject({ '0_schema/01.sql': file('v1') }, 'postgres', '[performance]\nmax_concurrent_clones = 1\n');
    await project.build();
    const holder = new pg.Client({ host: '127.0.0.1', port: inject('serverPort'), user: 'postgres', database: 'postgres' });
    await holder.connect();
    cleanups.push(() => holder.end());
    await holder.query(`SELECT pg_advisory_lock(hashtextextended('dbfast:clone-slot:0', 0))`);
    const pending = project.seed();
    // The seed has read the template's properties and now waits for the clone slot.
    while ((await query('postgres', `SELECT FROM pg_stat_activity WHERE query LIKE 'SELECT pg_try_advisory_lock%'`)).length === 0) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await writeFiles(root, { 'db/0_schema/01.sql': file('v2') });
    const rebuilder = await Project.open({ cwd: root, env: { DBFAST_DATABASE_URL: serverUrl() } });
    expect((await rebuilder.build()).rebuilt).toBe(true);
    await holder.query(`SELECT pg_advisory_unlock(hashtextextended('dbfast:clone-slot:0', 0))`);
    const { database } = await pending;
    expect(await query(database, 'SELECT version FROM t')).toEqual([{ version: 'v2' }]);
    expect((await properties(database)).comment).toBe('v2');
    expect((await properties(templateName)).comment).toBe('v2');
  });
});

describe('dbfast metadata', () => {
  it('keeps the comment of the files on the template and every clone', async () => {
    const { project, templateName } = await makeProject({ '0_schema/01.sql': `COMMENT ON DATABASE :"DBNAME" IS 'mine';` });
    const { database } = await project.seed();
    for (const name of [templateName, database]) {
      expect(await query('postgres', `SELECT shobj_description(oid, 'pg_database') AS comment FROM pg_database WHERE datname = '${name}'`)).toEqual([
        { comment: 'mine' },
      ]);
    }
    expect((await project.check()).fresh).toBe(true);
  });

  it('rebuilds a template of the previous version, whose metadata is in its comment, and still lists and drops its clones', async () => {
    const { project, templateName } = await makeProject({ '0_schema/01.sql': 'CREATE TABLE t (id int);' });
    const { database } = await project.seed();
    const legacy = (kind: string, extra: string) => `'{"dbfast":{"kind":"${kind}",${extra}}}'`;
    for (const [name, comment] of [
      [templateName, legacy('template', '"fingerprint":"old","builtAt":"2026-01-01T00:00:00.000Z","durationMs":1,"files":1,"statements":1,"rowsCopied":0')],
      [database, legacy('clone', `"template":"${templateName}","fingerprint":"old","createdAt":"2026-01-01T00:00:00.000Z"`)],
    ] as const) {
      await query('postgres', `ALTER DATABASE ${name} RESET "dbfast.metadata"`);
      await query('postgres', `COMMENT ON DATABASE ${name} IS ${comment}`);
    }
    expect(await project.list()).toEqual([expect.objectContaining({ name: database, fingerprint: 'old' })]);
    expect((await project.check()).template).toMatchObject({ fingerprint: 'old' });
    expect((await project.build()).rebuilt).toBe(true);
    const [row] = await query('postgres', `SELECT shobj_description(oid, 'pg_database') AS comment FROM pg_database WHERE datname = '${templateName}'`);
    expect(row).toEqual({ comment: null });
    await expect(project.drop(database)).resolves.toEqual([database]);
  });

  it('falls back to the comment for a role that may not set dbfast.metadata, and uses the setting once granted', async () => {
    const [builder] = await makeRoles('LOGIN CREATEDB');
    const place = async (database: string) =>
      (
        await query(
          'postgres',
          `SELECT EXISTS (SELECT FROM pg_db_role_setting s, unnest(s.setconfig) c WHERE s.setdatabase = d.oid AND c LIKE 'dbfast.metadata=%') AS setting,
                  shobj_description(d.oid, 'pg_database') LIKE '{"dbfast"%' AS comment
             FROM pg_database d WHERE datname = '${database}'`,
        )
      )[0];
    const { project, templateName } = await makeProject({ '0_schema/01.sql': 'CREATE TABLE t (id int);' }, builder);
    const first = await project.seed();
    expect(await place(templateName)).toEqual({ setting: false, comment: true });
    expect(await place(first.database)).toEqual({ setting: false, comment: true });

    await query('postgres', `GRANT SET ON PARAMETER dbfast.metadata TO ${builder}`);
    cleanups.push(() => query('postgres', `REVOKE SET ON PARAMETER dbfast.metadata FROM ${builder}`).then(() => {}));
    await project.build({ force: true });
    const second = await project.seed();
    expect(await place(templateName)).toEqual({ setting: true, comment: null });
    expect(await place(second.database)).toEqual({ setting: true, comment: null });
    expect((await project.list()).map((clone) => clone.name).sort()).toEqual([first.database, second.database].sort());
  });
});
