import { lstat } from 'node:fs/promises';
import path from 'node:path';
import { CONFIG_FILE_NAME, displayPath } from './config/index.js';
import { DbfastError } from './errors.js';
import { writeFileAtomic } from './files.js';
import { findNumberedDirectories, findRepositoryFolder } from './layout.js';
import { defaultTemplateName, templateNameProblem } from './names.js';

export interface InitOptions {
  /** Where the configuration file goes. */
  dir: string;
  /** Its name; default dbfast.toml (`dbfast -c other.toml init` writes other.toml). */
  fileName?: string;
  /** Repository folder, relative to dir; default: found by looking (see findRepositoryFolder), else 'db'. */
  repoDir?: string;
  templateName?: string;
  force?: boolean;
  /** What `dir` and the paths in messages are relative to; default process.cwd(). */
  cwd?: string;
}

export interface InitResult {
  path: string;
  content: string;
  /** The repository folder written, relative to the configuration file's folder. */
  repoDir: string;
  /** Numbered top-level directories found in the repository, in build order. */
  directories: string[];
  environments: Record<string, string[]>;
}

export async function initProject(options: InitOptions): Promise<InitResult> {
  const cwd = options.cwd ?? process.cwd();
  const dir = path.resolve(cwd, options.dir);
  const templateName = options.templateName ?? defaultTemplateName(dir);
  const problem = templateNameProblem(templateName);
  if (problem !== null) throw new DbfastError('USAGE', `template name "${templateName}" ${problem}`);
  const target = path.join(dir, options.fileName ?? CONFIG_FILE_NAME);
  if (!options.force && (await exists(target))) {
    throw new DbfastError('CONFIG_EXISTS', 'already exists', { file: displayPath(target, cwd), hint: 'use --force to overwrite it' });
  }
  const repoDir = options.repoDir ?? (await findRepositoryFolder(dir));
  const directories = await findNumberedDirectories(path.resolve(dir, repoDir));
  const content = renderConfig({ repoDir, templateName, directories });
  await writeFileAtomic(target, content);
  return { path: target, content, repoDir, directories, environments: proposeEnvironments(directories) };
}

/** `local` builds every numbered directory, `production` only schema and migrations. */
function proposeEnvironments(directories: string[]): Record<string, string[]> {
  if (directories.length === 0) return {};
  const structural = directories.filter((name) => /schema|migration|migrate/i.test(name));
  return structural.length === 0 ? { local: directories } : { local: directories, production: structural };
}

export function renderConfig(input: {
  repoDir: string;
  templateName: string;
  directories: string[];
}): string {
  const environments = proposeEnvironments(input.directories);
  const hasEnvironments = Object.keys(environments).length > 0;
  const environmentLines = hasEnvironments
    ? Object.entries(environments).flatMap(([name, directories], index) => [
        ...(index === 0 ? [] : ['']),
        `[environments.${name}]`,
        `include_directories = ${tomlList(directories)}`,
      ])
    : ['# [environments.local]', '# include_directories = ["0_schema", "1_seed_common"]'];
  const excludeLines =
    path.join(input.repoDir, '.') === '.'
      ? ['# The repository is this whole folder: leave out SQL that is not yours.', 'exclude_patterns = ["**/node_modules/**"]']
      : ['exclude_patterns = []'];
  return [
    '# dbfast configuration. Relative paths are relative to this file.',
    '',
    '# The server dbfast builds on. With no url/host/port/user/database, dbfast runs its own',
    '# embedded PostgreSQL. Never write a password here: name an environment variable instead.',
    '[database]',
    `template_name = ${tomlString(input.templateName)}`,
    hasEnvironments ? 'default_environment = "local"' : '# default_environment = "local"',
    '# host = "localhost"',
    '# port = 5432',
    '# user = "postgres"',
    '# database = "postgres"',
    '# password_env = "PGPASSWORD"',
    '',
    '# The SQL repository: numbered directories (0_schema, 1_seed, ...) run in numeric order.',
    '[repository]',
    `path = ${tomlString(input.repoDir)}`,
    'include_patterns = ["**/*.sql"]',
    ...excludeLines,
    '',
    '# Environments choose which numbered directories go into a build.',
    ...environmentLines,
    '',
    '# Remotes: servers dbfast deploys to and backs up. `dbfast remote add` writes one,',
    '# `dbfast remote test staging` checks that it is reachable and that dbfast may do its work there.',
    '# [remotes.staging]',
    '# url = "postgresql://deploy@staging.example.com:5432/app"',
    '# password_env = "STAGING_DB_PASSWORD"',
    `# environment = ${tomlString(Object.keys(environments).at(-1) ?? 'staging')}`,
    '# allow_destructive = false      # may a deploy drop or replace its data?',
    '# backup_before_deploy = true',
    '# require_confirmation = true    # the default for environments named production or prod',
    '',
  ].join('\n');
}

async function exists(file: string): Promise<boolean> {
  return lstat(file).then(
    () => true,
    () => false,
  );
}

// A JSON string is a valid TOML basic string, except that TOML also wants DEL escaped.
function tomlString(value: string): string {
  return JSON.stringify(value).replace(/\x7f/g, '\\u007f');
}

function tomlList(values: string[]): string {
  return `[${values.map(tomlString).join(', ')}]`;
}
