import { DbfastError } from '../core/errors.js';
import { plural } from '../core/plural.js';
import { addRemote, describeRemotes, type RemoteSummary, removeRemote, testRemote } from '../core/remote.js';
import type { GlobalOptions } from './globals.js';
import { bold, dim, formatBytes, green, info, printData, printJson, red, warn, yellow } from './output.js';
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
    printData(result.ok ? green('ready for deploy and backup') : red(`not ready: ${plural(failed, 'problem')}`));
    return result.ok ? 0 : 1;
  });
}

export async function remoteAdd(
  globals: GlobalOptions,
  options: { name: string; url: string; passwordEnv?: string; allowDestructive?: boolean; backup: boolean; requireConfirmation?: boolean; force?: boolean },
): Promise<void> {
  const environment = globals.env;
  if (!environment) throw new DbfastError('USAGE', 'which environment is deployed to this remote? add --env ENVIRONMENT');
  await withProject(globals, async (project) => {
    const { replaced, warnings } = await addRemote(
      project.config,
      {
        name: options.name,
        url: options.url,
        environment,
        ...(options.passwordEnv === undefined ? {} : { passwordEnv: options.passwordEnv }),
        allowDestructive: Boolean(options.allowDestructive),
        backupBeforeDeploy: options.backup,
        requireConfirmation: Boolean(options.requireConfirmation),
      },
      { force: Boolean(options.force) },
    );
    for (const warning of warnings) warn(warning);
    info(`${replaced ? 'replaced' : 'added'} remote ${options.name}: dbfast remote test ${options.name} checks it`);
  });
}

export async function remoteRemove(globals: GlobalOptions, name: string): Promise<void> {
  await withProject(globals, async (project) => {
    await removeRemote(project.config, name);
    info(`removed remote ${name}`);
  });
}
