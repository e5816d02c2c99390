/**
 * Meta-command arguments as psql reads them (src/fe_utils/psqlscanslash.l): psql's own `\echo`
 * prints each argument it parsed, so psql is the oracle for what parseMetaArgs must return.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseMetaArgs } from '../../../src/core/sql/meta.js';
import { findPsql, runPsqlFile } from '../../helpers/psql.js';
import { tempRepo } from '../../helpers/repo.js';

/** Each variable as a `\set` line defines it, and the value psql stores. */
const VARIABLES: [string, string][] = [
  ["\\set n 42", '42'],
  ["\\set q 'it''s \\\\ here'", "it's \\ here"],
  ["\\set id 'My \"T\"'", 'My "T"'],
  ["\\set sp 'two  words'", 'two  words'],
  ['\\set é accent', 'accent'],
  ['\\set n_2 under', 'under'],
];

const ARGUMENTS = [
  'plain   words  here',
  "'single quoted  with spaces' after",
  "'it''s' 'a''''b' x '' y",
  "'tab\\there' 'nl\\nx' 'cr\\rx' 'bs\\bx' 'ff\\fx'",
  "'\\101\\102\\x43\\x4a\\7x' '\\0101' '\\x4142' '\\xg' '\\8'",
  "'\\q\\'\\\\' 'ends with a backslash\\'",
  "'\\q1' '\\y12\\z7'",
  "foo'bar'baz\"q\" 'a'\"b\"c",
  '"double  quoted" "a""b" "unterminated',
  ":n :'q' :\"id\" :{?n} :{?nope} :nope x:n: ::n :n.",
  ":'sp'x :sp :n_2 :é :'é' :\"n\"",
  ':{?n}x :{?} :{?n :\'nope\' :"nope" :\' :',
  "':n' \":n\"",
];

const variables = new Map(VARIABLES.map(([line, value]) => [line.split(' ')[1]!, value]));

describe('parseMetaArgs', () => {
  it('splits and unquotes arguments, and interpolates variables, as psql does', async () => {
    const script = [...VARIABLES.map(([line]) => line), ...ARGUMENTS.map((args) => `\\echo ${args}`)].join('\n');
    const root = await tempRepo({ 'args.sql': `${script}\n` });
    const { stdout } = await runPsqlFile((await findPsql()).path, join(root, 'args.sql'), 'postgres');
    expect(ARGUMENTS.map((args) => `${parseMetaArgs(args, variables).join(' ')}\n`).join('')).toBe(stdout);
  });

  it('keeps each argument whole: quoted spaces and interpolated values do not split it', () => {
    expect(parseMetaArgs("a  'b c'd :sp", variables)).toEqual(['a', 'b cd', 'two  words']);
    expect(parseMetaArgs('  ', variables)).toEqual([]);
  });

  it('refuses a shell command in backquotes', () => {
    expect(() => parseMetaArgs('x `date`', variables)).toThrow('shell commands in backquotes are not supported');
  });
});
