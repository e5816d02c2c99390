import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/core/config/index.js';
import { compareSchemas, describeSchema, remoteDrift, type SchemaDescription } from '../../src/core/drift.js';
import { dropTemplateAndClones, runCli, testServerUrl, uniqueName } from '../helpers/cli.js';
import { query, testClientConfig } from '../helpers/database.js';
import { findPsql, runPsqlFile } from '../helpers/psql.js';
import { tempRepo } from '../helpers/repo.js';

const PAGILA = new URL('../../../shared/corpus/pagila/', import.meta.url).pathname;
const run = randomBytes(3).toString('hex');
const made: string[] = [];
const folders: string[] = [];
const templates: string[] = [];

async function database(label: string, sql = ''): Promise<string> {
  const name = `drift_${label}_${run}`;
  made.push(name);
  await query('postgres', `CREATE DATABASE ${name}`);
  if (sql) await query(name, sql);
  return name;
}

async function describe_(name: string, searchPath?: string): Promise<SchemaDescription> {
  const client = new pg.Client(testClientConfig(name));
  await client.connect();
  try {
    if (searchPath !== undefined) await client.query(`SET search_path = ${searchPath}`);
    return await describeSchema(client);
  } finally {
    await client.end();
  }
}

afterAll(async () => {
  for (const name of made) await query('postgres', `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  for (const template of templates) await dropTemplateAndClones(template);
  for (const folder of folders) await rm(folder, { recursive: true, force: true });
});

const SCHEMA = `
CREATE EXTENSION citext;
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN email AS citext CHECK (VALUE LIKE '%@%');
CREATE TABLE users (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, address email NOT NULL UNIQUE, feeling mood DEFAULT 'ok', name text COLLATE "C");
CREATE TABLE posts (id serial PRIMARY KEY, user_id int REFERENCES users ON DELETE CASCADE, body text, created timestamptz DEFAULT now());
CREATE INDEX posts_user ON posts (user_id);
CREATE VIEW recent AS SELECT id, user_id, body, created FROM posts WHERE created > now() - interval '1 day';
CREATE FUNCTION shout(t text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT upper(t) $$;
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.created := now(); RETURN NEW; END $$;
CREATE TRIGGER posts_touch BEFORE UPDATE ON posts FOR EACH ROW EXECUTE FUNCTION touch();
CREATE SCHEMA dbfast; CREATE TABLE dbfast.applied_files (path text);
`;

describe('describeSchema and compareSchemas', () => {
  it('two databases built alike describe alike, whatever the column order ALTER TABLE ADD left', async () => {
    const first = await database('a', SCHEMA);
    const reordered = SCHEMA.replace(
      'CREATE TABLE posts (id serial PRIMARY KEY, user_id int REFERENCES users ON DELETE CASCADE, body text, created timestamptz DEFAULT now());',
      'CREATE TABLE posts (body text, id serial PRIMARY KEY); ALTER TABLE posts ADD created timestamptz DEFAULT now(); ALTER TABLE posts ADD user_id int REFERENCES users ON DELETE CASCADE;',
    );
    const second = await database('b', reordered);
    const expected = await describe_(first);
    expect(compareSchemas(expected, await describe_(second))).toEqual([]);
    // Whatever the session's search_path: names are printed schema-qualified.
    expect(compareSchemas(expected, await describe_(second, 'pg_catalog'))).toEqual([]);
    expect(expected.get('constraint public.posts.posts_user_id_fkey')).toBe('FOREIGN KEY (user_id) REFERENCES public.users(id) ON DELETE CASCADE');
    // What is described, and what is not: extension members and dbfast's own schema.
    expect(expected.get('column public.users.address')).toBe('public.email not null');
    expect(expected.get('column public.users.name')).toBe('text collate "C"');
    expect(expected.get('type public.mood')).toBe("enum ('sad', 'ok', 'happy')");
    expect(expected.get('extension citext')).toBe('in public');
    expect(expected.get('index public.posts_user')).toBe('CREATE INDEX posts_user ON public.posts USING btree (user_id)');
    expect([...expected.keys()].some((key) => key.includes('citext('))).toBe(false);
    expect([...expected.keys()].some((key) => key.includes('dbfast'))).toBe(false);
  });

  it('names every difference: missing, extra and changed objects of each kind', async () => {
    const first = await database('c', SCHEMA);
    const second = await database(
      'd',
      `${SCHEMA}
      DROP VIEW recent; ALTER TABLE posts ALTER body TYPE varchar(500); ALTER TABLE posts ADD flagged bool; DROP INDEX posts_user;
      CREATE OR REPLACE FUNCTION shout(t text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT upper(t) || '!' $$;
      CREATE TABLE notes (id int); ALTER TYPE mood ADD VALUE 'angry'; DROP TRIGGER posts_touch ON posts;`,
    );
    const differences = compareSchemas(await describe_(first), await describe_(second));
    expect(differences.map(({ object, change }) => `${change} ${object}`)).toEqual([
      'extra column public.notes.id',
      'differs column public.posts.body',
      'extra column public.posts.flagged',
      'missing column public.recent.body',
      'missing column public.recent.created',
      'missing column public.recent.id',
      'missing column public.recent.user_id',
      'differs function public.shout(t text)',
      'missing index public.posts_user',
      'extra table public.notes',
      'missing trigger public.posts.posts_touch',
      'differs type public.mood',
      'missing view public.recent',
    ]);
    expect(differences[1]).toEqual({ object: 'column public.posts.body', change: 'differs', expected: 'text', actual: 'character varying(500)' });
  });

  it('Pagila loaded by psql and the same database through pg_dump and pg_restore describe alike', async () => {
    const loaded = await database('pagila');
    const { path: psql } = await findPsql();
    await runPsqlFile(psql, join(PAGILA, '0_schema/pagila-schema.sql'), loaded);
    await runPsqlFile(psql, join(PAGILA, '1_seed/pagila-data.sql'), loaded);
    const copy = `drift_pagila_copy_${run}`;
    made.push(copy);
    await query('postgres', `CREATE DATABASE ${copy} TEMPLATE ${loaded}`);
    const expected = await describe_(loaded);
    expect(expected.size).toBeGreaterThan(300);
    expect(compareSchemas(expected, await describe_(copy))).toEqual([]);
  });
});

describe('remoteDrift and dbfast diff', () => {
  let root: string;
  let remoteDb: string;
  let template: string;

  beforeAll(async () => {
    template = uniqueName('drift');
    templates.push(template);
    remoteDb = await database('remote');
    root = await tempRepo({
      'dbfast.toml': `[database]\nurl = "${testServerUrl()}"\ntemplate_name = "${template}"\n[environments.staging]\n[remotes.staging]\nurl = "${testServerUrl(undefined, remoteDb)}"\nenvironment = "staging"\n`,
      'db/0_schema/01_tables.sql': 'CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);\nCREATE INDEX items_name ON items (name);\n',
      'db/1_seed/01_items.sql': "INSERT INTO items VALUES (1, 'one');\n",
    });
    folders.push(root);
    // The remote was deployed by hand with the same schema (and other data).
    await query(remoteDb, 'CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL); CREATE INDEX items_name ON items (name); INSERT INTO items VALUES (7, \'seven\')');
  });

  it('finds no drift where the remote has the template\'s schema, and names what someone changed by hand', async () => {
    const config = await loadConfig({ cwd: root, env: {} });
    const same = await remoteDrift(config, 'staging', { env: {} });
    expect(same).toMatchObject({ remote: 'staging', database: remoteDb, environment: 'staging', differences: [] });
    expect(same.template).toMatch(new RegExp(`^${template}`));
    const cli = await runCli(['diff', 'staging'], { cwd: root });
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stderr).toContain(`no drift: staging/${remoteDb} with template ${same.template} (environment staging)`);

    await query(remoteDb, 'ALTER TABLE items ADD note text; DROP INDEX items_name');
    const changed = await runCli(['diff', 'staging'], { cwd: root });
    expect(changed.code).toBe(1);
    expect(changed.stdout.split('\n')).toEqual([
      '+ column public.items.note  text',
      '- index public.items_name  CREATE INDEX items_name ON public.items USING btree (name)',
      '',
    ]);
    expect(changed.stderr).toContain('drift: 2 differences between');
    const json = await runCli(['diff', 'staging', '--json'], { cwd: root });
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout).differences).toHaveLength(2);
    // Nothing is left behind of the template's described clone.
    expect(await query('postgres', `SELECT datname FROM pg_database WHERE datname LIKE '%dbfast\\_describe%'`)).toEqual([]);
  });
});
