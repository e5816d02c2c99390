/**
 * psql's \gset (src/bin/psql/common.c, StoreQueryTuple) on its own: one row's columns become
 * variables. Which variables psql refuses to overwrite is asked of psql itself.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type pg from 'pg';
import { queryRows, storeRow } from '../../../src/core/sql/gset.js';
import { findPsql, runPsqlFile } from '../../helpers/psql.js';
import { tempRepo } from '../../helpers/repo.js';

/** The variables psql's documentation lists, special or not (psql 15). */
const PSQL_VARIABLES = [
  'AUTOCOMMIT', 'COMP_KEYWORD_CASE', 'DBNAME', 'ECHO', 'ECHO_HIDDEN', 'ENCODING', 'ERROR', 'FETCH_COUNT',
  'HIDE_TABLEAM', 'HIDE_TOAST_COMPRESSION', 'HISTCONTROL', 'HISTFILE', 'HISTSIZE', 'HOST', 'IGNOREEOF',
  'LASTOID', 'LAST_ERROR_MESSAGE', 'LAST_ERROR_SQLSTATE', 'ON_ERROR_ROLLBACK', 'ON_ERROR_STOP', 'PORT',
  'PROMPT1', 'PROMPT2', 'PROMPT3', 'QUIET', 'ROW_COUNT', 'SERVER_VERSION_NAME', 'SERVER_VERSION_NUM',
  'SHOW_ALL_RESULTS', 'SHOW_CONTEXT', 'SINGLELINE', 'SINGLESTEP', 'SQLSTATE', 'USER', 'VERBOSITY', 'VERSION',
  'VERSION_NAME', 'VERSION_NUM',
];

const row = (columns: Record<string, string | null>) => ({ columns: Object.keys(columns), rows: [Object.values(columns)] });

describe('storeRow', () => {
  it('leaves alone exactly the variables psql refuses to \\gset into', async () => {
    const root = await tempRepo({ 'gset.sql': `SELECT ${PSQL_VARIABLES.map((name) => `'x' AS "${name}"`).join(', ')} \\gset\n` });
    const { stderr } = await runPsqlFile((await findPsql()).path, join(root, 'gset.sql'), 'postgres');
    const refusedByPsql = [...stderr.matchAll(/attempt to \\gset into specially treated variable "(\w+)" ignored/g)].map((match) => match[1]);
    expect(refusedByPsql.length).toBeGreaterThan(10);
    const variables = new Map<string, string>();
    storeRow(row(Object.fromEntries(PSQL_VARIABLES.map((name) => [name, 'x']))), '', variables);
    expect(PSQL_VARIABLES.filter((name) => !variables.has(name))).toEqual(refusedByPsql);
  });

  it('names each variable by prefix and column, keeps empty values and unsets the NULL ones', () => {
    const variables = new Map([['p_gone', 'before'], ['kept', 'before']]);
    storeRow(row({ one: '1', empty: '', gone: null, é: 'accent' }), 'p_', variables);
    expect(Object.fromEntries(variables)).toEqual({ kept: 'before', p_one: '1', p_empty: '', p_é: 'accent' });
  });

  it('does nothing for a command that returned no rows at all', () => {
    const variables = new Map([['a', '1']]);
    storeRow(null, '', variables);
    expect(Object.fromEntries(variables)).toEqual({ a: '1' });
  });

  it('refuses zero rows and several rows, setting nothing', () => {
    const variables = new Map<string, string>();
    expect(() => storeRow({ columns: ['a'], rows: [] }, '', variables)).toThrow(/^no rows returned for \\gset$/);
    expect(() => storeRow({ columns: ['a'], rows: [['1'], ['2']] }, '', variables)).toThrow(/^more than one row returned for \\gset$/);
    expect(variables.size).toBe(0);
  });

  it('refuses an invalid name after setting the columns before it, as psql does', () => {
    const variables = new Map<string, string>();
    expect(() => storeRow(row({ a: '1', 'a b': '2', c: '3' }), '', variables)).toThrow('invalid variable name: "a b"');
    expect(() => storeRow(row({ x: '1' }), 'my-', variables)).toThrow('invalid variable name: "my-x"');
    expect(Object.fromEntries(variables)).toEqual({ a: '1' });
  });
});

describe('queryRows', () => {
  type Result = { fields: { name: string }[]; rows: (string | null)[][] };
  /** A client whose query() resolves to `results` and records the config it was given. */
  function client(results: Result | Result[]) {
    const calls: { text: string; rowMode: string; types: { getTypeParser: () => (value: string) => unknown } }[] = [];
    const query = async (config: (typeof calls)[number]) => {
      calls.push(config);
      return results;
    };
    return { calls, client: { query } as unknown as pg.Client };
  }

  it('asks for rows as arrays of the text the server sent, without parsing types', async () => {
    const fake = client({ fields: [{ name: 'a' }], rows: [['2024-01-01']] });
    expect(await queryRows(fake.client, 'SELECT 1')).toEqual({ columns: ['a'], rows: [['2024-01-01']] });
    expect(fake.calls[0]).toMatchObject({ text: 'SELECT 1', rowMode: 'array' });
    expect(fake.calls[0]!.types.getTypeParser()('2024-01-01')).toBe('2024-01-01');
  });

  it('takes the last result of several, and none for a command or no result', async () => {
    const last = { fields: [{ name: 'b' }], rows: [['2']] };
    expect(await queryRows(client([{ fields: [{ name: 'a' }], rows: [['1']] }, last]).client, 'SELECT 1; SELECT 2')).toEqual({
      columns: ['b'],
      rows: [['2']],
    });
    expect(await queryRows(client({ fields: [], rows: [] }).client, 'CREATE TABLE t ()')).toBeNull();
    expect(await queryRows(client([]).client, '')).toBeNull();
  });
});
