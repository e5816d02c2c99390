/** From the checked file settings to what the rest of dbfast reads: defaults applied, paths resolved. */
import os from 'node:os';
import path from 'node:path';
import { parseDuration } from '../duration.js';
import { defaultTemplateName, isProductionName } from '../names.js';
import { parseSize } from '../size.js';
import type { ConnectionSection, FileSettings } from './schema.js';
import type { DatabaseSettings, DbfastConfig } from './types.js';

type BuiltSettings = Omit<DbfastConfig, 'configPath' | 'projectDir' | 'stateDir' | 'stateDirFromEnv' | 'warnings'>;

export function buildSettings(
  settings: FileSettings,
  context: { projectDir: string; stateDir: string; env: NodeJS.ProcessEnv },
): BuiltSettings {
  const { projectDir, stateDir, env } = context;
  const resolve = (file: string) => resolvePath(projectDir, file);
  const { database, repository, repositories, performance, validation, backups, deploy } = settings;
  return {
    database: databaseSettings(database ?? {}, resolve, env),
    templateName: database?.template_name ?? defaultTemplateName(projectDir),
    ...definedOnly({ defaultEnvironment: database?.default_environment }),
    repositories: (repositories ?? [{ ...repository, path: repository?.path ?? './db' }]).map((section) =>
      definedOnly({
        name: section.name,
        // The rules have refused a [[repositories]] table without a path.
        path: resolve(section.path!),
        include: section.include_patterns ?? ['**/*.sql'],
        exclude: section.exclude_patterns ?? [],
      }),
    ),
    environments: mapValues(settings.environments ?? {}, (environment) =>
      definedOnly({
        includeDirectories: environment.include_directories,
        excludeDirectories: environment.exclude_directories,
        includeFiles: environment.include_files,
        excludeFiles: environment.exclude_files,
        templateName: environment.template_name,
        description: environment.description,
      }),
    ),
    remotes: mapValues(settings.remotes ?? {}, (remote, name) => ({
      name,
      ...connectionSettings(remote, resolve, `remotes.${name}`),
      ...definedOnly({ environment: remote.environment }),
      requireConfirmation: remote.require_confirmation ?? (remote.environment !== undefined && isProductionName(remote.environment)),
      allowDestructive: remote.allow_destructive ?? false,
      backupBeforeDeploy: remote.backup_before_deploy ?? true,
    })),
    performance: {
      maxConcurrentClones: performance?.max_concurrent_clones ?? 8,
      cloneTimeoutMs: performance?.clone_timeout_ms ?? 60_000,
      buildTimeoutMs: performance?.build_timeout_ms ?? 0,
      statementBatchBytes: performance?.statement_batch_bytes ?? 1_048_576,
      cloneStrategy: performance?.clone_strategy ?? 'auto',
      poolSize: performance?.pool_size ?? 2,
      layerCheckpoints: performance?.layer_checkpoints ?? true,
      keepTemplates: performance?.keep_templates ?? 0,
      ...definedOnly({
        cloneTtlMs: performance?.clone_ttl === undefined ? undefined : parseDuration(performance.clone_ttl),
        maxDiskBytes: performance?.max_disk === undefined ? undefined : parseSize(performance.max_disk),
      }),
    },
    validation: {
      requiredTables: validation?.required_tables ?? [],
      requiredFunctions: validation?.required_functions ?? [],
      testQueries: (validation?.test_queries ?? []).map((item) =>
        typeof item === 'string'
          ? { query: item, minExpectedResults: 1 }
          : { query: item.query, minExpectedResults: item.min_expected_results ?? 1 },
      ),
    },
    tools: definedOnly({ pgBinDir: settings.tools?.pg_bin_dir === undefined ? undefined : resolve(settings.tools.pg_bin_dir) }),
    backups: {
      directory:
        backups?.directory === undefined ? path.join(stateDir, 'backups') : resolve(backups.directory),
      ...definedOnly({
        keepLast: backups?.keep_last ?? backups?.max_backups,
        maxAgeMs: backups?.max_age === undefined ? (backups?.retention_days === undefined ? undefined : backups.retention_days * 86_400_000) : parseDuration(backups.max_age),
      }),
      format: backups?.format ?? 'custom',
    },
    deploy: {
      lockTimeoutMs: deploy?.lock_timeout === undefined ? 5_000 : parseDuration(deploy.lock_timeout),
      lockRetries: deploy?.lock_retries ?? 3,
    },
  };
}

const CONNECTION_KEYS = ['url', 'host', 'port', 'user', 'database'] as const;

function databaseSettings(
  section: ConnectionSection,
  resolve: (file: string) => string,
  env: NodeJS.ProcessEnv,
): DatabaseSettings | null {
  // The URL replaces where to connect; how to get the password still comes from the file.
  if (env.DBFAST_DATABASE_URL) {
    const { passwordEnv, passwordFile, connectTimeoutMs, sslmode, sslrootcert, sslcert, sslkey } = connectionSettings(section, resolve, 'database');
    const how = { passwordEnv, passwordFile, connectTimeoutMs, sslmode, sslrootcert, sslcert, sslkey };
    return definedOnly({ origin: 'DBFAST_DATABASE_URL', url: env.DBFAST_DATABASE_URL, ...how });
  }
  const configured = CONNECTION_KEYS.some((key) => section[key] !== undefined);
  // libpq variables reach the server through node-postgres, so PGHOST alone means "use that server".
  if (!configured && !env.PGHOST && !env.PGHOSTADDR) return null;
  return connectionSettings(section, resolve, configured ? 'database' : 'PGHOST');
}

function connectionSettings(section: ConnectionSection, resolve: (file: string) => string, origin: string): DatabaseSettings {
  return definedOnly({
    origin,
    url: section.url,
    host: section.host,
    port: section.port,
    user: section.user,
    database: section.database,
    passwordEnv: section.password_env,
    passwordFile: section.password_file === undefined ? undefined : resolve(section.password_file),
    connectTimeoutMs: section.connect_timeout_ms,
    sslmode: section.sslmode,
    sslrootcert: section.sslrootcert === undefined ? undefined : resolve(section.sslrootcert),
    sslcert: section.sslcert === undefined ? undefined : resolve(section.sslcert),
    sslkey: section.sslkey === undefined ? undefined : resolve(section.sslkey),
  });
}

function resolvePath(base: string, file: string): string {
  if (file === '~' || file.startsWith('~/')) return path.join(os.homedir(), file.slice(1));
  return path.resolve(base, file);
}

function definedOnly<T extends object>(object: T): T {
  return Object.fromEntries(Object.entries(object).filter(([, value]) => value !== undefined)) as T;
}

function mapValues<In, Out>(
  record: Record<string, In>,
  map: (value: In, key: string) => Out,
): Record<string, Out> {
  return Object.fromEntries(Object.entries(record).map(([key, value]) => [key, map(value, key)]));
}
