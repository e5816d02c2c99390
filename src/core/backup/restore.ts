/**
 * Restoring a backup, atomically. Where the user may create databases, the archive goes into a new
 * database beside the target, is checked against the metadata, and is swapped in by two renames in
 * one transaction; the replaced database stays as `<name>__dbfast_prev_<time>` (connections off)
 * until pruned, so a restore can be undone. Where it may not (typical managed servers), pg_restore
 * runs in a single transaction: all of it happens or none. A database with tables is backed up
 * first either way.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import type { DbfastConfig } from '../config/index.js';
import { DbfastError, isDbfastError } from '../errors.js';
import { nameWithSuffix, validateDatabaseName } from '../names.js';
import { connect, withClient, withSession } from '../pg/client.js';
import { type DatabaseLocale, databaseExists, dropDatabase, retryWhileBusy } from '../pg/databases.js';
import type { ServerTarget } from '../pg/target.js';
import { isMetadataComment, METADATA_SETTING } from '../pg/metadata.js';
import { withTransaction } from '../pg/transaction.js';
import { remoteNamed } from '../remote.js';
import { executeFiles, resetInTransaction } from '../sql/execute.js';
import { quoteIdentifier as ident } from '../sql/quote.js';
import { runTool } from '../tools.js';
import { contentProblems } from './content.js';
import { createBackup, type DatabaseLocation, LOCALE_COLUMNS, locateSource, programFor } from './create.js';
import { loadIntoNewDatabase, withScratchName } from './load.js';
import { archivePath, type Backup, type BackupReason } from './store.js';
import { requireSound } from './verify.js';

export interface RestoreOptions {
  /** Restore onto this remote (default: where the backup came from). */
  remote?: string;
  /** Restore under this database name on that server (default: the remote's database, or the backup's). */
  toDatabase?: string;
  /** Replace an existing database without asking. */
  yes?: boolean;
  /**
   * Asked before an existing database is replaced, when `yes` is not given; without it, `yes` is
   * required. With `typed`, the answer must be that text (a remote with require_confirmation).
   */
  confirm?: (question: string, typed?: string) => Promise<boolean>;
  /** Parallel pg_restore jobs (not in a single transaction). */
  jobs?: number;
  env?: NodeJS.ProcessEnv;
  /** Hears each step: verifying, backing up, restoring, checking, swapping. */
  onStep?: (step: string) => void;
}

export interface RestoreResult {
  id: string;
  remote?: string;
  database: string;
  /** `created`: the database did not exist; `swap`: replaced by rename; `single-transaction`: restored in place. */
  method: 'created' | 'swap' | 'single-transaction';
  /** The replaced database, kept until pruned (swap only). */
  previous?: string;
  /** The backup taken of the replaced database. */
  preRestoreBackup?: string;
  durationMs: number;
}

interface Destination extends DatabaseLocale {
  superuser: boolean;
  createdb: boolean;
  exists: boolean;
  owner: boolean;
  ownerName: string | null;
}

const DESTINATION_SQL = `
SELECT r.rolsuper AS superuser, r.rolcreatedb AS createdb, d.datname IS NOT NULL AS exists,
       coalesce(pg_has_role(d.datdba, 'MEMBER'), false) AS owner, pg_get_userbyid(d.datdba) AS "ownerName", ${LOCALE_COLUMNS}
FROM pg_roles r LEFT JOIN pg_database d ON d.datname = $1
WHERE r.rolname = current_user`;

/** The application's tables: dbfast's bookkeeping alone (a failed first deploy) is not data to protect. */
const HAS_TABLES_SQL = `
SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'dbfast') AND n.nspname NOT LIKE 'pg\\_toast%') AS found`;

async function holdsTables(target: ServerTarget, database: string): Promise<boolean> {
  return withClient(target, async (client) => (await client.query<{ found: boolean }>(HAS_TABLES_SQL)).rows[0]!.found, database);
}

export async function restoreBackup(config: DbfastConfig, backup: Backup, options: RestoreOptions = {}): Promise<RestoreResult> {
  const env = options.env ?? process.env;
  const started = performance.now();
  const step = options.onStep ?? (() => {});
  if (options.toDatabase !== undefined) validateDatabaseName(options.toDatabase);
  const remote = options.remote ?? backup.remote;
  // Back where it came from by default; onto another remote, into that remote's configured database.
  const named = options.toDatabase ?? (remote === backup.remote ? backup.database : undefined);
  const location = await locateSource(config, remote === undefined ? { database: named ?? backup.database } : { remote, database: named }, env);
  step(`verifying backup ${backup.id}`);
  await requireSound(config, backup, env);
  const typed = location.remote !== undefined && remoteNamed(config, location.remote).requireConfirmation ? location.database : undefined;
  const replaced = await replaceDatabase(config, backup, location, {
    ...options,
    env,
    question: `restore backup ${backup.id} (${backup.createdAt}) over database ${describeLocation(location)}?`,
    ...(typed === undefined ? {} : { typed }),
    backupReason: 'pre-restore',
  });
  const { backupId, ...rest } = replaced;
  return { id: backup.id, ...rest, ...(backupId ? { preRestoreBackup: backupId } : {}), durationMs: Math.round(performance.now() - started) };
}

export interface ReplaceOptions extends Pick<RestoreOptions, 'yes' | 'confirm' | 'jobs' | 'onStep'> {
  env: NodeJS.ProcessEnv;
  /** Asked before an existing database is replaced; with `typed`, that text must be typed back. */
  question: string;
  typed?: string;
  /** The reason of the backup taken of a replaced database that has tables; null: none is taken. */
  backupReason: BackupReason | null;
  /** Sees the target before anything is asked or changed, and may refuse by throwing. */
  vet?: (target: { exists: boolean; hasTables: boolean; where: string; method: RestoreResult['method'] }) => void;
  /** Objects owned by the restoring user, whoever owned them where the archive was made. */
  noOwner?: boolean;
  /** A database created for the archive gets the server's default locale, not the archive's (its source may have others). */
  serverLocale?: boolean;
  /**
   * Checks the new content on a connection to it, and may refuse it by throwing: before the swap
   * (nothing changed yet), or after an in-place restore (the backup taken first is the way back).
   */
  check?: (client: pg.Client, taken: { backupId?: string }) => Promise<void>;
}

export interface Replaced {
  remote?: string;
  database: string;
  method: RestoreResult['method'];
  previous?: string;
  /** The backup taken of the replaced database. */
  backupId?: string;
}

/** Whether the database exists and holds tables, asked without changing anything. */
export async function inspectTarget(location: DatabaseLocation): Promise<{ exists: boolean; hasTables: boolean }> {
  const { target, database } = location;
  return withAdmin(target, database, async (admin) => {
    const exists = await databaseExists(admin, database);
    const hasTables = exists && (await holdsTables(target, database));
    return { exists, hasTables };
  });
}

export function describeLocation(location: DatabaseLocation): string {
  return `${location.database}${location.remote === undefined ? ' on the local server' : ` on remote ${location.remote}`}`;
}

/**
 * Puts an archive's content in the place of `location`'s database, atomically: beside it and
 * swapped in, or (without the privilege to create databases) in one transaction; a database with
 * tables is backed up first (`backupReason`).
 */
export async function replaceDatabase(config: DbfastConfig, archive: Backup, location: DatabaseLocation, options: ReplaceOptions): Promise<Replaced> {
  const { target, database } = location;
  const step = options.onStep ?? (() => {});
  const where = describeLocation(location);
  const pgRestore = await programFor('pg_restore', Number.parseInt(archive.pgDumpVersion, 10), config, options.env);

  return withAdmin(target, database, async (admin) => {
    const destination = (await admin.query<Destination>(DESTINATION_SQL, [database])).rows[0]!;
    const hasTables = destination.exists && (await holdsTables(target, database));
    const method = chooseMethod(destination, database, where);
    options.vet?.({ exists: destination.exists, hasTables, where, method });
    const result: Replaced = { ...(location.remote ? { remote: location.remote } : {}), database, method };
    if (method === 'single-transaction') await refuseTablesNotInBackup(target, database, archive, where);
    if (destination.exists) {
      await confirmReplacing(options, options.question, where, options.typed);
      if (hasTables && options.backupReason) {
        step(`backing up ${where} first`);
        const source = location.remote === undefined ? { database } : { remote: location.remote, database };
        result.backupId = (await createBackup(config, source, { reason: options.backupReason, env: options.env })).id;
      }
    }
    step(`restoring into ${where}`);
    if (method === 'single-transaction') {
      await restoreInPlace(target, database, archive, pgRestore, { ...destination, superuser: destination.superuser && !options.noOwner }, async (client) => {
        // Objects the backup does not have may remain beside it (a view, a function): only its tables' rows are checked.
        const problems = await contentProblems(client, archive, { objects: false, rows: true });
        if (problems.length) {
          throw new DbfastError('RESTORE_FAILED', `${where} would differ from the backup: ${problems.join('; ')}`, { hint: `the restore was rolled back, ${database} is as it was` });
        }
        await options.check?.(client, result);
      });
    } else {
      const check = options.check && ((client: pg.Client) => options.check!(client, result));
      const previous = await restoreBeside(admin, location, archive, pgRestore, { ...destination, superuser: destination.superuser && !options.noOwner }, {
        ...(options.jobs ? { jobs: options.jobs } : {}),
        ...(check ? { check } : {}),
        serverLocale: Boolean(options.serverLocale),
        step,
      });
      if (previous !== undefined) result.previous = previous;
    }
    return result;
  });
}

/**
 * A connection for CREATE, RENAME and DROP DATABASE: to the server's maintenance database, unless
 * that is the database being replaced (a remote's configured database), then to postgres or template1.
 */
export async function withAdmin<T>(target: ServerTarget, database: string, work: (admin: pg.Client) => Promise<T>): Promise<T> {
  const candidates = [target.maintenanceDatabase, 'postgres', 'template1'].filter((name) => name !== database);
  let admin: pg.Client | undefined;
  for (const name of candidates) {
    admin = await connect(target, name).catch((error) => {
      if (name === candidates.at(-1) || !isDbfastError(error, 'DATABASE_NOT_FOUND')) throw error;
      return undefined;
    });
    if (admin) break;
  }
  try {
    return await work(admin!);
  } finally {
    await admin!.end().catch(() => {});
  }
}

function chooseMethod(destination: Destination, database: string, where: string): RestoreResult['method'] {
  const mayCreate = destination.superuser || destination.createdb;
  if (!destination.exists) {
    if (mayCreate) return 'created';
    throw new DbfastError('RESTORE_FAILED', `database ${database} does not exist and this user may not create databases`, {
      hint: 'create it first (owned by this user), or restore with a user that has CREATEDB',
    });
  }
  // Renaming a database takes its owner with CREATEDB.
  if (destination.superuser || (destination.createdb && destination.owner)) return 'swap';
  if (destination.owner) return 'single-transaction';
  throw new DbfastError('RESTORE_FAILED', `this user may not replace ${where}: it neither owns it nor is a superuser`, {
    hint: `restore as the owner (${destination.ownerName}) or a superuser`,
  });
}

async function confirmReplacing(options: RestoreOptions, question: string, where: string, typed: string | undefined): Promise<void> {
  if (options.yes) return;
  if (!options.confirm) {
    throw new DbfastError('NOT_CONFIRMED', `restoring replaces database ${where}: pass --yes to confirm`, {
      hint: 'run it on a terminal to be asked instead',
    });
  }
  if (!(await options.confirm(question, typed))) throw new DbfastError('NOT_CONFIRMED', 'not confirmed: nothing was changed');
}

/**
 * In one transaction pg_restore --clean drops and recreates only what the archive has: a table
 * added since would stay, and block dropping its schema. Such a restore is refused up front.
 */
async function refuseTablesNotInBackup(target: ServerTarget, database: string, backup: Backup, where: string): Promise<void> {
  const { rows } = await withClient(
    target,
    (client) =>
      client.query<{ schema: string; table: string }>(
        `SELECT n.nspname AS schema, c.relname AS table FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'dbfast') AND n.nspname NOT LIKE 'pg\\_%' ORDER BY 1, 2`,
      ),
    database,
  );
  const inBackup = new Set(backup.rows.map((entry) => `${entry.schema}.${entry.table}`));
  const extra = rows.map((row) => `${row.schema}.${row.table}`).filter((name) => !inBackup.has(name));
  if (extra.length === 0) return;
  throw new DbfastError('RESTORE_FAILED', `${where} has tables the backup does not have (${extra.slice(0, 5).join(', ')}${extra.length > 5 ? ', ...' : ''}): restored in place, they would stay`, {
    hint: 'nothing was changed; drop them first, or restore as a user that may create databases (the whole database is then replaced)',
  });
}

/**
 * pg_restore --clean writes the archive as SQL, which dbfast runs in one transaction with the
 * checks before its COMMIT: a failure anywhere, the checks' included, leaves the database as it was.
 */
async function restoreInPlace(
  target: ServerTarget,
  database: string,
  backup: Backup,
  pgRestore: Awaited<ReturnType<typeof programFor>>,
  destination: Destination,
  check: (client: pg.Client) => Promise<void>,
): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'dbfast-restore-'));
  try {
    const script = join(work, `${backup.id}.sql`);
    await runTool(pgRestore, ['--clean', '--if-exists', ...(destination.superuser ? [] : ['--no-owner']), '-f', script, archivePath(backup)], { errorCode: 'RESTORE_FAILED' });
    await withSession(target, database, (session) =>
      withTransaction(session.client, async () => {
        await executeFiles(session, [{ absolutePath: script, relativePath: `backup ${backup.id} as SQL` }], { repositoryRoot: work, inTransaction: true });
        await resetInTransaction(session.client);
        await check(session.client);
      }),
    ).catch((error: unknown) => {
      if (!isDbfastError(error, 'SQL_FAILED')) throw error;
      throw new DbfastError('RESTORE_FAILED', `${error.message} (line ${error.line} of ${error.file}); the restore was rolled back, ${database} is as it was`, { cause: error });
    });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Restores into a new database, checks it, and puts it in the target's place. Returns the kept previous database. */
async function restoreBeside(
  admin: pg.Client,
  location: DatabaseLocation,
  backup: Backup,
  pgRestore: Awaited<ReturnType<typeof programFor>>,
  destination: Destination,
  options: Pick<ReplaceOptions, 'jobs' | 'serverLocale'> & { check?: (client: pg.Client) => Promise<void>; step: (message: string) => void },
): Promise<string | undefined> {
  return withScratchName(admin, location.database, 'restore', (scratch) => restoreInto(admin, location, scratch, backup, pgRestore, destination, options));
}

async function restoreInto(
  admin: pg.Client,
  { target, database }: DatabaseLocation,
  scratch: string,
  backup: Backup,
  pgRestore: Awaited<ReturnType<typeof programFor>>,
  destination: Destination,
  { jobs, check, serverLocale, step }: Pick<ReplaceOptions, 'jobs' | 'serverLocale'> & { check?: (client: pg.Client) => Promise<void>; step: (message: string) => void },
): Promise<string | undefined> {
  const { encoding, collate, ctype, localeProvider, icuLocale } = destination;
  const like = destination.exists
    ? { encoding, collate, ctype, ...(localeProvider ? { localeProvider } : {}), ...(icuLocale ? { icuLocale } : {}) }
    : serverLocale ? null : backup.properties;
  await loadIntoNewDatabase(admin, target, scratch, backup, pgRestore, {
    ...(destination.exists && destination.ownerName ? { owner: destination.ownerName } : {}),
    noOwner: !destination.superuser,
    like,
    ...(jobs ? { jobs } : {}),
  });
  try {
    step('checking the restored database');
    // pg_restore stopped at no error, from an archive read whole: its rows are the archive's. What
    // could still differ is what was made of them (objects dropped by an event trigger, say).
    await withClient(
      target,
      async (client) => {
        const problems = await contentProblems(client, backup, { objects: true, rows: false });
        if (problems.length) {
          throw new DbfastError('RESTORE_FAILED', `the restored database differs from the backup: ${problems.join('; ')}`, {
            hint: `nothing was changed: ${database} is as it was`,
          });
        }
        await check?.(client);
      },
      scratch,
    );
    if (!destination.exists) {
      await admin.query(`ALTER DATABASE ${ident(scratch)} RENAME TO ${ident(database)}`);
      return undefined;
    }
    await copyDatabaseSettings(admin, database, scratch);
    step(`swapping it in for ${database}`);
    return await swapIn(admin, database, scratch);
  } catch (error) {
    await dropDatabase(admin, scratch).catch(() => {});
    throw error;
  }
}

/**
 * What belongs to the database rather than to its content, which pg_dump keeps only with
 * --create: connection limit, per-database and per-role settings, GRANTs (given by the owner) and
 * comment. dbfast's own metadata stays with the database it describes.
 */
async function copyDatabaseSettings(admin: pg.Client, from: string, to: string): Promise<void> {
  const { rows } = await admin.query<{ sql: string }>(
    `
    SELECT sql FROM (
      SELECT 1 AS step, format('ALTER DATABASE %I CONNECTION LIMIT %s', $2::text, d.datconnlimit) AS sql FROM pg_database d WHERE d.datname = $1
      UNION ALL
      SELECT 2, CASE WHEN setrole = 0 THEN format('ALTER DATABASE %I SET %I TO %s', $2::text, name, value)
                     ELSE format('ALTER ROLE %I IN DATABASE %I SET %I TO %s', pg_get_userbyid(setrole), $2::text, name, value) END
      FROM (
        SELECT s.setrole, split_part(c, '=', 1) AS name,
               -- List settings are stored quoted already (search_path=app, "$user"); "" is the empty list.
               CASE WHEN split_part(c, '=', 1) NOT IN ('search_path', 'temp_tablespaces', 'local_preload_libraries', 'session_preload_libraries')
                    THEN quote_literal(substr(c, strpos(c, '=') + 1))
                    WHEN substr(c, strpos(c, '=') + 1) = '""' THEN ''''''
                    ELSE substr(c, strpos(c, '=') + 1) END AS value
        FROM pg_database d JOIN pg_db_role_setting s ON s.setdatabase = d.oid, unnest(s.setconfig) c WHERE d.datname = $1
      ) settings WHERE name <> '${METADATA_SETTING}'
      UNION ALL
      SELECT 3, format('REVOKE ALL ON DATABASE %I FROM PUBLIC', $2::text) FROM pg_database d WHERE d.datname = $1 AND d.datacl IS NOT NULL
      UNION ALL
      SELECT 4, format('GRANT %s ON DATABASE %I TO %s%s', a.privilege_type, $2::text,
                       CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END,
                       CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
      FROM pg_database d, aclexplode(d.datacl) a WHERE d.datname = $1
      UNION ALL
      SELECT 5, format('COMMENT ON DATABASE %I IS %L', $2::text, c.description) FROM pg_database d
      JOIN pg_shdescription c ON c.objoid = d.oid AND c.classoid = 'pg_database'::regclass WHERE d.datname = $1
    ) statements ORDER BY step`,
    [from, to],
  );
  for (const { sql } of rows) await admin.query(sql);
}

/**
 * Sessions on the target are ended and new ones refused, then both renames happen in one
 * transaction: clients see the old database or the restored one. The old one keeps refusing
 * connections, so nothing writes to it by mistake.
 */
export async function swapIn(admin: pg.Client, database: string, restored: string): Promise<string> {
  // Dated to the second; a second restore within the same second takes the next free one.
  let previous: string;
  for (let at = Date.now(); ; at += 1000) {
    previous = nameWithSuffix(database, `__dbfast_prev_${new Date(at).toISOString().replace(/[-:T]/g, '').slice(0, 14)}`);
    if (!(await databaseExists(admin, previous))) break;
  }
  await admin.query(`ALTER DATABASE ${ident(database)} WITH ALLOW_CONNECTIONS false`);
  try {
    // A session that connected just before connections were refused is ended on the next attempt.
    await retryWhileBusy(async () => {
      await endSessions(admin, database);
      await withTransaction(admin, async () => {
        await admin.query(`ALTER DATABASE ${ident(database)} RENAME TO ${ident(previous)}`);
        await admin.query(`ALTER DATABASE ${ident(restored)} RENAME TO ${ident(database)}`);
      });
    }, 5);
  } catch (error) {
    const reopen = `ALTER DATABASE ${ident(database)} WITH ALLOW_CONNECTIONS true`;
    await admin.query(reopen).catch(() => {
      throw new DbfastError('RESTORE_FAILED', `the swap failed (${(error as Error).message}) and ${database} still refuses connections`, {
        hint: `as its owner: ${reopen}`,
        cause: error,
      });
    });
    throw error;
  }
  // The kept database is no clone: dbfast's metadata (a clone's) stays with the restored one only.
  await admin.query(`ALTER DATABASE ${ident(previous)} RESET "${METADATA_SETTING}"`).catch(() => {});
  const comment = (await admin.query<{ c: string | null }>("SELECT shobj_description(oid, 'pg_database') AS c FROM pg_database WHERE datname = $1", [previous])).rows[0]?.c ?? null;
  if (isMetadataComment(comment)) await admin.query(`COMMENT ON DATABASE ${ident(previous)} IS NULL`).catch(() => {});
  return previous;
}

/** Ends the client sessions on `database`; one that this user may not end (a superuser's) is named, not ignored. */
async function endSessions(admin: pg.Client, database: string): Promise<void> {
  const { rows } = await admin.query<{ pid: number; user: string }>(
    "SELECT pid, usename AS user FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
    [database],
  );
  for (const { pid, user } of rows) {
    await admin.query('SELECT pg_terminate_backend($1)', [pid]).catch((error: Error) => {
      throw new DbfastError('RESTORE_FAILED', `a session of ${user} on ${database} cannot be ended by this user: ${error.message}`, {
        hint: 'end it (or wait for it to end), or restore as a superuser; nothing was changed',
      });
    });
  }
}
