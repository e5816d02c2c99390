/**
 * Migrate-mode deploys against a second real server: only new files run, in one transaction, with
 * [validation] and the schema check before it commits; a file that cannot run in a transaction is
 * a step of its own, recorded before and after.
 */
import { randomBytes } from 'node:crypto';
import { rm, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listBackups } from '../../src/core/backup/store.js';
import { type DbfastConfig, loadConfig } from '../../src/core/config/index.js';
import { type DeployPlan, type DeployResult, deploy } from '../../src/core/deploy.js';
import { deployHistory } from '../../src/core/deployments.js';
import { rollbackDeploy } from '../../src/core/rollback.js';
import { userSnapshot } from '../helpers/catalog.js';
import { dropTemplateAndClones, testServerUrl, uniqueName } from '../helpers/cli.js';
import { query, untilBackend } from '../helpers/database.js';
import { failure } from '../helpers/failure.js';
import { hasPgTools } from '../helpers/pg-tools.js';
import { tempRepo, writeFiles } from '../helpers/repo.js';
import { startServer, type TestServer } from '../helpers/server.js';

const run = randomBytes(3).toString('hex');
const database = `live_${run}`;
let remote: TestServer;
let root: string;
let template: string;
let config: DbfastConfig;

const remoteQuery = (sql: string) => query(database, sql, remote.port);


async function migrate(options: Parameters<typeof deploy>[2] = {}): Promise<DeployResult> {
  return (await deploy(config, 'live', { mode: 'migrate', ...options })) as DeployResult;
}

const applied = async () => (await remoteQuery('SELECT path, success FROM dbfast.applied_files ORDER BY path')).map((row) => `${row.path}${row.success ? '' : ' (unfinished)'}`);

beforeAll(async () => {
  remote = await startServer();
  await query('postgres', `CREATE ROLE limited_${run} LOGIN NOCREATEDB`, remote.port);
  template = uniqueName('migrate');
  root = await tempRepo({
    'dbfast.toml': `[database]
url = "${testServerUrl()}"
template_name = "${template}"

[environments.app]
exclude_directories = ["9_dev"]

[remotes.live]
url = "postgresql://postgres@127.0.0.1:${remote.port}/${database}"
environment = "app"

[remotes.limited]
url = "postgresql://limited_${run}@127.0.0.1:${remote.port}/${database}"
environment = "app"

[deploy]
lock_timeout = "300ms"
lock_retries = 1
`,
    'db/0_schema/01_accounts.sql': 'CREATE TABLE accounts (id int PRIMARY KEY, name text NOT NULL);\n',
    'db/9_dev/01_seed.sql': "INSERT INTO accounts VALUES (1000, 'developer');\n",
  });
  config = await loadConfig({ cwd: root });
}, 60_000);

afterAll(async () => {
  await remote?.stop();
  if (template) await dropTemplateAndClones(template);
  if (root) await rm(root, { recursive: true, force: true });
});

describe.skipIf(!hasPgTools)('deploy, migrate mode', () => {
  it('a new database is created whole (replace), its files recorded; the environment\'s exclusions never reach it', async () => {
    const plan = (await deploy(config, 'live', { dryRun: true })) as DeployPlan;
    expect(plan).toMatchObject({ mode: 'replace', destructive: false, files: ['0_schema/01_accounts.sql'] });
    const first = (await deploy(config, 'live', {})) as DeployResult;
    expect(first.method).toBe('created');
    expect(await applied()).toEqual(['0_schema/01_accounts.sql']);
    expect(await remoteQuery('SELECT count(*)::int AS n FROM accounts')).toEqual([{ n: 0 }]);
  });

  it('then migrate is the default (allow_destructive is false), and applies only the new files, keeping the remote\'s data', async () => {
    await remoteQuery("INSERT INTO accounts VALUES (1, 'customer')");
    await writeFiles(root, {
      'db/0_schema/02_orders.sql': 'CREATE TABLE orders (id int PRIMARY KEY, account int REFERENCES accounts);\n',
      'db/1_data/01_plans.sql': "BEGIN;\nCREATE TABLE plans (name text PRIMARY KEY);\nINSERT INTO plans VALUES ('free');\nCOMMIT;\n",
    });
    const plan = (await deploy(config, 'live', { dryRun: true })) as DeployPlan;
    expect(plan).toMatchObject({
      mode: 'migrate',
      destructive: false,
      backup: true,
      files: ['0_schema/02_orders.sql', '1_data/01_plans.sql'],
      steps: [{ files: ['0_schema/02_orders.sql', '1_data/01_plans.sql'], transactional: true }],
      changed: [],
    });
    // What the remote's schema lacks, as a diff against the template's.
    expect(plan.changes).toContain('+ table public.orders: ');
    expect(plan.changes).toContain('+ constraint public.orders.orders_account_fkey: FOREIGN KEY (account) REFERENCES public.accounts(id)');
    expect(plan.changes!.every((line) => line.startsWith('+ '))).toBe(true);
    const result = await migrate();
    expect(result).toMatchObject({ method: 'migrate', files: ['0_schema/02_orders.sql', '1_data/01_plans.sql'], backupId: expect.any(String) });
    expect(await applied()).toEqual(['0_schema/01_accounts.sql', '0_schema/02_orders.sql', '1_data/01_plans.sql']);
    expect(await remoteQuery('SELECT id, name FROM accounts')).toEqual([{ id: 1, name: 'customer' }]);
    // The file's own BEGIN and COMMIT became a savepoint of the deploy's transaction.
    expect(await remoteQuery('SELECT name FROM plans')).toEqual([{ name: 'free' }]);
    const rows = await remoteQuery(`SELECT mode, outcome, finished_at IS NOT NULL AS finished, backup_id FROM dbfast.deployments WHERE id = '${result.id}'`);
    expect(rows).toEqual([{ mode: 'migrate', outcome: 'succeeded', finished: true, backup_id: result.backupId }]);
    const times = await remoteQuery("SELECT execution_ms >= 0 AS timed FROM dbfast.applied_files WHERE path = '0_schema/02_orders.sql'");
    expect(times).toEqual([{ timed: true }]);

    // Nothing new: nothing to apply, and no backup taken for it.
    const again = await migrate();
    expect(again).toMatchObject({ files: [], steps: [], backup: false });
    expect(again.backupId).toBeUndefined();
  });

  it('a file failing half-way leaves the remote exactly as it was, and the writes another session made meanwhile stay', async () => {
    const before = await userSnapshot(database, remote.port);
    await writeFiles(root, {
      // Its own COMMIT must not commit the deploy's transaction.
      'db/0_schema/03_invoices.sql': 'BEGIN;\nCREATE TABLE invoices (id int PRIMARY KEY);\nINSERT INTO invoices VALUES (1);\nCOMMIT;\n',
      // Runs on the template (no accounts there), fails on the remote's data.
      'db/1_data/02_broken.sql': "SELECT pg_sleep(1.5);\nINSERT INTO plans VALUES ('pro');\nALTER TABLE accounts ADD CONSTRAINT no_customers CHECK (name <> 'customer');\n",
    });
    try {
      const deploying = failure(migrate());
      // While the deploy's transaction runs, the application writes to a table it does not lock.
      await untilBackend("query LIKE '%pg_sleep%' AND state = 'active'", { port: remote.port });
      await remoteQuery("INSERT INTO accounts VALUES (2, 'written during the deploy')");
      const error = await deploying;
      expect(error).toMatchObject({ code: 'SQL_FAILED', file: 'db/1_data/02_broken.sql', line: 3, sqlState: '23514' });
      expect(error.hint).toContain("nothing was changed on remote live: the deploy's transaction was rolled back");
      const after = await userSnapshot(database, remote.port);
      const written = after.tables.find((table) => table.name === 'public.accounts')!;
      expect(written.rows).toBe(2);
      expect({ ...after, tables: after.tables.filter((table) => table !== written) }).toEqual({ ...before, tables: before.tables.filter((table) => table.name !== 'public.accounts') });
      expect(await applied()).toEqual(['0_schema/01_accounts.sql', '0_schema/02_orders.sql', '1_data/01_plans.sql']);
      // The failure is recorded on the remote, with where it happened.
      const history = await deployHistory(config, 'live');
      expect(history.source).toBe('remote');
      expect(history.deployments.at(-1)).toMatchObject({ mode: 'migrate', outcome: 'failed', error: 'db/1_data/02_broken.sql:3:1: check constraint "no_customers" of relation "accounts" is violated by some row' });
    } finally {
      await unlink(join(root, 'db/1_data/02_broken.sql'));
    }
  });

  it('a [validation] failure rolls the deploy back', async () => {
    const before = await userSnapshot(database, remote.port);
    // Passes on the template's build database, fails on the remote's.
    const strict: DbfastConfig = { ...config, validation: { ...config.validation, testQueries: [{ query: "SELECT 1 WHERE current_database() NOT LIKE 'live\\_%'", minExpectedResults: 1 }] } };
    const error = await failure(deploy(strict, 'live', { mode: 'migrate' }));
    expect(error.code).toBe('VALIDATION_FAILED');
    expect(error.message).toMatch(/^the deployed database fails \[validation\]: test query returned 0 rows/);
    expect(error.hint).toContain("nothing was changed on remote live: the deploy's transaction was rolled back");
    expect(await userSnapshot(database, remote.port)).toEqual(before);
  });

  it('a deferred constraint that fails at COMMIT is reported like a failing file: SQL_FAILED, nothing changed', async () => {
    const before = await userSnapshot(database, remote.port);
    // No accounts in the template, so nothing to check there; on the remote, account 3 does not exist.
    await writeFiles(root, { 'db/1_data/03_refs.sql': 'CREATE TABLE refs (account int REFERENCES accounts DEFERRABLE INITIALLY DEFERRED);\nINSERT INTO refs SELECT id + 1 FROM accounts;\n' });
    try {
      const error = await failure(migrate());
      expect(error).toMatchObject({ code: 'SQL_FAILED', sqlState: '23503', message: 'insert or update on table "refs" violates foreign key constraint "refs_account_fkey"' });
      expect(error.hint).toContain("nothing was changed on remote live: the deploy's transaction was rolled back");
      expect(await userSnapshot(database, remote.port)).toEqual(before);
    } finally {
      await unlink(join(root, 'db/1_data/03_refs.sql'));
    }
  });

  it('drift made by hand on the remote fails the deploy before it commits, with a readable diff; --allow-drift goes on', async () => {
    await remoteQuery('ALTER TABLE accounts ADD COLUMN nickname text');
    const before = await userSnapshot(database, remote.port);
    const error = await failure(migrate());
    expect(error.code).toBe('DRIFT');
    expect(error.message).toBe("the deployed schema differs from the template's in 1 object");
    expect(error.detail).toBe('+ column public.accounts.nickname: text');
    expect(error.hint).toContain("the deploy's transaction was rolled back");
    expect(await userSnapshot(database, remote.port)).toEqual(before);

    const warnings: string[] = [];
    const result = await migrate({ allowDrift: true, onWarning: (message) => warnings.push(message) });
    expect(result.files).toEqual(['0_schema/03_invoices.sql']);
    expect(warnings).toContainEqual(expect.stringContaining('+ column public.accounts.nickname: text'));
    await remoteQuery('ALTER TABLE accounts DROP COLUMN nickname');
  });

  it('a file that cannot run in a transaction is a step of its own; a failure after it leaves a recorded state the next deploy continues from', async () => {
    await writeFiles(root, {
      'db/0_schema/04_index.sql': 'CREATE INDEX CONCURRENTLY IF NOT EXISTS accounts_name ON accounts (name);\n',
      'db/0_schema/05_tags.sql': "CREATE TABLE tags (name text PRIMARY KEY);\nALTER TABLE accounts ADD CONSTRAINT no_customers CHECK (name <> 'customer');\n",
    });
    const plan = (await deploy(config, 'live', { dryRun: true })) as DeployPlan;
    expect(plan.steps).toEqual([
      { files: ['0_schema/04_index.sql'], transactional: false, reason: 'create index concurrently at db/0_schema/04_index.sql:1:1' },
      { files: ['0_schema/05_tags.sql'], transactional: true },
    ]);
    const error = await failure(migrate());
    expect(error).toMatchObject({ code: 'SQL_FAILED', file: 'db/0_schema/05_tags.sql', line: 2 });
    expect(error.hint).toContain('1 file of this deploy is applied and recorded on remote live (up to 0_schema/04_index.sql)');
    expect(error.hint).toMatch(/fix the failing file and deploy again to continue, or dbfast backup restore \S+ --yes puts back the remote as it was before this deploy \(losing writes made since\)$/);
    expect(await applied()).toContain('0_schema/04_index.sql');
    expect(await remoteQuery("SELECT indexname FROM pg_indexes WHERE indexname = 'accounts_name'")).toHaveLength(1);
    expect(await remoteQuery("SELECT to_regclass('tags') AS tags")).toEqual([{ tags: null }]);

    await writeFile(join(root, 'db/0_schema/05_tags.sql'), "CREATE TABLE tags (name text PRIMARY KEY);\nINSERT INTO tags VALUES ('new');\n");
    const continued = await migrate();
    expect(continued.files).toEqual(['0_schema/05_tags.sql']);
    expect(await remoteQuery('SELECT name FROM tags')).toEqual([{ name: 'new' }]);
  });

  it('an index CREATE INDEX CONCURRENTLY left invalid is never recorded as applied, even when IF NOT EXISTS skips it the next time', async () => {
    await remoteQuery("INSERT INTO accounts VALUES (3, 'customer')");
    await writeFiles(root, { 'db/0_schema/05b_unique.sql': 'CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS accounts_name_unique ON accounts (name);\n' });
    const duplicate = await failure(migrate());
    expect(duplicate).toMatchObject({ code: 'SQL_FAILED', sqlState: '23505', file: 'db/0_schema/05b_unique.sql' });
    expect(duplicate.hint).toContain('0_schema/05b_unique.sql ran outside a transaction and may be partly applied');
    await remoteQuery('DELETE FROM accounts WHERE id = 3');
    const skipped = await failure(migrate());
    expect(skipped).toMatchObject({ message: 'after db/0_schema/05b_unique.sql, the database has 1 invalid index: accounts_name_unique', file: 'db/0_schema/05b_unique.sql' });
    expect(skipped.hint).toMatch(/^a CREATE INDEX CONCURRENTLY that failed or was stopped leaves its index invalid, and IF NOT EXISTS then skips it: DROP INDEX CONCURRENTLY accounts_name_unique, then deploy again/);
    expect(await applied()).toContain('0_schema/05b_unique.sql (unfinished)');
    await remoteQuery('DROP INDEX accounts_name_unique');
    expect((await migrate()).files).toEqual(['0_schema/05b_unique.sql']);
    expect(await applied()).toContain('0_schema/05b_unique.sql');
  });

  it('an applied file whose content changed is reported, not applied again; --strict refuses', async () => {
    await writeFile(join(root, 'db/0_schema/02_orders.sql'), 'CREATE TABLE orders (id bigint PRIMARY KEY, account int REFERENCES accounts);\n');
    try {
      const warnings: string[] = [];
      const plan = (await deploy(config, 'live', { dryRun: true, onWarning: (message) => warnings.push(message) })) as DeployPlan;
      const today = new Date().toISOString().slice(0, 10);
      expect(plan.changed).toEqual([{ path: '0_schema/02_orders.sql', appliedAt: expect.stringMatching(new RegExp(`^${today}`)) }]);
      expect(plan.files).toEqual([]);
      const strict = await failure(migrate({ strict: true }));
      expect(strict).toMatchObject({ code: 'DRIFT', message: `1 file changed since applied on remote live (--strict): 0_schema/02_orders.sql (applied ${today})` });
      // Without --strict the deploy goes on; the template's schema now differs (bigint), which the drift check reports.
      const drift = await failure(migrate({ onWarning: (message) => warnings.push(message) }));
      expect(warnings).toContain(`0_schema/02_orders.sql changed since it was applied on ${today}: not applied again (--strict refuses)`);
      expect(drift.detail).toContain('~ column public.orders.id');
    } finally {
      await writeFile(join(root, 'db/0_schema/02_orders.sql'), 'CREATE TABLE orders (id int PRIMARY KEY, account int REFERENCES accounts);\n');
    }
  });

  it('a file adding an enum value ends its step: the next file, in a transaction of its own, can use the value', async () => {
    await writeFiles(root, { 'db/0_schema/07_mood.sql': "CREATE TYPE mood AS ENUM ('ok');\n" });
    await migrate();
    await writeFiles(root, {
      'db/0_schema/08_mood_great.sql': "ALTER TYPE mood ADD VALUE 'great';\n",
      'db/0_schema/09_feelings.sql': "CREATE TABLE feelings (m mood NOT NULL DEFAULT 'great');\nINSERT INTO feelings DEFAULT VALUES;\n",
    });
    const plan = (await deploy(config, 'live', { dryRun: true })) as DeployPlan;
    expect(plan.steps).toEqual([
      { files: ['0_schema/08_mood_great.sql'], transactional: true },
      { files: ['0_schema/09_feelings.sql'], transactional: true },
    ]);
    expect((await migrate()).files).toEqual(['0_schema/08_mood_great.sql', '0_schema/09_feelings.sql']);
    expect(await remoteQuery('SELECT m::text FROM feelings')).toEqual([{ m: 'great' }]);
  });

  it('with allow_destructive = false, files that drop a table or a column are rolled back; a rename keeps the data and goes through', async () => {
    await writeFiles(root, {
      'db/2_later/03_rename.sql': 'ALTER TABLE plans RENAME COLUMN name TO title;\nALTER TABLE invoices RENAME TO bills;\n',
      'db/2_later/04_drop.sql': 'DROP TABLE tags;\nALTER TABLE accounts DROP COLUMN name;\n',
    });
    const before = await userSnapshot(database, remote.port);
    const error = await failure(migrate());
    expect(error).toMatchObject({
      code: 'DESTRUCTIVE_REFUSED',
      message: '2_later/03_rename.sql, 2_later/04_drop.sql would drop column public.accounts.name, table public.tags on remote live, with the data: allow_destructive is false for remote live',
    });
    expect(error.hint).toContain("nothing was changed on remote live: the deploy's transaction was rolled back");
    expect(await userSnapshot(database, remote.port)).toEqual(before);

    await unlink(join(root, 'db/2_later/04_drop.sql'));
    // Outside a transaction nothing could take a drop back: refused before the file runs.
    await writeFiles(root, { 'db/2_later/04_index_drop.sql': 'CREATE INDEX CONCURRENTLY bills_id ON bills (id);\nDROP TABLE tags;\n' });
    try {
      const outside = await failure(migrate());
      expect(outside).toMatchObject({
        code: 'DESTRUCTIVE_REFUSED',
        message: '2_later/04_index_drop.sql runs outside a transaction and drops data (drop table tags at line 2): allow_destructive is false for remote live',
      });
      expect(await remoteQuery("SELECT to_regclass('bills_id') AS index, to_regclass('tags') AS tags")).toEqual([{ index: null, tags: 'tags' }]);
    } finally {
      await unlink(join(root, 'db/2_later/04_index_drop.sql'));
    }
    expect((await migrate()).files).toEqual(['2_later/03_rename.sql']);
    expect(await remoteQuery('SELECT title FROM plans')).toEqual([{ title: 'free' }]);
    expect(await remoteQuery('SELECT id FROM bills')).toEqual([{ id: 1 }]);
  });

  it('a statement waiting for a lock the application holds gives up after lock_timeout, retries, then goes through', async () => {
    await writeFiles(root, { 'db/2_later/10_alter.sql': 'ALTER TABLE accounts ADD COLUMN email text;\n' });
    const holder = new pg.Client({ host: '127.0.0.1', port: remote.port, user: 'postgres', database });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT count(*) FROM accounts');
      // Held for good: the one retry times out too, and nothing changed.
      const warnings: string[] = [];
      const error = await failure(migrate({ onWarning: (message) => warnings.push(message) }));
      expect(error).toMatchObject({ code: 'SQL_FAILED', sqlState: '55P03', file: 'db/2_later/10_alter.sql' });
      expect(warnings).toEqual(['db/2_later/10_alter.sql:1 waited 300 ms for a lock the application holds: rolled back, retrying in 1 s (1 of 1)']);
      expect(await remoteQuery("SELECT count(*)::int AS n FROM information_schema.columns WHERE column_name = 'email'")).toEqual([{ n: 0 }]);

      // Released while the deploy waits to retry: the retry goes through.
      const retried: string[] = [];
      const deploying = migrate({
        onWarning: (message) => {
          retried.push(message);
          void holder.query('COMMIT');
        },
      });
      const result = await deploying;
      expect(retried).toHaveLength(1);
      expect(result.files).toEqual(['2_later/10_alter.sql']);
    } finally {
      await holder.end();
    }
  });

  it('a remote that fails `dbfast remote test` is refused before anything is asked or changed', async () => {
    const plan = (await deploy(config, 'limited', { dryRun: true })) as DeployPlan;
    expect(plan.refused).toMatch(new RegExp(`^remote limited is not ready for a deploy: limited_${run} lacks create databases \\(or own the database\\) and SELECT on \\d+ tables \\(`));
    const error = await failure(deploy(config, 'limited', { yes: true }));
    expect(error).toMatchObject({ code: 'REMOTE_NOT_READY', hint: expect.stringMatching(/^as a superuser: /) });
  });

  it('rollback of a migrate deploy restores its pre-deploy backup', async () => {
    const last = (await deployHistory(config, 'live')).deployments.filter((entry) => entry.outcome === 'succeeded').at(-1)!;
    expect(last.backupId).toEqual((await listBackups(config, { remote: 'live' }))[0]!.id);
    const back = await rollbackDeploy(config, 'live', { yes: true });
    expect(back).toMatchObject({ method: 'restore', deploy: last.id });
    expect(await remoteQuery("SELECT count(*)::int AS n FROM information_schema.columns WHERE column_name = 'email'")).toEqual([{ n: 0 }]);
  });
});

describe.skipIf(!hasPgTools)('deploy, migrate mode, onto a database made before dbfast deployed to it', () => {
  const legacy = `legacy_${run}`;
  let legacyRoot: string;
  let legacyTemplate: string;
  let legacyConfig: DbfastConfig;
  const legacyQuery = (sql: string) => query(legacy, sql, remote.port);

  beforeAll(async () => {
    legacyTemplate = uniqueName('legacy');
    legacyRoot = await tempRepo({
      'dbfast.toml': `[database]\nurl = "${testServerUrl()}"\ntemplate_name = "${legacyTemplate}"\n\n[environments.app]\n\n[remotes.legacy]\nurl = "postgresql://postgres@127.0.0.1:${remote.port}/${legacy}"\nenvironment = "app"\n`,
      'db/0_schema/10_users.sql': 'CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL);\n',
      'db/1_seed/10_users.sql': "INSERT INTO users VALUES (1, 'seed@example.com');\n",
    });
    legacyConfig = await loadConfig({ cwd: legacyRoot });
    await query('postgres', `CREATE DATABASE ${legacy}`, remote.port);
    await legacyQuery("CREATE TABLE users (id int PRIMARY KEY, email text); INSERT INTO users VALUES (42, 'customer@example.com')");
  }, 60_000);

  afterAll(async () => {
    if (legacyTemplate) await dropTemplateAndClones(legacyTemplate);
    if (legacyRoot) await rm(legacyRoot, { recursive: true, force: true });
  });

  it('refuses to run every file over tables it has no record of, and says how to adopt the database', async () => {
    const error = await failure(deploy(legacyConfig, 'legacy', {}));
    expect(error).toMatchObject({
      code: 'USAGE',
      message: `${legacy} on remote legacy has tables but records no applied file: migrate mode would run all 2 files over them`,
      hint: "if its schema is already the template's (dbfast diff legacy), --baseline records the files as applied; else replace it (--mode replace, with allow_destructive = true)",
    });
    expect(await legacyQuery("SELECT to_regclass('dbfast.applied_files') AS history")).toEqual([{ history: null }]);
  });

  it('--baseline records nothing while the schema differs from the template\'s, then records the files without running them', async () => {
    const forced = await failure(deploy(legacyConfig, 'legacy', { baseline: true, allowDrift: true }));
    expect(forced).toMatchObject({ code: 'USAGE', message: "--baseline records files as applied only when the remote's schema is the template's: it cannot go with --allow-drift" });
    const drift = await failure(deploy(legacyConfig, 'legacy', { baseline: true }));
    expect(drift).toMatchObject({ code: 'DRIFT', detail: '~ column public.users.email\n    - text not null\n    + text' });
    expect(await legacyQuery('SELECT count(*)::int AS n FROM dbfast.applied_files')).toEqual([{ n: 0 }]);

    const drifting = (await deploy(legacyConfig, 'legacy', { baseline: true, dryRun: true })) as DeployPlan;
    expect(drifting.refused).toBe("the remote's schema differs from the template's in 1 object (see changes): --baseline records nothing then");
    await legacyQuery('ALTER TABLE users ALTER COLUMN email SET NOT NULL');
    const plan = (await deploy(legacyConfig, 'legacy', { baseline: true, dryRun: true })) as DeployPlan;
    expect(plan).toMatchObject({ mode: 'migrate', baseline: true, files: ['0_schema/10_users.sql', '1_seed/10_users.sql'], steps: [], backup: false });
    const result = await migrateLegacy({ baseline: true });
    expect(result.files).toEqual(['0_schema/10_users.sql', '1_seed/10_users.sql']);
    expect(await legacyQuery('SELECT path FROM dbfast.applied_files ORDER BY path')).toEqual([{ path: '0_schema/10_users.sql' }, { path: '1_seed/10_users.sql' }]);
    // Recorded, not run: the seed row never arrived.
    expect(await legacyQuery('SELECT id FROM users')).toEqual([{ id: 42 }]);
  });

  it('a new file sorting before applied ones runs after them with a warning; --strict refuses', async () => {
    await writeFiles(legacyRoot, { 'db/0_schema/05_roles.sql': 'CREATE TABLE roles (name text PRIMARY KEY);\n' });
    const baseline = await failure(migrateLegacy({ baseline: true }));
    expect(baseline).toMatchObject({
      code: 'USAGE',
      message: `--baseline adopts a database that records no applied file, and ${legacy} on remote legacy records some: it would mark new files as applied without running them`,
    });
    const strict = await failure(migrateLegacy({ strict: true }));
    expect(strict).toMatchObject({ code: 'DRIFT', message: 'a new file sorts before files already applied on remote legacy (--strict): 0_schema/05_roles.sql' });
    const warnings: string[] = [];
    const result = await migrateLegacy({ onWarning: (message) => warnings.push(message) });
    expect(result.files).toEqual(['0_schema/05_roles.sql']);
    expect(warnings).toContain('0_schema/05_roles.sql is new but sorts before files already applied: it runs after them (--strict refuses)');
  });

  async function migrateLegacy(options: Parameters<typeof deploy>[2]): Promise<DeployResult> {
    return (await deploy(legacyConfig, 'legacy', options)) as DeployResult;
  }
});
