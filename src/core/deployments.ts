/**
 * What a remote knows of its deploys, in its own database (schema `dbfast`, as Flyway keeps
 * `flyway_schema_history`): one row per deploy in `dbfast.deployments`, one per file in
 * `dbfast.applied_files` with the content hash it had when it ran. This machine keeps its own list
 * too (`<stateDir>/deployments/<remote>.json`), which rollback reads.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type pg from 'pg';
import type { DbfastConfig } from './config/index.js';
import { locateSource } from './backup/create.js';
import { DbfastError, isDbfastError } from './errors.js';
import { writeFileAtomic } from './files.js';
import { withClient } from './pg/client.js';
import type { ServerTarget } from './pg/target.js';
import { remoteNamed } from './remote.js';
import type { ScannedFile } from './scan.js';

const HISTORY_SQL = `
CREATE SCHEMA IF NOT EXISTS dbfast;
CREATE TABLE IF NOT EXISTS dbfast.deployments (
  id text PRIMARY KEY, environment text NOT NULL, fingerprint text NOT NULL, mode text NOT NULL,
  started_at timestamptz NOT NULL, finished_at timestamptz, outcome text NOT NULL, backup_id text, error text);
ALTER TABLE dbfast.deployments ADD COLUMN IF NOT EXISTS error text;
CREATE TABLE IF NOT EXISTS dbfast.applied_files (
  path text PRIMARY KEY, sha256 text NOT NULL, size bigint NOT NULL, applied_at timestamptz NOT NULL,
  execution_ms integer, success boolean NOT NULL, deployment_id text NOT NULL REFERENCES dbfast.deployments (id))`;

export type Outcome = 'running' | 'succeeded' | 'failed' | 'interrupted';

/** A row of `dbfast.deployments`. */
export interface RemoteDeployment {
  id: string;
  environment: string;
  fingerprint: string;
  mode: 'replace' | 'migrate';
  startedAt: string;
  finishedAt: string | null;
  outcome: Outcome;
  backupId: string | null;
  error: string | null;
}

/** A row of `dbfast.applied_files`. */
export interface AppliedFile {
  path: string;
  sha256: string;
  appliedAt: string;
  /** false: the file started outside a transaction and did not finish. */
  success: boolean;
}

/** Creates the bookkeeping tables when missing; on `client` in whatever transaction it is in. */
export async function ensureHistoryTables(client: pg.Client): Promise<void> {
  await client.query(HISTORY_SQL);
}

/** Inserts or updates the deploy's row. */
export async function recordDeployment(client: pg.Client, deployment: Omit<RemoteDeployment, 'finishedAt'> & { finished: boolean }): Promise<void> {
  await client.query(
    `INSERT INTO dbfast.deployments (id, environment, fingerprint, mode, started_at, finished_at, outcome, backup_id, error)
     VALUES ($1, $2, $3, $4, $5, CASE WHEN $6 THEN clock_timestamp() END, $7, $8, $9)
     ON CONFLICT (id) DO UPDATE SET finished_at = excluded.finished_at, outcome = excluded.outcome, backup_id = excluded.backup_id, error = excluded.error
       WHERE dbfast.deployments.outcome <> 'succeeded'`,
    [
      deployment.id, deployment.environment, deployment.fingerprint, deployment.mode, deployment.startedAt,
      deployment.finished, deployment.outcome, deployment.backupId, deployment.error,
    ],
  );
}

/** Files applied (or, `success` false, started) by deploy `deploymentId`; `executionMs` by path. */
export async function recordAppliedFiles(
  client: pg.Client,
  files: ScannedFile[],
  deploymentId: string,
  options: { success: boolean; executionMs?: Map<string, number> },
): Promise<void> {
  await client.query(
    `INSERT INTO dbfast.applied_files (path, sha256, size, applied_at, execution_ms, success, deployment_id)
     SELECT path, sha256, size, clock_timestamp(), ms, $5, $6 FROM unnest($1::text[], $2::text[], $3::bigint[], $4::integer[]) AS f(path, sha256, size, ms)
     ON CONFLICT (path) DO UPDATE SET sha256 = excluded.sha256, size = excluded.size, applied_at = excluded.applied_at,
       execution_ms = excluded.execution_ms, success = excluded.success, deployment_id = excluded.deployment_id`,
    [
      files.map((file) => file.relativePath),
      files.map((file) => file.hash),
      files.map((file) => file.size),
      files.map((file) => options.executionMs?.get(file.relativePath) ?? null),
      options.success,
      deploymentId,
    ],
  );
}

/** Deploys other than `current` recorded as running: their process is gone, since the caller holds the remote's deploy lock. */
export async function markInterrupted(client: pg.Client, current: string): Promise<void> {
  await client.query("UPDATE dbfast.deployments SET outcome = 'interrupted' WHERE outcome = 'running' AND id <> $1", [current]);
}

async function hasHistory(client: pg.Client): Promise<boolean> {
  const { rows } = await client.query<{ found: boolean }>("SELECT to_regclass('dbfast.applied_files') IS NOT NULL AS found");
  return rows[0]!.found;
}

/** The files the remote's database records as applied (none when it has no bookkeeping yet). */
export async function appliedFiles(client: pg.Client): Promise<Map<string, AppliedFile>> {
  if (!(await hasHistory(client))) return new Map();
  const { rows } = await client.query<AppliedFile>(
    `SELECT path, sha256, to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS "appliedAt", success FROM dbfast.applied_files`,
  );
  return new Map(rows.map((row) => [row.path, row]));
}

/** `dbfast.deployments` of the database `client` is connected to, oldest first. */
export async function remoteDeployments(client: pg.Client): Promise<RemoteDeployment[]> {
  if (!(await hasHistory(client))) return [];
  // to_jsonb(d): a table written by an earlier dbfast may lack the newer columns.
  const { rows } = await client.query<RemoteDeployment>(
    `SELECT id, environment, fingerprint, mode, started_at AS "startedAt", finished_at AS "finishedAt", outcome,
            backup_id AS "backupId", to_jsonb(d) ->> 'error' AS error FROM dbfast.deployments d ORDER BY started_at, id`,
  );
  return rows.map((row) => ({ ...row, startedAt: isoString(row.startedAt), finishedAt: row.finishedAt === null ? null : isoString(row.finishedAt) }));
}

function isoString(value: string | Date): string {
  return value instanceof Date ? value.toISOString() : value;
}

/** The remote's `dbfast.deployments` rows as JSON (`[]` when it has none), to carry into a database that replaces it. */
export async function deploymentsAsJson(target: ServerTarget, database: string): Promise<string> {
  return JSON.stringify(await withClient(target, remoteDeployments, database).then((rows) => rows.map(toColumns)));
}

function toColumns(row: RemoteDeployment): Record<string, unknown> {
  return {
    id: row.id, environment: row.environment, fingerprint: row.fingerprint, mode: row.mode, started_at: row.startedAt,
    finished_at: row.finishedAt, outcome: row.outcome, backup_id: row.backupId, error: row.error,
  };
}

/** Earlier deploys (deploymentsAsJson) into the database `client` is connected to. */
export async function carryDeployments(client: pg.Client, earlier: string): Promise<void> {
  await client.query(
    `INSERT INTO dbfast.deployments (id, environment, fingerprint, mode, started_at, finished_at, outcome, backup_id, error)
     SELECT id, environment, fingerprint, mode, started_at, finished_at, outcome, backup_id, error
     FROM json_populate_recordset(NULL::dbfast.deployments, $1) ON CONFLICT DO NOTHING`,
    [earlier],
  );
}

/** A deploy as recorded on this machine (DeployResult without its file lists). */
export interface DeployRecord {
  id: string;
  remote: string;
  database: string;
  environment: string;
  template: string;
  fingerprint: string;
  mode: 'replace' | 'migrate';
  /** How: `created`, `swap`, `single-transaction` (replace) or `migrate`. */
  method: string;
  startedAt: string;
  /** The replaced database, kept for rollback. */
  previous?: string;
  /** The backup taken first. */
  backupId?: string;
  durationMs: number;
  rolledBackAt?: string;
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

export interface HistoryEntry extends Pick<RemoteDeployment, 'id' | 'environment' | 'mode' | 'startedAt' | 'outcome' | 'backupId' | 'error'> {
  rolledBackAt?: string;
}

/**
 * A remote's deploys, oldest first: from its dbfast.deployments (every machine's, failures
 * included), with the rollbacks this machine made; from this machine's list when the remote
 * cannot be read.
 */
export async function deployHistory(
  config: DbfastConfig,
  remote: string,
  options: { env?: NodeJS.ProcessEnv; onWarning?: (message: string) => void } = {},
): Promise<{ source: 'remote' | 'local'; deployments: HistoryEntry[] }> {
  const local = await deploymentHistory(config, remoteNamed(config, remote).name);
  const rolledBack = new Map(local.flatMap((entry) => (entry.rolledBackAt ? [[entry.id, entry.rolledBackAt] as const] : [])));
  try {
    const location = await locateSource(config, { remote }, options.env ?? process.env);
    const rows = await withClient(location.target, remoteDeployments, location.database);
    return { source: 'remote', deployments: rows.map((row) => ({ ...row, ...(rolledBack.has(row.id) ? { rolledBackAt: rolledBack.get(row.id)! } : {}) })) };
  } catch (error) {
    if (!isDbfastError(error) || !['SERVER_UNREACHABLE', 'AUTH_FAILED', 'DATABASE_NOT_FOUND'].includes(error.code)) throw error;
    options.onWarning?.(`${error.message}: the deploys listed are those made from this machine`);
    const deployments = local.map((entry) => ({
      id: entry.id,
      environment: entry.environment,
      mode: entry.mode,
      startedAt: entry.startedAt,
      outcome: 'succeeded' as const,
      backupId: entry.backupId ?? null,
      error: null,
      ...(entry.rolledBackAt ? { rolledBackAt: entry.rolledBackAt } : {}),
    }));
    return { source: 'local', deployments };
  }
}

export async function recordLocally(config: DbfastConfig, entry: DeployRecord): Promise<void> {
  await writeDeploymentHistory(config, entry.remote, [...(await deploymentHistory(config, entry.remote)), entry]);
}
