/**
 * The template database: built under a temporary name, swapped in by rename only when every file
 * succeeded, marked IS_TEMPLATE and closed to connections. Its metadata lives on the server in
 * the database comment, so every checkout and machine sharing the server sees the same truth.
 */
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import type { ValidationSettings } from './config.js';
import { type ServerTarget, withClient } from './connection.js';
import { DbfastError } from './errors.js';
import { type IncludedFile, isFresh, recordedIncludes } from './freshness.js';
import { type ExecuteOptions, type ExecutionStats, executeFiles, type SqlFile } from './sql/execute.js';
import { quoteIdentifier as ident, quoteLiteral } from './sql/quote.js';
import { validateDatabase } from './validate.js';

export interface TemplateMetadata {
  kind: 'template';
  fingerprint: string;
  builtAt: string;
  durationMs: number;
  files: number;
  statements: number;
  rowsCopied: number;
  /** Files the build read besides the selected ones (\i), with the hash of the bytes it read: part of freshness (see recordedIncludes). */
  includes: IncludedFile[];
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

export interface BuildOptions extends Pick<ExecuteOptions, 'onFileStart' | 'onEcho' | 'batchBytes'> {
  force?: boolean;
}

export interface EnsureResult {
  template: TemplateInfo;
  rebuilt: boolean;
  stats?: ExecutionStats;
}

interface DatabaseRow {
  datname: string;
  comment: string | null;
  size: string | null;
}

/** What dbfast wrote in a database's comment, or null for databases dbfast did not create. */
export function parseMetadata<T extends { kind: string }>(comment: string | null, kind: T['kind']): T | null {
  if (!comment?.startsWith('{"dbfast"')) return null;
  try {
    const metadata = JSON.parse(comment).dbfast as T;
    return metadata?.kind === kind ? metadata : null;
  } catch {
    return null;
  }
}

export function formatMetadata(metadata: { kind: string }): string {
  return JSON.stringify({ dbfast: metadata });
}

export async function readTemplate(admin: pg.Client, name: string, options: { withSize?: boolean } = {}): Promise<TemplateInfo | null> {
  const size = options.withSize ? 'pg_database_size(oid)::text' : 'NULL';
  const { rows } = await admin.query<DatabaseRow>(
    `SELECT datname, shobj_description(oid, 'pg_database') AS comment, ${size} AS size FROM pg_database WHERE datname = $1`,
    [name],
  );
  const row = rows[0];
  if (!row) return null;
  const metadata = parseMetadata<TemplateMetadata>(row.comment, 'template');
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
  return withClient(target, undefined, async (admin) => {
    // Session-level: released when this connection closes, even if the process is killed.
    await admin.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [`dbfast:template:${spec.name}`]);
    const current = await readTemplate(admin, spec.name);
    if (current && !options.force && (await isFresh(current, spec.fingerprint, spec))) return { template: current, rebuilt: false };
    await dropOrphans(admin, spec.name);
    const stats = await build(target, admin, spec, options);
    return { template: (await readTemplate(admin, spec.name, { withSize: true }))!, rebuilt: true, stats };
  });
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

export async function dropDatabase(admin: pg.Client, name: string): Promise<void> {
  await admin.query(`ALTER DATABASE ${ident(name)} IS_TEMPLATE false`).catch(() => {});
  await retryWhileBusy(() => admin.query(`DROP DATABASE IF EXISTS ${ident(name)} WITH (FORCE)`));
}

async function build(target: ServerTarget, admin: pg.Client, spec: TemplateSpec, options: BuildOptions): Promise<ExecutionStats> {
  const started = performance.now();
  const temporary = `${spec.name}${BUILDING}${randomBytes(4).toString('hex')}`;
  const strategy = spec.strategy ? ` STRATEGY ${spec.strategy.toUpperCase()}` : '';
  await admin.query(`CREATE DATABASE ${ident(temporary)} TEMPLATE template0${strategy}`);
  try {
    const stats = await withClient(target, temporary, (client) =>
      withTimeout(admin, client, spec.timeoutMs, async (signal) => {
        const result = await executeFiles(client, spec.files, { ...options, signal, repositoryRoot: spec.projectDir });
        if (spec.validation) await validateDatabase(client, spec.validation);
        // Statistics travel with the template, so every clone plans well from its first query.
        await client.query('ANALYZE');
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
      includes: recordedIncludes(includedFiles, spec.projectDir),
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
  client: pg.Client,
  timeoutMs: number | undefined,
  work: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  if (!timeoutMs) return work(new AbortController().signal);
  const controller = new AbortController();
  const timer = setTimeout(() => {
    controller.abort();
    const pid = (client as unknown as { processID: number }).processID;
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

/** One transaction: clones see either the old template or the new one, never none. */
async function swap(admin: pg.Client, name: string, built: string, metadata: TemplateMetadata): Promise<void> {
  const exists = (await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1;
  const retired = `${name}${RETIRED}${randomBytes(4).toString('hex')}`;
  await retryWhileBusy(async () => {
    await admin.query('BEGIN');
    try {
      if (exists) {
        await admin.query(`ALTER DATABASE ${ident(name)} IS_TEMPLATE false`);
        await admin.query(`ALTER DATABASE ${ident(name)} RENAME TO ${ident(retired)}`);
      }
      await admin.query(`ALTER DATABASE ${ident(built)} RENAME TO ${ident(name)}`);
      await admin.query(`ALTER DATABASE ${ident(name)} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false`);
      await admin.query(`COMMENT ON DATABASE ${ident(name)} IS ${quoteLiteral(formatMetadata(metadata))}`);
      await admin.query('COMMIT');
    } catch (error) {
      await admin.query('ROLLBACK');
      throw error;
    }
  });
  if (exists) await dropDatabase(admin, retired);
}

const OBJECT_IN_USE = '55006';

/**
 * A backend that just disconnected may still be counted as using a database for a few
 * milliseconds ("is being accessed by other users"): retry with a short backoff.
 */
export async function retryWhileBusy<T>(work: () => Promise<T>, attempts = 40): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if ((error as { code?: string }).code !== OBJECT_IN_USE || attempt >= attempts) throw error;
      await new Promise((resolve) => setTimeout(resolve, Math.min(10 * attempt, 250)));
    }
  }
}
