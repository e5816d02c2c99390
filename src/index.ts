/**
 * dbfast as a library: the same operations as the CLI.
 *
 * ```ts
 * import { openProject, watchProject } from 'dbfast';
 * const dbfast = await openProject();             // finds dbfast.toml upward from cwd
 * const { url } = await dbfast.seed();            // a fresh, fully seeded database
 * await dbfast.drop(...);                         // remove clones dbfast created
 * const watcher = await watchProject(dbfast, { onEvent: console.log }); // rebuilt on each change
 * await watcher.close();                           // cancels a running build
 * ```
 *
 * For test runners: `dbfast/testing` (a database per test, kept when the test fails) and `dbfast/vitest`.
 */
import { Project } from './core/project.js';

export type { CloneInfo } from './core/clone.js';
export type { DbfastConfig, LoadConfigOptions, RepositorySettings } from './core/config/index.js';
export { loadConfig } from './core/config/index.js';
export type { ErrorCode } from './core/errors.js';
export { DbfastError, exitCodeFor, isDbfastError } from './core/errors.js';
export { type InitOptions, type InitResult, initProject } from './core/init.js';
export type { CleanupRules } from './core/clone.js';
export { type BackupSource, type CopyProgress, type CreateBackupOptions, createBackup } from './core/backup/create.js';
export { type PruneOptions, type PruneResult, pruneBackups } from './core/backup/prune.js';
export { type RestoreOptions, type RestoreResult, restoreBackup } from './core/backup/restore.js';
export { type Backup, type BackupCheck, type BackupMetadata, findBackup, listBackups } from './core/backup/store.js';
export { type VerifyOptions, verifyBackup } from './core/backup/verify.js';
export { type DeployMode, type DeployOptions, type DeployPlan, type DeployResult, deploy } from './core/deploy.js';
export { type AppliedFile, type DeployRecord, deploymentHistory, type RemoteDeployment } from './core/deployments.js';
export { type RemoteDrift, remoteDrift, type SchemaDifference } from './core/drift.js';
export type { ChangedFile, MigrationStep } from './core/migrate.js';
export { type RollbackOptions, type RollbackResult, rollbackDeploy } from './core/rollback.js';
export {
  type FreshnessCheck,
  Project,
  type ProjectScan,
  type RepositoryFiles,
  type RepositoryState,
  type SeedOptions,
  type SeedResult,
} from './core/project.js';
export type { ProjectStatus } from './core/status.js';
export { type ScannedFile, type ScanResult, scanRepository } from './core/scan.js';
export { type EnsureServerOptions, ensureServer, type ServerOptions, serverStatus, stopServer } from './core/server.js';
export { type ExecuteOptions, type ExecutionStats, executeFiles, type FileRead, type SqlFile, type SqlSession } from './core/sql/execute.js';
export type { IncludedFile } from './core/freshness.js';
export type { FillResult } from './core/pool.js';
export type { DatabaseKind, DiskUsage } from './core/disk.js';
export type { DroppedDatabase, GcResult } from './core/gc.js';
export type { BuildOptions, EnsureResult, TemplateInfo } from './core/template.js';
/**
 * What `dbfast serve` runs: IntegreSQL's API v1 (its clients work unchanged) and dbfast's own
 * (`POST /api/dbfast/v1/seed`) on node:http, for test runners in many processes or machines.
 */
export { isLoopback, poolSettings, type RunningServe, type ServeOptions, startServe } from './core/serve/api.js';
export type { DatabaseConfig, PoolSettings } from './core/serve/templates.js';
/**
 * Keeps templates built while files change (what `dbfast watch` runs): builds now, then after each
 * change to the repository or dbfast.toml, one build at a time, reporting plain-data events.
 */
export {
  type BuiltEvent,
  type ProjectWatcher,
  type WatchedEnvironment,
  type WatchEvent,
  type WatchOptions,
  watchProject,
} from './core/watch.js';

export interface OpenProjectOptions {
  /** Path to dbfast.toml; by default it is searched upward from `cwd`. */
  config?: string;
  /** Defaults to process.cwd(). */
  cwd?: string;
  /** Environment for DBFAST_* and PG* variables; defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** Called with what the user should know (the embedded server moved to another port); dbfast never prints. */
  onWarning?: (message: string) => void;
}

/** Opens a project: its configuration now, its server (started if embedded) on first use. */
export function openProject(options: OpenProjectOptions = {}): Promise<Project> {
  return Project.open({ configPath: options.config, cwd: options.cwd, env: options.env, onWarning: options.onWarning });
}
