/**
 * `dbfast deploy` killed with SIGKILL (its whole process group, pg_dump and pg_restore included)
 * at several points: the remote is left untouched, or in the recorded state of a finished
 * non-transactional step, and the next deploy recovers.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { userSnapshot } from '../helpers/catalog.js';
import { CLI, cliEnv, dropTemplateAndClones, runCli, testServerUrl, uniqueName } from '../helpers/cli.js';
import { query, untilBackend } from '../helpers/database.js';
import { hasPgTools } from '../helpers/pg-tools.js';
import { tempRepo, writeFiles } from '../helpers/repo.js';
import { startServer, type TestServer } from '../helpers/server.js';

const run = randomBytes(3).toString('hex');
const whole = `whole_${run}`;
const live = `live_${run}`;
let remote: TestServer;
let root: string;
let template: string;

/** Sleeps as long as the remote's role says (`dbfast_test.sleep`), which the local server never sets. */
const SLEEP = "SELECT pg_sleep(coalesce(nullif(current_setting('dbfast_test.sleep', true), ''), '0')::float)";

const remoteQuery = (database: string, sql: string) => query(database, sql, remote.port);
const dbfast = (args: string[]) => runCli(args, { cwd: root });


/** Starts `dbfast deploy` in a process group of its own, so that SIGKILL reaches its pg_dump and pg_restore too. */
function startDeploy(args: string[]): ChildProcess {
  return spawn(process.execPath, [CLI, 'deploy', ...args], { cwd: root, env: cliEnv(), stdio: 'ignore', detached: true });
}

async function killGroup(child: ChildProcess): Promise<void> {
  const exited = new Promise((done) => child.once('exit', done));
  process.kill(-child.pid!, 'SIGKILL');
  await exited;
}


/** The server notices a killed client by itself (client_connection_check_interval) or, here, is told to. */
async function endSleepers(): Promise<void> {
  await remoteQuery('postgres', "ALTER ROLE postgres RESET dbfast_test.sleep");
  await remoteQuery('postgres', "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep%' AND pid <> pg_backend_pid()");
}

beforeAll(async () => {
  remote = await startServer();
  template = uniqueName('kill');
  root = await tempRepo({
    'dbfast.toml': `[database]
url = "${testServerUrl()}"
template_name = "${template}"

[environments.app]

[remotes.whole]
url = "postgresql://postgres@127.0.0.1:${remote.port}/${whole}"
environment = "app"
allow_destructive = true

[remotes.live]
url = "postgresql://postgres@127.0.0.1:${remote.port}/${live}"
environment = "app"

[validation]
test_queries = ["${SLEEP}"]
`,
    'db/0_schema/01_items.sql': 'CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);\n',
    'db/1_seed/01_items.sql': "INSERT INTO items VALUES (1, 'one');\n",
  });
  for (const remoteName of ['whole', 'live']) {
    const first = await dbfast(['deploy', remoteName]);
    expect(first.code, first.stderr).toBe(0);
  }
  await remoteQuery(live, "INSERT INTO items VALUES (2, 'written on the remote')");
  await remoteQuery(whole, "INSERT INTO items VALUES (2, 'written on the remote')");
}, 120_000);

afterAll(async () => {
  await remote?.stop();
  if (template) await dropTemplateAndClones(template);
  if (root) await rm(root, { recursive: true, force: true });
});

describe.skipIf(!hasPgTools)('deploy killed with SIGKILL', () => {
  it('while pg_dump takes the pre-deploy backup: the remote is untouched, no backup is listed, the next deploy goes through', async () => {
    await writeFiles(root, { 'db/1_seed/02_more.sql': "INSERT INTO items VALUES (3, 'three');\n" });
    const before = await userSnapshot(whole, remote.port);
    const holder = new pg.Client({ host: '127.0.0.1', port: remote.port, user: 'postgres', database: whole });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE items IN ACCESS EXCLUSIVE MODE');
      const deploying = startDeploy(['whole']);
      await untilBackend(`datname = '${whole}' AND application_name LIKE 'dbfast backup %' AND wait_event_type = 'Lock'`, { port: remote.port });
      await killGroup(deploying);
    } finally {
      await holder.end();
    }
    expect(await userSnapshot(whole, remote.port)).toEqual(before);
    const listed = await dbfast(['backup', 'list', '--remote', 'whole', '--json']);
    expect(JSON.parse(listed.stdout)).toEqual([]);
    const next = await dbfast(['deploy', 'whole']);
    expect(next.code, next.stderr).toBe(0);
    expect(await remoteQuery(whole, 'SELECT id FROM items ORDER BY id')).toEqual([{ id: 1 }, { id: 3 }]);
  });

  it('while the replacing database is checked beside the target: the remote is untouched, the next deploy goes through', async () => {
    await writeFiles(root, { 'db/1_seed/03_four.sql': "INSERT INTO items VALUES (4, 'four');\n" });
    const before = await userSnapshot(whole, remote.port);
    await remoteQuery('postgres', "ALTER ROLE postgres SET dbfast_test.sleep = '60'");
    const deploying = startDeploy(['whole']);
    try {
      await untilBackend("datname LIKE '%\\_\\_dbfast\\_restore\\_%' AND query LIKE '%pg_sleep%' AND state = 'active'", { port: remote.port });
      await killGroup(deploying);
    } finally {
      await endSleepers();
    }
    expect(await userSnapshot(whole, remote.port)).toEqual(before);
    const next = await dbfast(['deploy', 'whole']);
    expect(next.code, next.stderr).toBe(0);
    expect(await remoteQuery(whole, 'SELECT id FROM items ORDER BY id')).toEqual([{ id: 1 }, { id: 3 }, { id: 4 }]);
    // What the killed deploy left beside the target is found and removed.
    const pruned = await dbfast(['backup', 'prune', '--remote', 'whole', '--keep-last', '10', '--json']);
    expect(pruned.code, pruned.stderr).toBe(0);
    expect(await remoteQuery('postgres', "SELECT datname FROM pg_database WHERE datname LIKE '%\\_\\_dbfast\\_restore\\_%'")).toEqual([]);
  });

  it("in the middle of a migrate deploy's transaction: the server rolls it back by itself, the remote is untouched, the next deploy applies the files", async () => {
    await writeFiles(root, { 'db/0_schema/02_tags.sql': `CREATE TABLE tags (name text PRIMARY KEY);\n${SLEEP};\nINSERT INTO tags VALUES ('new');\n` });
    const before = await userSnapshot(live, remote.port);
    await remoteQuery('postgres', "ALTER ROLE postgres SET dbfast_test.sleep = '60'");
    const deploying = startDeploy(['live']);
    try {
      await untilBackend(`datname = '${live}' AND query LIKE '%pg_sleep%' AND state = 'active'`, { port: remote.port });
      await killGroup(deploying);
      // client_connection_check_interval: the server ends the dead client's statement, and its transaction, within seconds.
      await untilBackend(`datname = '${live}' AND query LIKE '%pg_sleep%'`, { port: remote.port, gone: true });
    } finally {
      await endSleepers();
    }
    expect(await userSnapshot(live, remote.port)).toEqual(before);
    expect(await remoteQuery(live, "SELECT count(*)::int AS n FROM dbfast.deployments WHERE outcome <> 'succeeded'")).toEqual([{ n: 0 }]);
    const next = await dbfast(['deploy', 'live']);
    expect(next.code, next.stderr).toBe(0);
    expect(await remoteQuery(live, 'SELECT name FROM tags')).toEqual([{ name: 'new' }]);
    // The remote's own rows are still there: migrate never replaces data.
    expect(await remoteQuery(live, 'SELECT id FROM items ORDER BY id')).toEqual([{ id: 1 }, { id: 2 }, { id: 3 }, { id: 4 }]);
  });

  it('inside a step that runs outside a transaction: the state is recorded, and the next deploy marks the killed one interrupted and runs the step again', async () => {
    await writeFiles(root, { 'db/0_schema/03_index.sql': `CREATE INDEX CONCURRENTLY IF NOT EXISTS items_name ON items (name);\n${SLEEP};\n` });
    await remoteQuery('postgres', "ALTER ROLE postgres SET dbfast_test.sleep = '60'");
    const deploying = startDeploy(['live']);
    try {
      await untilBackend(`datname = '${live}' AND query LIKE '%pg_sleep%' AND state = 'active'`, { port: remote.port });
      await killGroup(deploying);
    } finally {
      await endSleepers();
    }
    expect(await remoteQuery(live, "SELECT path, success FROM dbfast.applied_files WHERE path = '0_schema/03_index.sql'")).toEqual([{ path: '0_schema/03_index.sql', success: false }]);
    expect(await remoteQuery(live, "SELECT outcome FROM dbfast.deployments ORDER BY started_at DESC LIMIT 1")).toEqual([{ outcome: 'running' }]);
    const plan = await dbfast(['deploy', 'live', '--dry-run', '--json']);
    expect(JSON.parse(plan.stdout).files).toEqual(['0_schema/03_index.sql']);
    const shown = await dbfast(['deploy', 'live', '--dry-run']);
    expect(shown.stdout).toContain('mode          migrate: 1 new file in 1 step, its data kept');
    expect(shown.stdout).toContain('step 1        outside a transaction: create index concurrently at db/0_schema/03_index.sql:1:1');

    const next = await dbfast(['deploy', 'live']);
    expect(next.code, next.stderr).toBe(0);
    expect(await remoteQuery(live, "SELECT success FROM dbfast.applied_files WHERE path = '0_schema/03_index.sql'")).toEqual([{ success: true }]);
    const outcomes = await remoteQuery(live, 'SELECT outcome FROM dbfast.deployments ORDER BY started_at');
    expect(outcomes.map((row) => row.outcome)).toEqual(['succeeded', 'succeeded', 'interrupted', 'succeeded']);
    const history = await dbfast(['deploy', 'history', 'live']);
    expect(history.stdout).toContain('interrupted');
  });
});
