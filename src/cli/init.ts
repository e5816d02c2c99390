import { basename, dirname, relative, resolve } from 'node:path';
import { initProject } from '../core/init.js';
import type { GlobalOptions } from './globals.js';
import { green, info } from './output.js';

export async function init(
  globals: GlobalOptions,
  options: { repoDir?: string; templateName?: string; force?: boolean },
): Promise<void> {
  const result = await initProject({
    dir: globals.config ? dirname(resolve(globals.config)) : process.cwd(),
    fileName: globals.config ? basename(globals.config) : undefined,
    repoDir: options.repoDir,
    templateName: options.templateName,
    force: options.force,
    cwd: process.cwd(),
  });
  const repository = result.repoDir === '.' ? './' : `${result.repoDir}/`;
  info(`${green('wrote')} ${relative(process.cwd(), result.path) || result.path} (repository: ${repository})`);
  if (result.directories.length === 0) info(`no numbered folders found in ${repository}; environments are commented out`);
  for (const [name, directories] of Object.entries(result.environments)) info(`  ${name}: ${directories.join(', ')}`);
}
