import { plural } from '../core/plural.js';
import type { GlobalOptions } from './main.js';
import { bold, dim, formatBytes, green, printData, printJson, red, yellow } from './output.js';
import { withProject } from './project.js';

export async function status(globals: GlobalOptions, options: { json?: boolean }): Promise<number> {
  return withProject(globals, async (project) => {
    const current = await project.status();
    if (options.json) printJson(current);
    else {
      const { server, repository, template, clones } = current;
      const kind = server.embedded ? 'embedded' : 'configured';
      printData(`${bold('server')}      ${kind}, ${server.reachable ? green(`reachable at ${server.address}, PostgreSQL ${server.version}`) : red(server.error ?? 'unreachable')}`);
      const changed = repository.changed === null ? dim('no template to compare') : repository.changed ? yellow('changed since the template was built') : green('unchanged');
      printData(`${bold('repository')}  ${repository.path}, ${plural(repository.files, 'file')}, ${changed}`);
      if (globals.verbose && repository.changedFiles) {
        for (const [what, paths] of Object.entries(repository.changedFiles)) for (const path of paths) printData(`              ${what}: ${path}`);
      }
      printData(
        `${bold('template')}    ${template ? `${template.name}, built ${template.builtAt} in ${(template.durationMs / 1000).toFixed(2)}s, ${plural(template.files, 'file')}, ${formatBytes(template.sizeBytes ?? 0)}, fingerprint ${template.fingerprint.slice(0, 12)}` : current.environment === null && current.environments.length > 0 ? dim('no environment chosen (--env NAME)') : 'not built yet'}`,
      );
      printData(`${bold('clones')}      ${clones.count}, ${formatBytes(clones.totalBytes)}`);
      if (current.environments.length > 0) {
        printData(bold('environments'));
        for (const row of current.environments) {
          const mark = row.name === current.environment ? '*' : ' ';
          printData(`  ${mark} ${row.name.padEnd(14)} ${plural(row.files, 'file').padStart(11)}  ${row.template.padEnd(32)} ${row.state}${row.builtAt ? dim(` built ${row.builtAt}`) : ''}`);
        }
      }
    }
    return current.server.reachable ? 0 : 1;
  });
}
