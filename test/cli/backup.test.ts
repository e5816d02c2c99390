import { existsSync } from 'node:fs';
import { open, readFile, readdir, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliResult, runCli, STACK_FRAME, testServerUrl, uniqueName } from '../helpers/cli.js';
import { query } from '../helpers/database.js';
import { hasPgTools } from '../helpers/pg-tools.js';
import { tempRepo } from '../helpers/repo.js';
import { type ScramServer, startScramServer } from '../helpers/scram-server.js';

const PASSWORD = 'backup-secret-7f3e-never-print';
const ID = /^\d{8}-\d{6}-[0-9a-f]{4}$/;

interface BackupJson {
  id: string;
  remote?: string;
  database: string;
  format: string;
  reason: string;
  sha256: string;
  sizeBytes: number;
  archive: string;
  counts: { tables: number; views: number; materializedViews: number; sequences: number; routines: number };
  rows: { schema: string; table: string; rows: number }[];
  lastCheck: { ok: boolean; level: string; problem?: string };
  trialRestore?: { ok: boolean; level: string; problem?: string };
}

describe.skipIf(!hasPgTools).concurrent('dbfast backup', () => {
  // One password-protected server plays the remote for the whole file; each test gets its own
  // database on it (and its own project folder), so tests do not see each other's backups.
  let remote: ScramServer;
  const folders: string[] = [];
  const localDatabases: string[] = [];

  beforeAll(async () => {
    remote = await startScramServer(PASSWORD);
  }, 60_000);

  afterAll(async () => {
    await remote?.stop();
    for (const folder of folders) await rm(folder, { recursive: true, force: true });
    for (const name of localDatabases) await query('postgres', `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  });

  async function remoteQuery<T extends pg.QueryResultRow = pg.QueryResultRow>(database: string, sql: string): Promise<T[]> {
    const client = new pg.Client({ host: '127.0.0.1', port: remote.port, user: 'postgres', password: PASSWORD, database });
    await client.connect();
    try {
      return (await client.query<T>(sql)).rows;
    } finally {
      await client.end();
    }
  }

  async function count(database: string, table: string): Promise<number> {
    return Number((await remoteQuery<{ n: string }>(database, `SELECT count(*) AS n FROM ${table}`))[0]!.n);
  }

  /** The databases on the remote whose names start with `prefix` (a test's own: tests run concurrently). */
  async function remoteDatabases(prefix: string): Promise<string[]> {
    const rows = await remoteQuery<{ datname: string }>('postgres', `SELECT datname FROM pg_database WHERE starts_with(datname, '${prefix}') ORDER BY 1`);
    return rows.map((row) => row.datname);
  }

  interface Project {
    cwd: string;
    db: string;
    backups: string;
    run(args: string[], env?: Record<string, string | undefined>): Promise<CliResult>;
    create(...extra: string[]): Promise<string>;
    list(): Promise<BackupJson[]>;
  }

  /** A database on the remote with 2 tables (3 + 2 rows, a sequence), and a project whose remote staging points at it. */
  async function project(extraToml = ''): Promise<Project> {
    const db = uniqueName('app');
    await remoteQuery('postgres', `CREATE DATABASE ${db}`);
    await remoteQuery(
      db,
      `CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);
       INSERT INTO items VALUES (1, 'one'), (2, 'two'), (3, 'three');
       CREATE TABLE orders (id serial PRIMARY KEY, item int REFERENCES items);
       INSERT INTO orders (item) VALUES (1), (2);`,
    );
    const toml = `[database]
template_name = "${uniqueName('tpl')}"

[environments.staging]

[remotes.staging]
url = "postgresql://postgres@127.0.0.1:${remote.port}/${db}"
password_env = "STAGING_PW"
environment = "staging"
${extraToml}`;
    const cwd = await tempRepo({ 'dbfast.toml': toml, 'db/0_schema/01.sql': 'SELECT 1;' });
    folders.push(cwd);
    const run = (args: string[], env: Record<string, string | undefined> = {}) =>
      runCli(['backup', ...args], { cwd, env: { DBFAST_DATABASE_URL: testServerUrl(), STAGING_PW: PASSWORD, ...env } });
    return {
      cwd,
      db,
      backups: join(cwd, '.dbfast/backups/staging'),
      run,
      async create(...extra) {
        const result = await run(['create', '--remote', 'staging', ...extra]);
        expect(result.code, result.stderr).toBe(0);
        return result.stdout.trim();
      },
      async list() {
        const result = await run(['list', '--json']);
        expect(result.code, result.stderr).toBe(0);
        return JSON.parse(result.stdout) as BackupJson[];
      },
    };
  }

  /** An error exit: `error: ...` (and maybe a hint) last, no stack trace, no password. */
  function expectCleanError(result: CliResult, code: number): void {
    expect(result.code, result.stderr).toBe(code);
    expect(result.stderr).not.toMatch(STACK_FRAME);
    expect(result.stdout + result.stderr).not.toContain(PASSWORD);
    const errors = result.errLines.filter((line) => line.startsWith('error: '));
    expect(errors).toHaveLength(1);
    const after = result.errLines.slice(result.errLines.indexOf(errors[0]!) + 1);
    expect(after.every((line) => line.startsWith('  hint: '))).toBe(true);
    expect(after.length).toBeLessThanOrEqual(1);
  }

  describe('create and list', () => {
    it('prints only the id on stdout, a summary on stderr, and never the password', async () => {
      const p = await project();
      const result = await p.run(['create', '--remote', 'staging', '--label', 'before the migration']);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toMatch(/^\d{8}-\d{6}-[0-9a-f]{4}\n$/);
      const id = result.stdout.trim();
      expect(result.stderr).toMatch(new RegExp(`backed up staging/${p.db} in \\d+\\.\\d\\ds: .+, 2 tables, 5 rows, read back whole`));
      expect(result.stdout + result.stderr).not.toContain(PASSWORD);
      expect(result.stderr).not.toMatch(STACK_FRAME);
      expect(existsSync(join(p.backups, `${id}.dump`))).toBe(true);
      const metadata = await readFile(join(p.backups, `${id}.json`), 'utf8');
      expect(metadata).not.toContain(PASSWORD);
      // No partial archive is left behind.
      expect((await readdir(p.backups)).sort()).toEqual([`${id}.dump`, `${id}.json`]);

      const list = await p.run(['list']);
      expect(list.code, list.stderr).toBe(0);
      const lines = list.stdout.split('\n');
      expect(lines).toHaveLength(2);
      expect(lines[1]).toBe('');
      const fields = lines[0]!.split('\t');
      expect(fields[0]).toBe(id);
      expect(fields[1]).toBe(`staging/${p.db}`);
      expect(fields[2]).toMatch(/^\d+s ago$/);
      expect(fields[3]).toMatch(/\d/);
      expect(fields[4]).toBe('manual');
      expect(fields[5]).toBe('sound before the migration');

      const narrowed = await p.run(['list', '--remote', 'staging']);
      expect(narrowed.stdout.split('\t')[0]).toBe(id);
      const unknown = await p.run(['list', '--remote', 'stagin']);
      expectCleanError(unknown, 2);
      expect(unknown.errLines.slice(-2)).toEqual(['error: unknown remote "stagin"', '  hint: did you mean "staging"? available: staging']);
    });

    it('--json and --verbose: metadata with SHA-256, rows per table and counts; the password never printed', async () => {
      const p = await project();
      const verbose = await p.run(['create', '--remote', 'staging', '--verbose']);
      expect(verbose.code, verbose.stderr).toBe(0);
      expect(verbose.stdout).toMatch(/^\d{8}-\d{6}-[0-9a-f]{4}\n$/);
      expect(verbose.stdout + verbose.stderr).not.toContain(PASSWORD);

      const result = await p.run(['create', '--remote', 'staging', '--json', '--verbose']);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout + result.stderr).not.toContain(PASSWORD);
      const created = JSON.parse(result.stdout) as BackupJson;
      expect(created).toMatchObject({ remote: 'staging', database: p.db, format: 'custom', reason: 'manual', archive: `${created.id}.dump`, lastCheck: { ok: true, level: 'read' } });
      expect(created.id).toMatch(ID);
      expect(created.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(created.sizeBytes).toBe((await stat(join(p.backups, created.archive))).size);
      expect(created.rows).toEqual([
        { schema: 'public', table: 'items', rows: 3 },
        { schema: 'public', table: 'orders', rows: 2 },
      ]);
      expect(created.counts).toEqual({ tables: 2, views: 0, materializedViews: 0, sequences: 1, routines: 0 });

      const list = await p.run(['list', '--json']);
      expect(list.code).toBe(0);
      expect(list.stdout + list.stderr).not.toContain(PASSWORD);
      const listed = JSON.parse(list.stdout) as BackupJson[];
      expect(listed.map((backup) => backup.id)).toEqual([created.id, verbose.stdout.trim()]);
      expect(listed[0]).toMatchObject({ sha256: created.sha256, rows: created.rows, counts: created.counts });
    });

    it('a failed login or a missing database exits 1 in one line, and even with --verbose prints no password', async () => {
      const p = await project();
      const missing = await p.run(['create', '--remote', 'staging', '--database', `${p.db}_missing`]);
      expectCleanError(missing, 1);
      expect(missing.errLines).toEqual([`error: database "${p.db}_missing" does not exist on postgres@127.0.0.1:${remote.port}`]);
      const wrong = await p.run(['create', '--remote', 'staging'], { STAGING_PW: 'wrong-pw-3c1' });
      expectCleanError(wrong, 1);
      expect(wrong.errLines[0]).toBe(`error: authentication failed for postgres@127.0.0.1:${remote.port}/${p.db}`);
      expect(wrong.stderr).not.toContain('wrong-pw-3c1');
      // --verbose adds the stack and the cause, still without the password.
      const verbose = await p.run(['create', '--remote', 'staging', '--database', `${p.db}_missing`, '--verbose']);
      expect(verbose.code).toBe(1);
      expect(verbose.stderr).toMatch(STACK_FRAME);
      expect(verbose.stdout + verbose.stderr).not.toContain(PASSWORD);
      const verboseWrong = await p.run(['create', '--remote', 'staging', '--verbose'], { STAGING_PW: `${PASSWORD}-wrong` });
      expect(verboseWrong.code).toBe(1);
      expect(verboseWrong.stderr).toMatch(STACK_FRAME);
      expect(verboseWrong.stderr).toContain('password authentication failed');
      expect(verboseWrong.stdout + verboseWrong.stderr).not.toContain(PASSWORD);
      expect(existsSync(p.backups) ? await readdir(p.backups) : []).toEqual([]);
    });

    it('--database NAME backs up a database of the local server', async () => {
      const name = uniqueName('bk_local');
      localDatabases.push(name);
      await query('postgres', `CREATE DATABASE ${name}`);
      await query(name, 'CREATE TABLE t (x int); INSERT INTO t SELECT generate_series(1, 7)');
      const p = await project();
      const result = await p.run(['create', '--database', name, '--json']);
      expect(result.code, result.stderr).toBe(0);
      const created = JSON.parse(result.stdout) as BackupJson;
      expect(created.remote).toBeUndefined();
      expect(created.rows).toEqual([{ schema: 'public', table: 't', rows: 7 }]);
      expect(existsSync(join(p.cwd, '.dbfast/backups/@local', created.archive))).toBe(true);
      const list = await p.run(['list']);
      expect(list.stdout.split('\t').slice(0, 2)).toEqual([created.id, `${name} (local)`]);
    });

    it('a usage mistake exits 2 with one error line and a hint, and takes no backup', async () => {
      const p = await project();
      const neither = await p.run(['create']);
      expectCleanError(neither, 2);
      expect(neither.errLines.slice(-2)).toEqual(['error: dbfast backup create needs --remote NAME or --database NAME', '  hint: dbfast remote list shows the remotes']);
      expect(neither.stdout).toBe('');

      const unknown = await p.run(['create', '--remote', 'nope']);
      expectCleanError(unknown, 2);
      expect(unknown.errLines.at(-2)).toBe('error: unknown remote "nope"');
      expect(unknown.errLines.at(-1)).toMatch(/^ {2}hint: .*available: staging/);

      const jobs = await p.run(['create', '--remote', 'staging', '--jobs', '2']);
      expectCleanError(jobs, 2);
      expect(jobs.errLines.find((line) => line.startsWith('error: '))).toBe('error: --jobs needs the directory format: pg_dump writes a custom archive with one job');

      const noPassword = await p.run(['create', '--remote', 'staging'], { STAGING_PW: undefined });
      expectCleanError(noPassword, 2);
      expect(noPassword.stderr).toContain('STAGING_PW');

      for (const result of [neither, unknown, jobs, noPassword]) expect(result.stdout).toBe('');
      expect(existsSync(p.backups)).toBe(false);
    });

    it('--format directory --jobs 2 writes a .dir archive that verifies', async () => {
      const p = await project();
      const id = await p.create('--format', 'directory', '--jobs', '2');
      expect(id).toMatch(ID);
      expect((await stat(join(p.backups, `${id}.dir`))).isDirectory()).toBe(true);
      expect((await readdir(join(p.backups, `${id}.dir`))).includes('toc.dat')).toBe(true);
      const [listed] = await p.list();
      expect(listed).toMatchObject({ id, format: 'directory', archive: `${id}.dir` });
      expect(listed!.rows.map((entry) => entry.rows)).toEqual([3, 2]);
      const verify = await p.run(['verify', id]);
      expect(verify.code, verify.stderr).toBe(0);
      expect(verify.stdout).toBe(`✓ ${id} sound\n`);
    });
  });

  describe('verify and a damaged archive', () => {
    it('a flipped byte: verify exits 1 naming the SHA-256, list says NOT SOUND, restore refuses and changes nothing', async () => {
      const p = await project();
      const id = await p.create();
      const good = await p.run(['verify', id]);
      expect(good.code, good.stderr).toBe(0);
      expect(good.stdout).toBe(`✓ ${id} sound\n`);

      const path = join(p.backups, `${id}.dump`);
      const bytes = await readFile(path);
      const middle = Math.floor(bytes.length / 2);
      bytes[middle] = bytes[middle]! ^ 0xff;
      await writeFile(path, bytes);

      const bad = await p.run(['verify', id]);
      expect(bad.code).toBe(1);
      expect(bad.stderr).not.toMatch(STACK_FRAME);
      expect(bad.stdout).toBe(`✗ ${id}: the archive does not match the SHA-256 taken when it was written (corrupted or changed)\n`);
      const json = await p.run(['verify', id, '--json']);
      expect(json.code).toBe(1);
      expect(JSON.parse(json.stdout)).toMatchObject([{ id, ok: false, level: 'read' }]);

      const list = await p.run(['list']);
      expect(list.stdout).toContain('\tNOT SOUND: the archive does not match the SHA-256');

      // The data changes after the backup; a refused restore must leave it so.
      await remoteQuery(p.db, "INSERT INTO items VALUES (4, 'four')");
      const before = await remoteDatabases(p.db);
      const restore = await p.run(['restore', id, '--yes']);
      expectCleanError(restore, 1);
      expect(restore.stderr).toContain(`error: backup ${id} is not sound: the archive does not match the SHA-256`);
      expect(await count(p.db, 'items')).toBe(4);
      expect(await remoteDatabases(p.db)).toEqual(before);
      expect((await p.list()).map((backup) => backup.id)).toEqual([id]);
    });

    it('a truncated archive: verify exits 1 saying so, and restore refuses', async () => {
      const p = await project();
      const id = await p.create();
      const path = join(p.backups, `${id}.dump`);
      const size = (await stat(path)).size;
      await truncate(path, Math.floor(size / 2));
      const bad = await p.run(['verify', id]);
      expect(bad.code).toBe(1);
      expect(bad.stdout).toBe(`✗ ${id}: the archive is ${Math.floor(size / 2)} bytes where ${size} were written (truncated or changed)\n`);
      expect((await p.list())[0]!.lastCheck).toMatchObject({ ok: false });
      const restore = await p.run(['restore', id, '--yes']);
      expectCleanError(restore, 1);
      expect(restore.stderr).toContain('is not sound');
      expect(await count(p.db, 'items')).toBe(3);
    });

    it('an archive cut short whose metadata was made to match is still found: it cannot be read whole', async () => {
      const p = await project();
      const id = await p.create();
      const path = join(p.backups, `${id}.dump`);
      const size = (await stat(path)).size;
      // Cut off the end (the last table's data), then give the metadata the cut file's size and SHA-256.
      await truncate(path, size - 40);
      const { createHash } = await import('node:crypto');
      const metadataPath = join(p.backups, `${id}.json`);
      const metadata = JSON.parse(await readFile(metadataPath, 'utf8')) as BackupJson;
      const cut = await readFile(path);
      await writeFile(metadataPath, JSON.stringify({ ...metadata, sizeBytes: cut.length, sha256: createHash('sha256').update(cut).digest('hex') }));
      const bad = await p.run(['verify', id]);
      expect(bad.code).toBe(1);
      expect(bad.stderr).not.toMatch(STACK_FRAME);
      expect(bad.stdout).toBe(`✗ ${id}: ${path} cannot be read whole: pg_restore failed: pg_restore: error: could not read from input file: end of file\n`);
    });

    it('verify needs an id or --all, and an unknown id exits 2', async () => {
      const p = await project();
      const none = await p.run(['verify']);
      expectCleanError(none, 2);
      expect(none.stderr).toContain('error: dbfast backup verify needs a backup id or --all (not both)');
      const unknown = await p.run(['verify', '29990101-000000-abcd']);
      expectCleanError(unknown, 2);
      expect(unknown.errLines.slice(-2)).toEqual([
        `error: no backup "29990101-000000-abcd" in ${join(p.cwd, '.dbfast/backups')}`,
        '  hint: dbfast backup list shows the backups',
      ]);
    });

    it('verify --all --restore restores each into a scratch database, and list then says restore-tested', async () => {
      const p = await project();
      const first = await p.create();
      const second = await p.create('--format', 'directory');
      const scratchBefore = await query<{ datname: string }>('postgres', `SELECT datname FROM pg_database WHERE datname LIKE '${p.db}%'`);
      const result = await p.run(['verify', '--all', '--restore']);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toBe(`✓ ${second} sound\n✓ ${first} sound\n`);
      expect(result.stderr).toContain(`verifying ${first} (staging/${p.db}) with a trial restore`);
      const list = await p.run(['list']);
      expect(list.stdout.split('\n').filter(Boolean).map((line) => line.split('\t')[5])).toEqual(['sound, restore-tested', 'sound, restore-tested']);
      expect((await p.list()).every((backup) => backup.lastCheck.ok && backup.trialRestore?.level === 'restore' && backup.trialRestore.ok)).toBe(true);
      // The scratch databases are gone, and the remote was never touched.
      expect(await query('postgres', `SELECT datname FROM pg_database WHERE datname LIKE '${p.db}%'`)).toEqual(scratchBefore);
      expect(await remoteDatabases(p.db)).toEqual([p.db]);
    });

    it('a trial restore that finds different rows is not sound', async () => {
      const p = await project();
      const id = await p.create();
      // The archive is intact, but the metadata claims a row more than it holds: only the trial restore's count can tell.
      const metadataPath = join(p.backups, `${id}.json`);
      const metadata = JSON.parse(await readFile(metadataPath, 'utf8')) as BackupJson & { counts: BackupJson['counts'] };
      await writeFile(metadataPath, JSON.stringify({ ...metadata, counts: { ...metadata.counts, views: 1 } }));
      const result = await p.run(['verify', id, '--restore']);
      expect(result.code).toBe(1);
      expect(result.stdout).toBe(`✗ ${id}: the trial restore differs from the backup: 0 views where the backup has 1\n`);
      // The archive itself is intact: the backup stays sound, its trial restore is reported as failed.
      expect((await p.run(['list'])).stdout).toContain(`sound, trial restore failed: the trial restore differs from the backup: 0 views where the backup has 1`);
    });
  });

  describe('restore', () => {
    it('over an existing database: without --yes exits 1 and changes nothing; with --yes backs it up, swaps, keeps the old one', async () => {
      const p = await project();
      const id = await p.create();
      // Change the data after the backup.
      await remoteQuery(p.db, "DELETE FROM orders; DELETE FROM items WHERE id > 1; INSERT INTO items VALUES (10, 'ten'), (11, 'eleven'), (12, 'twelve'), (13, 'x')");
      const databasesBefore = await remoteDatabases(p.db);

      const refused = await p.run(['restore', id]);
      expectCleanError(refused, 1);
      expect(refused.errLines.slice(-2)).toEqual([
        `error: restoring replaces database ${p.db} on remote staging: pass --yes to confirm`,
        '  hint: run it on a terminal to be asked instead',
      ]);
      expect(await remoteDatabases(p.db)).toEqual(databasesBefore);
      expect((await p.list()).map((backup) => backup.id)).toEqual([id]);
      expect(await count(p.db, 'items')).toBe(5);

      const result = await p.run(['restore', id, '--yes']);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout + result.stderr).not.toContain(PASSWORD);
      const backups = await p.list();
      expect(backups).toHaveLength(2);
      const pre = backups.find((backup) => backup.id !== id)!;
      expect(pre).toMatchObject({ reason: 'pre-restore', database: p.db, remote: 'staging' });
      // The pre-restore backup holds the data as it was just before.
      expect(pre.rows).toEqual([
        { schema: 'public', table: 'items', rows: 5 },
        { schema: 'public', table: 'orders', rows: 0 },
      ]);
      expect(result.stderr).toContain(`restored ${id} into ${p.db} on staging (swap)`);
      expect(result.stderr).toContain(`  the database as it was: backup ${pre.id}\n`);
      const kept = new RegExp(`the replaced database is kept as (${p.db}__dbfast_prev_\\d{14}),`).exec(result.stderr)?.[1];
      expect(kept).toBeDefined();

      expect(await remoteQuery(p.db, 'SELECT id, name FROM items ORDER BY id')).toEqual([
        { id: 1, name: 'one' },
        { id: 2, name: 'two' },
        { id: 3, name: 'three' },
      ]);
      expect(await count(p.db, 'orders')).toBe(2);
      // The old database is kept, as it was, refusing connections.
      const previous = await remoteQuery<{ datname: string; datallowconn: boolean }>('postgres', `SELECT datname, datallowconn FROM pg_database WHERE datname LIKE '${p.db}\\_\\_%'`);
      expect(previous).toEqual([{ datname: kept, datallowconn: false }]);
      expect(pre.id).toMatch(ID);
      const list = await p.run(['list']);
      expect(list.stdout).toContain(`${pre.id}\tstaging/${p.db}\t`);
      expect(list.stdout).toMatch(/\tpre-restore\tsound\n/);
    });

    it('--json prints the result as data', async () => {
      const p = await project();
      const id = await p.create();
      const result = await p.run(['restore', id, '--yes', '--json']);
      expect(result.code, result.stderr).toBe(0);
      const restored = JSON.parse(result.stdout) as { id: string; database: string; method: string; previous: string; preRestoreBackup: string };
      expect(restored).toMatchObject({ id, remote: 'staging', database: p.db, method: 'swap' });
      expect(restored.previous).toMatch(new RegExp(`^${p.db}__dbfast_prev_\\d{14}$`));
      expect(restored.preRestoreBackup).toMatch(ID);
    });

    it('--to-database NEWNAME creates a new database without asking and takes no pre-restore backup', async () => {
      const p = await project();
      const id = await p.create();
      const target = `${p.db}_copy`;
      const result = await p.run(['restore', id, '--to-database', target]);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stderr).toContain(`restored ${id} into ${target} on staging (created)`);
      expect(result.stderr).not.toContain('the database as it was');
      expect(result.stderr).not.toContain('kept as');
      expect(await count(target, 'items')).toBe(3);
      expect(await count(target, 'orders')).toBe(2);
      expect((await p.list()).map((backup) => backup.id)).toEqual([id]);
      // The source is untouched, and no scratch database is left.
      expect(await remoteDatabases(p.db)).toEqual([p.db, target]);

      const invalid = await p.run(['restore', id, '--to-database', 'bad"name']);
      expectCleanError(invalid, 2);
    });
  });

  describe('prune', () => {
    it('--keep-last 1 --dry-run lists what would go and removes nothing; without it removes them and says what was freed', async () => {
      const p = await project();
      const oldest = await p.create();
      const middle = await p.create();
      const newest = await p.create();
      const files = (await readdir(p.backups)).sort();
      expect(files).toHaveLength(6);

      const dry = await p.run(['prune', '--keep-last', '1', '--dry-run', '--remote', 'staging']);
      expect(dry.code, dry.stderr).toBe(0);
      const wouldRemove = dry.stdout.split('\n').filter((line) => line.startsWith('would remove '));
      expect(wouldRemove.map((line) => line.split('\t')[0])).toEqual([`would remove ${middle}`, `would remove ${oldest}`]);
      expect(wouldRemove.every((line) => line.split('\t')[1] === `staging/${p.db}`)).toBe(true);
      expect(dry.stderr).toMatch(/would remove 2 backups, .+ would be freed; 1 kept/);
      expect((await readdir(p.backups)).sort()).toEqual(files);

      const result = await p.run(['prune', '--keep-last', '1', '--remote', 'staging']);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout.split('\n').filter((line) => line.startsWith('removed ')).map((line) => line.split('\t')[0])).toEqual([`removed ${middle}`, `removed ${oldest}`]);
      const freed = /removed 2 backups, (.+) freed; 1 kept/.exec(result.stderr)?.[1];
      expect(freed).toMatch(/\d/);
      expect((await readdir(p.backups)).sort()).toEqual([`${newest}.dump`, `${newest}.json`]);
      expect((await p.list()).map((backup) => backup.id)).toEqual([newest]);
    });

    it('keeps the newest sound backup even when the rules would remove it', async () => {
      const p = await project();
      const sound = await p.create();
      const damaged = await p.create();
      const path = join(p.backups, `${damaged}.dump`);
      const handle = await open(path, 'r+');
      await handle.write(Buffer.from([0x00, 0x01, 0x02]), 0, 3, 100);
      await handle.close();
      expect((await p.run(['verify', damaged])).code).toBe(1);
      const result = await p.run(['prune', '--keep-last', '1', '--remote', 'staging', '--json']);
      expect(result.code, result.stderr).toBe(0);
      const pruned = JSON.parse(result.stdout) as { removed: string[]; kept: string[]; protected: { id: string; why: string }[] };
      expect(pruned.removed).toEqual([]);
      expect(pruned.kept.sort()).toEqual([sound, damaged].sort());
      expect(pruned.protected).toEqual([{ id: sound, why: `the only sound backup of staging/${p.db}` }]);
    });

    it('with no rule given and none configured exits 2', async () => {
      const p = await project();
      await p.create();
      const result = await p.run(['prune']);
      expectCleanError(result, 2);
      expect(result.errLines.slice(-2)).toEqual([
        'error: nothing to prune by: give --keep-last or --older-than',
        '  hint: or set keep_last and max_age in [backups] of dbfast.toml',
      ]);
      expect(await p.list()).toHaveLength(1);
    });
  });
});
