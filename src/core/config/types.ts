/** What the rest of dbfast reads from dbfast.toml and the environment, once checked (see load.ts). */

/** A configured (non-embedded) server. */
export interface DatabaseSettings {
  /** Where these settings came from, for messages: `database`, `DBFAST_DATABASE_URL`, `PGHOST`, `remotes.NAME`. */
  origin: string;
  url?: string;
  host?: string;
  port?: number;
  user?: string;
  /** Maintenance database to connect to, e.g. 'postgres'. */
  database?: string;
  /** Name of an environment variable holding the password. */
  passwordEnv?: string;
  /** Absolute path (resolved relative to the config file's folder). */
  passwordFile?: string;
  /** How long one connection attempt may take (default 10 s). */
  connectTimeoutMs?: number;
  /** As libpq's: disable, allow, prefer, require, verify-ca, verify-full. Wins over the URL's. */
  sslmode?: string;
  /** Absolute paths (resolved relative to the config file's folder): CA certificate, client certificate and key. */
  sslrootcert?: string;
  sslcert?: string;
  sslkey?: string;
}

/** A folder of numbered SQL folders: `[repository]`, or one of `[[repositories]]`. */
export interface RepositorySettings {
  /**
   * Its name in `[[repositories]]`, absent for `[repository]`. Named repositories' files are known by
   * `<name>/<path in the repository>`: in errors, progress, environment rules and the fingerprint.
   */
  name?: string;
  /** Absolute. */
  path: string;
  include: string[];
  exclude: string[];
}

export interface EnvironmentSettings {
  includeDirectories?: string[];
  excludeDirectories?: string[];
  includeFiles?: string[];
  excludeFiles?: string[];
  templateName?: string;
  description?: string;
}

export interface RemoteSettings extends DatabaseSettings {
  name: string;
  environment?: string;
  requireConfirmation: boolean;
  allowDestructive: boolean;
  backupBeforeDeploy: boolean;
}

export interface PerformanceSettings {
  maxConcurrentClones: number;
  cloneTimeoutMs: number;
  /** 0 means no limit. */
  buildTimeoutMs: number;
  statementBatchBytes: number;
  /** CREATE DATABASE strategy on PostgreSQL 15+; `auto` chooses by server and filesystem (strategy.ts). */
  cloneStrategy: 'auto' | 'file_copy' | 'wal_log';
  /** Spare clones kept ready per template (pool.ts); 0 disables the pool. */
  poolSize: number;
  /** Keep a checkpoint database after each top-level folder, so a rebuild starts from the last unchanged one. */
  layerCheckpoints: boolean;
  /** Previous templates kept per template (kept.ts), so switching back to their files is a rename. */
  keepTemplates: number;
  /** Clones older than this are dropped by the garbage collection (gc.ts); absent: never. */
  cloneTtlMs?: number;
  /** The garbage collection drops kept templates, checkpoints and spares until the project's databases fit. */
  maxDiskBytes?: number;
}

export interface TestQuery {
  query: string;
  minExpectedResults: number;
}

export interface ValidationSettings {
  requiredTables: string[];
  requiredFunctions: string[];
  testQueries: TestQuery[];
}

export interface DeploySettings {
  /** How long a migrate deploy's statement waits for a lock before its transaction is retried. */
  lockTimeoutMs: number;
  /** Retries of a transaction that timed out waiting for a lock. */
  lockRetries: number;
}

export interface BackupSettings {
  directory: string;
  /** `backup prune` keeps at least this many of each source's backups. */
  keepLast?: number;
  /** `backup prune` removes backups older than this (and beyond keepLast). */
  maxAgeMs?: number;
  format: 'custom' | 'directory';
}

/** A problem or warning about one key of the configuration. */
export interface ConfigIssue {
  /** The config file as users see it; absent when the value came from an environment variable. */
  file?: string;
  /** `database.port`, `remotes.staging.url`, `DBFAST_DATABASE_URL`. */
  key: string;
  /** One line, starting with the key. Never contains a password. */
  message: string;
  hint?: string;
  line?: number;
  column?: number;
}

/** Warnings are always about a key of the file. */
export type ConfigWarning = ConfigIssue & { file: string };

export interface DbfastConfig {
  /** Absolute path of the dbfast.toml used, null when none exists. */
  configPath: string | null;
  /** Folder of dbfast.toml, or cwd when none. */
  projectDir: string;
  /** `<projectDir>/.dbfast`, or $DBFAST_STATE_DIR resolved against cwd. */
  stateDir: string;
  /** stateDir came from DBFAST_STATE_DIR (errors name the variable). */
  stateDirFromEnv?: boolean;
  /** null means dbfast manages an embedded server. */
  database: DatabaseSettings | null;
  templateName: string;
  defaultEnvironment?: string;
  /** In build order: `[repository]` as the only (unnamed) one, or the `[[repositories]]`; never empty. */
  repositories: RepositorySettings[];
  environments: Record<string, EnvironmentSettings>;
  remotes: Record<string, RemoteSettings>;
  performance: PerformanceSettings;
  validation: ValidationSettings;
  backups: BackupSettings;
  deploy: DeploySettings;
  /** [tools] pg_bin_dir: the one folder to take PostgreSQL programs from (DBFAST_PG_BIN wins over it). */
  tools: { pgBinDir?: string };
  warnings: ConfigWarning[];
}
