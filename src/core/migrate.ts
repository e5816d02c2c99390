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
import { USER_SCHEMA } from './drift.js';
import { DbfastError, isDbfastError } from './errors.js';
import { withClient, withSession } from './pg/client.js';
import type { ServerTarget } from './pg/target.js';
import { withTransaction } from './pg/transaction.js';
import { plural } from './plural.js';
import type { RepositoryState } from './repository.js';
import type { ScannedFile } from './scan.js';
import { type ExecutionStats, executeFiles, resetInTransaction, type SqlFile } from './sql/execute.js';
import { scanStatements } from './sql/transactional.js';

export interface MigrationStep {
  /** The files of the step, in order. */
  files: string[];
  /** false: a file with a statement PostgreSQL refuses in a transaction; it runs alone, as `psql -f` would. */
  transactional: boolean;
  /** Why the step runs outside a transaction: `create index concurrently at 1_schema/04_index.sql:3:1`. */
  reason?: string;
  /** Outside a transaction: where it drops data (`drop table tags at line 2`), which nothing could take back. */
  drops?: string;
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
  drops?: string;
}

export interface Migration {
  steps: Step[];
  /** Applied files whose content changed since: reported, not applied again. */
  changed: ChangedFile[];
  /** New files that sort before files already applied: they run after them. */
  outOfOrder: string[];
  /** The remote records none of the environment's files as applied (none at all, or under other paths). */
  unrecorded: boolean;
  /** Baseline: the files recorded as applied without running them (the checks decide). */
  baseline?: PendingFile[];
}

/**
 * The files of `state` that `applied` lacks (or records as unfinished), grouped into steps; with
 * `baseline`, the same files, to be recorded without running.
 */
export async function planMigration(state: RepositoryState, applied: Map<string, AppliedFile>, options: { baseline?: boolean } = {}): Promise<Migration> {
  const steps: (Step & { closed?: boolean })[] = [];
  const changed: ChangedFile[] = [];
  const pending: PendingFile[] = [];
  const outOfOrder: string[] = [];
  const lastApplied = state.selected.findLastIndex((file) => applied.get(file.relativePath)?.success);
  for (const [index, scanned] of state.selected.entries()) {
    const record = applied.get(scanned.relativePath);
    if (record?.success) {
      if (record.sha256 !== scanned.hash) changed.push({ path: scanned.relativePath, appliedAt: record.appliedAt });
      continue;
    }
    const file = { scanned, sql: state.files[index]! };
    pending.push(file);
    if (index < lastApplied) outOfOrder.push(scanned.relativePath);
    if (options.baseline) continue;
    const { nonTransactional: refused, drop, enumValue } = await scanStatements(scanned.absolutePath);
    const current = steps.at(-1);
    if (refused) {
      const where = refused.path === scanned.absolutePath ? file.sql.relativePath : refused.path;
      steps.push({
        files: [file],
        transactional: false,
        reason: `${refused.statement} at ${where}:${refused.location.line}:${refused.location.column}`,
        ...(drop ? { drops: `${drop.statement} at line ${drop.location.line}` } : {}),
      });
    } else if (current?.transactional && !current.closed) {
      current.files.push(file);
    } else {
      steps.push({ files: [file], transactional: true });
    }
    // A value added with ALTER TYPE ... ADD VALUE is usable once committed: the next file starts a new step.
    if (!refused && enumValue) steps.at(-1)!.closed = true;
  }
  return {
    steps: steps.map(({ closed: _closed, ...step }) => step),
    changed,
    outOfOrder,
    unrecorded: lastApplied === -1,
    ...(options.baseline ? { baseline: pending } : {}),
  };
}

/** The files the migration runs (or, baseline, records), in order. */
export function migrationFiles(migration: Migration): string[] {
  return migration.baseline ? migration.baseline.map((file) => file.scanned.relativePath) : migration.steps.flatMap((step) => step.files.map((file) => file.scanned.relativePath));
}

/** The plan's view of the steps: paths as the remote records them. */
export function describeSteps(migration: Migration): MigrationStep[] {
  return migration.steps.map((step) => ({
    files: step.files.map((file) => file.scanned.relativePath),
    transactional: step.transactional,
    ...(step.reason ? { reason: step.reason } : {}),
    ...(step.drops ? { drops: step.drops } : {}),
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
  /** false: a transactional step whose files drop a table or a column is rolled back (the remote's allow_destructive). */
  allowDestructive: boolean;
  deployment: Pick<RemoteDeployment, 'id' | 'environment' | 'fingerprint' | 'startedAt' | 'backupId'>;
  /** [validation] and drift: run in the last step's transaction before it commits (or after a last step that has none). */
  check: (client: pg.Client) => Promise<void>;
  onStep: (step: string) => void;
  onWarning?: (message: string) => void;
}

const LOCK_NOT_AVAILABLE = '55P03';
const ACTIVE_SQL_TRANSACTION = '25001';
const UNSAFE_NEW_ENUM_VALUE_USAGE = '55P04';

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
    const { baseline } = run.migration;
    await withClient(
      run.target,
      (client) =>
        withTransaction(client, async () => {
          await recordStart(client, run);
          if (baseline) await recordAppliedFiles(client, baseline.map((file) => file.scanned), run.deployment.id, { success: true });
          await finish(run, client);
        }),
      run.database,
    ).catch(async (error) => {
      throw await failed(run, error, applied, steps.length);
    });
  }
}

/** The deploy's own rows, then its files, then (last step) the checks: one transaction, retried when a lock was not granted in time. */
async function transactionalStep(run: MigrationRun, step: Step, last: boolean): Promise<void> {
  const { lockRetries, lockTimeoutMs } = run.config.deploy;
  for (let attempt = 0; ; attempt++) {
    try {
      return await withSession(
        run.target,
        run.database,
        (session) =>
          withTransaction(session.client, async () => {
            await recordStart(session.client, run);
            const before = run.allowDestructive ? null : await dataHolders(session.client);
            const executionMs = await executeTimed(run, step.files, (files, options) => executeFiles(session, files, { ...options, inTransaction: true }));
            stillInTransaction(session.client, 'a file');
            if (before) refuseDataLoss(run, step, before, await dataHolders(session.client));
            await resetInTransaction(session.client);
            await recordAppliedFiles(session.client, step.files.map((file) => file.scanned), run.deployment.id, { success: true, executionMs });
            if (last) await finish(run, session.client);
          }),
        { ...run.settings, lock_timeout: String(lockTimeoutMs) },
      );
    } catch (error) {
      if (!(isDbfastError(error) && error.sqlState === LOCK_NOT_AVAILABLE)) throw error;
      if (attempt >= lockRetries) {
        throw error.withHint(`it waited ${lockTimeoutMs} ms for a lock, ${plural(lockRetries + 1, 'time')}: deploy when the application is quieter, or raise [deploy] lock_timeout or lock_retries`);
      }
      const wait = 1_000 * 2 ** attempt;
      const where = error.file ? `${error.file}:${error.line ?? 1}` : 'a statement';
      run.onWarning?.(`${where} waited ${lockTimeoutMs} ms for a lock the application holds: rolled back, retrying in ${wait / 1000} s (${attempt + 1} of ${lockRetries})`);
      await sleep(wait);
    }
  }
}

/**
 * A file that cannot run in a transaction: recorded as started first, as applied once it ran to
 * its end. No lock_timeout: CREATE INDEX CONCURRENTLY waits for older transactions, which blocks
 * no one, and a timeout would leave an invalid index behind.
 */
async function standaloneStep(run: MigrationRun, file: PendingFile): Promise<void> {
  await withClient(
    run.target,
    (client) =>
      withTransaction(client, async () => {
        await recordStart(client, run);
        await recordAppliedFiles(client, [file.scanned], run.deployment.id, { success: false });
      }),
    run.database,
  );
  const executionMs = await withSession(run.target, run.database, (session) => executeTimed(run, [file], (files, options) => executeFiles(session, files, options)), run.settings);
  // Also one an earlier, failed run of this file left: IF NOT EXISTS skips it without a word.
  const invalid = await withClient(run.target, invalidIndexes, run.database);
  if (invalid.length > 0) {
    throw new DbfastError('SQL_FAILED', `after ${file.sql.relativePath}, the database has ${plural(invalid.length, 'invalid index', 'invalid indexes')}: ${invalid.join(', ')}`, {
      file: file.sql.relativePath,
      hint: `a CREATE INDEX CONCURRENTLY that failed or was stopped leaves its index invalid, and IF NOT EXISTS then skips it: DROP INDEX CONCURRENTLY ${invalid[0]}, then deploy again`,
    });
  }
  await withClient(run.target, (client) => recordAppliedFiles(client, [file.scanned], run.deployment.id, { success: true, executionMs }), run.database);
}

/**
 * The tables and columns of the application (not materialized views: their data is derived), by OID and column number,
 * so that a rename keeps its key and a drop (or a drop and create again) loses it.
 */
async function dataHolders(client: pg.Client): Promise<Map<string, string>> {
  const { rows } = await client.query<{ key: string; name: string }>(
    `SELECT c.oid::text || coalesce('.' || a.attnum, '') AS key,
            CASE WHEN a.attnum IS NULL THEN format('table %I.%I', n.nspname, c.relname) ELSE format('column %I.%I.%I', n.nspname, c.relname, a.attname) END AS name
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     LEFT JOIN LATERAL (SELECT NULL::int2 AS attnum, NULL::name AS attname
                        UNION ALL SELECT attnum, attname FROM pg_attribute WHERE attrelid = c.oid AND attnum > 0 AND NOT attisdropped) a ON true
     WHERE c.relkind IN ('r', 'p') AND ${USER_SCHEMA}`,
  );
  return new Map(rows.map((row) => [row.key, row.name]));
}

/** allow_destructive = false: a table or column the step's files dropped rolls the step back. */
function refuseDataLoss(run: MigrationRun, step: Step, before: Map<string, string>, after: Map<string, string>): void {
  // A dropped table's columns go with it: the table is named, not each of them.
  const gone = new Set([...before.keys()].filter((key) => !after.has(key)));
  const dropped = [...gone]
    .filter((key) => !key.includes('.') || !gone.has(key.split('.')[0]!))
    .map((key) => before.get(key)!)
    .sort();
  if (dropped.length === 0) return;
  const files = step.files.map((file) => file.scanned.relativePath).join(', ');
  const shown = dropped.slice(0, 5).join(', ') + (dropped.length > 5 ? `, and ${dropped.length - 5} more` : '');
  throw new DbfastError('DESTRUCTIVE_REFUSED', `${files} would drop ${shown} on remote ${run.remote}, with the data: allow_destructive is false for remote ${run.remote}`, {
    hint: `set allow_destructive = true in [remotes.${run.remote}] to let deploys drop data (a backup is taken first)`,
  });
}

async function invalidIndexes(client: pg.Client): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>('SELECT indexrelid::regclass::text AS name FROM pg_index WHERE NOT indisvalid ORDER BY 1');
  return rows.map((row) => row.name);
}

async function recordStart(client: pg.Client, run: MigrationRun): Promise<void> {
  await ensureHistoryTables(client);
  await markInterrupted(client, run.deployment.id);
  await recordDeployment(client, { ...run.deployment, mode: 'migrate', outcome: 'running', finished: false, error: null });
}

/** The checks, then the deploy recorded as succeeded: in the transaction of the last step (or one of their own). */
async function finish(run: MigrationRun, client: pg.Client): Promise<void> {
  await run.check(client);
  stillInTransaction(client, 'the checks');
  await recordDeployment(client, { ...run.deployment, mode: 'migrate', outcome: 'succeeded', finished: true, error: null });
}

/**
 * The executor turns a file's COMMIT into a savepoint's release, but a statement built at run time
 * (\gexec, a test query) could still end the deploy's transaction: nothing after it may count.
 */
function stillInTransaction(client: pg.Client, what: string): void {
  if (client.getTransactionStatus() === 'T') return;
  throw new DbfastError('SQL_FAILED', `${what} ended the deploy's transaction (a COMMIT or ROLLBACK built at run time): what ran before it may be committed`, {
    hint: 'remove the COMMIT or ROLLBACK (in a \\gexec or a [validation] test query); BEGIN and COMMIT written in a file are fine',
  });
}

/** Runs `files`, timing each; milliseconds by path. A file whose bytes changed since it was planned stops the run. */
async function executeTimed(
  run: MigrationRun,
  files: PendingFile[],
  execute: (files: SqlFile[], options: Parameters<typeof executeFiles>[2]) => Promise<ExecutionStats>,
): Promise<Map<string, number>> {
  const started: number[] = [];
  const stats = await execute(
    files.map((file) => file.sql),
    {
      repositoryRoot: run.config.projectDir,
      batchBytes: run.config.performance.statementBatchBytes,
      onFileStart: () => started.push(performance.now()),
      ...(run.onWarning ? { onWarning: (warning: DbfastError) => run.onWarning!(warning.message) } : {}),
    },
  );
  started.push(performance.now());
  const edited = files.find((file) => stats.includedFiles.some((read) => read.absolutePath === file.sql.absolutePath));
  if (edited) {
    throw new DbfastError('SQL_FAILED', `${edited.sql.relativePath} changed while it was deployed`, {
      file: edited.sql.relativePath,
      hint: 'its new content was not recorded as applied; deploy again',
    });
  }
  return new Map(files.map((file, index) => [file.scanned.relativePath, Math.round(started[index + 1]! - started[index]!)]));
}

/**
 * The error to throw for a step that failed: recorded on the remote (in a transaction of its
 * own, the failed one being rolled back), with a hint saying what the remote holds now.
 */
async function failed(run: MigrationRun, error: unknown, applied: string[], stepIndex: number): Promise<unknown> {
  const located = isDbfastError(error) ? error.located : error instanceof Error ? error.message : String(error);
  await withClient(
    run.target,
    (client) =>
      withTransaction(client, async () => {
        await ensureHistoryTables(client);
        await recordDeployment(client, { ...run.deployment, mode: 'migrate', outcome: 'failed', finished: true, error: withoutSecrets(located) });
      }),
    run.database,
  ).catch((recording: Error) => run.onWarning?.(`the failure could not be recorded on remote ${run.remote}: ${recording.message}`));
  // A server error outside any file (a deferred constraint checked at COMMIT, a dropped connection) gets the same hint.
  const known = isDbfastError(error) ? error : serverError(error);
  if (!known) return error;
  return known.withHint([causeHint(known), ...stateHint(run, known, applied, stepIndex)].filter(Boolean).join('; '));
}

function serverError(error: unknown): DbfastError | null {
  if (!(error instanceof Error)) return null;
  if ('severity' in error) {
    const { code, hint, detail } = error as pg.DatabaseError;
    return new DbfastError('SQL_FAILED', error.message, { ...(code ? { sqlState: code } : {}), ...(hint ? { hint } : {}), ...(detail ? { detail } : {}), cause: error });
  }
  const { code } = error as NodeJS.ErrnoException;
  if (code === undefined && !/connection/i.test(error.message)) return null;
  return new DbfastError('SERVER_UNREACHABLE', `the connection to the remote was lost: ${error.message}`, { cause: error });
}

function causeHint(error: DbfastError): string | undefined {
  if (error.sqlState === ACTIVE_SQL_TRANSACTION) return "dbfast runs a file outside the deploy's transaction only when the file itself (or a file it includes by name) holds the statement";
  if (error.sqlState === UNSAFE_NEW_ENUM_VALUE_USAGE) return 'a value added with ALTER TYPE ... ADD VALUE can be used only once committed: put the ALTER TYPE in a file of its own (a deploy commits after it)';
  return error.hint;
}

/** What the remote holds after the failure, and how to go on. */
function stateHint(run: MigrationRun, error: DbfastError, applied: string[], stepIndex: number): string[] {
  const step = run.migration.steps[stepIndex];
  const partly = step && !step.transactional ? step.files[0]!.scanned.relativePath : null;
  const state: string[] = [];
  if (applied.length) state.push(`${plural(applied.length, 'file')} of this deploy ${applied.length === 1 ? 'is' : 'are'} applied and recorded on remote ${run.remote} (up to ${applied.at(-1)})`);
  if (partly) state.push(`${partly} ran outside a transaction and may be partly applied (recorded as unfinished, the next deploy runs it again: make it idempotent)`);
  if (error.code === 'SERVER_UNREACHABLE') {
    // The last COMMIT may or may not have reached the server.
    return [...state, `whether the last step committed is unknown: dbfast deploy history ${run.remote} and dbfast deploy ${run.remote} --dry-run show what the remote records`];
  }
  if (state.length === 0) return [`nothing was changed on remote ${run.remote}: the deploy's transaction was rolled back`];
  const checks = error.code === 'DRIFT' || error.code === 'VALIDATION_FAILED';
  const goOn = checks ? `correct the remote by hand (dbfast diff ${run.remote} shows how it differs) or with a new file, and deploy again` : 'fix the failing file and deploy again to continue';
  const back = run.deployment.backupId ? `, or dbfast backup restore ${run.deployment.backupId} --yes puts back the remote as it was before this deploy (losing writes made since)` : '';
  return [...state, goOn + back];
}

/** A failure's text is stored on the remote: a password literal quoted from a file is not. */
function withoutSecrets(text: string): string {
  return text.replace(/(PASSWORD\s+)('(?:[^']|'')*'|"(?:[^"]|"")*")/gi, "$1'****'");
}
