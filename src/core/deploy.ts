/**
 * Deploying an environment to a remote, replace mode: the environment's template (rebuilt first
 * when its files changed) is dumped and restored beside the remote's database, checked there
 * ([validation], then its schema against the template's), recorded, and swapped in; the replaced
 * database is backed up first and kept as `__dbfast_prev`. Without the privilege to create
 * databases it is restored in one transaction instead. Nothing is asked or changed before every
 * refusal (environment, confirmation, allow_destructive) has had its say.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { dumpDatabase, readArchive } from './backup/archive.js';
import { withTemplateClone } from './backup/load.js';
import { databaseFacts, locateSource, programFor } from './backup/create.js';
import { describeLocation, inspectTarget, type Replaced, replaceDatabase, withAdmin } from './backup/restore.js';
import { type Backup, newBackupId } from './backup/store.js';
import type { DbfastConfig } from './config/index.js';
import { compareSchemas, describeSchema, type SchemaDescription, type SchemaDifference } from './drift.js';
import { productionReason } from './environments.js';
import { DbfastError, isDbfastError } from './errors.js';
import { writeFileAtomic } from './files.js';
import { withClient } from './pg/client.js';
import { lockKeys, tryAdvisoryLock } from './pg/locks.js';
import { displayUrl, type ServerTarget } from './pg/target.js';
import { plural } from './plural.js';
import { Project } from './project.js';
import { remoteNamed } from './remote.js';
import type { ScannedFile } from './scan.js';
import { validateDatabase } from './validate.js';

export interface DeployOptions {
  /** The environment to deploy (default: the remote's `environment`). */
  environment?: string;
  /** Deploy an environment other than the remote's. */
  forceEnv?: boolean;
  /** Confirm without asking; also needed to skip a configured backup. */
  yes?: boolean;
  /** Asks the question; the answer must be `typed` (the remote's name). Without it, `yes` is required. */
  confirm?: (question: string, typed: string) => Promise<boolean>;
  /** No backup before replacing, on a remote with backup_before_deploy (needs `yes`). */
  skipBackup?: boolean;
  /** Plan only: nothing is built on the remote, nothing is changed. */
  dryRun?: boolean;
  /** Go on when the deployed schema differs from the template's. */
  allowDrift?: boolean;
  env?: NodeJS.ProcessEnv;
  onStep?: (step: string) => void;
  onWarning?: (message: string) => void;
}

export interface DeployPlan {
  remote: string;
  /** The remote's URL, a password in it shown as `****`. */
  url: string;
  database: string;
  environment: string;
  template: string;
  fingerprint: string;
  mode: 'replace';
  /** The environment's files, in execution order. */
  files: string[];
  /** The remote's database exists and has tables, which the deploy replaces. */
  destructive: boolean;
  /** A backup of the remote's database is taken first. */
  backup: boolean;
  /** The remote's name must be typed back (require_confirmation). */
  confirmation: boolean;
  /** Why the deploy would be refused (a dry run reports it instead of throwing). */
  refused?: string;
}

export interface DeployResult extends DeployPlan {
  id: string;
  method: Replaced['method'];
  /** The replaced database, kept for rollback (swap only). */
  previous?: string;
  backupId?: string;
  durationMs: number;
}

/** Plans, and unless `dryRun`, carries out a replace deploy of an environment to a remote. */
export async function deploy(config: DbfastConfig, remoteName: string, options: DeployOptions = {}): Promise<DeployPlan | DeployResult> {
  const started = performance.now();
  const env = options.env ?? process.env;
  const step = options.onStep ?? (() => {});
  const remote = remoteNamed(config, remoteName);
  const environment = chosenEnvironment(remote, options);
  const project = new Project(config, environment, env, options.onWarning);
  await refuseUnsafeProduction(project, environment);

  step(`building the template of environment ${environment} if its files changed`);
  const { template } = await project.build();
  const state = await project.scan();
  if (state.fingerprint !== template.fingerprint) {
    throw new DbfastError('USAGE', `the files of environment ${environment} changed while its template was built`, { hint: 'deploy again' });
  }
  const location = await locateSource(config, { remote: remote.name }, env);
  const target = await inspectTarget(location);
  const backup = target.hasTables && remote.backupBeforeDeploy && !options.skipBackup;
  const plan: DeployPlan = {
    remote: remote.name,
    url: displayUrl(remote, env),
    database: location.database,
    environment,
    template: template.name,
    fingerprint: template.fingerprint,
    mode: 'replace',
    files: state.selected.map((file) => file.relativePath),
    destructive: target.hasTables,
    backup,
    confirmation: remote.requireConfirmation,
  };
  const refusal = refusalOf(plan, remote, options);
  if (options.dryRun) return refusal ? { ...plan, refused: refusal.message } : plan;
  if (refusal) throw refusal;
  if (options.skipBackup && remote.backupBeforeDeploy && target.hasTables) options.onWarning?.(`no backup of ${describeLocation(location)} is taken before it is replaced (--skip-backup)`);
  if (remote.requireConfirmation) await confirmDeploy(plan, options);

  const id = newBackupId();
  const work = await mkdtemp(join(tmpdir(), 'dbfast-deploy-'));
  try {
    step(`dumping template ${template.name}`);
    // One deploy to a remote at a time: a second one is refused, never interleaved.
    const { archive, schema } = await dumpTemplate(config, await project.server(), template.name, work, env);
    // The remote's earlier deploys move into the new database with it.
    const earlier = target.exists ? await remoteHistory(location.target, location.database) : '[]';
    const startedAt = new Date().toISOString();
    step(`deploying to ${describeLocation(location)}`);
    const replacing = () => replaceDatabase(config, archive, location, {
      env,
      yes: true,
      question: '',
      backupReason: remote.backupBeforeDeploy && !options.skipBackup ? 'pre-deploy' : null,
      noOwner: true,
      serverLocale: true,
      onStep: step,
      // What the remote holds now decides, not what the plan saw a moment ago.
      vet: ({ hasTables, method }) => {
        const refusal = refusalOf({ ...plan, destructive: hasTables }, remote, options);
        if (refusal) throw refusal;
        if (method === 'single-transaction' && hasTables && (!remote.backupBeforeDeploy || options.skipBackup)) {
          throw new DbfastError('DESTRUCTIVE_REFUSED', `${describeLocation(location)} would be replaced in place (this user may not create databases) with no backup to go back to`, {
            hint: `drop --skip-backup, or set backup_before_deploy = true in [remotes.${remote.name}]`,
          });
        }
      },
      check: async (client, taken) => {
        await checkDeployed(client, schema, config, Boolean(options.allowDrift), options.onWarning);
        await recordDeployment(client, { id, environment, fingerprint: template.fingerprint, startedAt, files: state.selected, earlier, backupId: taken.backupId ?? null });
      },
    });
    const locked = await withAdmin(location.target, location.database, (admin) => tryAdvisoryLock(admin, lockKeys.deploy(remote.name), replacing));
    if (!locked.locked) {
      throw new DbfastError('USAGE', `another deploy to remote ${remote.name} is running`, { hint: 'wait for it to finish, then deploy again' });
    }
    const replaced = locked.result;
    const result: DeployResult = {
      ...plan,
      id,
      method: replaced.method,
      ...(replaced.previous ? { previous: replaced.previous } : {}),
      ...(replaced.backupId ? { backupId: replaced.backupId } : {}),
      durationMs: Math.round(performance.now() - started),
    };
    await recordLocally(config, result).catch((error: Error) => options.onWarning?.(`the deploy succeeded, but its local record could not be written: ${error.message}`));
    return result;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

function refusalOf(plan: DeployPlan, remote: ReturnType<typeof remoteNamed>, options: DeployOptions): DbfastError | null {
  const where = `${plan.database} on remote ${plan.remote}`;
  if (plan.destructive && !remote.allowDestructive) {
    return new DbfastError('DESTRUCTIVE_REFUSED', `deploying replaces ${where}, whose tables and data would be lost: allow_destructive is false for remote ${remote.name}`, {
      hint: `set allow_destructive = true in [remotes.${remote.name}] to replace it (a backup is taken first); applying only new files (migrate mode) is not built yet`,
    });
  }
  if (options.skipBackup && remote.backupBeforeDeploy && plan.destructive && !options.yes) {
    return new DbfastError('NOT_CONFIRMED', `--skip-backup on remote ${remote.name}, which has backup_before_deploy, needs --yes`, {
      hint: 'without a backup, the replaced database is kept as __dbfast_prev only until pruned',
    });
  }
  return null;
}

function chosenEnvironment(remote: ReturnType<typeof remoteNamed>, options: DeployOptions): string {
  const requested = options.environment;
  if (requested === undefined) {
    if (remote.environment === undefined) {
      throw new DbfastError('USAGE', `remote ${remote.name} names no environment to deploy`, {
        hint: `set environment in [remotes.${remote.name}], or pass -e ENVIRONMENT`,
      });
    }
    return remote.environment;
  }
  if (remote.environment !== undefined && requested !== remote.environment) {
    if (!options.forceEnv) {
      throw new DbfastError('USAGE', `remote ${remote.name} receives environment ${remote.environment}, not ${requested}`, {
        hint: `deploy without -e, or add --force-env to deploy ${requested} there anyway`,
      });
    }
    options.onWarning?.(`deploying environment ${requested} to remote ${remote.name}, which receives ${remote.environment} (--force-env)`);
  }
  return requested;
}

/** A production-like environment deploys only when `validate-env --strict` would pass. */
async function refuseUnsafeProduction(project: Project, environment: string): Promise<void> {
  const reason = productionReason(project.config, environment);
  if (reason === null) return;
  const issues = await project.validateEnvironment(environment);
  if (issues.length === 0) return;
  throw new DbfastError('VALIDATION_FAILED', `environment ${environment} is production-like (${reason}) and has ${plural(issues.length, 'problem')}: ${issues.map((issue) => issue.message).join('; ')}`, {
    hint: `dbfast validate-env ${environment} --strict shows them; fix [environments.${environment}] in dbfast.toml`,
  });
}

async function confirmDeploy(plan: DeployPlan, options: DeployOptions): Promise<void> {
  if (options.yes) return;
  if (!options.confirm) {
    throw new DbfastError('NOT_CONFIRMED', `remote ${plan.remote} requires confirmation: pass --yes to deploy`, {
      hint: 'run it on a terminal to be asked instead; dbfast deploy --dry-run shows the plan',
    });
  }
  const question = [
    `deploy environment ${plan.environment} to remote ${plan.remote} (${plan.url})`,
    `mode ${plan.mode}, ${plan.destructive ? 'REPLACING its data' : 'nothing to replace'}, ${plan.backup ? 'backup first' : 'no backup'}`,
  ].join('; ');
  if (!(await options.confirm(question, plan.remote))) throw new DbfastError('NOT_CONFIRMED', 'not confirmed: nothing was changed');
}

/**
 * The template's content as an archive in `work`, and its schema: the template refuses connections,
 * so a clone of it is dumped and described, then dropped.
 */
async function dumpTemplate(config: DbfastConfig, local: ServerTarget, template: string, work: string, env: NodeJS.ProcessEnv): Promise<{ archive: Backup; schema: SchemaDescription }> {
  return withTemplateClone(local, template, async (clone) => {
    const [facts, schema] = await withClient(local, async (client) => [await databaseFacts(client), await describeSchema(client)] as const, clone);
    const pgDump = await programFor('pg_dump', Math.floor(facts.versionNum / 10_000), config, env);
    const path = join(work, 'template.dump');
    const compression = await dumpDatabase(pgDump, await local.toolConnection(clone), path, { format: 'custom', portable: true });
    const contents = await readArchive(await programFor('pg_restore', pgDump.major, config, env), path);
    const now = new Date().toISOString();
    const archive: Backup = {
      id: `template-${template}`,
      database: template,
      serverVersion: facts.version,
      pgDumpVersion: pgDump.version,
      format: 'custom',
      compression,
      createdAt: now,
      durationMs: 0,
      sizeBytes: 0,
      sha256: '',
      archive: 'template.dump',
      properties: { encoding: facts.encoding, collate: facts.collate, ctype: facts.ctype, owner: facts.owner },
      reason: 'manual',
      lastCheck: { at: now, level: 'read', ok: true },
      ...contents,
      folder: work,
    };
    return { archive, schema };
  });
}

/** [validation], then the deployed schema against the template's: any difference refuses the deploy unless allowed. */
async function checkDeployed(
  client: pg.Client,
  expected: SchemaDescription,
  config: DbfastConfig,
  allowDrift: boolean,
  onWarning: ((message: string) => void) | undefined,
): Promise<void> {
  await validateDatabase(client, config.validation).catch((error) => {
    if (!isDbfastError(error, 'VALIDATION_FAILED')) throw error;
    throw new DbfastError('VALIDATION_FAILED', error.message.replace(/^template validation failed/, 'the deployed database fails [validation]'), {
      hint: 'the deploy was stopped before its database replaced the remote\'s',
    });
  });
  const differences = compareSchemas(expected, await describeSchema(client));
  if (differences.length === 0) return;
  const summary = differences.slice(0, 5).map(describeDifference).join('; ');
  const message = `the deployed schema differs from the template's: ${summary}${differences.length > 5 ? `; ${differences.length - 5} more` : ''}`;
  if (allowDrift) return onWarning?.(message);
  throw new DbfastError('DRIFT', message, { hint: 'nothing was swapped in; --allow-drift deploys anyway' });
}

function describeDifference(difference: SchemaDifference): string {
  return `${difference.change === 'missing' ? 'missing' : difference.change === 'extra' ? 'extra' : 'changed'} ${difference.object}`;
}

const HISTORY_SQL = `
CREATE SCHEMA IF NOT EXISTS dbfast;
CREATE TABLE IF NOT EXISTS dbfast.deployments (
  id text PRIMARY KEY, environment text NOT NULL, fingerprint text NOT NULL, mode text NOT NULL,
  started_at timestamptz NOT NULL, finished_at timestamptz, outcome text NOT NULL, backup_id text);
CREATE TABLE IF NOT EXISTS dbfast.applied_files (
  path text PRIMARY KEY, sha256 text NOT NULL, size bigint NOT NULL, applied_at timestamptz NOT NULL,
  execution_ms integer, success boolean NOT NULL, deployment_id text NOT NULL REFERENCES dbfast.deployments (id))`;

/** The deploy and every file it put there, in the deployed database itself: it is swapped in with them or not at all. */
async function recordDeployment(
  client: pg.Client,
  deployment: { id: string; environment: string; fingerprint: string; startedAt: string; files: ScannedFile[]; earlier: string; backupId: string | null },
): Promise<void> {
  await client.query(HISTORY_SQL);
  await client.query('INSERT INTO dbfast.deployments SELECT * FROM json_populate_recordset(NULL::dbfast.deployments, $1) ON CONFLICT DO NOTHING', [deployment.earlier]);
  await client.query(
    "INSERT INTO dbfast.deployments VALUES ($1, $2, $3, 'replace', $4, now(), 'succeeded', $5)",
    [deployment.id, deployment.environment, deployment.fingerprint, deployment.startedAt, deployment.backupId],
  );
  await client.query(
    `INSERT INTO dbfast.applied_files (path, sha256, size, applied_at, success, deployment_id)
     SELECT path, sha256, size, now(), true, $4 FROM unnest($1::text[], $2::text[], $3::bigint[]) AS f(path, sha256, size)
     ON CONFLICT (path) DO UPDATE SET sha256 = excluded.sha256, size = excluded.size, applied_at = excluded.applied_at,
       execution_ms = NULL, success = true, deployment_id = excluded.deployment_id`,
    [deployment.files.map((file) => file.relativePath), deployment.files.map((file) => file.hash), deployment.files.map((file) => file.size), deployment.id],
  );
}

/** The remote's `dbfast.deployments` rows as JSON (`[]` when it has none). */
async function remoteHistory(target: ServerTarget, database: string): Promise<string> {
  return withClient(
    target,
    async (client) => {
      const { rows } = await client.query<{ history: string | null }>(
        "SELECT CASE WHEN to_regclass('dbfast.deployments') IS NULL THEN NULL ELSE 'yes' END AS history",
      );
      if (rows[0]!.history === null) return '[]';
      return (await client.query<{ history: string }>("SELECT coalesce(json_agg(d ORDER BY d.started_at), '[]')::text AS history FROM dbfast.deployments d")).rows[0]!.history;
    },
    database,
  );
}

/** A deploy as recorded on this machine. */
export type DeployRecord = Omit<DeployResult, 'files'> & { rolledBackAt?: string };

async function recordLocally(config: DbfastConfig, result: DeployResult): Promise<void> {
  const { files: _files, ...entry } = result;
  await writeDeploymentHistory(config, result.remote, [...(await deploymentHistory(config, result.remote)), entry]);
}

function historyPath(config: DbfastConfig, remote: string): string {
  return join(config.stateDir, 'deployments', `${remote}.json`);
}

/** `<stateDir>/deployments/<remote>.json`: the deploys made from this machine to `remote`, oldest first. */
export async function deploymentHistory(config: DbfastConfig, remote: string): Promise<DeployRecord[]> {
  const text = await readFile(historyPath(config, remote), 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return '[]';
    throw error;
  });
  try {
    return JSON.parse(text) as DeployRecord[];
  } catch {
    throw new DbfastError('STATE_DIR_UNUSABLE', `${historyPath(config, remote)} is not a deploy history dbfast can read`, {
      hint: 'move it aside: the remote keeps its own history in dbfast.deployments',
    });
  }
}

export async function writeDeploymentHistory(config: DbfastConfig, remote: string, history: DeployRecord[]): Promise<void> {
  await writeFileAtomic(historyPath(config, remote), `${JSON.stringify(history, null, 2)}\n`, { durable: true });
}
