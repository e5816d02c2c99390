import { DbfastError } from '../core/errors.js';
import { plural } from '../core/plural.js';
import type { GlobalOptions } from './globals.js';
import { bold, dim, green, info, printData, printJson, red, yellow } from './output.js';
import { withProject } from './project.js';

const STATE_COLOR = { fresh: green, stale: yellow, missing: dim, unknown: dim } as const;

export async function environments(globals: GlobalOptions, options: { json?: boolean }): Promise<void> {
  await withProject(globals, async (project) => {
    const rows = await project.environments();
    const verbose = globals.verbose;
    const scan = verbose ? await project.scanRepository() : undefined;
    if (options.json) {
      return printJson(
        rows.map((row) => ({
          ...row,
          rules: project.config.environments[row.name],
          ...(verbose ? { selected: project.stateFor(project.environmentNamed(row.name), scan!).files.map((file) => file.relativePath) } : {}),
        })),
      );
    }
    if (rows.length === 0) return info('no environments configured: every file goes into one template');
    for (const row of rows) {
      const built = row.builtAt ? dim(` built ${row.builtAt}`) : '';
      printData(`${bold(row.name)}\t${plural(row.files, 'file')}\t${row.template}\t${STATE_COLOR[row.state](row.state)}${built}`);
      if (!verbose) continue;
      for (const [rule, values] of Object.entries(project.config.environments[row.name]!)) printData(`  ${tomlKey(rule)} = ${JSON.stringify(values)}`);
      for (const file of project.stateFor(project.environmentNamed(row.name), scan!).files) printData(`    ${file.relativePath}`);
    }
  });
}

/** A rule as dbfast.toml spells it: `includeDirectories` is `include_directories` there. */
function tomlKey(name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
}

export async function validateEnv(
  globals: GlobalOptions,
  name: string | undefined,
  options: { strict?: boolean; json?: boolean },
): Promise<number> {
  const environment = name ?? globals.env ?? process.env.DBFAST_ENV;
  if (!environment) throw new DbfastError('USAGE', 'which environment? dbfast validate-env NAME', { hint: 'dbfast environments lists them' });
  return withProject(globals, async (project) => {
    const issues = await project.validateEnvironment(environment);
    const failed = issues.some((issue) => issue.severity === 'error' || options.strict);
    if (options.json) {
      printJson({ environment, valid: !failed, issues });
    } else {
      for (const issue of issues) {
        const label = issue.severity === 'error' ? red('error:') : yellow('warning:');
        printData(`${label} ${issue.message}${issue.hint ? dim(` (${issue.hint})`) : ''}`);
      }
      printData(failed ? `${environment}: ${red('invalid')}` : `${environment}: ${green('valid')}${issues.length ? ` with ${plural(issues.length, 'warning')}` : ''}`);
    }
    return failed ? 1 : 0;
  });
}
