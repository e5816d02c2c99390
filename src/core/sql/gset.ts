/**
 * psql's `\gset [prefix]` (src/bin/psql/common.c, StoreQueryTuple): the query must return exactly
 * one row, whose columns become variables named prefix + column name; NULL unsets the variable.
 */
import type pg from 'pg';
import type { Variables } from './lexer.js';

/** Variables psql reacts to (they have hooks): \gset leaves them alone, with a warning in psql. */
const SPECIAL = new Set([
  'AUTOCOMMIT', 'COMP_KEYWORD_CASE', 'ECHO', 'ECHO_HIDDEN', 'FETCH_COUNT', 'HIDE_TABLEAM',
  'HIDE_TOAST_COMPRESSION', 'HISTCONTROL', 'HISTFILE', 'HISTSIZE', 'IGNOREEOF', 'ON_ERROR_ROLLBACK', 'ON_ERROR_STOP',
  'PROMPT1', 'PROMPT2', 'PROMPT3', 'QUIET', 'SHOW_ALL_RESULTS', 'SHOW_CONTEXT', 'SINGLELINE', 'SINGLESTEP',
  'VERBOSITY',
]);

const VARIABLE_NAME = /^[A-Za-z0-9_\u0080-\u{10ffff}]+$/u;

export interface QueryRows {
  columns: string[];
  /** Values as the server sent them (text), null for NULL. */
  rows: (string | null)[][];
}

/** Runs `text` alone and returns its last result's rows as text, or null when it returned none (a command). */
export async function queryRows(client: pg.Client, text: string): Promise<QueryRows | null> {
  const results = await client.query<(string | null)[]>({
    text,
    rowMode: 'array',
    types: { getTypeParser: () => (value: string) => value },
  });
  const result = ([] as pg.QueryArrayResult<(string | null)[]>[]).concat(results).at(-1);
  if (!result || result.fields.length === 0) return null;
  return { columns: result.fields.map((field) => field.name), rows: result.rows };
}

/** Stores the single row into `variables`; throws psql's message when there is not exactly one. */
export function storeRow(result: QueryRows | null, prefix: string, variables: Variables): void {
  if (!result) return;
  if (result.rows.length === 0) throw new Error('no rows returned for \\gset');
  if (result.rows.length > 1) throw new Error('more than one row returned for \\gset');
  const [row] = result.rows;
  for (const [index, column] of result.columns.entries()) {
    const name = prefix + column;
    if (SPECIAL.has(name)) continue;
    if (!VARIABLE_NAME.test(name)) throw new Error(`invalid variable name: "${name}"`);
    const value = row![index];
    if (value === null || value === undefined) variables.delete(name);
    else variables.set(name, value);
  }
}
