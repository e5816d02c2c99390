/**
 * Deploying an environment to a remote. Replace mode: the environment's template (rebuilt first
 * when its files changed) is dumped and restored beside the remote's database, checked there
 * ([validation], then its schema against the template's), recorded, and swapped in; the replaced
 * database is backed up first and kept as `__dbfast_prev`. Without the privilege to create
 * databases it is restored in one transaction instead. Migrate mode (migrate.ts): only the files
 * the remote has not applied run there, in one transaction with the same checks before it commits.
 * Nothing is asked or changed before every refusal (environment, confirmation, allow_destructive)
 * has had its say.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { dumpDatabase, readArchive } from './backup/archive.js';
import { createBackup, type DatabaseLocation, databaseFacts, locateSource, programFor } from './backup/create.js';
import { withTemplateClone } from './backup/load.js';
import { describeLocation, inspectTarget, type Replaced, replaceDatabase, withAdmin } from './backup/restore.js';
import { type Backup, newBackupId } from './backup/store.js';
import type { DbfastConfig } from './config/index.js';
import {
  appliedFiles,
  carryDeployments,
  deploymentsAsJson,
  ensureHistoryTables,
  recordAppliedFiles,
  recordDeployment,
  recordLocally,
} from './deployments.js';
import { compareSchemas, describeSchema, diffLines, type SchemaDescription, templateSchema } from './drift.js';
import { productionReason } from './environments.js';
import { DbfastError, isDbfastError } from './errors.js';
import { type ChangedFile, describeSteps, type Migration, migrationFiles, type MigrationStep, planMigration, runMigration } from './migrate.js';
import { withClient } from './pg/client.js';
import { lockKeys, tryAdvisoryLock } from './pg/locks.js';
import { displayUrl, type ServerTarget } from './pg/target.js';
import { plural } from './plural.js';
import { Project } from './project.js';
import { type RemoteTestResult, remoteNamed, testRemote } from './remote.js';
import type { RepositoryState } from './repository.js';
import type { TemplateInfo } from './template.js';
import { validateDatabase } from './validate.js';

export type DeployMode = 'replace' | 'migrate';

export interface DeployOptions {
  /** The environment to deploy (default: the remote's `environment`). */
  environment?: string;
  /** Deploy an environment other than the remote's. */
  forceEnv?: boolean;
  /** Default: replace when allow_destructive is true or the remote's database holds no tables, else migrate. */
  mode?: DeployMode;
  /** Migrate: a file applied before whose content changed since, or a new one sorting before applied ones, is an error, not a warning. */
  strict?: boolean;
  /**
   * Migrate: record the environment's files as applied without running them, provided the remote's
   * schema already matches the template's: for a database made before dbfast deployed to it.
   */
  baseline?: boolean;
  /** Replace: parallel pg_restore jobs into the new database (default: up to 4, one per CPU). */
  jobs?: number;
  /** Confirm without asking; also needed to skip a configured backup. */
  yes?: boolean;
  /** Asks the question; the answer must be `typed` (the remote's name). Without it, `yes` is required. */
  confirm?: (question: string, typed: string) => Promise<boolean>;
  /** No backup first, on a remote with backup_before_deploy (needs `yes`). */
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
  mode: DeployMode;
  /** The files the deploy runs, in execution order: the environment's (replace), those not applied yet (migrate). */
  files: string[];
  /** Migrate: the files in steps, each one transaction unless a file cannot run in one. */
  steps?: MigrationStep[];
  /** Migrate: files applied before whose content changed since (not applied again). */
  changed?: ChangedFile[];
  /** Migrate: new files that sort before files already applied (they run after them). */
  outOfOrder?: string[];
  /** Migrate: the files are recorded as applied without running, once the remote's schema matches the template's. */
  baseline?: true;
  /** Migrate: the database has tables but records none of the files, so every file would run over them (refused unless --baseline). */
  unrecorded?: true;
  /** The remote's database exists and has tables, which the deploy replaces (replace mode). */
  destructive: boolean;
  /** A backup of the remote's database is taken first. */
  backup: boolean;
  /** The remote's name must be typed back (require_confirmation). */
  confirmation: boolean;
  /** Why the deploy would be refused (a dry run reports it instead of throwing). */
  refused?: string;
  /**
   * Dry run, on an existing database: how its schema differs from the template's, as diff lines
   * (`+ table public.orders: ...` to be created, `- ...` to go, `~ ...` to change). A migrate deploy
   * whose files do not make exactly these changes fails its schema check.
   */
  changes?: string[];
}

export interface DeployResult extends DeployPlan {
  id: string;
  startedAt: string;
  method: Replaced['method'] | 'migrate';
  /** The replaced database, kept for rollback (swap only). */
  previous?: string;
  backupId?: string;
  durationMs: number;
}

type Remote = ReturnType<typeof remoteNamed>;

/** Plans, and unless `dryRun`, carries out a deploy of an environment to a remote. */
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
  // What `dbfast remote test` checks (version, pg_dump, privileges); a database yet to be created has nothing to check but the privilege replace needs.
  const unready = target.exists ? notReady(await testRemote(config, remote.name, { env })) : null;
  const mode = options.mode ?? (options.baseline ? 'migrate' : remote.allowDestructive || !target.hasTables ? 'replace' : 'migrate');
  if (options.baseline && mode !== 'migrate') throw new DbfastError('USAGE', '--baseline records files as applied in migrate mode, not with --mode replace');
  if (options.baseline && options.allowDrift) {
    throw new DbfastError('USAGE', "--baseline records files as applied only when the remote's schema is the template's: it cannot go with --allow-drift");
  }
  const migration = mode === 'migrate' && !unready ? await migrationFor(location, target.exists, state, options) : null;

  const plan: DeployPlan = {
    remote: remote.name,
    url: displayUrl(remote, env),
    database: location.database,
    environment,
    template: template.name,
    fingerprint: template.fingerprint,
    mode,
    files: mode === 'replace' ? state.selected.map((file) => file.relativePath) : [],
    ...(migration ? migrationPlan(migration) : {}),
    destructive: mode === 'replace' && target.hasTables,
    backup: target.hasTables && remote.backupBeforeDeploy && !options.skipBackup && !(migration && migration.steps.length === 0),
    ...(migration?.unrecorded && target.hasTables ? { unrecorded: true } : {}),
    confirmation: remote.requireConfirmation,
  };
  const refusal = unready ?? refusalOf(plan, remote, options);
  if (options.dryRun) {
    const changes = target.exists && !unready ? await schemaChanges(await project.server(), template, config.stateDir, location) : undefined;
    // A baseline commits only over the template's schema: what the real run's check would refuse, the plan says.
    const objects = changes?.filter((line) => !line.startsWith(' ')).length ?? 0;
    const drifting = plan.baseline && objects > 0 ? `the remote's schema differs from the template's in ${plural(objects, 'object')} (see changes): --baseline records nothing then` : undefined;
    const refused = refusal?.message ?? drifting;
    return { ...plan, ...(changes ? { changes } : {}), ...(refused ? { refused } : {}) };
  }
  if (refusal) throw refusal;
  warnBeforehand(plan, target.hasTables, remote, options);
  if (remote.requireConfirmation) await confirmDeploy(plan, options);

  const id = newBackupId();
  const startedAt = new Date().toISOString();
  const context: Deployment = { config, project, remote, location, plan, state, id, startedAt, env, options, step };
  const outcome = await holdingDeployLock(location, remote, () => (migration ? migrateRemote(context, template) : replaceRemote(context, template.name)));
  const result: DeployResult = { ...plan, id, startedAt, ...outcome, durationMs: Math.round(performance.now() - started) };
  const { files: _files, steps: _steps, changed: _changed, outOfOrder: _outOfOrder, ...entry } = result;
  // A migrate deploy that ran nothing changed nothing a rollback could undo.
  if (result.method === 'migrate' && (result.files.length === 0 || result.baseline)) return result;
  await recordLocally(config, entry).catch((error: Error) => options.onWarning?.(`the deploy succeeded, but its local record could not be written: ${error.message}`));
  return result;
}

interface Deployment {
  config: DbfastConfig;
  /** The environment's project: its server holds the template. */
  project: Project;
  remote: Remote;
  location: DatabaseLocation;
  plan: DeployPlan;
  state: RepositoryState;
  id: string;
  startedAt: string;
  env: NodeJS.ProcessEnv;
  options: DeployOptions;
  step: (step: string) => void;
}

type Outcome = Pick<DeployResult, 'method' | 'previous' | 'backupId'> & Partial<Pick<DeployResult, 'files' | 'steps'>>;

/** One deploy (or rollback) to a remote at a time: a second one is refused, never interleaved. */
export async function holdingDeployLock<T>(location: DatabaseLocation, remote: Remote, work: () => Promise<T>): Promise<T> {
  const locked = await withAdmin(location.target, location.database, (admin) => tryAdvisoryLock(admin, lockKeys.deploy(location.database), work));
  if (!locked.locked) throw new DbfastError('USAGE', `another deploy to remote ${remote.name} is running`, { hint: 'wait for it to finish, then deploy again' });
  return locked.result;
}

/** Migrate mode needs the database; it applies what its dbfast.applied_files lacks. */
async function migrationFor(location: DatabaseLocation, exists: boolean, state: RepositoryState, options: DeployOptions): Promise<Migration> {
  if (!exists) {
    throw new DbfastError('USAGE', `${describeLocation(location)} does not exist: migrate mode applies files to a database that is there`, {
      hint: 'deploy with --mode replace, which creates it',
    });
  }
  return planMigration(state, await withClient(location.target, appliedFiles, location.database), { baseline: Boolean(options.baseline) });
}

function warnBeforehand(plan: DeployPlan, hasTables: boolean, remote: Remote, options: DeployOptions): void {
  const warn = options.onWarning ?? (() => {});
  if (options.skipBackup && remote.backupBeforeDeploy && hasTables) warn(`no backup of ${plan.database} on remote ${remote.name} is taken first (--skip-backup)`);
  for (const file of plan.changed ?? []) warn(`${file.path} changed since it was applied on ${file.appliedAt.slice(0, 10)}: not applied again (--strict refuses)`);
  for (const file of plan.outOfOrder ?? []) warn(`${file} is new but sorts before files already applied: it runs after them (--strict refuses)`);
}

async function replaceRemote(context: Deployment, templateName: string): Promise<Outcome> {
  const { config, project, remote, location, plan, options, step, env } = context;
  const work = await mkdtemp(join(tmpdir(), 'dbfast-deploy-'));
  try {
    step(`dumping template ${templateName}`);
    const { archive, schema } = await dumpTemplate(config, await project.server(), templateName, work, env);
    // The remote's earlier deploys move into the new database with it.
    const earlier = (await inspectTarget(location)).exists ? await deploymentsAsJson(location.target, location.database) : '[]';
    step(`deploying to ${describeLocation(location)}`);
    const replaced = await replaceDatabase(config, archive, location, {
      env,
      yes: true,
      question: '',
      backupReason: remote.backupBeforeDeploy && !options.skipBackup ? 'pre-deploy' : null,
      noOwner: true,
      serverLocale: true,
      jobs: options.jobs ?? Math.min(4, availableParallelism()),
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
        await checkDeployed(client, schema, config, options, 'nothing was swapped in');
        await ensureHistoryTables(client);
        await carryDeployments(client, earlier);
        const backupId = taken.backupId ?? null;
        await recordDeployment(client, { ...deploymentRow(context), mode: 'replace', outcome: 'succeeded', finished: true, backupId, error: null });
        await recordAppliedFiles(client, context.state.selected, context.id, { success: true });
      },
    });
    return { method: replaced.method, ...(replaced.previous ? { previous: replaced.previous } : {}), ...(replaced.backupId ? { backupId: replaced.backupId } : {}) };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function migrateRemote(context: Deployment, template: TemplateInfo): Promise<Outcome> {
  const { config, project, remote, location, options, step, env } = context;
  const schema = await templateSchema(await project.server(), template, config.stateDir);
  // Under the lock: what the remote records now, not what the plan read before, refused on the same grounds.
  const migration = await migrationFor(location, true, context.state, options);
  const replanned: DeployPlan = { ...context.plan, ...migrationPlan(migration) };
  const refusal = refusalOf(replanned, remote, options);
  if (refusal) throw refusal;
  let backupId: string | undefined;
  if (context.plan.backup && migration.steps.length > 0) {
    step(`backing up ${describeLocation(location)} first`);
    backupId = (await createBackup(config, { remote: remote.name, database: location.database }, { reason: 'pre-deploy', env })).id;
  }
  await runMigration({
    target: location.target,
    database: location.database,
    remote: remote.name,
    config,
    migration,
    settings: await migrationSettings(location),
    allowDestructive: remote.allowDestructive,
    deployment: { ...deploymentRow(context), backupId: backupId ?? null },
    check: (client) => checkDeployed(client, schema, config, options),
    onStep: step,
    ...(options.onWarning ? { onWarning: options.onWarning } : {}),
  });
  // What ran: planned again under the lock.
  return { method: 'migrate', files: replanned.files, ...(replanned.steps ? { steps: replanned.steps } : {}), ...(backupId ? { backupId } : {}) };
}

/** A plan's migrate fields, from a migration planned before the lock or under it. */
function migrationPlan(migration: Migration): Pick<DeployPlan, 'files' | 'steps' | 'changed' | 'outOfOrder' | 'baseline'> {
  return {
    files: migrationFiles(migration),
    steps: describeSteps(migration),
    changed: migration.changed,
    outOfOrder: migration.outOfOrder,
    ...(migration.baseline ? { baseline: true } : {}),
  };
}

/**
 * What the sessions running files start with (each file's reset keeps it): where the server has
 * it (14+, not on every platform), a check that the client is still there during a long
 * statement, so that a deploy killed mid-statement does not keep its transaction, and the locks
 * it holds, until the statement ends.
 */
async function migrationSettings(location: DatabaseLocation): Promise<Record<string, string>> {
  const checks = await withClient(
    location.target,
    (client) => client.query("SELECT set_config('client_connection_check_interval', '1000', false)").then(() => true, () => false),
    location.database,
  );
  return checks ? { client_connection_check_interval: '1000' } : {};
}

/** The remote's schema against the template's, as diff lines: `+` to be created, `-` to go, `~` to change. */
async function schemaChanges(local: ServerTarget, template: TemplateInfo, stateDir: string, location: DatabaseLocation): Promise<string[]> {
  const expected = await templateSchema(local, template, stateDir);
  return diffLines(compareSchemas(await withClient(location.target, describeSchema, location.database), expected));
}

function deploymentRow(context: Deployment) {
  return { id: context.id, environment: context.plan.environment, fingerprint: context.plan.fingerprint, startedAt: context.startedAt };
}

function notReady(readiness: RemoteTestResult): DbfastError | null {
  const failed = readiness.checks.filter((check) => !check.ok);
  if (failed.length === 0) return null;
  return new DbfastError('REMOTE_NOT_READY', `remote ${readiness.name} is not ready for a deploy: ${failed.map((check) => check.message).join('; ')}`, {
    hint: failed[0]!.hint ?? `dbfast remote test ${readiness.name} shows every check`,
  });
}

function refusalOf(plan: DeployPlan, remote: Remote, options: DeployOptions): DbfastError | null {
  const where = `${plan.database} on remote ${plan.remote}`;
  if (plan.destructive && !remote.allowDestructive) {
    return new DbfastError('DESTRUCTIVE_REFUSED', `deploying replaces ${where}, whose tables and data would be lost: allow_destructive is false for remote ${remote.name}`, {
      hint: `deploy with --mode migrate to apply only the files it has not applied, or set allow_destructive = true in [remotes.${remote.name}] to replace it (a backup is taken first)`,
    });
  }
  const dropping = remote.allowDestructive ? undefined : plan.steps?.find((step) => step.drops);
  if (dropping) {
    // Outside a transaction a drop cannot be taken back: refused before anything runs.
    return new DbfastError('DESTRUCTIVE_REFUSED', `${dropping.files[0]} runs outside a transaction and drops data (${dropping.drops}): allow_destructive is false for remote ${remote.name}`, {
      hint: `move the drop to a file of its own, which runs in a transaction; or set allow_destructive = true in [remotes.${remote.name}]`,
    });
  }
  if (plan.baseline && !plan.unrecorded) {
    return new DbfastError('USAGE', `--baseline adopts a database that records no applied file, and ${where} records some: it would mark new files as applied without running them`, {
      hint: 'deploy without --baseline to run them',
    });
  }
  if (plan.unrecorded && !plan.baseline) {
    return new DbfastError('USAGE', `${where} has tables but records no applied file: migrate mode would run all ${plural(plan.files.length, 'file')} over them`, {
      hint: `if its schema is already the template's (dbfast diff ${plan.remote}), --baseline records the files as applied; else replace it (--mode replace, with allow_destructive = true)`,
    });
  }
  const outOfOrder = plan.outOfOrder ?? [];
  if (options.strict && outOfOrder.length > 0) {
    const which = outOfOrder.length === 1 ? 'a new file sorts' : `${outOfOrder.length} new files sort`;
    return new DbfastError('DRIFT', `${which} before files already applied on remote ${plan.remote} (--strict): ${outOfOrder.join(', ')}`, {
      hint: 'rename them to sort after the applied files, or deploy without --strict to run them after',
    });
  }
  const changed = plan.changed ?? [];
  if (options.strict && changed.length > 0) {
    const files = changed.map((file) => `${file.path} (applied ${file.appliedAt.slice(0, 10)})`).join(', ');
    return new DbfastError('DRIFT', `${plural(changed.length, 'file')} changed since applied on remote ${plan.remote} (--strict): ${files}`, {
      hint: 'a migrate deploy never runs an applied file again: put back the content it had, and make the change in a new file',
    });
  }
  if (options.skipBackup && remote.backupBeforeDeploy && (plan.destructive || plan.mode === 'migrate') && !options.yes) {
    return new DbfastError('NOT_CONFIRMED', `--skip-backup on remote ${remote.name}, which has backup_before_deploy, needs --yes`, {
      hint: 'without a backup, the replaced database is kept as __dbfast_prev only until pruned',
    });
  }
  return null;
}

function chosenEnvironment(remote: Remote, options: DeployOptions): string {
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
    `mode ${plan.mode}, ${modeSummary(plan)}, ${plan.backup ? 'backup first' : 'no backup'}`,
  ].join('; ');
  if (!(await options.confirm(question, plan.remote))) throw new DbfastError('NOT_CONFIRMED', 'not confirmed: nothing was changed');
}

/** What the deploy does to the remote's data, in a few words. */
export function modeSummary(plan: DeployPlan): string {
  if (plan.mode === 'replace') return plan.destructive ? 'REPLACING its data' : 'nothing to replace';
  if (plan.baseline) return `${plural(plan.files.length, 'file')} recorded as applied without running, if its schema is the template's`;
  const steps = plan.steps ?? [];
  return steps.length === 0 ? 'nothing to apply' : `${plural(plan.files.length, 'new file')} in ${plural(steps.length, 'step')}, its data kept`;
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

/**
 * [validation], then the deployed schema against the template's: any difference refuses the
 * deploy unless allowed. `stopped` says what that left (replace: nothing swapped in); migrate
 * says it when it records the failure.
 */
async function checkDeployed(client: pg.Client, expected: SchemaDescription, config: DbfastConfig, options: DeployOptions, stopped?: string): Promise<void> {
  await validateDatabase(client, config.validation).catch((error) => {
    if (!isDbfastError(error, 'VALIDATION_FAILED')) throw error;
    throw new DbfastError('VALIDATION_FAILED', error.message.replace(/^template validation failed/, 'the deployed database fails [validation]'), stopped ? { hint: stopped } : {});
  });
  const differences = compareSchemas(expected, await describeSchema(client));
  if (differences.length === 0) return;
  const message = `the deployed schema differs from the template's in ${plural(differences.length, 'object')}`;
  const lines = diffLines(differences);
  const detail = [...lines.slice(0, 40), ...(lines.length > 40 ? [`... ${lines.length - 40} more lines (dbfast diff shows them all)`] : [])].join('\n');
  if (options.allowDrift) return options.onWarning?.(`${message} (--allow-drift):\n${detail}`);
  const legend = '- only in the template, + only in the deployed database, ~ changed; --allow-drift deploys anyway';
  throw new DbfastError('DRIFT', message, { detail, hint: stopped ? `${stopped}; ${legend}` : legend });
}
