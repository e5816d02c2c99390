import type { Command } from 'commander';
import type { DeployPlan, DeployResult } from '../core/deploy.js';
import type { GlobalOptions } from './globals.js';
import { bold, dim, green, info, printData, printJson, red, warn, yellow } from './output.js';
import { withProject } from './project.js';
import { terminalConfirm } from './prompt.js';

export async function deployCommand(
  globals: GlobalOptions,
  remote: string,
  options: { yes?: boolean; skipBackup?: boolean; dryRun?: boolean; forceEnv?: boolean; allowDrift?: boolean; json?: boolean },
): Promise<number> {
  const { deploy } = await import('../core/deploy.js');
  return withProject(globals, async (project) => {
    const outcome = await deploy(project.config, remote, {
      ...(globals.env === undefined ? {} : { environment: globals.env }),
      yes: Boolean(options.yes),
      skipBackup: Boolean(options.skipBackup),
      dryRun: Boolean(options.dryRun),
      forceEnv: Boolean(options.forceEnv),
      allowDrift: Boolean(options.allowDrift),
      ...terminalConfirm(),
      onStep: (step) => info(dim(`${step}...`)),
      onWarning: (message) => warn(message),
    });
    if (options.json) printJson(outcome);
    else if (!('id' in outcome)) printPlan(outcome);
    if (!('id' in outcome)) return outcome.refused ? 1 : 0;
    if (options.json) return 0;
    const result: DeployResult = outcome;
    info(`${green('deployed')} environment ${result.environment} to ${result.remote}/${result.database} (${result.method}) in ${(result.durationMs / 1000).toFixed(2)}s`);
    if (result.backupId) info(`  the database as it was: backup ${result.backupId}`);
    if (result.previous) info(`  the replaced database is kept as ${result.previous}, connections off`);
    printData(result.id);
    return 0;
  });
}

function printPlan(plan: DeployPlan): void {
  printData(`${bold('deploy')} environment ${plan.environment} (template ${plan.template}) to ${plan.remote} ${plan.url}`);
  printData(`  mode          ${plan.mode}: ${plan.files.length} files, the whole database`);
  printData(`  replaces data ${plan.destructive ? yellow('yes') : 'no (empty or new database)'}`);
  printData(`  backup first  ${plan.backup ? 'yes' : 'no'}`);
  printData(`  confirmation  ${plan.confirmation ? 'the remote\'s name typed back (or --yes)' : 'none'}`);
  for (const file of plan.files) printData(dim(`    ${file}`));
  if (plan.refused) printData(red(`  refused: ${plan.refused}`));
}

/** `deploy rollback --yes`: commander gives the flags `deploy` also has to `deploy`. */
function withParentFlags<T extends object>(options: T, command: Command): T {
  return { ...command.parent?.opts(), ...options };
}

export async function rollbackCommand(globals: GlobalOptions, remote: string, flags: { yes?: boolean; json?: boolean }, command: Command): Promise<void> {
  const options = withParentFlags(flags, command);
  const { rollbackDeploy } = await import('../core/rollback.js');
  await withProject(globals, async (project) => {
    const result = await rollbackDeploy(project.config, remote, {
      yes: Boolean(options.yes),
      ...terminalConfirm(),
      onStep: (step) => info(dim(`${step}...`)),
    });
    if (options.json) return printJson(result);
    info(`${green('rolled back')} deploy ${result.deploy} on ${result.remote}/${result.database} (${result.method})`);
    if (result.previous) info(`  the deployed database is kept as ${result.previous}, connections off`);
  });
}

export async function historyCommand(globals: GlobalOptions, remote: string, flags: { json?: boolean }, command: Command): Promise<void> {
  const options = withParentFlags(flags, command);
  const { deploymentHistory } = await import('../core/deploy.js');
  await withProject(globals, async (project) => {
    (await import('../core/remote.js')).remoteNamed(project.config, remote);
    const history = await deploymentHistory(project.config, remote);
    if (options.json) return printJson(history);
    if (history.length === 0) return info(`no deploys to ${remote} from this machine`);
    for (const entry of history) {
      const state = entry.rolledBackAt ? yellow(`rolled back ${entry.rolledBackAt}`) : 'deployed';
      printData(`${bold(entry.id)}\t${entry.environment}\t${entry.mode}\t${entry.method}\t${entry.backupId ?? '-'}\t${state}`);
    }
  });
}
