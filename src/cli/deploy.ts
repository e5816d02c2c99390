import type { Command } from 'commander';
import { type DeployMode, type DeployPlan, type DeployResult, deploy, modeSummary } from '../core/deploy.js';
import { deployHistory } from '../core/deployments.js';
import { plural } from '../core/plural.js';
import type { GlobalOptions } from './globals.js';
import { bold, dim, green, info, printData, printJson, red, warn, yellow } from './output.js';
import { withProject } from './project.js';
import { terminalConfirm } from './prompt.js';

export async function deployCommand(
  globals: GlobalOptions,
  remote: string,
  options: { mode?: DeployMode; strict?: boolean; baseline?: boolean; jobs?: number; yes?: boolean; skipBackup?: boolean; dryRun?: boolean; forceEnv?: boolean; allowDrift?: boolean; json?: boolean },
): Promise<number> {
  return withProject(globals, async (project) => {
    const outcome = await deploy(project.config, remote, {
      ...(globals.env === undefined ? {} : { environment: globals.env }),
      ...(options.mode ? { mode: options.mode } : {}),
      strict: Boolean(options.strict),
      baseline: Boolean(options.baseline),
      ...(options.jobs === undefined ? {} : { jobs: options.jobs }),
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
    if (result.baseline) {
      info(`${green('baselined')} ${result.remote}/${result.database}: ${plural(result.files.length, 'file')} of environment ${result.environment} recorded as applied, its schema being the template's`);
      printData(result.id);
      return 0;
    }
    const what = result.mode === 'migrate' ? `${plural(result.files.length, 'new file')} of environment ${result.environment}` : `environment ${result.environment}`;
    info(`${green('deployed')} ${what} to ${result.remote}/${result.database} (${result.method}) in ${(result.durationMs / 1000).toFixed(2)}s`);
    if (result.backupId) info(`  the database as it was: backup ${result.backupId}`);
    if (result.previous) info(`  the replaced database is kept as ${result.previous}, connections off`);
    printData(result.id);
    return 0;
  });
}

function printPlan(plan: DeployPlan): void {
  printData(`${bold('deploy')} environment ${plan.environment} (template ${plan.template}) to ${plan.remote} ${plan.url}`);
  printData(`  mode          ${plan.mode}: ${plan.mode === 'replace' ? `${plural(plan.files.length, 'file')}, the whole database` : modeSummary(plan)}`);
  printData(`  replaces data ${plan.destructive ? yellow('yes') : plan.mode === 'migrate' ? 'no' : 'no (empty or new database)'}`);
  printData(`  backup first  ${plan.backup ? 'yes' : 'no'}`);
  printData(`  confirmation  ${plan.confirmation ? 'the remote\'s name typed back (or --yes)' : 'none'}`);
  if (plan.baseline) {
    for (const file of plan.files) printData(dim(`    ${file}`));
  } else if (plan.steps) {
    for (const [index, step] of plan.steps.entries()) {
      printData(`  step ${index + 1}        ${step.transactional ? 'one transaction' : yellow(`outside a transaction: ${step.reason}`)}`);
      for (const file of step.files) printData(dim(`    ${file}`));
    }
    for (const file of plan.changed ?? []) printData(yellow(`  changed since applied on ${file.appliedAt.slice(0, 10)}, not applied again: ${file.path}`));
    for (const file of plan.outOfOrder ?? []) printData(yellow(`  new, sorts before applied files (runs after them): ${file}`));
  } else {
    for (const file of plan.files) printData(dim(`    ${file}`));
  }
  if (plan.changes) {
    printData(`  schema        ${plan.changes.length === 0 ? 'the same as the template\'s' : 'changes to match the template (+ created, - dropped, ~ changed):'}`);
    for (const line of plan.changes) printData(`    ${line.startsWith('+') ? green(line) : line.startsWith('-') ? red(line) : line}`);
  }
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
  await withProject(globals, async (project) => {
    const history = await deployHistory(project.config, remote, { onWarning: (message) => warn(message) });
    if (options.json) return printJson(history);
    if (history.deployments.length === 0) return info(`no deploys to ${remote}${history.source === 'local' ? ' from this machine' : ''}`);
    for (const entry of history.deployments) {
      const outcome = entry.rolledBackAt ? yellow(`rolled back ${entry.rolledBackAt}`) : entry.outcome === 'succeeded' ? green(entry.outcome) : red(entry.outcome);
      const error = entry.error ? dim(`  ${entry.error}`) : '';
      printData(`${bold(entry.id)}\t${entry.startedAt}\t${entry.environment}\t${entry.mode}\t${entry.backupId ?? '-'}\t${outcome}${error}`);
    }
  });
}
