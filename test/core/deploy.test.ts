import { randomBytes } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pruneBackups } from '../../src/core/backup/prune.js';
import { listBackups } from '../../src/core/backup/store.js';
import { type DbfastConfig, loadConfig } from '../../src/core/config/index.js';
import { type DeployResult, deploy } from '../../src/core/deploy.js';
import { deploymentHistory } from '../../src/core/deployments.js';
import { Project } from '../../src/core/project.js';
import { probeRemotes } from '../../src/core/remote.js';
import { rollbackDeploy } from '../../src/core/rollback.js';
import { dropTemplateAndClones, runCli, STACK_FRAME, testServerUrl, uniqueName } from '../helpers/cli.js';
import { hasPgTools } from '../helpers/pg-tools.js';
import { tempRepo } from '../helpers/repo.js';
import { type ScramServer, startScramServer } from '../helpers/scram-server.js';
import { failure } from '../helpers/failure.js';

const PASSWORD = 'deploy-secret-5e1';
const run = randomBytes(3).toString('hex');
let remote: ScramServer;
let root: string;
let template: string;
let config: DbfastConfig;
const env = { REMOTE_PW: PASSWORD };

async function remoteQuery(database: string, sql: string) {
  const client = new pg.Client({ host: '127.0.0.1', port: remote.port, user: 'postgres', password: PASSWORD, database });
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

async function remoteDatabases(): Promise<string[]> {
  return (await remoteQuery('postgres', `SELECT datname FROM pg_database WHERE datname LIKE 'app\\_%' ORDER BY 1`)).map((row) => row.datname);
}

const remoteUrl = (database: string) => `postgresql://postgres@127.0.0.1:${remote.port}/${database}`;

beforeAll(async () => {
  remote = await startScramServer(PASSWORD);
  template = uniqueName('deploy');
  root = await tempRepo({
    'dbfast.toml': `[database]
url = "${testServerUrl()}"
template_name = "${template}"

[environments.local]
[environments.production]
include_directories = ["0_schema"]
[environments.staging]

[remotes.prod]
url = "${remoteUrl(`app_prod_${run}`)}"
password_env = "REMOTE_PW"
environment = "production"

[remotes.staging]
url = "${remoteUrl(`app_staging_${run}`)}"
password_env = "REMOTE_PW"
environment = "staging"
allow_destructive = true
`,
    'db/0_schema/01_items.sql': 'CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);\nCREATE INDEX items_name ON items (name);\n',
    'db/1_seed/01_items.sql': "INSERT INTO items VALUES (1, 'one');\n",
  });
  config = await loadConfig({ cwd: root, env });
}, 60_000);

afterAll(async () => {
  await remote?.stop();
  if (template) await dropTemplateAndClones(template);
  if (root) await rm(root, { recursive: true, force: true });
});

describe.skipIf(!hasPgTools)('deploy, replace mode', () => {
  it('--dry-run plans and changes nothing', async () => {
    const plan = await deploy(config, 'prod', { env, dryRun: true });
    expect(plan).toMatchObject({
      remote: 'prod',
      url: remoteUrl(`app_prod_${run}`),
      database: `app_prod_${run}`,
      environment: 'production',
      mode: 'replace',
      files: ['0_schema/01_items.sql'],
      destructive: false,
      backup: false,
      confirmation: true,
    });
    expect('id' in plan).toBe(false);
    expect(await remoteDatabases()).toEqual([]);
  });

  it('production asks for the remote\'s name typed back, and receives no seed data', async () => {
    const unasked = await failure(deploy(config, 'prod', { env }));
    expect(unasked).toMatchObject({ code: 'NOT_CONFIRMED', message: 'remote prod requires confirmation: pass --yes to deploy' });
    const refused = await failure(deploy(config, 'prod', { env, confirm: async () => false }));
    expect(refused.message).toBe('not confirmed: nothing was changed');
    expect(await remoteDatabases()).toEqual([]);

    const asked: string[] = [];
    const result = (await deploy(config, 'prod', {
      env,
      confirm: async (question, typed) => {
        asked.push(`${question} | ${typed}`);
        return true;
      },
    })) as DeployResult;
    expect(asked).toEqual([`deploy environment production to remote prod (${remoteUrl(`app_prod_${run}`)}); mode replace, nothing to replace, no backup | prod`]);
    expect(result).toMatchObject({ method: 'created', environment: 'production' });
    // The schema arrived; production's files exclude the seed folder, so no row did.
    expect(await remoteQuery(`app_prod_${run}`, 'SELECT count(*)::int AS n FROM items')).toEqual([{ n: 0 }]);
    expect(await remoteQuery(`app_prod_${run}`, 'SELECT id, environment, mode, outcome FROM dbfast.deployments')).toEqual([
      { id: result.id, environment: 'production', mode: 'replace', outcome: 'succeeded' },
    ]);
    expect(await remoteQuery(`app_prod_${run}`, 'SELECT path, deployment_id FROM dbfast.applied_files')).toEqual([{ path: '0_schema/01_items.sql', deployment_id: result.id }]);
    expect((await deploymentHistory(config, 'prod')).map((entry) => entry.id)).toEqual([result.id]);
  });

  it('refuses to replace a database with tables where allow_destructive is false, changing nothing', async () => {
    // Without --mode, such a remote gets migrate (only new files): replace must be asked for.
    const plan = await deploy(config, 'prod', { env, dryRun: true });
    expect(plan).toMatchObject({ mode: 'migrate', destructive: false, files: [] });
    const error = await failure(deploy(config, 'prod', { env, yes: true, mode: 'replace' }));
    expect(error).toMatchObject({
      code: 'DESTRUCTIVE_REFUSED',
      message: `deploying replaces app_prod_${run} on remote prod, whose tables and data would be lost: allow_destructive is false for remote prod`,
    });
    expect(await remoteDatabases()).toEqual([`app_prod_${run}`]);
    expect(await remoteQuery(`app_prod_${run}`, 'SELECT count(*)::int AS n FROM dbfast.deployments')).toEqual([{ n: 1 }]);
  });

  it('refuses another environment than the remote\'s unless forced', async () => {
    const error = await failure(deploy(config, 'staging', { env, environment: 'production', dryRun: true }));
    expect(error).toMatchObject({ code: 'USAGE', message: 'remote staging receives environment staging, not production' });
    const warnings: string[] = [];
    const plan = await deploy(config, 'staging', { env, environment: 'production', forceEnv: true, dryRun: true, onWarning: (message) => warnings.push(message) });
    expect(plan.environment).toBe('production');
    expect(warnings).toEqual(['deploying environment production to remote staging, which receives staging (--force-env)']);
  });

  it('replaces a database with data: backed up first, checked, swapped in, the old one kept, the history carried over', async () => {
    const first = (await deploy(config, 'staging', { env })) as DeployResult;
    expect(first.method).toBe('created');
    expect(await remoteQuery(`app_staging_${run}`, 'SELECT id, name FROM items ORDER BY id')).toEqual([{ id: 1, name: 'one' }]);
    await remoteQuery(`app_staging_${run}`, "INSERT INTO items VALUES (99, 'written on the remote')");
    await writeFile(join(root, 'db/1_seed/01_items.sql'), "INSERT INTO items VALUES (1, 'one'), (2, 'two');\n");

    const second = (await deploy(config, 'staging', { env })) as DeployResult;
    expect(second).toMatchObject({ method: 'swap', destructive: true, backup: true, previous: expect.stringMatching(new RegExp(`^app_staging_${run}__dbfast_prev_`)) });
    expect(await remoteQuery(`app_staging_${run}`, 'SELECT id, name FROM items ORDER BY id')).toEqual([
      { id: 1, name: 'one' },
      { id: 2, name: 'two' },
    ]);
    // What was replaced is in the pre-deploy backup and in the kept database.
    const backups = await listBackups(config, { remote: 'staging' });
    expect(backups).toEqual([expect.objectContaining({ id: second.backupId, reason: 'pre-deploy', database: `app_staging_${run}` })]);
    expect(backups[0]!.rows.find((entry) => entry.table === 'items')?.rows).toBe(2);
    expect(await remoteQuery(`app_staging_${run}`, 'SELECT id, backup_id FROM dbfast.deployments ORDER BY started_at')).toEqual([
      { id: first.id, backup_id: null },
      { id: second.id, backup_id: second.backupId },
    ]);
  });

  it('a deployed database that fails [validation] is never swapped in', async () => {
    const before = await remoteQuery(`app_staging_${run}`, 'SELECT id, name FROM items ORDER BY id');
    const databases = await remoteDatabases();
    // Passes on the template's build database, fails on the remote's scratch database.
    const strict: DbfastConfig = {
      ...config,
      validation: { ...config.validation, testQueries: [{ query: "SELECT 1 WHERE current_database() NOT LIKE '%dbfast\\_restore%'", minExpectedResults: 1 }] },
    };
    const error = await failure(deploy(strict, 'staging', { env }));
    expect(error.code).toBe('VALIDATION_FAILED');
    expect(error.message).toMatch(/^the deployed database fails \[validation\]: test query returned 0 rows/);
    expect(await remoteQuery(`app_staging_${run}`, 'SELECT id, name FROM items ORDER BY id')).toEqual(before);
    expect(await remoteDatabases()).toEqual(databases);
  });

  it('a second deploy to the same remote while one runs is refused, never interleaved', async () => {
    const holder = new pg.Client({ host: '127.0.0.1', port: remote.port, user: 'postgres', password: PASSWORD, database: 'postgres' });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [`dbfast:deploy:app_staging_${run}`]);
      const before = await remoteQuery(`app_staging_${run}`, 'SELECT count(*)::int AS n FROM dbfast.deployments');
      const error = await failure(deploy(config, 'staging', { env }));
      expect(error).toMatchObject({ code: 'USAGE', message: 'another deploy to remote staging is running' });
      expect(await remoteQuery(`app_staging_${run}`, 'SELECT count(*)::int AS n FROM dbfast.deployments')).toEqual(before);
    } finally {
      await holder.end();
    }
  });

  it('the CLI never prints the password, and exits 1 on a refusal without a stack trace', async () => {
    const cliEnv = { REMOTE_PW: PASSWORD };
    // A dry run shows the plan, and what would refuse it (exit 1).
    const plan = await runCli(['deploy', 'prod', '--mode', 'replace', '--dry-run', '--json'], { cwd: root, env: cliEnv });
    expect(plan.code, plan.stderr).toBe(1);
    expect(JSON.parse(plan.stdout)).toMatchObject({ remote: 'prod', destructive: true, refused: expect.stringMatching(/allow_destructive is false/) });
    const refused = await runCli(['deploy', 'prod', '--mode', 'replace', '--yes'], { cwd: root, env: cliEnv });
    expect(refused.code).toBe(1);
    expect(refused.errLines.at(-2)).toBe(`error: deploying replaces app_prod_${run} on remote prod, whose tables and data would be lost: allow_destructive is false for remote prod`);
    // Without a terminal, a remote that requires confirmation needs --yes.
    const unconfirmed = await runCli(['deploy', 'prod'], { cwd: root, env: cliEnv });
    expect(unconfirmed.code).toBe(1);
    expect(unconfirmed.errLines.at(-2)).toBe('error: remote prod requires confirmation: pass --yes to deploy');
    const deployed = await runCli(['deploy', 'staging', '--jobs', '2'], { cwd: root, env: cliEnv });
    expect(deployed.code, deployed.stderr).toBe(0);
    expect(deployed.stdout).toMatch(/^\d{8}-\d{6}-[0-9a-f]{4}\n$/);
    for (const output of [plan, refused, unconfirmed, deployed]) {
      expect(output.stdout + output.stderr).not.toContain(PASSWORD);
      expect(output.stderr).not.toMatch(STACK_FRAME);
    }
  });

  it('status --check-remotes says which deploy each remote runs, and whether its files changed since', async () => {
    const last = (await deploymentHistory(config, 'staging')).at(-1)!;
    const fingerprintOf = async (environment: string) => {
      const project = new Project(config, environment, env);
      return project.stateFor(project.environmentNamed(environment), await project.scanRepository()).fingerprint;
    };
    const [, staging] = await probeRemotes(config, env, fingerprintOf);
    expect(staging!.deployed).toEqual({ id: last.id, environment: 'staging', fingerprint: last.fingerprint, at: expect.any(String), current: true });
    const seed = join(root, 'db/1_seed/01_items.sql');
    const content = await readFile(seed, 'utf8');
    await writeFile(seed, `${content}INSERT INTO items VALUES (3, 'three');\n`);
    try {
      const status = await runCli(['status', '--check-remotes'], { cwd: root, env });
      expect(status.stdout).toContain(`runs deploy ${last.id} of staging (files changed since)`);
      const [, changed] = await probeRemotes(config, env, fingerprintOf);
      expect(changed!.deployed?.current).toBe(false);
    } finally {
      await writeFile(seed, content);
    }
  });

  it('prune never removes the backup the last deploy took: a rollback may need it', async () => {
    const last = (await deploymentHistory(config, 'staging')).at(-1)!;
    expect(last.backupId).toBeDefined();
    const pruned = await pruneBackups(config, { remote: 'staging', olderThanMs: 1, dryRun: true, env });
    expect(pruned.protected).toContainEqual({ id: last.backupId, why: 'a deployment refers to it' });
    expect(pruned.removed.map((backup) => backup.id)).not.toContain(last.backupId);
  });

  it('rollback undoes the last deploy: the replaced database swapped back, else the pre-deploy backup restored', async () => {
    const history = await deploymentHistory(config, 'staging');
    expect(history.map((entry) => entry.method)).toEqual(['created', 'swap', 'swap']);
    const unasked = await failure(rollbackDeploy(config, 'staging', { env }));
    expect(unasked.code).toBe('NOT_CONFIRMED');

    // The last deploy (the CLI's) is undone by swapping back what it replaced: the second deploy's content.
    const back = await rollbackDeploy(config, 'staging', { env, yes: true });
    expect(back).toMatchObject({ method: 'swap-back', deploy: history[2]!.id, previous: expect.stringMatching(new RegExp(`^app_staging_${run}__dbfast_prev_`)) });
    expect(await remoteQuery(`app_staging_${run}`, 'SELECT id FROM items ORDER BY id')).toEqual([{ id: 1 }, { id: 2 }]);
    expect((await remoteQuery('postgres', `SELECT datallowconn FROM pg_database WHERE datname = 'app_staging_${run}'`))[0]).toEqual({ datallowconn: true });

    // The second deploy's kept database is gone (pruned): its pre-deploy backup brings back what it replaced,
    // the row written on the remote included.
    await remoteQuery('postgres', `DROP DATABASE "${history[1]!.previous}"`);
    const restored = await rollbackDeploy(config, 'staging', { env, yes: true });
    expect(restored).toMatchObject({ method: 'restore', deploy: history[1]!.id });
    expect(await remoteQuery(`app_staging_${run}`, 'SELECT id, name FROM items ORDER BY id')).toEqual([
      { id: 1, name: 'one' },
      { id: 99, name: 'written on the remote' },
    ]);
    expect((await deploymentHistory(config, 'staging')).map((entry) => entry.rolledBackAt !== undefined)).toEqual([false, true, true]);

    // The first deploy created the database: it kept nothing to go back to.
    const nothing = await failure(rollbackDeploy(config, 'staging', { env, yes: true }));
    expect(nothing.message).toBe(`deploy ${history[0]!.id} kept no previous database (or it was pruned) and took no backup: nothing to roll back to`);
  });
});
