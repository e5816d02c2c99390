import type { CopyProgress } from '../core/backup/create.js';
import type { Backup } from '../core/backup/store.js';
import { parseDuration } from '../core/duration.js';
import { DbfastError } from '../core/errors.js';
import { plural } from '../core/plural.js';
import type { GlobalOptions } from './globals.js';
import { bold, dim, formatBytes, green, info, printData, printJson, red, warn, yellow } from './output.js';
import { withProject } from './project.js';
import { terminalConfirm } from './prompt.js';

export async function backupCreate(
  globals: GlobalOptions,
  options: { remote?: string; database?: string; label?: string; format?: 'custom' | 'directory'; jobs?: number; json?: boolean },
): Promise<void> {
  if (options.remote === undefined && options.database === undefined) {
    throw new DbfastError('USAGE', 'dbfast backup create needs --remote NAME or --database NAME', { hint: 'dbfast remote list shows the remotes' });
  }
  const { createBackup } = await import('../core/backup/create.js');
  await withProject(globals, async (project) => {
    const source = options.remote === undefined ? { database: options.database! } : { remote: options.remote, database: options.database };
    const progress = copyProgress();
    const backup = await createBackup(project.config, source, {
      ...(options.label === undefined ? {} : { label: options.label }),
      ...(options.format === undefined ? {} : { format: options.format }),
      ...(options.jobs === undefined ? {} : { jobs: options.jobs }),
      ...(progress ? { onProgress: progress.report } : {}),
    }).finally(() => progress?.done());
    if (options.json) return printJson(backup);
    info(`${green('backed up')} ${describeSource(backup)} in ${(backup.durationMs / 1000).toFixed(2)}s: ${formatBytes(backup.sizeBytes)}, ${plural(backup.counts.tables, 'table')}, ${plural(totalRows(backup), 'row')}, read back whole`);
    printData(backup.id);
  });
}

/** The tables pg_dump copies, rewritten in place on a terminal; nothing elsewhere. */
function copyProgress(): { report(tables: CopyProgress[]): void; done(): void } | undefined {
  if (!process.stderr.isTTY) return undefined;
  let shown = false;
  return {
    report(tables) {
      const line = tables
        .map(({ table, rows, estimatedRows, bytes }) => `${table} ${rows}${estimatedRows > 0 ? `/~${Math.round(estimatedRows)}` : ''} rows, ${formatBytes(bytes)}`)
        .join('; ');
      process.stderr.write(`\r\u001b[K${dim(line)}`);
      shown = line !== '';
    },
    done() {
      if (shown) process.stderr.write('\r\u001b[K');
    },
  };
}

export async function backupList(globals: GlobalOptions, options: { remote?: string; json?: boolean }): Promise<void> {
  const { listBackups } = await import('../core/backup/store.js');
  await withProject(globals, async (project) => {
    if (options.remote !== undefined) (await import('../core/remote.js')).remoteNamed(project.config, options.remote);
    const backups = await listBackups(project.config, options.remote === undefined ? {} : { remote: options.remote });
    if (options.json) return printJson(backups);
    if (backups.length === 0) return info(`no backups in ${project.config.backups.directory}`);
    for (const backup of backups) {
      const { lastCheck, trialRestore } = backup;
      const trial = trialRestore ? (trialRestore.ok ? ', restore-tested' : yellow(`, trial restore failed: ${trialRestore.problem}`)) : '';
      const state = lastCheck.ok ? `${green('sound')}${trial}` : red(`NOT SOUND: ${lastCheck.problem}`);
      const label = backup.label ? ` ${dim(backup.label)}` : '';
      printData(`${bold(backup.id)}\t${describeSource(backup)}\t${age(backup.createdAt)}\t${formatBytes(backup.sizeBytes)}\t${backup.reason}\t${state}${label}`);
    }
  });
}

/** Exit 1 when any backup checked is not sound. */
export async function backupVerify(globals: GlobalOptions, id: string | undefined, options: { all?: boolean; restore?: boolean; json?: boolean }): Promise<number> {
  if ((id === undefined) === !options.all) throw new DbfastError('USAGE', 'dbfast backup verify needs a backup id or --all (not both)');
  const { findBackup, listBackups } = await import('../core/backup/store.js');
  const { verifyBackup } = await import('../core/backup/verify.js');
  return withProject(globals, async (project) => {
    const backups = id === undefined ? await listBackups(project.config) : [await findBackup(project.config, id)];
    const results = [];
    for (const backup of backups) {
      if (!options.json) info(`verifying ${backup.id} (${describeSource(backup)})${options.restore ? ' with a trial restore' : ''}`);
      const check = await verifyBackup(project.config, backup, { restore: Boolean(options.restore) });
      results.push({ id: backup.id, ...check });
      if (!options.json) printData(check.ok ? `${green('✓')} ${backup.id} sound` : `${red('✗')} ${backup.id}: ${check.problem}`);
    }
    if (options.json) printJson(results);
    else if (backups.length === 0) info('no backups to verify');
    return results.every((result) => result.ok) ? 0 : 1;
  });
}

export async function backupRestore(
  globals: GlobalOptions,
  id: string,
  options: { remote?: string; toDatabase?: string; yes?: boolean; jobs?: number; json?: boolean },
): Promise<void> {
  const { findBackup } = await import('../core/backup/store.js');
  const { restoreBackup } = await import('../core/backup/restore.js');
  await withProject(globals, async (project) => {
    const backup = await findBackup(project.config, id);
    const result = await restoreBackup(project.config, backup, {
      ...(options.remote === undefined ? {} : { remote: options.remote }),
      ...(options.toDatabase === undefined ? {} : { toDatabase: options.toDatabase }),
      ...(options.jobs === undefined ? {} : { jobs: options.jobs }),
      yes: Boolean(options.yes),
      ...terminalConfirm(),
      onStep: (step) => info(dim(`${step}...`)),
    });
    if (options.json) return printJson(result);
    const where = `${result.database}${result.remote ? ` on ${result.remote}` : ''}`;
    info(`${green('restored')} ${result.id} into ${where} (${result.method}) in ${(result.durationMs / 1000).toFixed(2)}s`);
    if (result.preRestoreBackup) info(`  the database as it was: backup ${result.preRestoreBackup}`);
    if (result.previous) info(`  the replaced database is kept as ${result.previous}, connections off (dbfast backup prune drops it)`);
  });
}

export async function backupPrune(
  globals: GlobalOptions,
  options: { remote?: string; keepLast?: number; olderThan?: string; dryRun?: boolean; json?: boolean },
): Promise<void> {
  const olderThanMs = options.olderThan === undefined ? undefined : parseDuration(options.olderThan);
  const { pruneBackups } = await import('../core/backup/prune.js');
  await withProject(globals, async (project) => {
    const result = await pruneBackups(project.config, {
      ...(options.remote === undefined ? {} : { remote: options.remote }),
      ...(options.keepLast === undefined ? {} : { keepLast: options.keepLast }),
      ...(olderThanMs === undefined ? {} : { olderThanMs }),
      dryRun: Boolean(options.dryRun),
    });
    if (options.json) {
      return printJson({ ...result, removed: result.removed.map((backup) => backup.id), kept: result.kept.map((backup) => backup.id) });
    }
    const verb = result.dryRun ? 'would remove' : 'removed';
    for (const backup of result.removed) printData(`${verb} ${backup.id}\t${describeSource(backup)}\t${age(backup.createdAt)}\t${formatBytes(backup.sizeBytes)}`);
    for (const path of result.removedLeftovers) printData(`${verb} ${path} (left by a backup that never finished)`);
    for (const name of result.droppedDatabases) printData(`${result.dryRun ? 'would drop' : 'dropped'} database ${name}`);
    for (const { id, why } of result.protected) info(dim(`kept ${id}: ${why}`));
    for (const { server, error } of result.unreachable) warn(`the __dbfast_prev databases of ${server} were not looked at: ${error}`);
    info(`${verb} ${plural(result.removed.length, 'backup')}, ${formatBytes(result.freedBytes)} ${result.dryRun ? 'would be ' : ''}freed; ${result.kept.length} kept`);
  });
}

function describeSource(backup: Backup): string {
  return backup.remote === undefined ? `${backup.database} (local)` : `${backup.remote}/${backup.database}`;
}

function totalRows(backup: Backup): number {
  return backup.rows.reduce((sum, entry) => sum + entry.rows, 0);
}

function age(createdAt: string): string {
  const seconds = Math.max(0, (Date.now() - Date.parse(createdAt)) / 1000);
  if (seconds < 90) return `${Math.round(seconds)}s ago`;
  if (seconds < 5400) return `${Math.round(seconds / 60)}m ago`;
  if (seconds < 129_600) return `${Math.round(seconds / 3600)}h ago`;
  return `${Math.round(seconds / 86_400)}d ago`;
}
