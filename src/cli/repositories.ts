import { plural } from '../core/plural.js';
import type { GlobalOptions } from './globals.js';
import { bold, dim, printData, printJson } from './output.js';
import { withProject } from './project.js';

/** `dbfast repo list`: the repositories in build order, their files, and what each environment selects from them. */
export async function repoList(globals: GlobalOptions, options: { json?: boolean }): Promise<void> {
  await withProject(globals, async (project) => {
    const repositories = await project.repositories();
    if (options.json) return printJson(repositories);
    for (const { name, path, files, environments } of repositories) {
      const selected = Object.entries(environments).map(([environment, count]) => `${environment}: ${count}`);
      const columns = [bold(name ?? '[repository]'), path, plural(files, 'file'), ...(selected.length ? [dim(selected.join(', '))] : [])];
      printData(columns.join('\t'));
    }
  });
}
