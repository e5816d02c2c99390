import { describeRemotes, type RemoteSummary } from '../core/remote.js';
import type { GlobalOptions } from './globals.js';
import { bold, dim, info, printData, printJson, yellow } from './output.js';
import { withProject } from './project.js';

export async function remoteList(globals: GlobalOptions, options: { json?: boolean }): Promise<void> {
  await withProject(globals, async (project) => {
    const remotes = describeRemotes(project.config, process.env);
    if (options.json) return printJson(remotes);
    if (remotes.length === 0) return info('no remotes configured: add one with [remotes.NAME] in dbfast.toml');
    for (const remote of remotes) {
      printData(`${bold(remote.name)}\t${remote.url}\t${remote.environment ?? dim('(no environment)')}\t${safety(remote)}`);
      if (globals.verbose) printData(`  password from ${remote.passwordFrom}`);
    }
  });
}

/** The settings that guard a deploy, in the words of dbfast.toml. */
function safety(remote: RemoteSummary): string {
  return [
    remote.allowDestructive ? yellow('destructive allowed') : 'not destructive',
    remote.backupBeforeDeploy ? 'backup first' : yellow('no backup'),
    remote.requireConfirmation ? 'confirmation required' : 'no confirmation',
  ].join(', ');
}
