import { randomBytes } from 'node:crypto';
import { readdir, readFile, rm, stat, truncate, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CopyRowCounter, parseQualifiedName, readArchive, summarizeToc } from '../../src/core/backup/archive.js';
import { createBackup, locateSource, programFor } from '../../src/core/backup/create.js';
import { pruneBackups, selectForPrune } from '../../src/core/backup/prune.js';
import { withScratchName } from '../../src/core/backup/load.js';
import { replaceDatabase, restoreBackup } from '../../src/core/backup/restore.js';
import { DbfastError } from '../../src/core/errors.js';
import { type Backup, archivePath, listBackups } from '../../src/core/backup/store.js';
import { verifyBackup } from '../../src/core/backup/verify.js';
import { type DbfastConfig, loadConfig } from '../../src/core/config/index.js';
import { findProgram } from '../../src/core/tools.js';
import { testServerUrl } from '../helpers/cli.js';
import { query, testClientConfig } from '../helpers/database.js';
import { hasPgTools } from '../helpers/pg-tools.js';
import { findPsql, runPsqlFile } from '../helpers/psql.js';
import { tempRepo } from '../helpers/repo.js';
import { failure } from '../helpers/failure.js';

const PAGILA = new URL('../../../shared/corpus/pagila/', import.meta.url).pathname;
const run = randomBytes(3).toString('hex');
const made: string[] = [];
const folders: string[] = [];

/** A database name for this run, dropped (with everything a restore left beside it) after the file. */
function dbName(label: string): string {
  const name = `bk_${label}_${run}`;
  made.push(name);
  return name;
}

async function sql(database: string, text: string) {
  return query(database, text);
}

/** Every table's rows, as one md5 per table: equal digests mean equal content. */
async function digests(database: string): Promise<Record<string, string>> {
  const tables = await sql(
    database,
    `SELECT format('%I.%I', n.nspname, c.relname) AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' ORDER BY 1`,
  );
  const result: Record<string, string> = {};
  for (const { name } of tables) {
    const [row] = await sql(database, `SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '') AS d FROM ONLY ${name} t`);
    result[name] = row!.d;
  }
  return result;
}

async function databasesLike(pattern: string): Promise<string[]> {
  return (await sql('postgres', `SELECT datname FROM pg_database WHERE datname LIKE '${pattern}' ORDER BY 1`)).map((row) => row.datname);
}

async function projectConfig(extraToml = ''): Promise<DbfastConfig> {
  const root = await tempRepo({ 'dbfast.toml': `[database]\nurl = "${testServerUrl()}"\n${extraToml}`, 'db/0_schema/01.sql': 'SELECT 1;' });
  folders.push(root);
  return loadConfig({ cwd: root, env: {} });
}

async function smallDatabase(label: string, extra = ''): Promise<string> {
  const name = dbName(label);
  await sql('postgres', `CREATE DATABASE ${name}`);
  await sql(name, `CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 500) g; ${extra}`);
  return name;
}

afterAll(async () => {
  for (const name of made) {
    for (const datname of await databasesLike(`${name}%`)) {
      await sql('postgres', `DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
    }
  }
  for (const role of await sql('postgres', `SELECT rolname FROM pg_roles WHERE rolname LIKE 'bk\\_%${run}'`)) {
    await sql('postgres', `DROP ROLE IF EXISTS "${role.rolname}"`);
  }
  for (const folder of folders) await rm(folder, { recursive: true, force: true });
});

describe('reading archives', () => {
  it('counts the rows of each table\'s COPY block, across chunk boundaries and quoted names, not a COPY in a function body', () => {
    const output = Buffer.from(
      [
        'SET x = 1;',
        'CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN',
        'COPY public.not_data (id) FROM stdin;',
        'END $$;',
        '-- Data for Name: actor; Type: TABLE DATA; Schema: public; Owner: postgres',
        'COPY public.actor (id, name) FROM stdin;',
        '1\tPenelope',
        '2\tNick\\nwith an escaped newline',
        '\\.',
        '-- Data for Name: odd "name".x; Type: TABLE DATA; Schema: my schema; Owner: postgres',
        'COPY "my schema"."odd ""name"".x" (id) FROM stdin;',
        '\\.',
        '-- Data for Name: bıgınt; Type: TABLE DATA; Schema: public; Owner: postgres',
        'COPY public."bıgınt" (id) FROM stdin;',
        '7',
        '\\.',
        'CREATE VIEW v AS SELECT 1;',
        '',
      ].join('\n'),
    );
    const counter = new CopyRowCounter();
    // One byte at a time: every line is cut somewhere.
    for (let at = 0; at < output.length; at++) counter.push(output.subarray(at, at + 1));
    expect(counter.finish()).toEqual([
      { schema: 'public', table: 'actor', rows: 2 },
      { schema: 'my schema', table: 'odd "name".x', rows: 0 },
      { schema: 'public', table: 'bıgınt', rows: 1 },
    ]);
  });

  it('a COPY block without its \\. line is a corrupt archive', () => {
    const counter = new CopyRowCounter();
    counter.push(Buffer.from('-- Data for Name: t; Type: TABLE DATA; Schema: public; Owner: me\nCOPY public.t (a) FROM stdin;\n1\n2\n'));
    expect(() => counter.finish()).toThrow(/public\.t ends without its \\\. line/);
  });

  it('parses qualified names as pg_dump writes them, and refuses anything else', () => {
    expect(parseQualifiedName('COPY a.b (x)', 5)).toEqual({ schema: 'a', table: 'b' });
    expect(parseQualifiedName('COPY "a.b"."c ""d""" (x)', 5)).toEqual({ schema: 'a.b', table: 'c "d"' });
    expect(parseQualifiedName('COPY ab (x)', 5)).toBeNull();
    expect(parseQualifiedName('COPY "a.b (x)', 5)).toBeNull();
  });

  it('counts the table of contents by kind, not taking TABLE DATA for TABLE', () => {
    const listing = [
      ';',
      '; Archive created at 2026-11-26',
      '5; 2615 2200 SCHEMA - public postgres',
      '215; 1259 16410 TABLE public actor postgres',
      '216; 1259 16411 FOREIGN TABLE public remote_actor postgres',
      '3590; 0 16410 TABLE DATA public actor postgres',
      '214; 1259 16409 SEQUENCE public actor_actor_id_seq postgres',
      '3600; 0 0 SEQUENCE SET public actor_actor_id_seq postgres',
      '230; 1259 16500 VIEW public actor_info postgres',
      '231; 1259 16501 MATERIALIZED VIEW public rental_by_category postgres',
      '3610; 0 16501 MATERIALIZED VIEW DATA public rental_by_category postgres',
      '250; 1255 16600 FUNCTION public film_in_stock(integer, integer) postgres',
      '251; 1255 16601 AGGREGATE public group_concat(text) postgres',
      '252; 1255 16602 PROCEDURE public tidy() postgres',
    ].join('\n');
    expect(summarizeToc(listing)).toEqual({
      objects: 12,
      counts: { tables: 2, views: 1, materializedViews: 1, sequences: 1, routines: 3 },
    });
  });
});

describe('selectForPrune', () => {
  const day = 86_400_000;
  const now = Date.parse('2026-11-26T12:00:00Z');
  function backup(id: string, daysAgo: number, remote: string | null = 'staging', ok = true, database = 'app'): Backup {
    return {
      id,
      ...(remote ? { remote } : {}),
      database,
      createdAt: new Date(now - daysAgo * day).toISOString(),
      lastCheck: { at: '', level: 'read', ok },
      sizeBytes: 10,
    } as Backup;
  }
  const ids = (backups: Backup[]) => backups.map((item) => item.id).sort();

  it('keeps the newest N of each source', () => {
    const backups = [backup('s1', 1), backup('s2', 2), backup('s3', 3), backup('l1', 1, null), backup('l2', 5, null)];
    const result = selectForPrune(backups, { keepLast: 1 }, { now });
    expect(ids(result.removed)).toEqual(['l2', 's2', 's3']);
    expect(ids(result.kept)).toEqual(['l1', 's1']);
  });

  it('removes by age; with both rules a backup goes only when neither keeps it', () => {
    const backups = [backup('a', 1), backup('b', 10), backup('c', 40), backup('d', 50)];
    expect(ids(selectForPrune(backups, { olderThanMs: 30 * day }, { now }).removed)).toEqual(['c', 'd']);
    expect(ids(selectForPrune(backups, { olderThanMs: 5 * day, keepLast: 3 }, { now }).removed)).toEqual(['d']);
  });

  it('counts per database: three new backups of a remote\'s main database leave its other database\'s alone', () => {
    const backups = [backup('m1', 1), backup('m2', 2), backup('m3', 3), backup('analytics', 30, 'staging', true, 'analytics')];
    const result = selectForPrune(backups, { keepLast: 1 }, { now });
    expect(ids(result.removed)).toEqual(['m2', 'm3']);
    expect(ids(result.kept)).toEqual(['analytics', 'm1']);
  });

  it('keeps the newest backup of a database when none is sound and no rule keeps one', () => {
    const backups = [backup('b1', 40, 'staging', false), backup('b2', 50, 'staging', false)];
    const result = selectForPrune(backups, { olderThanMs: 30 * day }, { now });
    expect(ids(result.removed)).toEqual(['b2']);
    expect(result.protected).toEqual([{ id: 'b1', why: 'the newest backup of staging/app, none of which is sound' }]);
  });

  it('never removes the only sound backup of a source, nor a pinned one', () => {
    const backups = [backup('new-broken', 1, 'staging', false), backup('old-sound', 9), backup('older-sound', 10), backup('pinned', 20)];
    const result = selectForPrune(backups, { keepLast: 1 }, { now, pinned: new Set(['pinned']) });
    expect(ids(result.removed)).toEqual(['older-sound']);
    expect(result.protected).toEqual([
      { id: 'pinned', why: 'a deployment refers to it' },
      { id: 'old-sound', why: 'the only sound backup of staging/app' },
    ]);
  });
});

describe.skipIf(!hasPgTools)('backups with pg_dump and pg_restore', () => {
  let config: DbfastConfig;
  let pagila: string;
  let pagilaBackup: Backup;

  beforeAll(async () => {
    config = await projectConfig();
    pagila = dbName('pagila');
    await sql('postgres', `CREATE DATABASE ${pagila}`);
    const { path: psql } = await findPsql();
    await runPsqlFile(psql, join(PAGILA, '0_schema/pagila-schema.sql'), pagila);
    await runPsqlFile(psql, join(PAGILA, '1_seed/pagila-data.sql'), pagila);
    pagilaBackup = await createBackup(config, { database: pagila }, { label: 'round trip' });
  }, 120_000);

  it('describes what the archive holds: Pagila\'s tables, objects and rows per table', async () => {
    expect(pagilaBackup).toMatchObject({
      database: pagila,
      format: 'custom',
      compression: 'gzip',
      reason: 'manual',
      label: 'round trip',
      serverVersion: expect.stringMatching(/^15\./),
      pgDumpVersion: expect.stringMatching(/^15\./),
      counts: { tables: 22, views: 7, materializedViews: 1, sequences: 13, routines: 10 },
      lastCheck: { level: 'read', ok: true },
    });
    expect(pagilaBackup.remote).toBeUndefined();
    const rows = Object.fromEntries(pagilaBackup.rows.map((entry) => [entry.table, entry.rows]));
    expect(rows).toMatchObject({ actor: 200, category: 16, film: 1000, inventory: 4581, film_actor: 5462, payment_p2022_01: 723, payment_p2022_02: 2401 });
    const archive = await readFile(archivePath(pagilaBackup));
    expect(pagilaBackup.sizeBytes).toBe(archive.length);
    expect(pagilaBackup.sha256).toMatch(/^[0-9a-f]{64}$/);
    // The metadata file is what makes it a backup; nothing else is in the folder.
    expect((await readdir(pagilaBackup.folder)).sort()).toEqual([`${pagilaBackup.id}.dump`, `${pagilaBackup.id}.json`]);
    expect(await listBackups(config)).toEqual([expect.objectContaining({ id: pagilaBackup.id })]);
  });

  it('round trip: change the data, restore over it, and every table is as it was backed up; the replaced database is kept', async () => {
    const before = await digests(pagila);
    await sql(pagila, "UPDATE actor SET first_name = 'CHANGED' WHERE actor_id < 50; DELETE FROM film_actor WHERE film_id < 100; INSERT INTO category (name) VALUES ('new one')");
    expect(await digests(pagila)).not.toEqual(before);
    const oid = (await sql('postgres', `SELECT oid FROM pg_database WHERE datname = '${pagila}'`))[0]!.oid;

    const result = await restoreBackup(config, pagilaBackup, { yes: true });

    expect(result).toMatchObject({ id: pagilaBackup.id, database: pagila, method: 'swap', previous: expect.stringMatching(new RegExp(`^${pagila}__dbfast_prev_\\d{14}$`)) });
    expect(await digests(pagila)).toEqual(before);
    // The replaced database is the old one, untouched, refusing connections.
    const [previous] = await sql('postgres', `SELECT oid, datallowconn FROM pg_database WHERE datname = '${result.previous}'`);
    expect(previous).toEqual({ oid, datallowconn: false });
    // What was replaced was backed up first.
    const taken = (await listBackups(config)).find((item) => item.id === result.preRestoreBackup);
    expect(taken).toMatchObject({ reason: 'pre-restore', database: pagila });
    expect(taken!.rows.find((entry) => entry.table === 'category')!.rows).toBe(17);
    expect(await databasesLike(`${pagila}__dbfast_restore%`)).toEqual([]);
  });

  it('restores to another database name without asking, and a trial restore finds it complete', async () => {
    const copy = dbName('pagila_copy');
    const result = await restoreBackup(config, pagilaBackup, { toDatabase: copy });
    expect(result).toMatchObject({ database: copy, method: 'created' });
    // An archive once read whole is checked by its SHA-256 alone: no new full read is recorded.
    const [after] = (await listBackups(config)).filter((item) => item.id === pagilaBackup.id);
    expect(after!.lastCheck).toEqual(pagilaBackup.lastCheck);
    expect(result.preRestoreBackup).toBeUndefined();
    const [restored] = await sql(copy, 'SELECT (SELECT count(*)::int FROM actor) AS actors, (SELECT sum(amount)::text FROM payment) AS total');
    expect(restored).toEqual({ actors: 200, total: '67416.51' });

    const check = await verifyBackup(config, pagilaBackup, { restore: true });
    expect(check).toMatchObject({ level: 'restore', ok: true });
    const [listed] = (await listBackups(config)).filter((item) => item.id === pagilaBackup.id);
    expect(listed!.trialRestore).toEqual(check);
    expect(listed!.lastCheck).toMatchObject({ level: 'read', ok: true });
    expect(await databasesLike(`${pagila}__dbfast_verify%`)).toEqual([]);
  });

  it('replacing an existing database needs yes or a confirmation; a refusal changes nothing', async () => {
    const name = await smallDatabase('confirm');
    const backup = await createBackup(config, { database: name });
    const asked: string[] = [];
    const refused = await failure(restoreBackup(config, backup, {
      confirm: async (question) => {
        asked.push(question);
        return false;
      },
    }));
    expect(refused).toMatchObject({ code: 'NOT_CONFIRMED', message: 'not confirmed: nothing was changed' });
    expect(asked).toEqual([`restore backup ${backup.id} (${backup.createdAt}) over database ${name} on the local server?`]);
    const unasked = await failure(restoreBackup(config, backup));
    expect(unasked.message).toBe(`restoring replaces database ${name} on the local server: pass --yes to confirm`);
    expect((await listBackups(config)).filter((item) => item.database === name)).toHaveLength(1);
    expect(await databasesLike(`${name}\\_\\_%`)).toEqual([]);
  });

  it('carries the database\'s own settings over: connection limit, per-database and per-role settings, GRANTs, comment; sessions on it are ended', async () => {
    // A range type owns constructor functions that pg_dump does not list: the check must not count them.
    const name = await smallDatabase('settings', 'CREATE TYPE floatrange AS RANGE (subtype = float8)');
    const role = `bk_reader_${run}`;
    await sql('postgres', `CREATE ROLE ${role}; ALTER DATABASE ${name} CONNECTION LIMIT 7; ALTER DATABASE ${name} SET search_path TO app, public;
      ALTER DATABASE ${name} SET statement_timeout TO '5s'; ALTER DATABASE ${name} SET "TimeZone" TO 'Europe/Paris';
      REVOKE ALL ON DATABASE ${name} FROM PUBLIC; GRANT CONNECT ON DATABASE ${name} TO ${role}; COMMENT ON DATABASE ${name} IS 'the app''s data';
      ALTER ROLE ${role} IN DATABASE ${name} SET search_path TO ''; ALTER ROLE ${role} IN DATABASE ${name} SET work_mem TO '8MB'`);
    const settingsOf = async () =>
      (
        await sql(
          'postgres',
          `SELECT d.datconnlimit, d.datacl::text, shobj_description(d.oid, 'pg_database') AS comment,
                  (SELECT array_agg(entry ORDER BY entry)::text FROM (SELECT s.setrole::regrole || ':' || c AS entry
                     FROM pg_db_role_setting s, unnest(s.setconfig) c WHERE s.setdatabase = d.oid) entries) AS settings
           FROM pg_database d WHERE d.datname = '${name}'`,
        )
      )[0];
    const before = await settingsOf();
    const backup = await createBackup(config, { database: name });
    const session = new pg.Client(testClientConfig(name));
    await session.connect();
    session.on('error', () => {});
    await restoreBackup(config, backup, { yes: true });
    expect(await settingsOf()).toEqual(before);
    await expect(session.query('SELECT 1')).rejects.toThrow();
    await session.end().catch(() => {});
  });

  it('a flipped byte is found by verify and refused by restore, which changes nothing', async () => {
    const name = await smallDatabase('flipped');
    const backup = await createBackup(config, { database: name });
    const path = archivePath(backup);
    const bytes = await readFile(path);
    bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
    await writeFile(path, bytes);

    const check = await verifyBackup(config, backup);
    expect(check).toMatchObject({ ok: false, problem: 'the archive does not match the SHA-256 taken when it was written (corrupted or changed)' });
    expect((await listBackups(config)).find((item) => item.id === backup.id)!.lastCheck.ok).toBe(false);

    await sql(name, 'DELETE FROM items WHERE id > 100');
    const refused = await failure(restoreBackup(config, backup, { yes: true }));
    expect(refused.code).toBe('BACKUP_CORRUPT');
    expect(refused.message).toContain(`backup ${backup.id} is not sound: the archive does not match the SHA-256`);
    expect((await sql(name, 'SELECT count(*)::int AS n FROM items'))[0]!.n).toBe(100);
    expect(await databasesLike(`${name}\\_\\_%`)).toEqual([]);
  });

  it('a truncated archive is found by verify; reading it whole fails even where the table of contents reads', async () => {
    const name = await smallDatabase('truncated');
    const backup = await createBackup(config, { database: name });
    const path = archivePath(backup);
    await truncate(path, Math.floor(backup.sizeBytes * 0.8));
    const pgRestore = await findProgram('pg_restore', { minMajor: 15 });
    // pg_restore --list passes it: the table of contents is whole.
    const { runTool } = await import('../../src/core/tools.js');
    await expect(runTool(pgRestore, ['--list', path])).resolves.toBeDefined();
    const unread = await failure(readArchive(pgRestore, path));
    expect(unread).toMatchObject({ code: 'BACKUP_CORRUPT' });
    expect(unread.message).toMatch(/cannot be read whole: pg_restore failed: .*(end of file|could not read)/);

    const check = await verifyBackup(config, backup);
    expect(check.ok).toBe(false);
    expect(check.problem).toMatch(/^the archive is \d+ bytes where \d+ were written \(truncated or changed\)$/);
    expect((await failure(restoreBackup(config, backup, { yes: true }))).code).toBe('BACKUP_CORRUPT');
  });

  it('pg_dump killed mid-way leaves no backup and no partial file', async () => {
    const name = await smallDatabase('killed');
    const locker = new pg.Client(testClientConfig(name));
    await locker.connect();
    try {
      // pg_dump waits for this lock: it is mid-way, its archive begun, when it is killed.
      await locker.query('BEGIN; LOCK TABLE items IN ACCESS EXCLUSIVE MODE');
      let pid = 0;
      const creating = createBackup(config, { database: name }, { onDumpStart: (started) => (pid = started) });
      for (let waited = 0; waited < 200; waited++) {
        const waiting = await sql('postgres', `SELECT 1 FROM pg_stat_activity WHERE application_name LIKE 'dbfast backup %' AND wait_event_type = 'Lock' AND datname = '${name}'`);
        if (waiting.length) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const folder = join(config.backups.directory, '@local');
      const entries = await readdir(folder);
      const partial = entries.filter((entry) => entry.endsWith('.partial'));
      expect(partial).toHaveLength(1);
      process.kill(pid, 'SIGKILL');
      const error = await failure(creating);
      expect(error).toMatchObject({ code: 'TOOL_FAILED', message: 'pg_dump was stopped by SIGKILL' });
      // Exactly what was there before, less the partial archive.
      expect((await readdir(folder)).sort()).toEqual(entries.filter((entry) => !partial.includes(entry)).sort());
      expect((await listBackups(config)).filter((item) => item.database === name)).toEqual([]);
    } finally {
      await locker.end();
    }
  });

  it('a restore whose archive fails half-way leaves the target exactly as it was (swap path)', async () => {
    const role = `bk_gone_${run}`;
    const name = await smallDatabase('halfway', `CREATE ROLE ${role}; GRANT SELECT ON items TO ${role}`);
    const backup = await createBackup(config, { database: name });
    // The archive GRANTs to a role that no longer exists: pg_restore fails after creating and loading the table.
    await sql(name, `REVOKE SELECT ON items FROM ${role}; DROP ROLE ${role}; UPDATE items SET name = 'after' WHERE id <= 10`);
    const before = await digests(name);
    const oid = (await sql('postgres', `SELECT oid FROM pg_database WHERE datname = '${name}'`))[0]!.oid;

    const error = await failure(restoreBackup(config, backup, { yes: true }));
    expect(error.code).toBe('RESTORE_FAILED');
    expect(error.message).toContain(`role "${role}" does not exist`);
    expect(await digests(name)).toEqual(before);
    expect((await sql('postgres', `SELECT oid, datallowconn FROM pg_database WHERE datname = '${name}'`))[0]).toEqual({ oid, datallowconn: true });
    expect(await databasesLike(`${name}\\_\\_%`)).toEqual([]);
  });

  it('a restored copy that differs from the metadata is dropped, never swapped in', async () => {
    const name = await smallDatabase('differs');
    const backup = await createBackup(config, { database: name });
    // The metadata says one view more than the archive holds: the check after restoring must notice.
    await writeFile(join(backup.folder, `${backup.id}.json`), JSON.stringify({ ...backup, folder: undefined, counts: { ...backup.counts, views: 1 } }));
    const [tampered] = (await listBackups(config)).filter((item) => item.id === backup.id);
    await sql(name, "UPDATE items SET name = 'kept'");
    const error = await failure(restoreBackup(config, tampered!, { yes: true }));
    expect(error).toMatchObject({ code: 'RESTORE_FAILED', message: 'the restored database differs from the backup: 0 views where the backup has 1' });
    expect(error.hint).toBe(`nothing was changed: ${name} is as it was`);
    expect((await sql(name, "SELECT count(*)::int AS n FROM items WHERE name = 'kept'"))[0]!.n).toBe(500);
    expect(await databasesLike(`${name}\\_\\_%`)).toEqual([]);
  });

  describe('a user that owns its database but may not create databases (single transaction)', () => {
    let owner: string;
    let name: string;
    let managed: DbfastConfig;

    beforeAll(async () => {
      owner = `bk_owner_${run}`;
      name = dbName('managed');
      await sql('postgres', `CREATE ROLE ${owner} LOGIN NOCREATEDB`);
      await sql('postgres', `CREATE DATABASE ${name} OWNER ${owner}`);
      const client = new pg.Client({ ...testClientConfig(name), user: owner });
      await client.connect();
      await client.query(`CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 300) g`);
      await client.end();
      const port = new URL(testServerUrl()).port;
      managed = await projectConfig(`[remotes.managed]\nurl = "postgresql://${owner}@127.0.0.1:${port}/${name}"\n`);
    });

    async function asOwner(text: string) {
      const client = new pg.Client({ ...testClientConfig(name), user: owner });
      await client.connect();
      try {
        return (await client.query(text)).rows;
      } finally {
        await client.end();
      }
    }

    it('restores in place in one transaction, after a pre-restore backup', async () => {
      const backup = await createBackup(managed, { remote: 'managed' });
      expect(backup).toMatchObject({ remote: 'managed', database: name });
      const before = await digests(name);
      await asOwner("DELETE FROM items WHERE id > 200; UPDATE items SET name = 'x'");
      const result = await restoreBackup(managed, backup, { yes: true });
      expect(result).toMatchObject({ method: 'single-transaction', remote: 'managed', database: name });
      expect(result.previous).toBeUndefined();
      expect(result.preRestoreBackup).toMatch(/^\d{8}-\d{6}-[0-9a-f]{4}$/);
      expect(await digests(name)).toEqual(before);
    });

    it('refuses, changing nothing, when the database has tables the backup does not have', async () => {
      const backup = await createBackup(managed, { remote: 'managed' });
      await asOwner('CREATE TABLE added_later (id int); INSERT INTO items VALUES (1000, \'new\')');
      const before = await digests(name);
      const backups = (await listBackups(managed)).length;
      const error = await failure(restoreBackup(managed, backup, { yes: true }));
      expect(error).toMatchObject({
        code: 'RESTORE_FAILED',
        message: `${name} on remote managed has tables the backup does not have (public.added_later): restored in place, they would stay`,
      });
      expect(await digests(name)).toEqual(before);
      expect(await listBackups(managed)).toHaveLength(backups);
      await asOwner('DROP TABLE added_later; DELETE FROM items WHERE id = 1000');
    });

    it('a remote that requires confirmation asks for its database\'s name typed back', async () => {
      const strict = await projectConfig(`[remotes.managed]\nurl = "${managed.remotes.managed!.url}"\nrequire_confirmation = true\n`);
      const backup = await createBackup(strict, { remote: 'managed' });
      const asked: [string, string | undefined][] = [];
      const refused = await failure(
        restoreBackup(strict, backup, {
          confirm: async (question, typed) => {
            asked.push([question, typed]);
            return false;
          },
        }),
      );
      expect(refused.message).toBe('not confirmed: nothing was changed');
      expect(asked).toEqual([[`restore backup ${backup.id} (${backup.createdAt}) over database ${name} on remote managed?`, name]]);
    });

    it('checks run before the restore commits: one that fails leaves the database exactly as it was', async () => {
      const backup = await createBackup(managed, { remote: 'managed' });
      await asOwner("UPDATE items SET name = 'changed since' WHERE id = 1");
      const before = await digests(name);
      const seen: number[] = [];
      const error = await failure(
        replaceDatabase(managed, backup, await locateSource(managed, { remote: 'managed' }, process.env), {
          env: process.env,
          yes: true,
          question: '',
          backupReason: null,
          check: async (client) => {
            // Inside the restore's transaction: the restored rows are there, not yet committed.
            seen.push(...(await client.query("SELECT count(*)::int AS n FROM items WHERE name = 'changed since'")).rows.map((row) => row.n));
            throw new DbfastError('VALIDATION_FAILED', 'the check says no');
          },
        }),
      );
      expect(error).toMatchObject({ code: 'VALIDATION_FAILED', message: 'the check says no' });
      expect(seen).toEqual([0]);
      expect(await digests(name)).toEqual(before);
    });

    it('an archive that fails half-way is rolled back: the database is exactly as it was', async () => {
      const role = `bk_gone2_${run}`;
      await sql('postgres', `CREATE ROLE ${role}`);
      await asOwner(`GRANT SELECT ON items TO ${role}`);
      const backup = await createBackup(managed, { remote: 'managed' });
      await asOwner(`REVOKE SELECT ON items FROM ${role}; DELETE FROM items WHERE id > 250`);
      await sql('postgres', `DROP ROLE ${role}`);
      const before = await digests(name);

      const error = await failure(restoreBackup(managed, backup, { yes: true }));
      expect(error.code).toBe('RESTORE_FAILED');
      expect(error.message).toMatch(new RegExp(`role "${role}" does not exist.*the restore was rolled back, ${name} is as it was`));
      expect(await digests(name)).toEqual(before);
    });
  });

  it('reports pg_dump\'s progress per table from pg_stat_progress_copy: rows done of the estimate, bytes', async () => {
    const name = dbName('progress');
    await sql('postgres', `CREATE DATABASE ${name}`);
    await sql(name, 'CREATE TABLE big AS SELECT g AS id FROM generate_series(1, 2000000) g; ANALYZE big');
    const reports: { table: string; rows: number; estimatedRows: number; bytes: number }[] = [];
    const backup = await createBackup(config, { database: name }, { onProgress: (tables) => reports.push(...tables) });
    expect(backup.rows).toEqual([{ schema: 'public', table: 'big', rows: 2_000_000 }]);
    expect(reports.length).toBeGreaterThan(0);
    expect(reports.every((report) => report.table === 'big' && report.estimatedRows === 2_000_000)).toBe(true);
    expect(reports.some((report) => report.rows > 0 && report.rows <= 2_000_000 && report.bytes > 0)).toBe(true);
  });

  it('says which pg_dump is needed for a newer server', async () => {
    const error = await failure(programFor('pg_dump', 17, config, { PATH: process.env.PATH }));
    expect(error).toMatchObject({
      code: 'TOOL_NOT_FOUND',
      message: 'pg_dump 15 cannot dump a PostgreSQL 17 server',
      hint: 'install the PostgreSQL 17 client tools or set [tools] pg_bin_dir',
    });
  });

  it('a scratch database in use by a restore is never taken for an abandoned one', async () => {
    const admin = new pg.Client(testClientConfig('postgres'));
    await admin.connect();
    const base = dbName('inuse');
    try {
      const kept = await withScratchName(admin, base, 'restore', async (scratch) => {
        await admin.query(`CREATE DATABASE ${scratch}`);
        const pruned = await pruneBackups(config, { keepLast: 100 });
        expect(pruned.droppedDatabases).not.toContain(scratch);
        return scratch;
      });
      expect(await databasesLike(kept)).toEqual([kept]);
      await admin.query(`DROP DATABASE ${kept}`);
    } finally {
      await admin.end();
    }
  });

  it('prune removes old backups, stale leftovers and kept databases by the rules, and keeps what it must', async () => {
    const pruned = await projectConfig('[backups]\nkeep_last = 1\n');
    const name = await smallDatabase('prune');
    const first = await createBackup(pruned, { database: name });
    const second = await createBackup(pruned, { database: name });
    await restoreBackup(pruned, first, { yes: true });
    await restoreBackup(pruned, first, { yes: true }); // two kept previous databases now
    const folder = join(pruned.backups.directory, '@local');
    const stale = join(folder, '.20200101-000000-dead.dump.partial');
    const fresh = join(folder, '.20990101-000000-beef.dump.partial');
    await writeFile(stale, 'half an archive');
    await writeFile(fresh, 'being written');
    const hourAndMore = new Date(Date.now() - 2 * 3_600_000);
    await utimes(stale, hourAndMore, hourAndMore);
    // A restore's scratch database whose process died is dropped; one whose restore still runs (its lock held) is not.
    const abandoned = `${name}__dbfast_restore_0badc0de`;
    const running = `${name}__dbfast_verify_0000beef`;
    await sql('postgres', `CREATE DATABASE ${abandoned}`);
    await sql('postgres', `CREATE DATABASE ${running}`);
    const restoring = new pg.Client(testClientConfig('postgres'));
    await restoring.connect();
    await restoring.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [`dbfast:scratch:${running}`]);
    // Another project's kept database on the same server is not this prune's to drop.
    const foreign = dbName('foreign');
    await sql('postgres', `CREATE DATABASE ${foreign}__dbfast_prev_20200101000000`);
    await sql('postgres', `CREATE DATABASE ${foreign}__dbfast_prev_20200102000000`);
    const all = await listBackups(pruned, { local: true });
    expect(all).toHaveLength(4); // two taken, two pre-restore

    const dry = await pruneBackups(pruned, { dryRun: true });
    expect(dry.removed).toHaveLength(3);
    expect(dry.removedLeftovers).toEqual([stale]);
    // Other suites' servers share this one: only this test's databases are looked at.
    expect(dry.droppedDatabases.filter((dropped) => dropped.startsWith(name))).toEqual([expect.stringMatching(new RegExp(`^${name}__dbfast_prev_`)), abandoned]);
    expect(await listBackups(pruned, { local: true })).toHaveLength(4);
    expect(await databasesLike(`${name}__dbfast_prev_%`)).toHaveLength(2);

    const result = await pruneBackups(pruned);
    expect(result.kept.map((item) => item.id)).toEqual([all[0]!.id]);
    expect(result.freedBytes).toBe(result.removed.reduce((sum, item) => sum + item.sizeBytes, 0) + 'half an archive'.length);
    expect(await listBackups(pruned, { local: true })).toEqual([expect.objectContaining({ id: all[0]!.id })]);
    expect(await stat(fresh).then(() => true)).toBe(true);
    await expect(stat(stale)).rejects.toThrow();
    expect(await databasesLike(`${name}__dbfast_prev_%`)).toHaveLength(1);
    expect(await databasesLike(`${foreign}__dbfast_prev_%`)).toHaveLength(2);
    expect(await databasesLike(`${name}__dbfast\\_restore%`)).toEqual([]);
    expect(await databasesLike(`${name}__dbfast\\_verify%`)).toEqual([running]);
    await restoring.end();
    expect(second.id).not.toBe(first.id);
  });
});
