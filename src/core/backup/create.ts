/**
 * Taking a backup: pg_dump into a hidden partial name, flushed to disk, read back whole (rows
 * counted, SHA-256 taken), renamed into place, and only then given its metadata file. A pg_dump
 * that fails or is killed leaves nothing behind that looks like a backup.
 */
import { chmod, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type pg from 'pg';
import type { DbfastConfig } from '../config/index.js';
import { DbfastError, isDbfastError } from '../errors.js';
import { makeDirectory, syncToDisk } from '../files.js';
import { withClient } from '../pg/client.js';
import { configuredTarget, resolveTarget, type ServerTarget } from '../pg/target.js';
import { remoteNamed } from '../remote.js';
import { findProgram, type Program, type ProgramName } from '../tools.js';
import { checksum, dumpDatabase, readArchive } from './archive.js';
import type { DatabaseLocale } from '../pg/databases.js';
import { type Backup, type BackupFormat, type BackupMetadata, type BackupReason, backupFolder, newBackupId, writeMetadata } from './store.js';

/** A remote by name (its configured database, or another of its server's), or a database of the local server (embedded or [database]). */
export type BackupSource = { remote: string; database?: string | undefined } | { database: string; remote?: undefined };

/** Where a backup is taken from or restored to: the server, the database, and what the config says of it. */
export interface DatabaseLocation {
  target: ServerTarget;
  database: string;
  remote?: string;
  environment?: string;
}

export interface CopyProgress {
  table: string;
  rows: number;
  /** The planner's estimate of the table's rows, -1 when never analyzed. */
  estimatedRows: number;
  bytes: number;
}

export interface CreateBackupOptions {
  reason?: BackupReason;
  label?: string;
  /** Default [backups] format. */
  format?: BackupFormat;
  /** Parallel pg_dump jobs (directory format). */
  jobs?: number;
  env?: NodeJS.ProcessEnv;
  /** Called about four times a second with the tables pg_dump is copying. */
  onProgress?: (tables: CopyProgress[]) => void;
  /** pg_dump's process id, once it runs. */
  onDumpStart?: (pid: number) => void;
}

export async function locateSource(config: DbfastConfig, source: BackupSource, env: NodeJS.ProcessEnv): Promise<DatabaseLocation> {
  if (source.remote !== undefined) {
    const remote = remoteNamed(config, source.remote);
    const target = await configuredTarget(remote, config, env);
    return {
      target,
      database: source.database ?? target.maintenanceDatabase,
      remote: remote.name,
      ...(remote.environment === undefined ? {} : { environment: remote.environment }),
    };
  }
  return { target: await resolveTarget(config, env), database: source.database };
}

interface DatabaseFacts extends DatabaseLocale {
  version: string;
  versionNum: number;
  owner: string;
}

/** Read through to_jsonb: the ICU columns exist from PostgreSQL 15 (renamed in 17). */
export const LOCALE_COLUMNS = `pg_encoding_to_char(d.encoding) AS encoding, d.datcollate AS collate, d.datctype AS ctype,
       to_jsonb(d)->>'datlocprovider' AS "localeProvider", coalesce(to_jsonb(d)->>'daticulocale', to_jsonb(d)->>'datlocale') AS "icuLocale"`;

const FACTS_SQL = `
SELECT current_setting('server_version') AS version, current_setting('server_version_num')::int AS "versionNum",
       ${LOCALE_COLUMNS}, pg_get_userbyid(d.datdba) AS owner
FROM pg_database d WHERE d.datname = current_database()`;

export async function databaseFacts(client: pg.Client): Promise<DatabaseFacts> {
  return (await client.query<DatabaseFacts>(FACTS_SQL)).rows[0]!;
}

export async function createBackup(config: DbfastConfig, source: BackupSource, options: CreateBackupOptions = {}): Promise<Backup> {
  const env = options.env ?? process.env;
  const started = performance.now();
  const startedAt = new Date().toISOString();
  const format = options.format ?? config.backups.format;
  if (options.jobs !== undefined && options.jobs > 1 && format !== 'directory') {
    throw new DbfastError('USAGE', '--jobs needs the directory format: pg_dump writes a custom archive with one job', {
      hint: 'add --format directory, or set [backups] format = "directory"',
    });
  }
  const location = await locateSource(config, source, env);
  const facts = await withClient(location.target, databaseFacts, location.database);
  const pgDump = await programFor('pg_dump', Math.floor(facts.versionNum / 10_000), config, env);
  const pgRestore = await programFor('pg_restore', pgDump.major, config, env);
  const id = newBackupId();
  const folder = backupFolder(config, location.remote);
  const archive = `${id}${format === 'directory' ? '.dir' : '.dump'}`;
  const partial = join(folder, `.${archive}.partial`);
  await makeDirectory(folder);

  let written: Omit<BackupMetadata, 'id' | 'database' | 'serverVersion' | 'pgDumpVersion' | 'format' | 'createdAt' | 'durationMs' | 'archive' | 'properties' | 'reason' | 'lastCheck'>;
  try {
    const connection = { ...(await location.target.toolConnection(location.database)), applicationName: `dbfast backup ${id}` };
    const progress = options.onProgress && watchProgress(location, connection.applicationName, options.onProgress);
    let compression: string;
    try {
      compression = await dumpDatabase(pgDump, connection, partial, { format, jobs: options.jobs, onStart: options.onDumpStart });
    } finally {
      await progress?.stop();
    }
    // A dump holds all the data: readable by its owner only, whatever the umask.
    await restrictToOwner(partial);
    await syncToDisk(partial, { recursive: true });
    const [sums, contents] = await Promise.all([checksum(partial, format), readArchive(pgRestore, partial)]);
    await rename(partial, join(folder, archive));
    await syncToDisk(folder);
    written = { compression, ...sums, ...contents };
  } catch (error) {
    await rm(partial, { recursive: true, force: true });
    throw error;
  }
  const metadata: BackupMetadata = {
    id,
    ...(location.remote === undefined ? {} : { remote: location.remote }),
    database: location.database,
    ...(location.environment === undefined ? {} : { environment: location.environment }),
    serverVersion: facts.version,
    pgDumpVersion: pgDump.version,
    format,
    // When pg_dump's snapshot was taken, near enough: the content is as of then.
    createdAt: startedAt,
    durationMs: Math.round(performance.now() - started),
    archive,
    properties: {
      encoding: facts.encoding,
      collate: facts.collate,
      ctype: facts.ctype,
      ...(facts.localeProvider === 'i' && facts.icuLocale ? { localeProvider: 'i', icuLocale: facts.icuLocale } : {}),
      owner: facts.owner,
    },
    reason: options.reason ?? 'manual',
    ...(options.label === undefined ? {} : { label: options.label }),
    ...written,
    lastCheck: { at: new Date().toISOString(), level: 'read', ok: true },
  };
  try {
    await writeMetadata(folder, metadata);
  } catch (error) {
    await rm(join(folder, archive), { recursive: true, force: true });
    throw error;
  }
  return { ...metadata, folder };
}

async function restrictToOwner(path: string): Promise<void> {
  if ((await stat(path)).isDirectory()) {
    await chmod(path, 0o700);
    for (const name of await readdir(path)) await chmod(join(path, name), 0o600);
  } else {
    await chmod(path, 0o600);
  }
}

/**
 * pg_dump or pg_restore of at least the server's major version: older ones refuse newer servers
 * (and archives), so the message says which version to install.
 */
export async function programFor(name: ProgramName, minMajor: number, config: DbfastConfig, env: NodeJS.ProcessEnv): Promise<Program> {
  const where = { env, ...(config.tools.pgBinDir ? { binDir: config.tools.pgBinDir } : {}) };
  try {
    return await findProgram(name, { ...where, minMajor });
  } catch (error) {
    if (!isDbfastError(error, 'TOOL_NOT_FOUND')) throw error;
    const older = await findProgram(name, where).catch(() => undefined);
    if (!older) throw error;
    const what = name === 'pg_dump' ? `dump a PostgreSQL ${minMajor} server` : `read an archive of pg_dump ${minMajor}`;
    throw new DbfastError('TOOL_NOT_FOUND', `${name} ${older.major} cannot ${what}`, {
      hint: `install the PostgreSQL ${minMajor} client tools or set [tools] pg_bin_dir`,
      cause: error,
    });
  }
}

const PROGRESS_SQL = `
SELECT p.relid::regclass::text AS table, p.tuples_processed::float8 AS rows, coalesce(c.reltuples, -1)::float8 AS "estimatedRows",
       p.bytes_processed::float8 AS bytes
FROM pg_stat_progress_copy p JOIN pg_stat_activity a ON a.pid = p.pid LEFT JOIN pg_class c ON c.oid = p.relid
WHERE a.application_name = $1 ORDER BY 1`;

/** Polls pg_stat_progress_copy (PostgreSQL 14+) for pg_dump's sessions, found by their application_name. */
function watchProgress(location: DatabaseLocation, applicationName: string, report: (tables: CopyProgress[]) => void): { stop(): Promise<void> } {
  let stopped = false;
  const polling = withClient(
    location.target,
    async (client) => {
      if (Number((await client.query<{ v: string }>("SELECT current_setting('server_version_num') AS v")).rows[0]!.v) < 140_000) return;
      while (!stopped) {
        report((await client.query<CopyProgress>(PROGRESS_SQL, [applicationName])).rows);
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    },
    location.database,
  ).catch(() => {}); // progress is a nicety: a failure to watch never fails the backup
  return {
    async stop() {
      stopped = true;
      await polling;
    },
  };
}
