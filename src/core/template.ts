/**
 * The template database: built under a temporary name, swapped in by rename only when every file
 * succeeded, marked IS_TEMPLATE and closed to connections. Its metadata lives on the server
 * (metadata.ts), so every checkout and machine sharing the server sees the same truth.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type pg from 'pg';
import type { ValidationSettings } from './config/index.js';
import { type BuildCounts, type Checkpoint, copyDatabase, dropCheckpoints, reusableCheckpoint, saveCheckpoint } from './checkpoints.js';
import { DbfastError } from './errors.js';
import { type IncludedFile, isFresh, recordedIncludes } from './freshness.js';
import { type KeptTemplate, keptMetadata, keptName, pruneKept, restoredMetadata, reusableKept } from './kept.js';
import type { Layer } from './layers.js';
import { isDerivedName, SUFFIXES } from './names.js';
import { withClient, withSession } from './pg/client.js';
import { createDatabase, dropDatabase } from './pg/databases.js';
import { lockKeys, withAdvisoryLock } from './pg/locks.js';
import { METADATA_COLUMNS, type MetadataColumns, parseMetadata, writableMetadataPlace, writeMetadataSql } from './pg/metadata.js';
import type { ServerTarget } from './pg/target.js';
import { withTransaction } from './pg/transaction.js';
import { builtRoles, dropPreviousBuild, explainRoleError, roleNames, rolesUsedBy } from './roles.js';
import { type ExecuteOptions, type ExecutionStats, executeFiles, type SqlSession } from './sql/execute.js';
import { quoteIdentifier as ident } from './sql/quote.js';
import type { TemplateInfo, TemplateMetadata } from './template-metadata.js';
import { validateDatabase } from './validate.js';

export type { TemplateInfo, TemplateMetadata } from './template-metadata.js';

export interface TemplateSpec {
  name: string;
  fingerprint: string;
  /** The files by top-level folder (layers.ts); the last layer's fingerprint is `fingerprint`. */
  layers: Layer[];
  /** Keep a checkpoint after each layer, and start from the last one that still matches. */
  checkpoints: boolean;
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
  /** Previous templates kept (kept.ts) instead of dropped when a rebuild replaces them; 0 by default. */
  keepTemplates?: number;
}

export interface BuildOptions extends Pick<ExecuteOptions, 'onFileStart' | 'onEcho' | 'onWarning' | 'onWarn' | 'batchBytes'> {
  force?: boolean;
  /**
   * When a build is due, drop the previous template, its clones and the roles its builds created
   * first (roles.ts), for files that create roles unconditionally. Until the build succeeds there
   * is no template; a failed build leaves none.
   */
  recreate?: boolean;
  /**
   * Abandons the build once aborted: the running statement is cancelled, the scratch database
   * dropped, the previous template kept, and the signal's reason thrown.
   */
  signal?: AbortSignal;
}

export interface EnsureResult {
  template: TemplateInfo;
  rebuilt: boolean;
  /** What this build ran (absent when nothing was built): the layers it reused are not counted. */
  stats?: ExecutionStats;
  /** The layers (top-level folders) a rebuild took from a checkpoint instead of running them. */
  reusedLayers: string[];
  /** The kept template (kept.ts) swapped back in instead of building: nothing ran. */
  restoredFrom?: string;
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
  return rows[0] ? templateFromRow(rows[0]) : null;
}

/** The template described by its pg_database row (with METADATA_COLUMNS); refuses a database dbfast did not make. */
export function templateFromRow(row: MetadataColumns & { datname: string; size?: string | null }): TemplateInfo {
  const metadata = parseMetadata<TemplateMetadata>(row, 'template');
  if (!metadata) {
    throw new DbfastError('CONFIG_INVALID', `database "${row.datname}" exists and was not created by dbfast`, {
      hint: 'dbfast never replaces a database it did not make: choose another template_name in dbfast.toml',
    });
  }
  const name = row.datname;
  return row.size === null || row.size === undefined ? { ...metadata, name } : { ...metadata, name, sizeBytes: Number(row.size) };
}

/**
 * Returns the template, building it first when it is missing, stale (see isFresh) or
 * `force` is set; a kept template built from these files (kept.ts) is swapped back in instead of
 * building. One builder per template at a time: a server-side advisory lock makes
 * concurrent callers wait and then find the fresh template.
 */
export async function ensureTemplate(target: ServerTarget, spec: TemplateSpec, options: BuildOptions = {}): Promise<EnsureResult> {
  return withClient(target, (admin) => withAdvisoryLock(admin, lockKeys.template(spec.name), async () => {
    const current = await readTemplate(admin, spec.name);
    if (current && !options.force && (await isFresh(current, spec.fingerprint, spec))) return { template: current, rebuilt: false, reusedLayers: [] };
    await dropOrphans(admin, spec.name);
    const kept = options.force || options.recreate ? null : await reusableKept(admin, spec.name, spec.fingerprint, spec);
    if (kept) return restore(admin, spec, kept, current);
    const previous = { template: spec.name, roles: current?.roles ?? [] };
    // Under the pool's lock: a refill copying the template meanwhile would leave a spare holding the roles' objects.
    if (options.recreate) await withAdvisoryLock(admin, lockKeys.pool(spec.name), () => dropPreviousBuild(admin, previous));
    const roles = { before: await roleNames(admin), recorded: options.recreate ? [] : previous.roles };
    const { stats, reusedLayers } = await build(target, admin, spec, options, roles).catch(async (error) => {
      throw await explainRoleError(admin, error, previous);
    });
    return { template: (await readTemplate(admin, spec.name, { withSize: true }))!, rebuilt: true, stats, reusedLayers };
  }));
}

/** Swaps a kept template whose files are the current ones back in, keeping the template it replaces. */
async function restore(admin: pg.Client, spec: TemplateSpec, kept: KeptTemplate, current: TemplateInfo | null): Promise<EnsureResult> {
  // Roles outlive templates: the ones either build created are still the template's to drop on --recreate.
  const roles = [...new Set([...(kept.roles ?? []), ...(current?.roles ?? [])])];
  await swap(admin, spec.name, kept.name, { ...restoredMetadata(kept), roles }, spec.keepTemplates ?? 0);
  const template = (await readTemplate(admin, spec.name, { withSize: true }))!;
  return { template, rebuilt: true, reusedLayers: [], restoredFrom: kept.name };
}

const { building: BUILDING, retired: RETIRED } = SUFFIXES;

/** Scratch databases of builds that were killed, and templates they retired: dropped only under the template's lock. */
export async function orphanNames(admin: pg.Client, name: string): Promise<string[]> {
  const { rows } = await admin.query<{ datname: string }>('SELECT datname FROM pg_database WHERE starts_with(datname, $1)', [name]);
  // Exactly the names dbfast generates: never a user's database that merely shares the prefix.
  const orphan = new RegExp(`^(?:${BUILDING}|${RETIRED})[0-9a-f]{8}$`);
  return rows.map((row) => row.datname).filter((datname) => isDerivedName(datname, name) && orphan.test(datname.slice(name.length)));
}

async function dropOrphans(admin: pg.Client, name: string): Promise<void> {
  for (const orphan of await orphanNames(admin, name)) await dropDatabase(admin, orphan);
}

interface Built {
  stats: ExecutionStats;
  reusedLayers: string[];
}

/**
 * Runs the layers into a scratch database, from the last checkpoint that still matches (else from
 * template0), saving a checkpoint after each layer but the last; then swaps it in as the template.
 */
async function build(
  target: ServerTarget,
  admin: pg.Client,
  spec: TemplateSpec,
  options: BuildOptions,
  roles: { before: Set<string>; recorded: string[] },
): Promise<Built> {
  const started = performance.now();
  const temporary = `${spec.name}${BUILDING}${randomBytes(4).toString('hex')}`;
  const { layers } = spec;
  const from = spec.checkpoints && !options.force ? await reusableCheckpoint(admin, spec.name, layers, spec) : null;
  if (from) await copyDatabase(admin, from.name, temporary, spec.strategy);
  else await createDatabase(admin, temporary, { template: 'template0', strategy: spec.strategy });
  try {
    const first = from ? from.index + 1 : 0;
    const stats: ExecutionStats = { files: 0, statements: 0, rowsCopied: 0, failedStatements: 0, includedFiles: [] };
    const total = layers.slice(first).reduce((sum, layer) => sum + layer.files.length, 0);
    await withCancellation(admin, { timeoutMs: spec.timeoutMs, signal: options.signal }, async (signal, running) => {
      for (let index = first; index < layers.length; index++) {
        const last = index === layers.length - 1;
        const offset = stats.files;
        const ran = await withSession(target, temporary, async (session) => {
          running.session = session;
          const result = await executeFiles(session, layers[index]!.files, {
            ...options,
            onFileStart: options.onFileStart && ((file, at) => options.onFileStart!(file, offset + at, total)),
            signal,
            repositoryRoot: spec.projectDir,
          });
          if (last && spec.validation) await validateDatabase(session.client, spec.validation);
          // Statistics travel with the template, so every clone plans well from its first query.
          if (last) await session.client.query('ANALYZE');
          return result;
        });
        running.session = undefined;
        addStats(stats, ran);
        if (!last && spec.checkpoints) {
          await saveCheckpoint(
            admin,
            temporary,
            { template: spec.name, index, layer: layers[index]!.name, fingerprint: layers[index]!.fingerprint, ...withCheckpoint(from, stats, spec.projectDir) },
            spec.strategy,
          );
        }
      }
    });
    const { includedFiles, ...counts } = stats;
    const { includes, ...cumulative } = withCheckpoint(from, stats, spec.projectDir);
    const metadata: TemplateMetadata = {
      kind: 'template',
      fingerprint: spec.fingerprint,
      builtAt: new Date().toISOString(),
      durationMs: Math.round(performance.now() - started),
      ...counts,
      ...cumulative,
      builtBy: `${hostname()}:${spec.projectDir}`,
      includes,
      roles: builtRoles(roles.before, await roleNames(admin), await rolesUsedBy(admin, temporary), roles.recorded),
    };
    await swap(admin, spec.name, temporary, metadata, spec.keepTemplates ?? 0);
    // Checkpoints of layers that no longer exist, or all of them when they are off, only hold disk.
    await dropCheckpoints(admin, spec.name, spec.checkpoints ? layers.length - 1 : 0);
    return { stats, reusedLayers: layers.slice(0, first).map((layer) => layer.name) };
  } catch (error) {
    await dropDatabase(admin, temporary).catch(() => {});
    throw error;
  }
}

function addStats(into: ExecutionStats, more: ExecutionStats): void {
  into.files += more.files;
  into.statements += more.statements;
  into.rowsCopied += more.rowsCopied;
  into.failedStatements += more.failedStatements;
  into.includedFiles.push(...more.includedFiles);
}

/** The counts and includes of everything up to now: the checkpoint the build started from, and what it ran since. */
function withCheckpoint(from: Checkpoint | null, ran: ExecutionStats, projectDir: string): BuildCounts & { includes: IncludedFile[] } {
  return {
    files: (from?.files ?? 0) + ran.files,
    statements: (from?.statements ?? 0) + ran.statements,
    rowsCopied: (from?.rowsCopied ?? 0) + ran.rowsCopied,
    includes: [...(from?.includes ?? []), ...recordedIncludes(ran.includedFiles, projectDir)],
  };
}

/**
 * Runs `work`; past `timeoutMs`, or once `signal` aborts, stops it between statements and cancels
 * the statement running on the session it puts in `running` (a build opens one per layer).
 */
async function withCancellation<T>(
  admin: pg.Client,
  limits: { timeoutMs?: number; signal?: AbortSignal },
  work: (signal: AbortSignal, running: { session?: SqlSession }) => Promise<T>,
): Promise<T> {
  const { timeoutMs, signal } = limits;
  const controller = new AbortController();
  const running: { session?: SqlSession } = {};
  const cancel = () => {
    controller.abort();
    const pid = (running.session?.client as unknown as { processID?: number } | undefined)?.processID;
    if (pid) admin.query('SELECT pg_cancel_backend($1)', [pid]).catch(() => {});
  };
  const timer = timeoutMs ? setTimeout(cancel, timeoutMs) : undefined;
  if (signal?.aborted) cancel();
  else signal?.addEventListener('abort', cancel, { once: true });
  try {
    return await work(controller.signal, running);
  } catch (error) {
    if (!controller.signal.aborted) throw error;
    if (signal?.aborted) throw signal.reason;
    const at = error instanceof DbfastError ? error : undefined;
    throw new DbfastError('TIMEOUT', `the build took longer than build_timeout_ms (${timeoutMs} ms)`, {
      file: at?.file,
      line: at?.line,
      column: at?.column,
      hint: 'raise [performance] build_timeout_ms in dbfast.toml, or set it to 0 for no limit',
    });
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', cancel);
  }
}

/**
 * One transaction: clones see either the old template or the new one, never none. A session still
 * on the incoming database makes the rename wait (PostgreSQL gives it 5 s) and fail: then nothing
 * changed. The old template is kept (kept.ts) while `keep` allows, else dropped.
 */
async function swap(admin: pg.Client, name: string, incoming: string, metadata: TemplateMetadata, keep: number): Promise<void> {
  const current = await readTemplate(admin, name);
  const kept = current && keep > 0 ? keptName(name) : null;
  const retired = kept ?? `${name}${RETIRED}${randomBytes(4).toString('hex')}`;
  const place = await writableMetadataPlace(admin);
  await withTransaction(admin, async () => {
    if (current) {
      await admin.query(`ALTER DATABASE ${ident(name)} IS_TEMPLATE false`);
      await admin.query(`ALTER DATABASE ${ident(name)} RENAME TO ${ident(retired)}`);
      if (kept) await admin.query(writeMetadataSql(kept, keptMetadata(current), place));
    }
    await admin.query(`ALTER DATABASE ${ident(incoming)} RENAME TO ${ident(name)}`);
    await admin.query(`ALTER DATABASE ${ident(name)} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false`);
    await admin.query(writeMetadataSql(name, metadata, place));
  });
  if (current && !kept) await dropDatabase(admin, retired);
  await pruneKept(admin, name, keep);
}
