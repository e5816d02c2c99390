import { selectForCleanup } from '../core/clone.js';
import { DbfastError } from '../core/errors.js';
import { parseDuration } from '../core/duration.js';
import { overBudgetMessage } from '../core/gc.js';
import { plural } from '../core/plural.js';
import type { GlobalOptions } from './globals.js';
import { dim, formatBytes, info, printData, printJson, warn } from './output.js';
import { withProject } from './project.js';

export async function list(globals: GlobalOptions, options: { json?: boolean; all?: boolean }): Promise<void> {
  await withProject(globals, async (project) => {
    const clones = await project.list({ all: options.all });
    if (options.json) return printJson(clones);
    if (clones.length === 0) return info('no clones');
    for (const clone of clones) {
      printData(`${clone.name}\t${clone.template}\t${clone.createdAt}\t${formatBytes(clone.sizeBytes)}`);
    }
  });
}

export async function drop(globals: GlobalOptions, names: string[]): Promise<void> {
  await withProject(globals, async (project) => {
    for (const name of await project.drop(...names)) info(`dropped ${name}`);
  });
}

export interface CleanOptions {
  olderThan?: string;
  keepLast?: number;
  all?: boolean;
  gc?: boolean;
  dryRun?: boolean;
  json?: boolean;
  serve?: boolean;
}

export async function clean(globals: GlobalOptions, options: CleanOptions): Promise<void> {
  const rulesGiven = options.all || options.olderThan !== undefined || options.keepLast !== undefined;
  if (options.serve) {
    if (rulesGiven || options.gc || options.dryRun || options.json) throw new DbfastError('USAGE', '--serve goes alone', { hint: 'run dbfast clean --serve' });
    return withProject(globals, async (project) => {
      const dropped = await project.cleanServe();
      for (const name of dropped) info(`dropped ${name}`);
      if (dropped.length === 0) info('nothing to clean');
    });
  }
  if (options.gc) {
    // The sweep follows the configuration: a rule for clones beside it would have two meanings for one run.
    if (rulesGiven) throw new DbfastError('USAGE', '--gc does not go with --all, --older-than or --keep-last', { hint: 'run dbfast clean --gc alone; it drops clones older than [performance] clone_ttl' });
    return gc(globals, options);
  }
  if (options.dryRun || options.json) throw new DbfastError('USAGE', '--dry-run and --json go with --gc', { hint: 'for example: dbfast clean --gc --dry-run' });
  if (!rulesGiven) {
    throw new DbfastError('USAGE', 'dbfast clean needs --all, --older-than, --keep-last or --gc', { hint: 'for example: dbfast clean --older-than 7d' });
  }
  const rules = { all: options.all, olderThanMs: options.olderThan === undefined ? undefined : parseDuration(options.olderThan), keepLast: options.keepLast };
  // Contradicting flags are refused before the server is reached (or started).
  selectForCleanup([], rules);
  await withProject(globals, async (project) => {
    const dropped = await project.clean(rules);
    for (const name of dropped) info(`dropped ${name}`);
    if (dropped.length === 0) info('nothing to clean');
  });
}

async function gc(globals: GlobalOptions, options: CleanOptions): Promise<void> {
  await withProject(globals, async (project) => {
    const result = await project.gc({ dryRun: options.dryRun });
    if (options.json) return printJson(result);
    const verb = result.dryRun ? 'would drop' : 'dropped';
    for (const { name, kind, sizeBytes, reason } of result.dropped) info(`${verb} ${name} (${kind}, ${formatBytes(sizeBytes)}${dim(`, ${reason}`)})`);
    const freed = result.dropped.reduce((sum, database) => sum + database.sizeBytes, 0);
    const budget = result.maxDiskBytes === null ? '' : ` of max_disk ${formatBytes(result.maxDiskBytes)}`;
    const summary = result.dropped.length === 0 ? 'nothing to collect' : `${verb} ${plural(result.dropped.length, 'database')}, ${formatBytes(freed)}`;
    info(`${summary}; dbfast's databases ${result.dryRun ? 'would use' : 'use'} ${formatBytes(result.usedBytes)}${budget}`);
    if (result.busy.length > 0) info(dim(`skipped while a build or pool refill runs: ${result.busy.join(', ')}`));
    if (result.overBudget) warn(overBudgetMessage(result));
  });
}
