/**
 * `\copy` arguments read as psql's parse_slash_copy reads them (src/bin/psql/copy.c): the COPY
 * statement sent to the server, and where the data comes from. The executor and parity tests run
 * these statements against a server.
 */
import { homedir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { parseSlashCopy, readsInlineData } from '../../../src/core/sql/slash-copy.js';

/** The parsed command, with the statement's runs of spaces made single (the server reads them alike). */
function parsed(args: string) {
  const { statement, direction, source } = parseSlashCopy(args);
  return { statement: statement.replace(/\s+/g, ' ').trim(), direction, source };
}

describe('parseSlashCopy', () => {
  it('sends COPY ... FROM STDIN for the table, its schema and columns, and the options after the source', () => {
    expect(parsed("public.t (a, \"b c\") from 'my data.csv' with (format csv)")).toEqual({
      statement: 'COPY public.t ( a, "b c" ) FROM STDIN with (format csv)',
      direction: 'from',
      source: { kind: 'file', path: 'my data.csv' },
    });
    expect(parsed('"My Table"(x,y)FROM stdin csv').statement).toBe('COPY "My Table" ( x,y ) FROM STDIN csv');
    expect(parsed('s . t\tfrom\tstdin\twith csv').statement).toBe('COPY s.t FROM STDIN with csv');
    expect(parsed('BINARY t from stdin').statement).toBe('COPY BINARY t FROM STDIN');
    expect(parsed("t from data/file.csv delimiter '|';").statement).toBe("COPY t FROM STDIN delimiter '|';");
  });

  it('sends COPY ... TO STDOUT for TO', () => {
    expect(parsed('t (a) TO stdout')).toEqual({ statement: 'COPY t ( a ) TO STDOUT', direction: 'to', source: { kind: 'script' } });
  });

  it('reads the data from the script for stdin and stdout, from psql for pstdin and pstdout', () => {
    for (const source of ['stdin', 'STDOUT']) expect(parsed(`t from ${source}`).source, source).toEqual({ kind: 'script' });
    for (const source of ['pstdin', 'PSTDOUT']) expect(parsed(`t from ${source}`).source, source).toEqual({ kind: 'psql' });
  });

  it("unquotes a file name ('' stands for a quote) and expands ~ to the home folder, but not ~user", () => {
    expect(parsed("t from 'it''s here.csv'").source).toEqual({ kind: 'file', path: "it's here.csv" });
    expect(parsed('t from data.csv;')).toEqual({ statement: 'COPY t FROM STDIN ;', direction: 'from', source: { kind: 'file', path: 'data.csv' } });
    expect(parsed("t from '~/seed/x.csv'").source).toEqual({ kind: 'file', path: `${homedir()}/seed/x.csv` });
    expect(parsed('t from ~').source).toEqual({ kind: 'file', path: homedir() });
    expect(parsed('t from ~other/x.csv').source).toEqual({ kind: 'file', path: '~other/x.csv' });
  });

  it("takes PROGRAM's command from a quoted string only", () => {
    expect(parsed("t from program 'gzip -dc ''a b''.gz'").source).toEqual({ kind: 'program', command: "gzip -dc 'a b'.gz" });
    expect(() => parseSlashCopy('t from program cat')).toThrow('\\copy: parse error at "cat"');
    expect(() => parseSlashCopy('t from program ;x')).toThrow('\\copy: parse error at ";"');
  });

  it('reads quoted names whole after BINARY, a schema and inside the column list, and delimiters without spaces', () => {
    expect(parsed('binary "My T"."x y"("b)c", d)from stdin').statement).toBe('COPY binary "My T"."x y" ( "b)c" , d ) FROM STDIN');
    expect(parsed('binary t(x) from stdin').statement).toBe('COPY binary t ( x ) FROM STDIN');
    expect(parsed('s.t(x) from stdin').statement).toBe('COPY s.t ( x ) FROM STDIN');
    expect(parsed('s.t (x) from stdin').statement).toBe('COPY s.t ( x ) FROM STDIN');
    expect(parsed('t (a) from./data.csv').source).toEqual({ kind: 'file', path: './data.csv' });
    expect(parseSlashCopy('BINARY "a  b"(x)from stdin').statement).toMatch(/^COPY BINARY "a {2}b" \( x \) FROM STDIN/);
  });

  it('names the whole quoted token where the direction should be', () => {
    expect(() => parseSlashCopy('t (a)"x y" stdin')).toThrow('\\copy: parse error at ""x y""');
    expect(() => parseSlashCopy('s.t "x y" stdin')).toThrow('\\copy: parse error at ""x y""');
    expect(() => parseSlashCopy('binary t "x y" stdin')).toThrow('\\copy: parse error at ""x y""');
  });

  it('rejects a PROGRAM command whose quote is not closed', () => {
    expect(() => parseSlashCopy("t from program 'a''b")).toThrow('\\copy: parse error at');
  });

  it('passes the options after the source on as written, less the one space that ends the source', () => {
    expect(parseSlashCopy('t from stdin  with  csv').statement).toBe('COPY  t FROM STDIN  with  csv');
  });

  it('fails with psql messages on what psql cannot parse', () => {
    for (const args of ['', '  \t']) expect(() => parseSlashCopy(args)).toThrow(/^\\copy: arguments required$/);
    for (const args of ['t', 't from', 't from ', 's.', 't (a, b from stdin', 'binary']) {
      expect(() => parseSlashCopy(args), args).toThrow(/^\\copy: parse error at end of line$/);
    }
    expect(() => parseSlashCopy('t into x')).toThrow(/^\\copy: parse error at "into"$/);
    expect(() => parseSlashCopy('(SELECT 1) to stdout')).toThrow('\\copy (query) TO ... is not supported');
  });
});

describe('readsInlineData', () => {
  it('is true for \\copy ... FROM stdin or stdout: the data follows in the script', () => {
    expect(readsInlineData('t from stdin')).toBe(true);
    expect(readsInlineData('t (a) FROM STDOUT with csv')).toBe(true);
  });

  it('is false for a file, psql input, TO, and what does not parse', () => {
    for (const args of ["t from 'x.csv'", 't from pstdin', 't to stdout', 't into stdin', '']) expect(readsInlineData(args), args).toBe(false);
  });
});
