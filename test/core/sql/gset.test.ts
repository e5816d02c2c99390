/**
 * psql's \gset (src/bin/psql/common.c, StoreQueryTuple) on its own: one row's columns become
 * variables. Which variables psql refuses to overwrite is asked of psql itself.
 */
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryRows, storeRow } from '../../../src/core/sql/gset.js';
import { testClientConfig } from '../../helpers/database.js';
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
  let client: pg.Client;
  beforeAll(async () => {
    client = new pg.Client(testClientConfig());
    await client.connect();
  });
  afterAll(() => client.end());

  it('returns rows as arrays of the text the server sent, without parsing types', async () => {
    expect(await queryRows(client, "SELECT DATE '2024-01-01' AS a, 2::int AS n, NULL::text AS z")).toEqual({
      columns: ['a', 'n', 'z'],
      rows: [['2024-01-01', '2', null]],
    });
  });

  it('takes the last result of several, and none for a command or no statement', async () => {
    expect(await queryRows(client, 'SELECT 1 AS a; SELECT 2 AS b')).toEqual({ columns: ['b'], rows: [['2']] });
    expect(await queryRows(client, 'CREATE TEMP TABLE gset_t ()')).toBeNull();
    expect(await queryRows(client, '')).toBeNull();
  });
});
