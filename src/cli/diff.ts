import { plural } from '../core/plural.js';
import type { GlobalOptions } from './globals.js';
import { dim, green, info, printData, printJson, red, yellow } from './output.js';
import { withProject } from './project.js';

/** Exit 1 when the remote's schema differs from its environment's template. */
export async function diff(globals: GlobalOptions, remote: string, options: { json?: boolean }): Promise<number> {
  const { oneLine, remoteDrift } = await import('../core/drift.js');
  return withProject(globals, async (project) => {
    const drift = await remoteDrift(project.config, remote, globals.env === undefined ? {} : { environment: globals.env });
    if (options.json) {
      printJson(drift);
      return drift.differences.length ? 1 : 0;
    }
    const compared = `${drift.remote}/${drift.database} with template ${drift.template}${drift.environment ? ` (environment ${drift.environment})` : ''}`;
    if (drift.differences.length === 0) {
      info(`${green('no drift:')} ${compared}`);
      return 0;
    }
    for (const { object, change, expected, actual } of drift.differences) {
      if (change === 'missing') printData(`${red('-')} ${object}${dim(`  ${oneLine(expected)}`)}`);
      else if (change === 'extra') printData(`${green('+')} ${object}${dim(`  ${oneLine(actual)}`)}`);
      else printData(`${yellow('~')} ${object}\n    ${red(`- ${oneLine(expected)}`)}\n    ${green(`+ ${oneLine(actual)}`)}`);
    }
    info(red(`drift: ${plural(drift.differences.length, 'difference')} between ${compared} (- only in the template, + only on the remote, ~ changed)`));
    return 1;
  });
}
