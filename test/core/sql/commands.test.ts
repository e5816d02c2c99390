/**
 * Which meta-commands psql knows, checked against psql itself: in a skipped `\if` branch psql
 * ignores a command it knows and fails on one it does not ("invalid command"), and dbfast must
 * draw the same line (a known command in a skipped branch is harmless, an unknown one an error).
 */
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { isPsqlCommand, OUTPUT_SETTINGS } from '../../../src/core/sql/commands.js';
import { findPsql, runPsqlFile } from '../../helpers/psql.js';
import { tempRepo } from '../../helpers/repo.js';

/** psql 15's commands (src/bin/psql/command.c), \if and friends aside, with a few of the \d and \lo_ families. */
const KNOWN = [
  'a', 'C', 'c', 'connect', 'cd', 'conninfo', 'copyright', 'crosstabview', 'e', 'edit', 'ef', 'ev',
  'echo', 'qecho', 'warn', 'encoding', 'errverbose', 'f', 'g', 'gx', 'gdesc', 'getenv', 'gexec', 'gset',
  'h', 'help', 'H', 'html', 'i', 'include', 'ir', 'include_relative', 'l', 'list', 'l+', 'list+', 'o',
  'out', 'p', 'print', 'password', 'prompt', 'pset', 'q', 'quit', 'r', 'reset', 'restrict', 'unrestrict',
  's', 'set', 'setenv', 'sf', 'sf+', 'sv', 'sv+', 't', 'T', 'timing', 'unset', 'w', 'write', 'watch', 'x',
  'z', '!', '?', 'copy', 'COPY', 'd', 'dt+', 'dfS', 'drds', 'lo_import', 'lo_list',
];

const UNKNOWN = ['bogus', 'E', 'L', 'lo', 'sett', 'copy2', 'Echo'];

let psql: string;
beforeAll(async () => {
  psql = (await findPsql()).path;
});

/** Whether psql gets through `\name` in a skipped branch. */
async function psqlSkips(names: string[]): Promise<boolean> {
  const root = await tempRepo({ 'skipped.sql': `\\if false\n${names.map((name) => `\\${name} arg\n`).join('')}\\endif\n` });
  return runPsqlFile(psql, join(root, 'skipped.sql'), 'postgres').then(
    () => true,
    () => false,
  );
}

describe('isPsqlCommand', () => {
  it('knows every command psql knows', async () => {
    expect(await psqlSkips(KNOWN)).toBe(true);
    expect(KNOWN.filter((name) => !isPsqlCommand(name))).toEqual([]);
  });

  it('knows none that psql calls invalid', async () => {
    for (const name of UNKNOWN) expect(await psqlSkips([name]), name).toBe(false);
    expect(UNKNOWN.filter(isPsqlCommand)).toEqual([]);
  });
});

describe('command classes', () => {
  it('knows the conditional commands \\if, \\elif, \\else and \\endif', () => {
    expect(['if', 'elif', 'else', 'endif'].filter((name) => !isPsqlCommand(name))).toEqual([]);
  });

  it('counts as output settings exactly the commands that only change how results print', () => {
    // \pset and its shorthands (\a \C \f \H \t \T \x), \timing and \o: none touches the database.
    expect([...OUTPUT_SETTINGS].sort()).toEqual(['C', 'H', 'T', 'a', 'f', 'html', 'o', 'out', 'pset', 't', 'timing', 'x']);
    for (const name of ['set', 'i', 'g', 'copy', 'c', 'echo']) expect(OUTPUT_SETTINGS.has(name), name).toBe(false);
  });
});
