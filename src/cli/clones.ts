import { selectForCleanup } from '../core/clone.js';
import { DbfastError } from '../core/errors.js';
import { parseDuration } from '../core/duration.js';
import type { GlobalOptions } from './globals.js';
import { formatBytes, info, printData, printJson } from './output.js';
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

export async function clean(globals: GlobalOptions, options: { olderThan?: string; keepLast?: number; all?: boolean }): Promise<void> {
  if (!options.all && options.olderThan === undefined && options.keepLast === undefined) {
    throw new DbfastError('USAGE', 'dbfast clean needs --all, --older-than or --keep-last', { hint: 'for example: dbfast clean --older-than 7d' });
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
