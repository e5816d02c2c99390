/**
 * Adding and removing one remote in dbfast.toml by splicing text, never by re-serialising the file:
 * the user's comments, order, formatting and line endings stay as they were, and `remove` after
 * `add` gives back the same bytes. Each edit is checked by parsing the result: anything but the
 * intended change (a remote written inline, say) is refused rather than written.
 */
import { isDeepStrictEqual } from 'node:util';
import { parse, stringify } from 'smol-toml';
import type { AST } from 'toml-eslint-parser';
import { parseTOML } from 'toml-eslint-parser';
import { DbfastError } from '../errors.js';
import { isTable } from './schema.js';

/** A file that no longer parses (edited since it was loaded) is refused without quoting it: its lines may hold a password. */
function parseToml(text: string, file: string): Record<string, unknown> {
  try {
    return parse(text);
  } catch {
    throw cannotEdit(file, 'it is not valid TOML now');
  }
}

function cannotEdit(file: string, why: string): DbfastError {
  return new DbfastError('CONFIG_INVALID', `cannot edit the remotes safely: ${why}`, { file, hint: `edit ${file} by hand; nothing was written` });
}

/** The keys of a new remote table, in the order they are written; undefined ones are left out. */
export type RemoteEntries = Record<string, string | boolean | number | undefined>;

/** `file` names the config file in errors. */
export function withRemoteAdded(text: string, name: string, entries: RemoteEntries, file: string): string {
  const arrayForm = Array.isArray(parseToml(text, file).remotes);
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  const keys = Object.entries(defined(arrayForm ? { name, ...entries } : entries));
  const lines = [arrayForm ? '[[remotes]]' : `[remotes.${name}]`, ...keys.map(([key, value]) => stringify({ [key]: value }).trim())];
  const block = lines.join(eol);
  // After the last non-blank character, so that whatever ends the file (a newline or none) still ends it.
  const end = text.trimEnd().length;
  const edited = end === 0 ? `${block}${eol}${text}` : `${text.slice(0, end)}${eol}${eol}${block}${text.slice(end)}`;
  return checked(file, text, edited, (remotes) => (Array.isArray(remotes) ? [...remotes, { name, ...defined(entries) }] : { ...(remotes as Record<string, unknown> | undefined), [name]: defined(entries) }));
}

export function withRemoteRemoved(text: string, name: string, file: string): string {
  const tables = remoteTables(text, name, file);
  let edited = text;
  // Last first, so that earlier offsets stay valid.
  for (const table of tables.reverse()) {
    const [from, to] = spanOf(edited, table);
    edited = edited.slice(0, from) + edited.slice(to);
  }
  return checked(file, text, edited, (remotes) =>
    Array.isArray(remotes)
      ? remotes.filter((remote) => !(isTable(remote) && remote.name === name))
      : Object.fromEntries(Object.entries(remotes ?? {}).filter(([key]) => key !== name)),
  );
}

/** `[remotes.NAME]` and its sub-tables, or the `[[remotes]]` entry whose `name` is NAME. */
function remoteTables(text: string, name: string, file: string): AST.TOMLTable[] {
  let document: AST.TOMLProgram;
  try {
    document = parseTOML(text);
  } catch {
    // toml-eslint-parser refuses what smol-toml accepts in a few places (a byte order mark).
    throw cannotEdit(file, 'its TOML cannot be located exactly');
  }
  return document.body[0].body.filter((table): table is AST.TOMLTable => {
    if (table.type !== 'TOMLTable' || table.resolvedKey[0] !== 'remotes') return false;
    if (table.kind === 'standard') return table.resolvedKey[1] === name;
    return table.body.some(
      (pair) => pair.key.keys.length === 1 && keyName(pair.key.keys[0]!) === 'name' && pair.value.type === 'TOMLValue' && pair.value.value === name,
    );
  });
}

function keyName(key: AST.TOMLBare | AST.TOMLQuoted): string {
  return key.type === 'TOMLBare' ? key.name : key.value;
}

/**
 * From the end of what precedes the table (so a comment above it stays) to the end of its last line
 * (a trailing comment included). At the top of the file: the table's lines and their newline.
 */
function spanOf(text: string, table: AST.TOMLTable): [number, number] {
  const lineStart = text.lastIndexOf('\n', table.range[0] - 1) + 1;
  const newline = text.indexOf('\n', table.range[1]);
  const lineEnd = newline === -1 ? text.length : text[newline - 1] === '\r' ? newline - 1 : newline;
  const before = text.slice(0, lineStart).trimEnd().length;
  if (before > 0) return [before, lineEnd];
  return [lineStart, newline === -1 ? text.length : newline + 1];
}

/** The edited text, when parsing it gives the old document with only `remotes` changed as intended. */
function checked(file: string, before: string, after: string, expectedRemotes: (remotes: unknown) => unknown): string {
  const { remotes, ...rest } = parseToml(before, file);
  const expected: Record<string, unknown> = { ...rest };
  const changed = expectedRemotes(remotes);
  if (Array.isArray(changed) ? changed.length > 0 : Object.keys(changed as object).length > 0) expected.remotes = changed;
  let actual: unknown;
  try {
    actual = parse(after);
  } catch {
    actual = undefined;
  }
  // smol-toml's tables have no prototype: clone both sides into plain objects to compare them.
  if (!isDeepStrictEqual(structuredClone(withoutEmptyRemotes(actual)), structuredClone(expected))) {
    throw cannotEdit(file, 'they are not all written as [remotes.NAME] or [[remotes]] tables');
  }
  return after;
}

/** An empty `[remotes]` table left behind counts as no remotes. */
function withoutEmptyRemotes(document: unknown): unknown {
  if (!isTable(document) || !isTable(document.remotes) || Object.keys(document.remotes).length > 0) return document;
  const { remotes: _, ...rest } = document;
  return rest;
}

function defined(entries: RemoteEntries): Record<string, unknown> {
  return Object.fromEntries(Object.entries(entries).filter(([, value]) => value !== undefined));
}
