import { describeRemotes, type RemoteSummary, testRemote } from '../core/remote.js';
import type { GlobalOptions } from './globals.js';
import { bold, dim, formatBytes, green, info, printData, printJson, red, yellow } from './output.js';
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

/** Exit 0 only when everything deploy and backup need is in place. */
export async function remoteTest(globals: GlobalOptions, name: string, options: { json?: boolean }): Promise<number> {
  return withProject(globals, async (project) => {
    const result = await testRemote(project.config, name);
    if (options.json) {
      printJson(result);
      return result.ok ? 0 : 1;
    }
    printData(`${bold(result.name)}\t${result.url}`);
    for (const check of result.checks) {
      printData(`  ${check.ok ? green('✓') : red('✗')} ${check.check.padEnd(14)} ${check.message}`);
      if (check.hint) printData(dim(`      hint: ${check.hint}`));
    }
    if (result.databaseSizeBytes !== undefined) printData(`    ${'size'.padEnd(14)} ${formatBytes(result.databaseSizeBytes)}`);
    const failed = result.checks.filter((check) => !check.ok).length;
    printData(result.ok ? green('ready for deploy and backup') : red(`not ready: ${failed === 1 ? '1 problem' : `${failed} problems`}`));
    return result.ok ? 0 : 1;
  });
}
