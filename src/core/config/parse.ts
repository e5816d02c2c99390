/** From the text of dbfast.toml to checked settings, with every problem and warning found on the way. */
import { parse as parseToml, TomlError } from 'smol-toml';
import * as v from 'valibot';
import { DbfastError } from '../errors.js';
import { checkRules, type RuleContext, withoutPasswords } from './rules.js';
import { type FileSettings, fileSchema, isTable, joinKey, unknownKeys } from './schema.js';
import type { ConfigIssue, ConfigWarning } from './types.js';

export interface ParsedConfig {
  /** The valid part of the file: what the rules could check even when other keys are wrong. */
  settings: FileSettings;
  warnings: ConfigWarning[];
  errors: ConfigIssue[];
}

/** Only a TOML syntax error is thrown (it leaves nothing to check); every other problem is returned. */
export function parseConfigText(text: string, context: RuleContext): ParsedConfig {
  const { file } = context;
  const passwords = withoutPasswords(parseTomlText(text, file), file);
  const remotes = remotesByName(passwords.document.remotes, file);
  const document = { ...passwords.document, ...(remotes.value === undefined ? {} : { remotes: remotes.value }) };
  const result = v.safeParse(fileSchema, document);
  const schemaErrors = result.success ? [] : schemaProblems(result.issues, file);
  const settings = result.success ? result.output : validPart(document, result.issues);
  const rules = checkRules(settings, context);
  return {
    settings,
    warnings: [...unknownKeys(document, file), ...rules.warnings],
    errors: [...passwords.errors, ...remotes.errors, ...schemaErrors, ...rules.errors],
  };
}

function parseTomlText(text: string, file: string): Record<string, unknown> {
  try {
    return parseToml(text, { unsafeKeyBehaviour: 'throw' });
  } catch (error) {
    if (!(error instanceof TomlError)) throw error;
    // The full message quotes the offending lines, which may hold a secret: keep the first line.
    const reason = (error.message.split('\n')[0] ?? '').replace(/^Invalid TOML document: /, '');
    throw new DbfastError('CONFIG_INVALID', `invalid TOML: ${reason}`, { file, line: error.line, column: error.column });
  }
}

/** `[[remotes]]` with `name = "..."` is the array form of `[remotes.NAME]`; entries without a usable name are left out. */
function remotesByName(remotes: unknown, file: string): { value: unknown; errors: ConfigIssue[] } {
  if (!Array.isArray(remotes)) return { value: remotes, errors: [] };
  const errors: ConfigIssue[] = [];
  const indexByName = new Map<string, number>();
  remotes.forEach((remote, index) => {
    const key = `remotes[${index}]`;
    const name = isTable(remote) ? remote.name : undefined;
    const first = typeof name === 'string' ? indexByName.get(name) : undefined;
    if (typeof name !== 'string' || name === '') {
      errors.push({ file, key, message: `${key} must be a table with a non-empty name` });
    } else if (first !== undefined) {
      errors.push({ file, key: `${key}.name`, message: `${key}.name "${name}" is already used by remotes[${first}]` });
    } else {
      indexByName.set(name, index);
    }
  });
  return { value: Object.fromEntries([...indexByName].map(([name, index]) => [name, remotes[index]])), errors };
}

function issueKeys(issue: v.BaseIssue<unknown>): (string | number)[] {
  return (issue.path ?? []).map((item) => (typeof item.key === 'number' ? item.key : String(item.key)));
}

function schemaProblems(issues: v.BaseIssue<unknown>[], file: string): ConfigIssue[] {
  const byMessage = new Map<string, ConfigIssue>();
  for (const issue of issues) {
    const key = issueKeys(issue).reduce<string>(joinKey, '');
    const message = `${key} ${issue.message}`;
    // Keyed by message: a value that fails two checks with the same message is reported once.
    byMessage.set(message, { file, key, message });
  }
  return [...byMessage.values()];
}

/**
 * The document parsed again without the values the schema refused (a whole list when one of its items is wrong),
 * so that the rules still check the rest.
 */
function validPart(document: Record<string, unknown>, issues: v.BaseIssue<unknown>[]): FileSettings {
  const refused = issues.map((issue) => {
    const keys = issueKeys(issue);
    const firstIndex = keys.findIndex((key) => typeof key === 'number');
    return (firstIndex === -1 ? keys : keys.slice(0, firstIndex)) as string[];
  });
  const result = v.safeParse(fileSchema, without(document, refused));
  return result.success ? result.output : {};
}

function without(value: unknown, paths: string[][]): unknown {
  if (!isTable(value)) return value;
  const entries = Object.entries(value)
    .filter(([key]) => !paths.some((path) => path.length === 1 && path[0] === key))
    .map(([key, child]) => [key, without(child, paths.filter((path) => path[0] === key).map((path) => path.slice(1)))]);
  return Object.fromEntries(entries);
}
