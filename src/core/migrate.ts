/**
 * Migrate mode: the environment's files the remote has not applied run there, in order, in one
 * transaction, so PostgreSQL's transactional DDL makes the deploy all or nothing and the writes
 * the application makes meanwhile are never lost. A file holding a statement PostgreSQL refuses in
 * a transaction (CREATE INDEX CONCURRENTLY, VACUUM, ...) splits the deploy into steps: it runs
 * alone, as psql would, after being recorded as started, so a failure or a crash leaves a
 * recorded state that the next deploy continues from.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import type { DbfastConfig } from './config/index.js';
import { type AppliedFile, ensureHistoryTables, markInterrupted, recordAppliedFiles, recordDeployment, type RemoteDeployment } from './deployments.js';
import { DbfastError, isDbfastError } from './errors.js';
import { withClient, withSession } from './pg/client.js';
import type { ServerTarget } from './pg/target.js';
import { withTransaction } from './pg/transaction.js';
import { plural } from './plural.js';
import type { RepositoryState } from './repository.js';
import type { ScannedFile } from './scan.js';
import { executeFiles, resetInTransaction, type SqlFile } from './sql/execute.js';
import { firstNonTransactional } from './sql/transactional.js';

export interface MigrationStep {
  /** The files of the step, in order. */
  files: string[];
  /** false: a file with a statement PostgreSQL refuses in a transaction; it runs alone, statement by statement. */
  transactional: boolean;
  /** Why the step runs outside a transaction: `create index concurrently at 1_schema/04_index.sql:3:1`. */
  reason?: string;
}

export interface ChangedFile {
  path: string;
  /** When the remote applied the content it has (ISO 8601). */
  appliedAt: string;
}

interface PendingFile {
  scanned: ScannedFile;
  sql: SqlFile;
}

interface Step {
  files: PendingFile[];
  transactional: boolean;
  reason?: string;
}

export interface Migration {
  steps: Step[];
  /** Applied files whose content changed since: reported, not applied again. */
  changed: ChangedFile[];
}

/** The files of `state` that `applied` lacks (or records as unfinished), grouped into steps. */
export async function planMigration(state: RepositoryState, applied: Map<string, AppliedFile>): Promise<Migration> {
  const steps: Step[] = [];
  const changed: ChangedFile[] = [];
  for (const [index, scanned] of state.selected.entries()) {
    const record = applied.get(scanned.relativePath);
    if (record?.success) {
      if (record.sha256 !== scanned.hash) changed.push({ path: scanned.relativePath, appliedAt: record.appliedAt });
      continue;
    }
    const file = { scanned, sql: state.files[index]! };
    const refused = await firstNonTransactional(scanned.absolutePath);
    if (refused) {
      const where = refused.path === scanned.absolutePath ? file.sql.relativePath : refused.path;
      steps.push({ files: [file], transactional: false, reason: `${refused.statement} at ${where}:${refused.location.line}:${refused.location.column}` });
    } else if (steps.at(-1)?.transactional) {
      steps.at(-1)!.files.push(file);
    } else {
      steps.push({ files: [file], transactional: true });
    }
  }
  return { steps, changed };
}

/** The plan's view of the steps: paths as the remote records them. */
export function describeSteps(migration: Migration): MigrationStep[] {
  return migration.steps.map((step) => ({
    files: step.files.map((file) => file.scanned.relativePath),
    transactional: step.transactional,
    ...(step.reason ? { reason: step.reason } : {}),
  }));
}

export interface MigrationRun {
  target: ServerTarget;
  database: string;
  remote: string;
  config: DbfastConfig;
  migration: Migration;
  /** What the sessions running files start with (and return to between files): lock_timeout, ... */
  settings: Record<string, string>;
  deployment: Pick<RemoteDeployment, 'id' | 'environment' | 'fingerprint' | 'startedAt' | 'backupId'>;
  /** [validation] and drift: run in the last step's transaction before it commits (or after a last step that has none). */
  check: (client: pg.Client) => Promise<void>;
  onStep: (step: string) => void;
  onWarning?: (message: string) => void;
}

const LOCK_NOT_AVAILABLE = '55P03';

/** Runs the migration's steps; on failure, records it on the remote and says what is applied. */
export async function runMigration(run: MigrationRun): Promise<void> {
  const { steps } = run.migration;
  const applied: string[] = [];
  for (const [index, step] of steps.entries()) {
    const last = index === steps.length - 1;
    const names = step.files.map((file) => file.scanned.relativePath);
    run.onStep(`step ${index + 1} of ${steps.length}: ${plural(names.length, 'file')}${step.transactional ? ' in one transaction' : `, outside a transaction (${step.reason})`}`);
    try {
      if (step.transactional) await transactionalStep(run, step, last);
      else await standaloneStep(run, step.files[0]!);
    } catch (error) {
      throw await failed(run, error, applied, index);
    }
    applied.push(...names);
  }
  if (steps.length === 0 || !steps.at(-1)!.transactional) {
    await withClient(run.target, (client) => withTransaction(client, () => finish(run, client)), run.database).catch(async (error) => {
      throw await failed(run, error, applied, steps.length);
    });
  }
}

/** The deploy's own rows, then its files, then (last step) the checks: one transaction, retried when a lock was not granted in time. */
async function transactionalStep(run: MigrationRun, step: Step, last: boolean): Promise<void> {
  const { lockRetries } = run.config.deploy;
  for (let attempt = 0; ; attempt++) {
    try {
      return await withSession(
        run.target,
        run.database,
        (session) =>
          withTransaction(session.client, async () => {
            await recordStart(session.client, run);
            const executionMs = await executeTimed(run, step.files, (files, options) => executeFiles(session, files, { ...options, inTransaction: true }));
            await resetInTransaction(session.client);
            await recordAppliedFiles(session.client, step.files.map((file) => file.scanned), run.deployment.id, { success: true, executionMs });
            if (last) await finish(run, session.client);
          }),
        run.settings,
      );
    } catch (error) {
      if (!(isDbfastError(error) && error.sqlState === LOCK_NOT_AVAILABLE) || attempt >= lockRetries) throw error;
      const wait = 1_000 * 2 ** attempt;
      run.onWarning?.(`${error.file ?? 'a statement'} waited ${run.config.deploy.lockTimeoutMs} ms for a lock the application holds: rolled back, retrying in ${wait / 1000} s (${attempt + 1} of ${lockRetries})`);
      await sleep(wait);
    }
  }
}

/** A file that cannot run in a transaction: recorded as started first, as applied once it ran to its end. */
async function standaloneStep(run: MigrationRun, file: PendingFile): Promise<void> {
  await withClient(run.target, (client) => withTransaction(client, async () => {
    await recordStart(client, run);
    await recordAppliedFiles(client, [file.scanned], run.deployment.id, { success: false });
  }), run.database);
  const executionMs = await withSession(run.target, run.database, (session) => executeTimed(run, [file], (files, options) => executeFiles(session, files, options)), run.settings);
  await withClient(run.target, (client) => recordAppliedFiles(client, [file.scanned], run.deployment.id, { success: true, executionMs }), run.database);
}

async function recordStart(client: pg.Client, run: MigrationRun): Promise<void> {
  await ensureHistoryTables(client);
  await markInterrupted(client, run.deployment.id);
  await recordDeployment(client, { ...run.deployment, mode: 'migrate', outcome: 'running', finished: false, error: null });
}

async function finish(run: MigrationRun, client: pg.Client): Promise<void> {
  await recordStart(client, run);
  await run.check(client);
  await recordDeployment(client, { ...run.deployment, mode: 'migrate', outcome: 'succeeded', finished: true, error: null });
}

/** Runs `files`, timing each; milliseconds by path. */
async function executeTimed(
  run: MigrationRun,
  files: PendingFile[],
  execute: (files: SqlFile[], options: Parameters<typeof executeFiles>[2]) => Promise<unknown>,
): Promise<Map<string, number>> {
  const started: number[] = [];
  await execute(
    files.map((file) => file.sql),
    {
      repositoryRoot: run.config.projectDir,
      batchBytes: run.config.performance.statementBatchBytes,
      onFileStart: () => started.push(performance.now()),
      ...(run.onWarning ? { onWarning: (warning: DbfastError) => run.onWarning!(warning.message) } : {}),
    },
  );
  started.push(performance.now());
  return new Map(files.map((file, index) => [file.scanned.relativePath, Math.round(started[index + 1]! - started[index]!)]));
}

/**
 * The error to throw for a step that failed: recorded on the remote (in a transaction of its
 * own, the failed one being rolled back), with a hint saying what the remote holds now.
 */
async function failed(run: MigrationRun, error: unknown, applied: string[], stepIndex: number): Promise<unknown> {
  const message = error instanceof Error ? error.message : String(error);
  const located = isDbfastError(error) && error.file ? `${error.file}:${error.line ?? 1}:${error.column ?? 1}: ${message}` : message;
  await withClient(run.target, (client) => withTransaction(client, async () => {
    await ensureHistoryTables(client);
    await recordDeployment(client, { ...run.deployment, mode: 'migrate', outcome: 'failed', finished: true, error: located });
  }), run.database).catch((recording: Error) => run.onWarning?.(`the failure could not be recorded on remote ${run.remote}: ${recording.message}`));
  if (!isDbfastError(error)) return error;
  const step = run.migration.steps[stepIndex];
  const partly = step && !step.transactional ? step.files[0]!.scanned.relativePath : null;
  const state: string[] = [];
  if (applied.length) state.push(`${plural(applied.length, 'file')} of this deploy ${applied.length === 1 ? 'is' : 'are'} applied and recorded on remote ${run.remote} (up to ${applied.at(-1)})`);
  if (partly) state.push(`${partly} ran outside a transaction and may be partly applied (recorded as unfinished, the next deploy runs it again)`);
  if (state.length === 0) state.push(`nothing was changed on remote ${run.remote}: the deploy's transaction was rolled back`);
  else {
    const rollback = run.deployment.backupId ? `, or dbfast deploy rollback ${run.remote} restores backup ${run.deployment.backupId} (losing writes made since)` : '';
    state.push(`fix the failing file and deploy again to continue${rollback}`);
  }
  const outside = 'dbfast runs a file outside the deploy\'s transaction only when the file itself (or a file it includes by name) holds the statement';
  const hint = [error.sqlState === '25001' ? outside : error.hint, ...state]
    .filter(Boolean)
    .join('; ');
  return new DbfastError(error.code, message, { ...fieldsOf(error), hint, cause: error });
}

function fieldsOf(error: DbfastError) {
  const { file, line, column, detail, sqlState, schema, table, columnName, constraint } = error;
  return { file, line, column, detail, sqlState, schema, table, columnName, constraint };
}
