import { plural } from '../core/plural.js';
import type { RemoteReachability } from '../core/remote.js';
import { pathShower } from '../core/repository.js';
import { DATABASE_KINDS, type DatabaseKind, type DiskUsage } from '../core/disk.js';
import type { ProjectStatus } from '../core/status.js';
import type { GlobalOptions } from './globals.js';
import { bold, dim, formatBytes, green, printData, printJson, red, yellow } from './output.js';
import { withProject } from './project.js';

/** Exit 1 when the server, or with --check-remotes a remote, cannot be asked. */
export async function status(globals: GlobalOptions, options: { json?: boolean; checkRemotes?: boolean }): Promise<number> {
  return withProject(globals, async (project) => {
    const [current, remotes] = await Promise.all([
      project.status(),
      options.checkRemotes
        ? import('../core/remote.js').then(({ probeRemotes }) =>
            probeRemotes(project.config, process.env, async (environment) => project.stateFor(project.environmentNamed(environment), await project.scanRepository()).fingerprint),
          )
        : undefined,
    ]);
    if (options.json) {
      printJson(remotes ? { ...current, remotes } : current);
    } else {
      printReport(current, pathShower(project.config), Boolean(globals.verbose));
      if (remotes) printRemotes(remotes);
    }
    return current.server.reachable && (remotes ?? []).every((remote) => remote.reachable) ? 0 : 1;
  });
}

function printRemotes(remotes: RemoteReachability[]): void {
  printData(bold('remotes'));
  if (remotes.length === 0) printData(dim('    none configured'));
  for (const remote of remotes) {
    const deployed = remote.deployed
      ? `, runs deploy ${remote.deployed.id} of ${remote.deployed.environment} (${remote.deployed.current ? 'current' : yellow('files changed since')})`
      : '';
    const state = remote.reachable
      ? `${green(`reachable, PostgreSQL ${remote.version}, ${remote.latencyMs} ms`)}${deployed}`
      : `${red(remote.error ?? 'unreachable')}${remote.hint ? dim(` (${remote.hint})`) : ''}`;
    printData(`    ${remote.name.padEnd(14)} ${state}`);
  }
}

/** `show` names changed files as every other message does. */
function printReport(current: ProjectStatus, show: (path: string) => string, verbose: boolean): void {
  const { server, repository, clones } = current;
  const kind = server.embedded ? 'embedded' : 'configured';
  printData(`${bold('server')}      ${kind}, ${server.reachable ? green(`reachable at ${server.address}, PostgreSQL ${server.version}`) : red(server.error ?? 'unreachable')}`);
  const changed = repository.changed === null ? dim('no template to compare') : repository.changed ? yellow('changed since the template was built') : green('unchanged');
  const where = repository.path ?? repository.repositories.map(({ name, path }) => `${name} (${path})`).join(', ');
  printData(`${bold('repository')}  ${where}, ${plural(repository.files, 'file')}, ${changed}`);
  const other = repository.otherBuild;
  if (other) {
    const by = other.builtBy ? ` by ${other.builtBy}` : '';
    printData(`              the template was built from other content: fingerprint ${other.fingerprint.slice(0, 12)}, built at ${other.builtAt}${by}`);
  }
  if (verbose && repository.changedFiles) {
    for (const [what, paths] of Object.entries(repository.changedFiles)) {
      for (const path of paths) printData(`              ${what}: ${show(path)}`);
    }
  }
  printData(`${bold('template')}    ${templateState(current)}`);
  printData(`${bold('clones')}      ${server.reachable ? `${clones.count}, ${formatBytes(clones.totalBytes)}` : dim('unknown')}`);
  if (current.disk) printData(`${bold('disk')}        ${diskLine(current.disk)}`);
  if (server.cloneStrategy) {
    const { strategy, why } = server.cloneStrategy;
    printData(`${bold('copies')}      ${strategy ? `STRATEGY ${strategy.toUpperCase()}` : 'files'} ${dim(`(${why})`)}`);
  }
  if (current.environments.length > 0) {
    printData(bold('environments'));
    for (const row of current.environments) {
      const mark = row.name === current.environment ? '*' : ' ';
      printData(`  ${mark} ${row.name.padEnd(14)} ${plural(row.files, 'file').padStart(11)}  ${row.template.padEnd(32)} ${row.state}${row.builtAt ? dim(` built ${row.builtAt}`) : ''}`);
    }
  }
}

/** `41.2 MB: 1 template 8.1 MB, 1 kept template 8.1 MB, ...`: the kinds that use any space. */
function diskLine(disk: DiskUsage): string {
  const parts = DATABASE_KINDS.filter((kind) => disk[kind].count > 0).map((kind) => {
    const { count, bytes } = disk[kind];
    return `${plural(count, DISK_NOUNS[kind])} ${formatBytes(bytes)}`;
  });
  return `${formatBytes(disk.totalBytes)}${parts.length > 0 ? `: ${parts.join(', ')}` : ''}`;
}

const DISK_NOUNS: Record<DatabaseKind, string> = {
  template: 'template',
  kept: 'kept template',
  checkpoint: 'checkpoint',
  spare: 'pool spare',
  clone: 'clone',
  orphan: 'orphan',
};

function templateState({ template, environment, environments, server }: ProjectStatus): string {
  if (template) {
    const built = `built ${template.builtAt} in ${(template.durationMs / 1000).toFixed(2)}s`;
    return `${template.name}, ${built}, ${plural(template.files, 'file')}, ${formatBytes(template.sizeBytes ?? 0)}, fingerprint ${template.fingerprint.slice(0, 12)}`;
  }
  if (environment === null && environments.length > 0) return dim('no environment chosen (--env NAME)');
  // Without a server to ask, a missing template is not known to be missing.
  return server.reachable ? 'not built yet' : dim('unknown: the server could not be asked');
}
