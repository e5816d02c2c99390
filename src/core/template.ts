/**
 * The template database: built under a temporary name, swapped in by rename only when every file
 * succeeded, marked IS_TEMPLATE and closed to connections. Its metadata lives on the server
 * (metadata.ts), so every checkout and machine sharing the server sees the same truth.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type pg from 'pg';
import type { ValidationSettings } from './config/index.js';
import { DbfastError } from './errors.js';
import { type IncludedFile, isFresh, recordedIncludes } from './freshness.js';
import { withClient, withSession } from './pg/client.js';
import { createDatabase, databaseExists, dropDatabase } from './pg/databases.js';
import { lockKeys, withAdvisoryLock } from './pg/locks.js';
import { METADATA_COLUMNS, type MetadataColumns, parseMetadata, writableMetadataPlace, writeMetadataSql } from './pg/metadata.js';
import type { ServerTarget } from './pg/target.js';
import { withTransaction } from './pg/transaction.js';
import { builtRoles, dropPreviousBuild, explainRoleError, roleNames, rolesUsedBy } from './roles.js';
import { type ExecuteOptions, type ExecutionStats, executeFiles, type SqlFile, type SqlSession } from './sql/execute.js';
import { quoteIdentifier as ident } from './sql/quote.js';
import { validateDatabase } from './validate.js';

export interface TemplateMetadata {
  kind: 'template';
  fingerprint: string;
  builtAt: string;
  durationMs: number;
  files: number;
  statements: number;
  rowsCopied: number;
  /** Roles this template's builds created (roles.ts); absent in templates of format 1. */
  roles?: string[];
  /** Files the build read besides the selected ones (\i, \copy), with the hash of the bytes it read: part of freshness (recordedIncludes); absent in format 1. */
  includes?: IncludedFile[];
  /** `host:/path/to/project` of the checkout that built it, so another checkout can tell why it differs; absent before format 3. */
  builtBy?: string;
}

export interface TemplateInfo extends TemplateMetadata {
  name: string;
  /** Only when asked for: pg_database_size stats every file of the database. */
  sizeBytes?: number;
}

export interface TemplateSpec {
  name: string;
  fingerprint: string;
  files: SqlFile[];
  /** Included files (\i) inside this folder are shown relative to it; their recorded paths are relative to it. */
  projectDir: string;
  /** Holds the stat cache for hashing the included files of the current template. */
  stateDir: string;
  /** Checked after the files ran and before the swap. */
  validation?: ValidationSettings;
  /** Abandon the build after this long; 0 or undefined for no limit. */
  timeoutMs?: number;
  /** CREATE DATABASE strategy for the build's scratch database (PostgreSQL 15+). */
  strategy?: 'file_copy' | 'wal_log';
}

export interface BuildOptions extends Pick<ExecuteOptions, 'onFileStart' | 'onEcho' | 'onWarning' | 'onWarn' | 'batchBytes'> {
  force?: boolean;
  /**
   * When a build is due, drop the previous template, its clones and the roles its builds created
   * first (roles.ts), for files that create roles unconditionally. Until the build succeeds there
   * is no template; a failed build leaves none.
   */
  recreate?: boolean;
}

export interface EnsureResult {
  template: TemplateInfo;
  rebuilt: boolean;
  stats?: ExecutionStats;
}

interface DatabaseRow extends MetadataColumns {
  datname: string;
  size: string | null;
}

export async function readTemplate(admin: pg.Client, name: string, options: { withSize?: boolean } = {}): Promise<TemplateInfo | null> {
  const size = options.withSize ? 'pg_database_size(d.oid)::text' : 'NULL';
  const { rows } = await admin.query<DatabaseRow>(
    `SELECT d.datname, ${METADATA_COLUMNS}, ${size} AS size FROM pg_database d WHERE d.datname = $1`,
    [name],
  );
  const row = rows[0];
  if (!row) return null;
  const metadata = parseMetadata<TemplateMetadata>(row, 'template');
  if (!metadata) {
    throw new DbfastError('CONFIG_INVALID', `database "${name}" exists and was not created by dbfast`, {
      hint: 'dbfast never replaces a database it did not make: choose another template_name in dbfast.toml',
    });
  }
  return row.size === null ? { ...metadata, name } : { ...metadata, name, sizeBytes: Number(row.size) };
}

/**
 * Returns the template, building it first when it is missing, stale (see isFresh) or
 * `force` is set. One builder per template at a time: a server-side advisory lock makes
 * concurrent callers wait and then find the fresh template.
 */
export async function ensureTemplate(target: ServerTarget, spec: TemplateSpec, options: BuildOptions = {}): Promise<EnsureResult> {
  return withClient(target, (admin) => withAdvisoryLock(admin, lockKeys.template(spec.name), async () => {
    const current = await readTemplate(admin, spec.name);
    if (current && !options.force && (await isFresh(current, spec.fingerprint, spec))) return { template: current, rebuilt: false };
    await dropOrphans(admin, spec.name);
    const previous = { template: spec.name, roles: current?.roles ?? [] };
    if (options.recreate) await dropPreviousBuild(admin, previous);
    const roles = { before: await roleNames(admin), recorded: options.recreate ? [] : previous.roles };
    const stats = await build(target, admin, spec, options, roles).catch(async (error) => {
      throw await explainRoleError(admin, error, previous);
    });
    return { template: (await readTemplate(admin, spec.name, { withSize: true }))!, rebuilt: true, stats };
  }));
}

const BUILDING = '__b';
const RETIRED = '__o';

/** Temporary databases of builds that were killed. Only called under the template's lock. */
async function dropOrphans(admin: pg.Client, name: string): Promise<void> {
  const { rows } = await admin.query<{ datname: string }>('SELECT datname FROM pg_database WHERE starts_with(datname, $1)', [name]);
  // Exactly the names build() and swap() generate: never a user's database that merely shares the prefix.
  const generated = new RegExp(`^${name}(?:${BUILDING}|${RETIRED})[0-9a-f]{8}$`);
  for (const { datname } of rows) if (generated.test(datname)) await dropDatabase(admin, datname);
}

async function build(
  target: ServerTarget,
  admin: pg.Client,
  spec: TemplateSpec,
  options: BuildOptions,
  roles: { before: Set<string>; recorded: string[] },
): Promise<ExecutionStats> {
  const started = performance.now();
  const temporary = `${spec.name}${BUILDING}${randomBytes(4).toString('hex')}`;
  await createDatabase(admin, temporary, { template: 'template0', strategy: spec.strategy });
  try {
    const stats = await withSession(target, temporary, (session) =>
      withTimeout(admin, session, spec.timeoutMs, async (signal) => {
        const result = await executeFiles(session, spec.files, { ...options, signal, repositoryRoot: spec.projectDir });
        if (spec.validation) await validateDatabase(session.client, spec.validation);
        // Statistics travel with the template, so every clone plans well from its first query.
        await session.client.query('ANALYZE');
        return result;
      }),
    );
    const { includedFiles, ...counts } = stats;
    const metadata: TemplateMetadata = {
      kind: 'template',
      fingerprint: spec.fingerprint,
      builtAt: new Date().toISOString(),
      durationMs: Math.round(performance.now() - started),
      ...counts,
      builtBy: `${hostname()}:${spec.projectDir}`,
      includes: recordedIncludes(includedFiles, spec.projectDir),
      roles: builtRoles(roles.before, await roleNames(admin), await rolesUsedBy(admin, temporary), roles.recorded),
    };
    await swap(admin, spec.name, temporary, metadata);
    return stats;
  } catch (error) {
    await dropDatabase(admin, temporary).catch(() => {});
    throw error;
  }
}

/** Runs `work`; past `timeoutMs`, aborts it and cancels the statement running on `client`. */
async function withTimeout<T>(
  admin: pg.Client,
  session: SqlSession,
  timeoutMs: number | undefined,
  work: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  if (!timeoutMs) return work(new AbortController().signal);
  const controller = new AbortController();
  const timer = setTimeout(() => {
    controller.abort();
    const pid = (session.client as unknown as { processID: number }).processID;
    admin.query('SELECT pg_cancel_backend($1)', [pid]).catch(() => {});
  }, timeoutMs);
  try {
    return await work(controller.signal);
  } catch (error) {
    if (!controller.signal.aborted) throw error;
    const at = error instanceof DbfastError ? error : undefined;
    throw new DbfastError('TIMEOUT', `the build took longer than build_timeout_ms (${timeoutMs} ms)`, {
      file: at?.file,
      line: at?.line,
      column: at?.column,
      hint: 'raise [performance] build_timeout_ms in dbfast.toml, or set it to 0 for no limit',
    });
  } finally {
    clearTimeout(timer);
  }
}

/**
 * One transaction: clones see either the old template or the new one, never none. A session still
 * on the built database makes the rename wait (PostgreSQL gives it 5 s) and fail: then nothing changed.
 */
async function swap(admin: pg.Client, name: string, built: string, metadata: TemplateMetadata): Promise<void> {
  const exists = await databaseExists(admin, name);
  const retired = `${name}${RETIRED}${randomBytes(4).toString('hex')}`;
  const place = await writableMetadataPlace(admin);
  await withTransaction(admin, async () => {
    if (exists) {
      await admin.query(`ALTER DATABASE ${ident(name)} IS_TEMPLATE false`);
      await admin.query(`ALTER DATABASE ${ident(name)} RENAME TO ${ident(retired)}`);
    }
    await admin.query(`ALTER DATABASE ${ident(built)} RENAME TO ${ident(name)}`);
    await admin.query(`ALTER DATABASE ${ident(name)} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false`);
    await admin.query(writeMetadataSql(name, metadata, place));
  });
  if (exists) await dropDatabase(admin, retired);
}
