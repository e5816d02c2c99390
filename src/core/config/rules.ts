/**
 * The checks a key's type cannot express (references between keys, names, URLs): each rule returns the
 * problems it finds instead of throwing, so that a user sees every problem of dbfast.toml in one run.
 */
import { isDbfastError } from '../errors.js';
import { defaultTemplateName, deriveTemplateName, templateNameProblem } from '../names.js';
import { CONFIG_FILE_NAME, type FileSettings, isTable, joinKey } from './schema.js';
import type { ConfigIssue, ConfigWarning } from './types.js';
import { parseConnectionUrl } from './url.js';

export interface RuleContext {
  /** The config file as users see it. */
  file: string;
  projectDir: string;
  env: NodeJS.ProcessEnv;
}

export function checkRules(settings: FileSettings, context: RuleContext): { errors: ConfigIssue[]; warnings: ConfigWarning[] } {
  return {
    errors: [
      ...templateNames(settings, context),
      ...environmentReferences(settings, context),
      ...connectionUrls(settings, context),
      ...repositoryList(settings, context),
      ...includePatterns(settings, context),
    ],
    warnings: passwordsInUrls(settings, context),
  };
}

/** The document without its `password` keys (any case, any depth), and one problem for each: the value is never kept. */
export function withoutPasswords(document: Record<string, unknown>, file: string): { document: Record<string, unknown>; errors: ConfigIssue[] } {
  const errors: ConfigIssue[] = [];
  const hint = 'use password_env = "NAME_OF_AN_ENV_VAR", password_file = "path/to/file" or ~/.pgpass';
  const clean = (value: unknown, at: string): unknown => {
    if (Array.isArray(value)) return value.map((item, index) => clean(item, joinKey(at, index)));
    if (!isTable(value)) return value;
    const kept = Object.entries(value).filter(([key, child]) => {
      // A table may be called "password" (an environment, say); only a value can be a secret.
      const secret = key.toLowerCase() === 'password' && !isTable(child);
      const keyPath = joinKey(at, key);
      if (secret) errors.push({ file, key: keyPath, message: `${keyPath} is not allowed: passwords do not belong in ${CONFIG_FILE_NAME}`, hint });
      return !secret;
    });
    return Object.fromEntries(kept.map(([key, child]) => [key, clean(child, joinKey(at, key))]));
  };
  return { document: clean(document, '') as Record<string, unknown>, errors };
}

function templateNames(settings: FileSettings, { file, projectDir }: RuleContext): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const check = (key: string, name: string, subject = key, hint?: string) => {
    const problem = templateNameProblem(name);
    if (problem !== null) issues.push({ file, key, message: `${subject} ${problem}`, hint });
    return problem === null;
  };
  const explicit = settings.database?.template_name;
  const baseIsValid = explicit === undefined || check('database.template_name', explicit);
  const base = explicit ?? defaultTemplateName(projectDir);
  for (const [name, environment] of Object.entries(settings.environments ?? {})) {
    const key = `environments.${name}`;
    if (environment.template_name !== undefined) check(`${key}.template_name`, environment.template_name);
    // An invalid base is reported once, above, not again for every environment derived from it.
    else if (baseIsValid) {
      const derived = deriveTemplateName(base, name);
      const hint = `without a template_name of its own, an environment's template is named <template>_<environment>: set template_name in [${key}]`;
      check(key, derived, `${key}: template name "${derived}"`, hint);
    }
  }
  return issues;
}

function environmentReferences(settings: FileSettings, { file }: RuleContext): ConfigIssue[] {
  const environments = settings.environments ?? {};
  const known = Object.keys(environments);
  const hint =
    known.length === 0
      ? 'no environments are configured: add an [environments.NAME] table'
      : `configured environments: ${known.join(', ')}`;
  const references: [string, string | undefined][] = [
    ['database.default_environment', settings.database?.default_environment],
    ...Object.entries(settings.remotes ?? {}).map(
      ([name, remote]): [string, string | undefined] => [`remotes.${name}.environment`, remote.environment],
    ),
  ];
  return references
    .filter(([, name]) => name !== undefined && !Object.hasOwn(environments, name))
    .map(([key, name]) => ({ file, key, message: `${key} names "${name}", which is not a configured environment`, hint }));
}

/** The URLs written in the file, by key. */
function urlsInFile(settings: FileSettings): [string, string][] {
  const urls: [string, string | undefined][] = [
    ['database.url', settings.database?.url],
    ...Object.entries(settings.remotes ?? {}).map(([name, remote]): [string, string | undefined] => [`remotes.${name}.url`, remote.url]),
  ];
  return urls.filter((entry): entry is [string, string] => entry[1] !== undefined);
}

function connectionUrls(settings: FileSettings, { file, env }: RuleContext): ConfigIssue[] {
  const fromEnv = env.DBFAST_DATABASE_URL ? urlProblems('DBFAST_DATABASE_URL', env.DBFAST_DATABASE_URL) : [];
  const inFile = urlsInFile(settings).flatMap(([key, url]) => urlProblems(key, url).map((issue) => ({ file, ...issue })));
  return [...inFile, ...fromEnv];
}

function urlProblems(key: string, url: string): ConfigIssue[] {
  try {
    parseConnectionUrl(url, key);
    return [];
  } catch (error) {
    if (!isDbfastError(error, 'CONFIG_INVALID')) throw error;
    return [{ key, message: error.message, hint: error.hint }];
  }
}

/** `[[repositories]]`: each with a name and a path, the names unique, and not beside `[repository]`. */
function repositoryList(settings: FileSettings, { file }: RuleContext): ConfigIssue[] {
  const { repositories } = settings;
  if (repositories === undefined) return [];
  const issues: ConfigIssue[] = [];
  const hint = 'each [[repositories]] table has a name and a path';
  if (settings.repository !== undefined) {
    const message = '[repository] and [[repositories]] cannot both be set';
    issues.push({ file, key: 'repositories', message, hint: 'move [repository] into a [[repositories]] table with a name' });
  }
  if (repositories.length === 0) issues.push({ file, key: 'repositories', message: 'repositories is empty: no file can be selected', hint });
  const indexByName = new Map<string, number>();
  repositories.forEach(({ name, path }, index) => {
    const key = joinKey('repositories', index);
    if (path === undefined) issues.push({ file, key: `${key}.path`, message: `${key}.path is missing: the repository's folder, relative to ${CONFIG_FILE_NAME}` });
    const first = name === undefined ? undefined : indexByName.get(name);
    if (name === undefined) {
      issues.push({ file, key: `${key}.name`, message: `${key}.name is missing: it starts the paths of the repository's files`, hint });
    } else if (first !== undefined) {
      issues.push({ file, key: `${key}.name`, message: `${key}.name "${name}" is already used by ${joinKey('repositories', first)}` });
    } else {
      indexByName.set(name, index);
    }
  });
  return issues;
}

function includePatterns(settings: FileSettings, { file }: RuleContext): ConfigIssue[] {
  const sections: [string, { include_patterns?: string[] } | undefined][] = [
    ['repository', settings.repository],
    ...(settings.repositories ?? []).map((repository, index): [string, { include_patterns?: string[] }] => [joinKey('repositories', index), repository]),
  ];
  const hint = 'list the files to build, e.g. ["**/*.sql"], or remove the key for that default';
  return sections
    .filter(([, section]) => section?.include_patterns?.length === 0)
    .map(([section]) => {
      const key = `${section}.include_patterns`;
      return { file, key, message: `${key} is empty: no file can be selected`, hint };
    });
}

/** A password written into a url works (it is never printed), but belongs in password_env. */
function passwordsInUrls(settings: FileSettings, { file }: RuleContext): ConfigWarning[] {
  return urlsInFile(settings)
    .filter(([, url]) => /^[a-z]+:\/\/[^/@?#]*:[^/@?#]*@|[?&](?:ssl)?password=/i.test(url))
    .map(([key]) => ({
      file,
      key,
      message: `${key} contains a password`,
      hint: 'move it to password_env or password_file, so dbfast.toml can be committed',
    }));
}
