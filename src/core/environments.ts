/**
 * Environments: which of the repository's files an environment gets, which template it builds, and whether its
 * rules are safe. Pure functions over a `DbfastConfig` and file lists; nothing here touches the disk or a server.
 *
 * Resolution order of `[environments.NAME]` (selectFiles):
 * 1. start from the repository's files (already filtered by [repository] patterns), in execution order;
 * 2. include_directories given → keep only files under one of them. A plain name (`0_schema`) matches that
 *    top-level directory; a name with a `/` (`db/seed`) matches that directory path prefix; a glob (`*_seed*`,
 *    `2_seed/**`) is matched (picomatch) against every ancestor directory path of the file;
 * 3. remove files under exclude_directories (same matching);
 * 4. add files matching include_files globs (matched against the full relative path; they may come from anywhere
 *    in the repository);
 * 5. remove files matching exclude_files globs — last, it always wins.
 * The result keeps the input's execution order. An empty `include_directories = []` is "given": it keeps no
 * directory, so only include_files select anything (an environment made of a few named files).
 *
 * With `[[repositories]]`, a file's path starts with its repository's name (`shared/0_schema/01.sql`, see
 * repository.ts), and the rules match those paths: a plain name in include_directories is a whole repository,
 * `shared/0_schema` one of its folders, and a glob is matched against every folder above the file as ever.
 */
import picomatch from 'picomatch';
import type { DbfastConfig, EnvironmentSettings } from './config/index.js';
import { DbfastError } from './errors.js';
import { deriveTemplateName, isProductionName } from './names.js';
import { plural } from './plural.js';
import { closest } from './suggest.js';

export interface EnvironmentSelection {
  /** null when no environments are configured: all files, the base template. */
  name: string | null;
  settings: EnvironmentSettings | null;
  /** settings.templateName, else `<config.templateName>_<name>` (shortened to fit), else config.templateName when name is null. */
  templateName: string;
}

export interface EnvironmentIssue {
  severity: 'error' | 'warning';
  /** 'unknown-directory', 'pattern-matches-nothing', 'empty-selection', 'unselected-file', 'production-dev-data', 'sensitive-file'. */
  code: string;
  message: string;
  hint?: string;
}

const LISTED_PATHS = 10;

// ---- choosing the environment ----------------------------------------------------------

/**
 * Which environment a command runs for: `requested` (--env), else env.DBFAST_ENV (empty counts as unset), else
 * config.defaultEnvironment, else the only configured environment; none configured → name null (all files, the
 * base template). A name that is asked for but not configured is an error even when no environment is configured:
 * silently building every file for `--env production` would hand production the seed data.
 */
export function resolveEnvironment(
  config: DbfastConfig,
  requested?: string,
  env: NodeJS.ProcessEnv = process.env,
): EnvironmentSelection {
  const names = Object.keys(config.environments);
  const fromEnv = env.DBFAST_ENV === '' ? undefined : env.DBFAST_ENV;
  const chosen = requested ?? fromEnv;
  if (chosen !== undefined) {
    const detail = requested === undefined ? 'chosen by the DBFAST_ENV environment variable' : undefined;
    return selectionFor(config, requireEnvironment(config, chosen, detail));
  }
  const fallback = config.defaultEnvironment;
  if (fallback !== undefined) {
    return selectionFor(config, requireEnvironment(config, fallback, 'chosen by default_environment in [database]'));
  }
  if (names.length === 0) return { name: null, settings: null, templateName: config.templateName };
  if (names.length === 1) return selectionFor(config, names[0]!);
  throw new DbfastError('ENVIRONMENT_REQUIRED', 'several environments are configured: choose one with --env', {
    hint: availableHint(names),
  });
}

/** `name`, when it is a configured environment; else a usage error listing the configured ones. */
export function requireEnvironment(config: DbfastConfig, name: string, detail?: string): string {
  if (Object.hasOwn(config.environments, name)) return name;
  throw new DbfastError('USAGE', `unknown environment "${name}"`, {
    hint: availableHint(Object.keys(config.environments)),
    ...(detail === undefined ? {} : { detail }),
  });
}

function availableHint(names: string[]): string {
  return names.length === 0
    ? 'no environments are configured: add an [environments.NAME] table to dbfast.toml'
    : `available: ${names.join(', ')}`;
}

/** The configuration's loader has checked that every environment's template name is valid. */
function selectionFor(config: DbfastConfig, name: string): EnvironmentSelection {
  const settings = config.environments[name]!;
  return { name, settings, templateName: settings.templateName ?? deriveTemplateName(config.templateName, name) };
}

// ---- selecting files -------------------------------------------------------------------

/** One environment's rules, compiled once. */
interface CompiledRules {
  includesDirectory: DirectoryTest | null;
  excludesDirectory: DirectoryTest | null;
  includesFile: ((path: string) => boolean) | null;
  excludesFile: ((path: string) => boolean) | null;
}

/** Takes the directory a file is in ('' for the repository root). */
type DirectoryTest = (directory: string) => boolean;

/** Files of `files` the environment selects, in their original (execution) order; see the module comment. */
export function selectFiles<T extends { relativePath: string }>(files: T[], settings: EnvironmentSettings): T[] {
  const rules = compileRules(settings);
  return files.filter((file) => isSelected(rules, file.relativePath));
}

function compileRules(settings: EnvironmentSettings): CompiledRules {
  const { includeDirectories, excludeDirectories, includeFiles, excludeFiles } = settings;
  return {
    includesDirectory: includeDirectories ? directoryTest(includeDirectories) : null,
    excludesDirectory: excludeDirectories?.length ? directoryTest(excludeDirectories) : null,
    includesFile: includeFiles?.length ? matcher(includeFiles) : null,
    excludesFile: excludeFiles?.length ? matcher(excludeFiles) : null,
  };
}

function isSelected(rules: CompiledRules, relativePath: string): boolean {
  const directory = parentOf(relativePath);
  const underIncluded = rules.includesDirectory === null || rules.includesDirectory(directory);
  const kept =
    (underIncluded && !rules.excludesDirectory?.(directory)) || (rules.includesFile?.(relativePath) ?? false);
  return kept && !rules.excludesFile?.(relativePath);
}

/**
 * Whether a directory is, or is under, one of `entries`. Answers are remembered per directory: a repository has
 * far fewer directories than files.
 */
function directoryTest(entries: string[]): DirectoryTest {
  const prefixes: string[] = [];
  const globs: string[] = [];
  for (const entry of entries) (isGlob(entry) ? globs : prefixes).push(normalizeDirectory(entry));
  const matchesGlob = globs.length > 0 ? matcher(globs) : null;
  const answers = new Map<string, boolean>();
  return (directory) => {
    let answer = answers.get(directory);
    if (answer === undefined) {
      answer =
        prefixes.some((prefix) => isWithin(directory, prefix)) ||
        (matchesGlob !== null && ancestorsOf(directory).some(matchesGlob));
      answers.set(directory, answer);
    }
    return answer;
  };
}

/** picomatch's matcher takes a second argument (return an object), so it must not be handed to `.some()` as is. */
function matcher(patterns: string | string[]): (path: string) => boolean {
  const isMatch = picomatch(patterns);
  return (path) => isMatch(path);
}

function isGlob(pattern: string): boolean {
  return picomatch.scan(pattern).isGlob;
}

/** `./db/seed/` and `/db/seed` both mean the repository's `db/seed`. */
function normalizeDirectory(entry: string): string {
  return entry.trim().replace(/^(\.\/|\/)+/, '').replace(/\/+$/, '');
}

function isWithin(directory: string, prefix: string): boolean {
  return prefix !== '' && (directory === prefix || directory.startsWith(`${prefix}/`));
}

function parentOf(relativePath: string): string {
  const slash = relativePath.lastIndexOf('/');
  return slash === -1 ? '' : relativePath.slice(0, slash);
}

/** 'a/b/c' → ['a', 'a/b', 'a/b/c']; '' → []. */
function ancestorsOf(directory: string): string[] {
  if (directory === '') return [];
  const result: string[] = [];
  for (let at = directory.indexOf('/'); at !== -1; at = directory.indexOf('/', at + 1)) {
    result.push(directory.slice(0, at));
  }
  result.push(directory);
  return result;
}

/** All directory paths (every level) of the given file paths, e.g. for '0_schema/a/b.sql': '0_schema', '0_schema/a'. */
export function directoriesOf(files: { relativePath: string }[]): string[] {
  const seen = new Set<string>();
  for (const { relativePath } of files) {
    const parent = parentOf(relativePath);
    if (seen.has(parent)) continue;
    for (const directory of ancestorsOf(parent)) seen.add(directory);
  }
  return [...seen];
}

// ---- production safety -----------------------------------------------------------------

/**
 * Why an environment counts as production, or null: it is named production/prod (any case), or a remote with
 * require_confirmation deploys it.
 */
export function productionReason(config: DbfastConfig, name: string): string | null {
  if (isProductionName(name)) return `its name is "${name}"`;
  const remote = Object.values(config.remotes).find(
    (candidate) => candidate.requireConfirmation && candidate.environment === name,
  );
  return remote ? `remote "${remote.name}", which requires confirmation, deploys it` : null;
}

export function isProductionLike(config: DbfastConfig, name: string): boolean {
  return productionReason(config, name) !== null;
}

/**
 * Words that mark development or test data, by the kind of data they suggest. Matched against whole words of a
 * directory or file name (split at `_`, `-`, `.`, digits and camelCase), so `device.sql` and `latest.sql` are clean.
 */
const DEV_DATA_WORDS: ReadonlyMap<string, string> = new Map([
  ...['seed', 'seeds', 'seeding'].map((word): [string, string] => [word, 'seed data']),
  ...['test', 'tests', 'testing', 'fixture', 'fixtures', 'mock', 'mocks'].map((word): [string, string] => [
    word,
    'test data',
  ]),
  ['debug', 'debug data'],
  ...['dev', 'devel', 'development'].map((word): [string, string] => [word, 'development data']),
  ...['sample', 'samples', 'demo', 'demos', 'fake', 'fakes', 'faker', 'dummy'].map((word): [string, string] => [
    word,
    'sample data',
  ]),
]);

/** The kind of data a name suggests ('seed data', 'test data', ...), or null when it looks like none. */
export function devDataKind(name: string): string | null {
  for (const word of name.match(/[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+/g) ?? []) {
    const kind = DEV_DATA_WORDS.get(word.toLowerCase());
    if (kind !== undefined) return kind;
  }
  return null;
}

// ---- validation ------------------------------------------------------------------------

/**
 * Checks one environment. `files` are all repository files (after [repository] patterns); `directories` are all
 * directory paths that exist in the repository (relative, POSIX, every level). Returns issues, errors first
 * (empty = valid):
 * - 'unknown-directory' (error): an include_directories / exclude_directories entry that is not a glob and names
 *   no directory (a plain name must be a top-level directory); the hint suggests a close directory;
 * - 'pattern-matches-nothing' (warning): a directory glob that matches no directory, an include_files or
 *   exclude_files glob that matches no file of the repository;
 * - 'empty-selection' (error): the environment selects no file;
 * - 'production-dev-data' (warning): the environment is production-like (see productionReason) and selects files
 *   whose directory or name looks like seed/test/debug/dev/sample data (see DEV_DATA_WORDS): one warning per such
 *   directory (the outermost one), or per file when only its name gives it away;
 * - 'sensitive-file' (warning): the environment is production-like and selects a file that ANOTHER
 *   production-like environment keeps out with an exclude rule (exclude_files, or exclude_directories without an
 *   include_files bringing it back): one production target keeps out on purpose what the other lets in. One
 *   warning per other environment and rule. Exclusions of environments that are not production-like are not
 *   safety statements (local leaving out migrations or prod_*.sql says nothing about what production may get),
 *   and what a production-like environment leaves out is meant for the others (local keeps the test data
 *   production excludes): neither is reported;
 * - 'unselected-file' (warning): files that no configured environment selects, one warning listing up to 10.
 * An unknown `name` throws DbfastError('USAGE') like resolveEnvironment.
 */
export function validateEnvironment(
  config: DbfastConfig,
  name: string,
  files: { relativePath: string }[],
  directories: string[],
): EnvironmentIssue[] {
  requireEnvironment(config, name);
  const settings = config.environments[name]!;
  const selected = selectFiles(files, settings);
  const issues = [
    ...directoryIssues(name, settings, directories),
    ...(selected.length === 0 ? [emptySelection(name, files.length)] : []),
    ...globIssues(name, settings, files, directories),
    ...productionIssues(config, name, selected),
    ...unselectedFiles(config, files),
  ];
  const errors = issues.filter((issue) => issue.severity === 'error');
  return [...errors, ...issues.filter((issue) => issue.severity === 'warning')];
}

type DirectoryKey = 'include_directories' | 'exclude_directories';

function directoryEntries(settings: EnvironmentSettings): [DirectoryKey, string][] {
  return [
    ...(settings.includeDirectories ?? []).map((entry): [DirectoryKey, string] => ['include_directories', entry]),
    ...(settings.excludeDirectories ?? []).map((entry): [DirectoryKey, string] => ['exclude_directories', entry]),
  ];
}

function directoryIssues(name: string, settings: EnvironmentSettings, directories: string[]): EnvironmentIssue[] {
  const existing = new Set(directories);
  return directoryEntries(settings)
    .filter(([, entry]) => !isGlob(entry) && !existing.has(normalizeDirectory(entry)))
    .map(([key, entry]) => {
      const suggestion = suggestDirectory(normalizeDirectory(entry), directories);
      return {
        severity: 'error',
        code: 'unknown-directory',
        message: `environments.${name}.${key}: "${entry}" is not a directory of the repository`,
        ...(suggestion === null ? {} : { hint: suggestion }),
      };
    });
}

function suggestDirectory(entry: string, directories: string[]): string | null {
  // A plain name matches top-level directories only; the same name deeper down is the likely intent.
  if (!entry.includes('/')) {
    const deeper = directories.find((directory) => directory.endsWith(`/${entry}`));
    if (deeper) return `did you mean "${deeper}"? a name without "/" matches a top-level directory only`;
  }
  const candidates = directories.filter((directory) => entry.includes('/') || !directory.includes('/'));
  // `finalize` for `99_finalize`: too far apart for the edit distance below.
  const withoutNumber = candidates.find(
    (directory) =>
      parentOf(directory) === parentOf(entry) && lastSegment(directory).replace(/^[0-9]+_/, '') === lastSegment(entry),
  );
  if (withoutNumber) return `did you mean "${withoutNumber}"?`;
  const best = closest(entry, candidates);
  return best ? `did you mean "${best}"?` : null;
}

function lastSegment(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

function globIssues(
  name: string,
  settings: EnvironmentSettings,
  files: { relativePath: string }[],
  directories: string[],
): EnvironmentIssue[] {
  const issues: EnvironmentIssue[] = [];
  for (const [key, entry] of directoryEntries(settings)) {
    if (!isGlob(entry)) continue;
    const matches = matcher(normalizeDirectory(entry));
    if (directories.some(matches)) continue;
    issues.push({
      severity: 'warning',
      code: 'pattern-matches-nothing',
      message: `environments.${name}.${key}: "${entry}" matches no directory`,
    });
  }
  const paths = files.map((file) => file.relativePath);
  const fileGlobs = [
    ...(settings.includeFiles ?? []).map((entry) => ['include_files', entry] as const),
    ...(settings.excludeFiles ?? []).map((entry) => ['exclude_files', entry] as const),
  ];
  for (const [key, entry] of fileGlobs) {
    if (paths.some(matcher(entry))) continue;
    // `prod_*.sql` reads like "any file so named", but globs match the whole path from the repository root.
    const anywhere = `**/${entry}`;
    const fixable = !entry.includes('/') && paths.some(matcher(anywhere));
    issues.push({
      severity: 'warning',
      code: 'pattern-matches-nothing',
      message: `environments.${name}.${key}: "${entry}" matches no file`,
      ...(fixable ? { hint: `patterns match the whole path relative to the repository: did you mean "${anywhere}"?` } : {}),
    });
  }
  return issues;
}

function emptySelection(name: string, fileCount: number): EnvironmentIssue {
  return {
    severity: 'error',
    code: 'empty-selection',
    message: `environment "${name}" selects no file`,
    hint:
      fileCount === 0
        ? 'the repository has no SQL files'
        : `none of the repository's ${plural(fileCount, 'file')} passes its rules: check include_directories and include_files`,
  };
}

function productionIssues(config: DbfastConfig, name: string, selected: { relativePath: string }[]): EnvironmentIssue[] {
  const reason = productionReason(config, name);
  if (reason === null) return [];
  return [...devDataIssues(name, reason, selected), ...sensitiveFileIssues(config, name, selected)];
}

function devDataIssues(name: string, reason: string, selected: { relativePath: string }[]): EnvironmentIssue[] {
  const groups = new Map<string, { kind: string; isDirectory: boolean; paths: string[] }>();
  for (const { relativePath } of selected) {
    const suspect = devDataSuspect(relativePath);
    if (suspect === null) continue;
    const group = groups.get(suspect.path) ?? { ...suspect, paths: [] };
    group.paths.push(relativePath);
    groups.set(suspect.path, group);
  }
  const why = `"${name}" counts as production (${reason}), and production must never receive development or test data`;
  return [...groups].map(([path, { kind, isDirectory, paths }]) => {
    const what = isDirectory
      ? `${plural(paths.length, 'file')} from ${path}/`
      : path;
    const rule = isDirectory ? `exclude_directories = ["${path}"]` : `exclude_files = ["${path}"]`;
    return {
      severity: 'warning',
      code: 'production-dev-data',
      message: `environment "${name}" selects ${what}, which looks like ${kind}`,
      hint: `${why}: add ${rule} to [environments.${name}], or rename it if it is real production data`,
    };
  });
}

/** The outermost directory, else the file, whose name looks like development data. */
function devDataSuspect(relativePath: string): { path: string; kind: string; isDirectory: boolean } | null {
  const segments = relativePath.split('/');
  for (let i = 0; i < segments.length; i++) {
    const kind = devDataKind(segments[i]!);
    if (kind !== null) {
      return { path: segments.slice(0, i + 1).join('/'), kind, isDirectory: i < segments.length - 1 };
    }
  }
  return null;
}

function sensitiveFileIssues(config: DbfastConfig, name: string, selected: { relativePath: string }[]): EnvironmentIssue[] {
  const issues: EnvironmentIssue[] = [];
  for (const [other, settings] of Object.entries(config.environments)) {
    if (other === name || !isProductionLike(config, other)) continue;
    const rules = compileRules(settings);
    const excludeRules = [
      ...(settings.excludeFiles ?? []).map((entry) => ({
        label: `exclude_files "${entry}"`,
        matches: matcher(entry),
      })),
      ...(settings.excludeDirectories ?? []).map((entry) => {
        const test = directoryTest([entry]);
        return { label: `exclude_directories "${entry}"`, matches: (path: string) => test(parentOf(path)) };
      }),
    ];
    const byRule = new Map<string, string[]>();
    for (const { relativePath } of selected) {
      // include_files can bring a file back from an excluded directory: then `other` takes it, so it is no secret.
      if (isSelected(rules, relativePath)) continue;
      const rule = excludeRules.find((candidate) => candidate.matches(relativePath));
      if (rule) byRule.set(rule.label, [...(byRule.get(rule.label) ?? []), relativePath]);
    }
    for (const [label, paths] of byRule) {
      const what = paths.length === 1 ? paths[0]! : `${paths.length} files`;
      const which = paths.length === 1 ? `, which "${other}" excludes` : ` that "${other}" excludes`;
      const list = paths.length === 1 ? '' : `: ${listPaths(paths, 5)}`;
      issues.push({
        severity: 'warning',
        code: 'sensitive-file',
        message: `environment "${name}" selects ${what}${which} (${label})${list}`,
        hint:
          `"${name}" and "${other}" are both production-like, so what "${other}" keeps out on purpose should not ` +
          `reach "${name}" either: exclude it in [environments.${name}] too, or narrow the rule of "${other}"`,
      });
    }
  }
  return issues;
}

function unselectedFiles(config: DbfastConfig, files: { relativePath: string }[]): EnvironmentIssue[] {
  let remaining = files;
  for (const settings of Object.values(config.environments)) {
    if (remaining.length === 0) break;
    const rules = compileRules(settings);
    remaining = remaining.filter((file) => !isSelected(rules, file.relativePath));
  }
  if (remaining.length === 0) return [];
  const paths = remaining.map((file) => file.relativePath);
  const count = paths.length === 1 ? '1 file is' : `${paths.length} files are`;
  return [
    {
      severity: 'warning',
      code: 'unselected-file',
      message: `${count} selected by no environment: ${listPaths(paths, LISTED_PATHS)}`,
      hint:
        'add them to an environment (include_directories or include_files), ' +
        'or leave them out of the repository with [repository] exclude_patterns',
    },
  ];
}

function listPaths(paths: string[], limit: number): string {
  const shown = paths.slice(0, limit).join(', ');
  return paths.length > limit ? `${shown} and ${paths.length - limit} more` : shown;
}
