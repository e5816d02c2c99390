/**
 * lexScript on its own (no server): where statements end, what text is sent, where each segment
 * starts, and how meta-commands, variables and COPY data are cut out of the script, following
 * psql's lexer (src/fe_utils/psqlscan.l). End-to-end parity with psql is in psql-parity.test.ts.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DbfastError } from '../../../src/core/errors.js';
import { Lexer, lexScript, type MetaCommand, type Segment, type Statement } from '../../../src/core/sql/lexer.js';
import { SourceReader } from '../../../src/core/sql/source.js';
import { tempRepo } from '../../helpers/repo.js';

type Lexed = Segment & { copy?: { data: string; line: number } };

/** Every segment, with each COPY block's data read through copyData(); the text is fed `pieceSize` characters at a time. */
function lex(text: string, variables?: Map<string, string>, pieceSize = text.length || 1): Lexed[] {
  const pieces: string[] = [];
  for (let at = 0; at < text.length; at += pieceSize) pieces.push(text.slice(at, at + pieceSize));
  const source = { next: () => pieces.shift() ?? null };
  const lexer = new Lexer(source, { file: 'script.sql', variables });
  const segments: Lexed[] = [];
  for (const segment of lexer.segments()) {
    if (segment.copyFromStdin) {
      segments.push({ ...segment, copy: { data: [...lexer.copyData()].join(''), line: lexer.copyDataLine } });
    } else {
      segments.push(segment);
    }
  }
  return segments;
}

/** The text of each statement sent to the server. */
function texts(text: string, variables?: Map<string, string>): string[] {
  return lex(text, variables).map((segment) => (segment.kind === 'statement' ? segment.text : `\\${segment.name} ${segment.args}`));
}

function statements(text: string): (Statement & Lexed)[] {
  return lex(text).filter((segment): segment is Statement & Lexed => segment.kind === 'statement');
}

/** The SQL_SYNTAX error lexing `text` throws. */
function syntaxError(text: string): DbfastError {
  try {
    lex(text);
  } catch (error) {
    expect(error).toBeInstanceOf(DbfastError);
    return error as DbfastError;
  }
  throw new Error('expected a SQL_SYNTAX error');
}

describe('statement boundaries', () => {
  it('splits at semicolons and drops the whitespace and comments around statements', () => {
    const script = '-- leading comment\n  /* block */ SELECT 1 -- trailing\n; \n\nSELECT\n 2 /* inner */ + 3;;; SELECT 4 -- end';
    expect(texts(script)).toEqual(['SELECT 1', 'SELECT\n 2 /* inner */ + 3', 'SELECT 4']);
  });

  it('yields nothing for a script of comments, whitespace and empty statements', () => {
    expect(lex('  -- only a comment\n/* and /* nested */ this */ ;\n;;\n')).toEqual([]);
    expect(lex('')).toEqual([]);
  });

  it('sends the last statement without a semicolon, as psql does at the end of a file', () => {
    expect(texts('SELECT 1;\nSELECT 2\n\n')).toEqual(['SELECT 1', 'SELECT 2']);
  });

  it('keeps semicolons inside standard strings, with doubled quotes', () => {
    expect(texts("SELECT 'a;b', 'it''s; fine', ''''; SELECT 2")).toEqual(["SELECT 'a;b', 'it''s; fine', ''''", 'SELECT 2']);
  });

  it('treats a backslash in a standard string as an ordinary character', () => {
    expect(texts("SELECT '\\'; SELECT 'C:\\dir\\'; SELECT 3")).toEqual(["SELECT '\\'", "SELECT 'C:\\dir\\'", 'SELECT 3']);
  });

  it('honours backslash escapes in E strings, upper or lower case', () => {
    expect(texts("SELECT E'it\\'s; \\\\'; SELECT e'\\';'; SELECT 3")).toEqual([
      "SELECT E'it\\'s; \\\\'",
      "SELECT e'\\';'",
      'SELECT 3',
    ]);
  });

  it("reads U&'', N'', B'' and X'' literals, where a backslash escapes nothing", () => {
    expect(texts("SELECT U&'\\0041;'; SELECT u&'!0041;' UESCAPE '!'; SELECT N'n;'; SELECT B'1\\'; SELECT x'\\'; SELECT 6")).toEqual([
      "SELECT U&'\\0041;'",
      "SELECT u&'!0041;' UESCAPE '!'",
      "SELECT N'n;'",
      "SELECT B'1\\'",
      "SELECT x'\\'",
      'SELECT 6',
    ]);
  });

  it('does not take an identifier ending in e, b, x, n or u as a literal prefix', () => {
    expect(texts("SELECT some'a;b'; SELECT 2")).toEqual(["SELECT some'a;b'", 'SELECT 2']);
    expect(texts("SELECT 1 AS e, 2 AS b; SELECT 'x'")).toEqual(['SELECT 1 AS e, 2 AS b', "SELECT 'x'"]);
  });

  it('keeps semicolons, quotes and comment markers inside quoted identifiers', () => {
    expect(texts('CREATE TABLE "a;b" ("say ""hi"";" int, "--x" int, "/*" int); SELECT 2')).toEqual([
      'CREATE TABLE "a;b" ("say ""hi"";" int, "--x" int, "/*" int)',
      'SELECT 2',
    ]);
    expect(texts('SELECT U&"d\\0061t;a"; SELECT 2')).toEqual(['SELECT U&"d\\0061t;a"', 'SELECT 2']);
  });

  it('keeps dollar-quoted bodies whole: anonymous, tagged, and other tags nested inside', () => {
    const script = "SELECT $$a;'b$$; SELECT $fn$ $$; $inner$ ; $inner$ $Fn$ $fn$; SELECT $_1$;$_1$; SELECT 4";
    expect(texts(script)).toEqual(["SELECT $$a;'b$$", 'SELECT $fn$ $$; $inner$ ; $inner$ $Fn$ $fn$', 'SELECT $_1$;$_1$', 'SELECT 4']);
  });

  it('takes letters of any script, digits after the first character and underscores in a tag, case-sensitively', () => {
    expect(texts('SELECT $função$;$Função$;$função$; SELECT $日本$ ; $日本$; SELECT $a_1$ $a_2$; $a_1$; SELECT 4')).toEqual([
      'SELECT $função$;$Função$;$função$',
      'SELECT $日本$ ; $日本$',
      'SELECT $a_1$ $a_2$; $a_1$',
      'SELECT 4',
    ]);
  });

  it('does not start a dollar quote inside an identifier like foo$bar$', () => {
    expect(texts('SELECT 1 AS foo$bar$; SELECT 2 AS x$$; SELECT $bar$;$bar$')).toEqual([
      'SELECT 1 AS foo$bar$',
      'SELECT 2 AS x$$',
      'SELECT $bar$;$bar$',
    ]);
  });

  it('reads $1 as a parameter: a tag cannot start with a digit', () => {
    expect(texts('PREPARE p(int) AS SELECT $1; SELECT $1$; SELECT 3')).toEqual(['PREPARE p(int) AS SELECT $1', 'SELECT $1$', 'SELECT 3']);
  });

  it('skips nested block comments and line comments holding semicolons and quotes', () => {
    const script = "SELECT /* a /* nested; */ still ' comment; */ 1; -- c; ' \" $$\nSELECT 2 -- x;\n, 3;";
    expect(texts(script)).toEqual(["SELECT /* a /* nested; */ still ' comment; */ 1", 'SELECT 2 -- x;\n, 3']);
  });

  it('keeps semicolons inside parentheses: CREATE RULE with several actions', () => {
    const rule = 'CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2))';
    expect(texts(`${rule}; SELECT 2`)).toEqual([rule, 'SELECT 2']);
  });

  it('counts nested parentheses before a semicolon, and never below zero for a stray closing one', () => {
    const rule = 'CREATE RULE u AS ON UPDATE TO t DO INSTEAD (UPDATE a SET n = (SELECT max(n) FROM b); DELETE FROM c WHERE (id) IN (1))';
    expect(texts(`${rule};SELECT 2`)).toEqual([rule, 'SELECT 2']);
    // psql sends `SELECT 1)` for the server to refuse, and the next semicolon still ends a statement.
    expect(texts('SELECT 1); SELECT (2)')).toEqual(['SELECT 1)', 'SELECT (2)']);
  });

  it('keeps DO blocks and PL/pgSQL bodies whole', () => {
    const doBlock = "DO $$ BEGIN INSERT INTO t VALUES ('x;'); END $$";
    const fn = 'CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $body$\nBEGIN\n  RETURN 1;\nEND;\n$body$';
    expect(texts(`${doBlock};\n${fn};\nSELECT f()`)).toEqual([doBlock, fn, 'SELECT f()']);
  });

  it('keeps BEGIN ATOMIC ... END together, counting CASE ... END inside it', () => {
    const fn = `CREATE OR REPLACE FUNCTION s(n int) RETURNS text LANGUAGE sql
BEGIN ATOMIC
  SELECT CASE WHEN n < 0 THEN 'neg' ELSE CASE WHEN n = 0 THEN 'zero' ELSE 'pos' END END;
  SELECT 'second';
END`;
    const procedure = 'create procedure p() language sql begin atomic insert into t values (1); insert into t values (2); end';
    expect(texts(`${fn};\n${procedure};\nSELECT 3`)).toEqual([fn, procedure, 'SELECT 3']);
  });

  it('keeps BEGIN ATOMIC ... END together after CREATE OR REPLACE PROCEDURE, in any case', () => {
    const procedure = 'Create Or Replace Procedure p() LANGUAGE sql BEGIN ATOMIC INSERT INTO t VALUES (1); END';
    expect(texts(`${procedure};\nSELECT 2`)).toEqual([procedure, 'SELECT 2']);
  });

  it('takes only CREATE [OR REPLACE] FUNCTION|PROCEDURE as its first words for a routine', () => {
    // psql's heuristic looks at the first four words only: these are not routines, BEGIN is a name.
    for (const statement of ['CREATE VIEW function AS SELECT 1 AS begin', 'CREATE OR procedure begin', 'CREATE REPLACE FUNCTION begin', 'ALTER FUNCTION begin']) {
      expect(texts(`${statement}; SELECT 2`), statement).toEqual([statement, 'SELECT 2']);
    }
  });

  it('does not count CASE outside BEGIN, nor BEGIN outside CREATE FUNCTION or PROCEDURE', () => {
    const returnCase = "CREATE FUNCTION p(n int) RETURNS text LANGUAGE sql RETURN CASE WHEN n > 0 THEN 'p' ELSE 'n' END";
    expect(texts(`${returnCase}; SELECT 2`)).toEqual([returnCase, 'SELECT 2']);
    expect(texts('BEGIN; INSERT INTO t VALUES (1); END; SELECT CASE WHEN true THEN 1 END; COMMIT')).toEqual([
      'BEGIN',
      'INSERT INTO t VALUES (1)',
      'END',
      'SELECT CASE WHEN true THEN 1 END',
      'COMMIT',
    ]);
    // A BEGIN inside the parameter list is a parameter name, not a block.
    expect(texts('CREATE FUNCTION f(begin int) RETURNS int LANGUAGE sql RETURN 1; SELECT 2')).toEqual([
      'CREATE FUNCTION f(begin int) RETURNS int LANGUAGE sql RETURN 1',
      'SELECT 2',
    ]);
  });

  it("follows psql's heuristic where it misfires: a bare begin in a CREATE FUNCTION opens a block", () => {
    // psql 15 sends `CREATE FUNCTION pf(begin int) ... RETURN begin; SELECT 2;` as one query too.
    expect(texts('CREATE FUNCTION f(begin int) RETURNS int LANGUAGE sql RETURN begin; SELECT 2')).toEqual([
      'CREATE FUNCTION f(begin int) RETURNS int LANGUAGE sql RETURN begin; SELECT 2',
    ]);
  });

  it('keeps CRLF line endings inside statements and strings as they are', () => {
    expect(texts("SELECT 'a\r\nb'\r\n  , 2;\r\nSELECT 3\r\n")).toEqual(["SELECT 'a\r\nb'\r\n  , 2", 'SELECT 3']);
  });

  it('ends a line comment and continues a string at a lone carriage return, as psql does', () => {
    expect(texts('SELECT 1 -- c\r, 2; SELECT 3')).toEqual(['SELECT 1 -- c\r, 2', 'SELECT 3']);
    expect(texts("SELECT E'a'\r'\\';'; SELECT 2")).toEqual(["SELECT E'a'\r'\\';'", 'SELECT 2']);
  });

  it('reads a minus, a slash and a star as operators, not comments', () => {
    expect(texts('SELECT 1 - 1; -1; /1; /-1; -*1; SELECT 2')).toEqual(['SELECT 1 - 1', '-1', '/1', '/-1', '-*1', 'SELECT 2']);
    expect(texts("SELECT '*', \"*\"; SELECT 2")).toEqual(["SELECT '*', \"*\"", 'SELECT 2']);
  });

  it('does not open a nested comment at a slash inside a comment', () => {
    expect(texts('/* a/b */ SELECT 1; SELECT /* c/d */ 2')).toEqual(['SELECT 1', 'SELECT /* c/d */ 2']);
  });

  it('skips tabs, form feeds and vertical tabs between statements', () => {
    const script = '\tSELECT 1;\f\vSELECT 2;\v\tSELECT 3;\f';
    expect(statements(script).map((s) => [s.text, s.offset])).toEqual([
      ['SELECT 1', 1],
      ['SELECT 2', 12],
      ['SELECT 3', 23],
    ]);
  });

  it('reads doubled quotes inside E strings, where a backslash-quote follows', () => {
    expect(texts("SELECT E'a''\\';'; SELECT 2")).toEqual(["SELECT E'a''\\';'", 'SELECT 2']);
  });

  it('takes a backslash as an ordinary character in quoted identifiers and U& strings', () => {
    expect(texts('SELECT "a\\"; SELECT 2')).toEqual(['SELECT "a\\"', 'SELECT 2']);
    expect(texts("SELECT U&'a\\'; SELECT 2")).toEqual(["SELECT U&'a\\'", 'SELECT 2']);
  });

  it('reads multi-byte identifiers and text', () => {
    expect(texts('SELECT "データ", bıgınt, \'🐘;\' FROM 表; SELECT 2')).toEqual(['SELECT "データ", bıgınt, \'🐘;\' FROM 表', 'SELECT 2']);
  });
});

describe('offsets and words', () => {
  it('gives each segment the offset of its first character in the file', () => {
    const script = '-- comment\nSELECT 1;\n  \\echo hi\n/* c */ INSERT INTO t\nVALUES (1);';
    const segments = lex(script);
    expect(segments.map((segment) => segment.offset)).toEqual([11, 23, 40]);
    expect(script.slice(segments[0]!.offset)).toMatch(/^SELECT 1;/);
    expect(script.slice(segments[1]!.offset)).toMatch(/^\\echo hi/);
    expect(script.slice(segments[2]!.offset)).toMatch(/^INSERT INTO t/);
  });

  it('counts offsets in UTF-16 code units, as JavaScript strings index them', () => {
    const script = "SELECT '🐘'; SELECT 2";
    const [, second] = statements(script);
    expect(second!.offset).toBe(script.indexOf('SELECT 2'));
    expect(second!.offset).toBe(13);
  });

  it('lists the lower-cased bare words at parenthesis depth 0', () => {
    const [index] = statements('CREATE INDEX CONCURRENTLY "Idx" ON Public.T (lower(name), "Col") WHERE x > 1');
    expect(index!.words).toEqual(['create', 'index', 'concurrently', 'on', 'public', 't', 'where', 'x']);
  });

  it('leaves strings, quoted identifiers, dollar quotes, comments and numbers out of the words', () => {
    const [statement] = statements("ALTER TYPE mood ADD VALUE 'ok' /* after */ -- x\n BEFORE $$happy$$ 42 \"Quoted\" e'x' b'1'");
    expect(statement!.words).toEqual(['alter', 'type', 'mood', 'add', 'value', 'before']);
    expect(statements('SELECT 1e5, 2abc, 3.5f FROM t')[0]!.words).toEqual(['select', 'from', 't']);
  });

  it('words for the statements the executor must run on their own', () => {
    const words = statements('VACUUM (ANALYZE) t; drop database if exists d; REINDEX INDEX CONCURRENTLY i').map((s) => s.words);
    expect(words).toEqual([
      ['vacuum', 't'],
      ['drop', 'database', 'if', 'exists', 'd'],
      ['reindex', 'index', 'concurrently', 'i'],
    ]);
  });

  it('keeps at most 64 words', () => {
    const [statement] = statements(`SELECT ${Array.from({ length: 100 }, (_, i) => `c${i}`).join(', ')}`);
    expect(statement!.words).toHaveLength(64);
    expect(statement!.words.slice(0, 2)).toEqual(['select', 'c0']);
  });
});

describe('psql variables', () => {
  const vars = (entries: Record<string, string>) => new Map(Object.entries(entries));

  it("substitutes :var as is, :'var' as a literal and :\"var\" as an identifier", () => {
    expect(texts(`SELECT :n, :'s', :"id" FROM t`, vars({ n: '42', s: "it's", id: 'My "T"' }))).toEqual([
      `SELECT 42, 'it''s', "My ""T""" FROM t`,
    ]);
  });

  it("quotes a value with backslashes as psql does: E'' after a space", () => {
    expect(texts(`SELECT :'p'`, vars({ p: 'C:\\dir' }))).toEqual([`SELECT  E'C:\\\\dir'`]);
  });

  it('reads :: as a cast and := as an assignment, not as variables', () => {
    const variables = vars({ int: 'WRONG', text: 'WRONG', n: '5', '': 'WRONG' });
    expect(texts(`SELECT 1::int, :n::text, f(a := 1), :n::int`, variables)).toEqual([`SELECT 1::int, 5::text, f(a := 1), 5::int`]);
  });

  it('leaves unknown :names alone, as psql does', () => {
    expect(texts(`SELECT :'n', :"n", :{?n}`)).toEqual([`SELECT :'n', :"n", FALSE`]);
    expect(texts(`SELECT :nope, :'nope', :"nope", arr[1:2]`, vars({}))).toEqual([`SELECT :nope, :'nope', :"nope", arr[1:2]`]);
    expect(texts(`SELECT :n`)).toEqual(['SELECT :n']);
  });

  it('does not interpolate inside strings, quoted identifiers, dollar quotes or comments', () => {
    const script = `SELECT ':n', E':n', ":n", $$:n$$ /* :n */ -- :n\n, :n`;
    expect(texts(script, vars({ n: '1' }))).toEqual([`SELECT ':n', E':n', ":n", $$:n$$ /* :n */ -- :n\n, 1`]);
  });

  it('does not re-lex a value: a semicolon in it stays inside the statement', () => {
    expect(texts('SELECT :v; SELECT 2', vars({ v: "1; SELECT '" }))).toEqual(["SELECT 1; SELECT '", 'SELECT 2']);
  });

  it('sends nothing for a statement that is only a variable with a blank value', () => {
    expect(texts(':v; SELECT 2', vars({ v: ' ' }))).toEqual(['SELECT 2']);
  });

  it('maps substituted text back to the file through pieces', () => {
    const [adjacent] = lex(':a:b', vars({ a: '1', b: '2' }));
    expect(adjacent).toMatchObject({
      text: '12',
      pieces: [
        { textOffset: 0, sourceOffset: 0, substituted: true },
        { textOffset: 1, sourceOffset: 2, substituted: true },
      ],
    });
    const [statement] = lex('SELECT :n + 1', vars({ n: '12345' }));
    expect(statement).toMatchObject({
      text: 'SELECT 12345 + 1',
      pieces: [
        { textOffset: 0, sourceOffset: 0, substituted: false },
        { textOffset: 7, sourceOffset: 7, substituted: true },
        { textOffset: 12, sourceOffset: 9, substituted: false },
      ],
    });
  });

  it('reads the map when each statement is lexed: a \\set handled between segments affects what follows', () => {
    const variables = vars({ n: '1' });
    const seen: string[] = [];
    for (const segment of lexScript('SELECT :n;\n\\set n 2\nSELECT :n;\nSELECT :n', { file: 'f', variables })) {
      if (segment.kind === 'meta') variables.set('n', segment.args.split(' ')[1]!);
      else seen.push(segment.text);
      if (seen.length === 2) variables.set('n', '3');
    }
    expect(seen).toEqual(['SELECT 1', 'SELECT 2', 'SELECT 3']);
  });
});

describe('text arriving in pieces', () => {
  const fixtures = fileURLToPath(new URL('../../fixtures/psql-parity/', import.meta.url));
  const scripts = readdirSync(fixtures)
    .filter((name) => name.endsWith('.sql'))
    .map((name) => [name, readFileSync(join(fixtures, name), 'utf8').replace(/^\ufeff/, '')] as const);
  scripts.push(['copy and statements on one line', 'COPY t FROM stdin; INSERT INTO t\n5\n\\.\n VALUES (77); -- c\nSELECT 1;']);
  scripts.push(['a statement running on past the COPY data', 'COPY t FROM stdin; SELECT 1\n5\n\\.\n, 2; SELECT 3; \\echo x\n']);

  it.each(scripts)('gives the same segments and locations for %s, whatever the piece size', (_name, script) => {
    const whole = lex(script, new Map([['v', 'value']]));
    expect(whole.length).toBeGreaterThan(0);
    for (const size of [1, 2, 3, 7, 64, 1000]) expect(lex(script, new Map([['v', 'value']]), size)).toEqual(whole);
  });

  it('yields the first statement before reading the rest of a long file', () => {
    const files: [string, (i: number) => string][] = [
      ['SELECT 0', (i) => `SELECT ${i};\n`],
      ['SELECT 0', (i) => `SELECT ${i} \\g\n`],
      ["SELECT '0'", (i) => `-- ${i}\nSELECT '${i}';\n`],
    ];
    for (const [text, line] of files) {
      const pieces = Array.from({ length: 1000 }, (_, i) => line(i));
      const lexer = new Lexer({ next: () => pieces.shift() ?? null }, { file: 'f' });
      const [first] = lexer.segments();
      expect((first as Statement).text.trimEnd()).toBe(text);
      expect(pieces.length, line(0)).toBeGreaterThan(990);
    }
  });

  it('does not ask the source for more text once it has ended', () => {
    const pieces = ['SELECT 1; SEL', 'ECT 2 -', '- c'];
    let ended = false;
    const source = {
      next: () => {
        if (ended) throw new Error('read after the end');
        const piece = pieces.shift() ?? null;
        ended = piece === null;
        return piece;
      },
    };
    expect([...new Lexer(source, { file: 'f' }).segments()].map((s) => (s as Statement).text)).toEqual(['SELECT 1', 'SELECT 2']);
  });
});

describe('meta-commands', () => {
  it('yields a meta-command with its name and raw arguments up to the end of the line', () => {
    expect(lex('\\echo a\rb\r\n')).toMatchObject([{ name: 'echo', args: 'a\rb' }]);
    expect(lex("\\set greeting 'hello world'  \n\\echo :greeting\n\\ir ../x.sql\r\n")).toEqual([
      { kind: 'meta', name: 'set', args: "greeting 'hello world'", offset: 0, location: { line: 1, column: 1 } },
      { kind: 'meta', name: 'echo', args: ':greeting', offset: 30, location: { line: 2, column: 1 } },
      { kind: 'meta', name: 'ir', args: '../x.sql', offset: 46, location: { line: 3, column: 1 } },
    ]);
  });

  it('runs a meta-command in the middle of a statement before the statement, as psql does', () => {
    expect(texts('SELECT 1 \\echo x\r\n, 2;')).toEqual(['\\echo x', 'SELECT 1 \n, 2']);
    // psql -f: `SELECT 1 \echo hi` prints "hi" at once and keeps collecting the statement, which it
    // sends at the next semicolon (or at the end of the file) without the meta-command's text.
    const segments = lex('SELECT 1 \\echo hi\n, 2;\nSELECT 3 \\echo at the end');
    expect(segments.map((s) => (s.kind === 'meta' ? s : { kind: s.kind, text: s.text.trimEnd(), offset: s.offset }))).toEqual([
      { kind: 'meta', name: 'echo', args: 'hi', offset: 9, location: { line: 1, column: 10 }, inStatement: true },
      { kind: 'statement', text: 'SELECT 1 \n, 2', offset: 0 },
      { kind: 'meta', name: 'echo', args: 'at the end', offset: 32, location: { line: 3, column: 10 }, inStatement: true },
      { kind: 'statement', text: 'SELECT 3', offset: 23 },
    ]);
  });

  it('ends a statement at \\g, \\gx and \\gset as at a semicolon, and attaches the command', () => {
    expect(statements('SELECT 1 \\gexec\nSELECT 2').map((s) => [s.text.trimEnd(), s.sentBy?.name])).toEqual([
      ['SELECT 1', 'gexec'],
      ['SELECT 2', undefined],
    ]);
    expect(statements('SELECT 2')[0]).not.toHaveProperty('sentBy');
    const segments = lex('SELECT 1 AS a \\gset p_\nSELECT 2\n\\g\nSELECT 3 \\gx \\\\ SELECT 4;');
    expect(segments.map((s) => (s.kind === 'meta' ? s.name : [s.text.trimEnd(), s.sentBy?.name, s.sentBy?.args]))).toEqual([
      ['SELECT 1 AS a', 'gset', 'p_'],
      ['SELECT 2', 'g', ''],
      ['SELECT 3', 'gx', ''],
      ['SELECT 4', undefined, undefined],
    ]);
  });

  it('names a command as psql does: up to the next space or backslash', () => {
    expect(lex('\\ x\n').map((s) => (s.kind === 'meta' ? [s.name, s.args] : s.kind))).toEqual([['', 'x']]);
    expect(lex('\\dt+ x\n\\l+\n\\echo:x').map((s) => (s.kind === 'meta' ? [s.name, s.args] : s.kind))).toEqual([
      ['dt+', 'x'],
      ['l+', ''],
      ['echo:x', ''],
    ]);
  });

  it('reads \\copy arguments to the end of the line and its inline data up to \\.', () => {
    const [copy, after] = lex("\\copy t from stdin with (delimiter '\\') \\echo no\n1\\2\n\\.\nSELECT 1;");
    expect(copy).toMatchObject({ kind: 'meta', name: 'copy', args: "t from stdin with (delimiter '\\') \\echo no", copyFromStdin: true, copy: { data: '1\\2\n', line: 2 } });
    expect(after).toMatchObject({ kind: 'statement', text: 'SELECT 1' });
    expect(lex("\\COPY t FROM 'data.csv'\nSELECT 1;")[0]).not.toHaveProperty('copy');
    expect(lex('\\echo t from stdin\nSELECT 1;')).toMatchObject([{ kind: 'meta', name: 'echo' }, { kind: 'statement', text: 'SELECT 1' }]);
    expect(lex('\\echo t from stdin\nSELECT 1;')[0]).not.toHaveProperty('copyFromStdin');
  });

  it('replaces :{?name} with TRUE or FALSE, outside quotes', () => {
    const [statement] = lex("SELECT :{?set}, :{?unset}, ':{?set}';", new Map([['set', '']]));
    expect(statement).toMatchObject({ text: "SELECT TRUE, FALSE, ':{?set}'" });
  });

  it('ends a meta-command at \\\\ and reads the rest of the line as SQL', () => {
    expect(texts('\\echo a \\echo b\n')).toEqual(['\\echo a', '\\echo b']);
    expect(texts('\\echo before \\\\ SELECT 1; SELECT 2')).toEqual(['\\echo before', 'SELECT 1', 'SELECT 2']);
  });

  it('does not see meta-commands inside strings, dollar quotes or comments', () => {
    expect(texts("SELECT '\\echo no', $$\\set no$$ -- \\echo no\n; /* \\i no */ SELECT 2")).toEqual([
      "SELECT '\\echo no', $$\\set no$$",
      'SELECT 2',
    ]);
  });
});

describe('COPY FROM stdin data', () => {
  it('takes the lines after the statement up to \\. as data, with the line they start on', () => {
    const script = '\nCOPY t (a, b) FROM stdin;\n1\t\\N\n2\tx\\ty; -- not sql\n\\.\nSELECT 1;';
    const [copy, next] = statements(script);
    expect(copy).toMatchObject({ text: 'COPY t (a, b) FROM stdin', offset: 1, location: { line: 2, column: 1 } });
    expect(copy!.copy).toEqual({ data: '1\t\\N\n2\tx\\ty; -- not sql\n', line: 3 });
    expect(next).toMatchObject({ text: 'SELECT 1', location: { line: 6, column: 1 } });
  });

  it('lexes the rest of the COPY line after the data, as psql does', () => {
    const script = 'COPY t FROM stdin; INSERT INTO t\n5\n\\.\n VALUES (77);\nSELECT 1;';
    const [copy, insert, select] = statements(script);
    expect(copy!.copy).toEqual({ data: '5\n', line: 2 });
    expect(insert).toMatchObject({ text: 'INSERT INTO t\n VALUES (77)', location: { line: 1, column: 20 } });
    expect(select).toMatchObject({ text: 'SELECT 1', location: { line: 5, column: 1 } });
    expect(statements('COPY t FROM stdin; SELECT 2;\n\\.\n').map((s) => s.text)).toEqual(['COPY t FROM stdin', 'SELECT 2']);
  });

  it('accepts CRLF data, an empty block and lower-case copy ... from STDIN', () => {
    const [crlf, empty, lower] = statements('COPY t FROM stdin;\r\n1\r\n\\.\r\nCOPY t FROM STDIN;\n\\.\ncopy public.t from stdin with (format csv);\n"a;b"\n\\.');
    expect(crlf!.copy).toEqual({ data: '1\r\n', line: 2 });
    expect(empty!.copy).toMatchObject({ data: '' });
    expect(lower!.copy).toMatchObject({ data: '"a;b"\n' });
  });

  it('ends the data only at a line that is exactly \\. (with \\n, \\r\\n or the end of the file), as psql', () => {
    const [copy, next] = statements('COPY t FROM stdin;\nab\r\\.\na\u2028\\.\n\\.\r\nSELECT 1;');
    expect(copy!.copy!.data).toBe('ab\r\\.\na\u2028\\.\n');
    expect(next!.text).toBe('SELECT 1');
    expect(statements('COPY t FROM stdin;\n1\n\\.')[0]!.copy!.data).toBe('1\n');
  });

  it('skips the rest of the data when the reader stops early, and still runs the rest of the COPY line', () => {
    const script = 'COPY t FROM stdin; SELECT 2;\n1;\n2;\n\\.\nSELECT 3;';
    for (const size of [1, 4, script.length]) {
      const pieces: string[] = [];
      for (let at = 0; at < script.length; at += size) pieces.push(script.slice(at, at + size));
      const lexer = new Lexer({ next: () => pieces.shift() ?? null }, { file: 'f' });
      const texts: string[] = [];
      for (const segment of lexer.segments()) {
        if (segment.kind === 'statement') texts.push(segment.text);
        if (segment.copyFromStdin) for (const _piece of lexer.copyData()) break;
      }
      expect(texts).toEqual(['COPY t FROM stdin', 'SELECT 2', 'SELECT 3']);
    }
  });

  it('does not take a \\. that is not alone on its line as the end', () => {
    const [copy] = statements('COPY t FROM stdin;\n\\.x\na\\.\n \\.\n\\.\n');
    expect(copy!.copy!.data).toBe('\\.x\na\\.\n \\.\n');
  });

  it('ends the data at the first line that is exactly \\., not at an escaped backslash or a longer line', () => {
    // `\\.` is an escaped backslash then a dot, `\.\.` a line longer than the end marker: both are data.
    const [copy, next] = statements('COPY t FROM stdin;\r\n\\\\.\r\n\\.\\.\n\\.\r\nSELECT 1;');
    expect(copy!.copy).toEqual({ data: '\\\\.\r\n\\.\\.\n', line: 2 });
    expect(next).toMatchObject({ text: 'SELECT 1', location: { line: 5, column: 1 } });
  });

  it('only reads data for COPY ... FROM stdin', () => {
    expect(statements('SELECT a FROM stdin; SELECT 2').map((s) => s.copyFromStdin)).toEqual([false, false]);
    const segments = statements("COPY t TO stdout; COPY t FROM '/tmp/file'; COPY (SELECT 1) TO stdout");
    expect(segments.map((s) => s.copy)).toEqual([undefined, undefined, undefined]);
  });

  it('does not interpolate variables or see meta-commands in the data', () => {
    const [copy, next] = lex('COPY t FROM stdin;\n:n\t\\echo no\n\\.\n\\echo yes', new Map([['n', '1']]));
    expect(copy!.copy!.data).toBe(':n\t\\echo no\n');
    expect(next).toMatchObject({ kind: 'meta', name: 'echo', args: 'yes' } satisfies Partial<MetaCommand>);
  });

  it('skips the data of a COPY whose reader never asks for it', () => {
    expect([...lexScript('COPY t FROM stdin;\n1;\n\\.\nSELECT 2;', { file: 'f' })].map((s) => (s.kind === 'statement' ? s.text : s.name))).toEqual([
      'COPY t FROM stdin',
      'SELECT 2',
    ]);
  });

  it('reads no data when no COPY FROM stdin is waiting for it', () => {
    const lexer = new Lexer({ next: ((pieces) => () => pieces.pop() ?? null)(['SELECT 1;\n2;\n\\.\nSELECT 3;']) }, { file: 'f' });
    const texts: string[] = [];
    for (const segment of lexer.segments()) {
      expect([...lexer.copyData()]).toEqual([]);
      texts.push(segment.kind === 'statement' ? segment.text : segment.name);
    }
    expect(texts).toEqual(['SELECT 1', '2', '.', 'SELECT 3']);
  });

  it('fails a COPY FROM stdin ending the file without a newline, taking none of its own text as data', () => {
    const lexer = new Lexer({ next: ((pieces) => () => pieces.pop() ?? null)(['COPY t FROM stdin\n\\.\n;']) }, { file: 'f' });
    const segments = lexer.segments();
    expect(segments.next().value).toMatchObject({ kind: 'meta', name: '.', inStatement: true });
    expect(segments.next().value).toMatchObject({ kind: 'statement', text: 'COPY t FROM stdin\n', copyFromStdin: true });
    expect(() => [...lexer.copyData()]).toThrow(/COPY data never ends/);
  });

  it('gives the statement right after the data its own offset and location', () => {
    const script = 'COPY t FROM stdin; SELECT 1;\n5\n\\.\nSELECT 2;';
    const [, , after] = statements(script);
    expect(after).toMatchObject({ text: 'SELECT 2', offset: script.indexOf('SELECT 2'), location: { line: 4, column: 1 } });
  });

  it('finds the end of the COPY line in the last piece of the source', () => {
    const pieces = ['COPY t FROM stdin; SELECT 1', '\n\\.\n'];
    const lexer = new Lexer({ next: () => pieces.shift() ?? null }, { file: 'f' });
    const segments: unknown[] = [];
    for (const segment of lexer.segments()) segments.push(segment.kind === 'statement' ? segment.text : segment.name, ...(segment.copyFromStdin ? [[...lexer.copyData()]] : []));
    expect(segments).toEqual(['COPY t FROM stdin', [], 'SELECT 1']);
  });

  it('yields no data piece for an empty block', () => {
    const lexer = new Lexer({ next: ((pieces) => () => pieces.pop() ?? null)(['COPY t FROM stdin;\n\\.\n']) }, { file: 'f' });
    for (const segment of lexer.segments()) expect(segment.copyFromStdin && [...lexer.copyData()]).toEqual([]);
  });

  it('hands the data over in whole lines as the source delivers them, not as one block', () => {
    const data = (script: string, size: number) => {
      const pieces = script.match(new RegExp(`[\\s\\S]{1,${size}}`, 'g'))!;
      const lexer = new Lexer({ next: () => pieces.shift() ?? null }, { file: 'f' });
      const blocks: string[][] = [];
      for (const segment of lexer.segments()) if (segment.copyFromStdin) blocks.push([...lexer.copyData()]);
      return blocks;
    };
    expect(data('COPY t FROM stdin;\n1\n\n22\n333\n\n4444\n\\.\nSELECT 1;', 3)).toEqual([['1\n\n', '22\n', '333\n\n', '4444\n']]);
    // an empty line alone at the end of what has arrived is handed over too
    expect(data('COPY t FROM stdin;\n\n\n1\n\n\n22\n\n\\.\n', 5)).toEqual([['\n', '\n1\n\n\n', '22\n\n']]);
  });
});

describe('reading a file', () => {
  const CHUNK = 1 << 15;

  it('places invalid bytes in the file, however many pieces were read before them', async () => {
    // A string open across seven 32 KiB pieces: the window doubles, so the last extension reads three pieces.
    const before = `SELECT '${'a'.repeat(6 * CHUNK + 2)}`;
    const root = await tempRepo({ 'f.sql': Buffer.concat([Buffer.from(before), Buffer.from([0xff]), Buffer.from("';\n")]) });
    const lexer = new Lexer(SourceReader.open(join(root, 'f.sql'), 'f.sql'), { file: 'f.sql' });
    expect(() => [...lexer.segments()]).toThrow(expect.objectContaining({ code: 'FILE_ENCODING', file: 'f.sql', line: 1, column: before.length + 1 }));
  });

  it('passes on an error reading the file as it is', async () => {
    const root = await tempRepo({ 'dir/f.sql': 'SELECT 1;' });
    const lexer = new Lexer(SourceReader.open(join(root, 'dir'), 'dir'), { file: 'dir' });
    expect(() => [...lexer.segments()]).toThrow(expect.objectContaining({ code: 'FILE_UNREADABLE', file: 'dir' }));
  });
});

describe('unterminated constructs', () => {
  it.each([
    ["SELECT 1;\nSELECT 'abc", 'unterminated quoted string', 2, 8],
    ["SELECT 1;\n  SELECT E'it\\'s", 'unterminated quoted string', 2, 10],
    ["SELECT U&'x", 'unterminated quoted string', 1, 8],
    ['SELECT 1;\nSELECT "abc', 'unterminated quoted identifier', 2, 8],
    ['SELECT 1;\n\nDO $body$ BEGIN END $$;', 'unterminated dollar-quoted string $body$', 3, 4],
    ['SELECT 1; /* a /* b */ still open', 'unterminated /* comment', 1, 11],
    ['SELECT 1;\nCOPY t FROM stdin;\n1\n2\n', 'COPY data never ends', 2, 1],
  ])('%j fails at the start of the construct', (script, message, line, column) => {
    const error = syntaxError(script);
    expect(error).toMatchObject({ code: 'SQL_SYNTAX', file: 'script.sql', line, column });
    expect(error.message).toContain(message);
  });

  it('yields the statements before the unterminated one first (the generator is lazy)', () => {
    const seen: string[] = [];
    expect(() => {
      for (const segment of lexScript("SELECT 1;\nSELECT 'open", { file: 'f' })) if (segment.kind === 'statement') seen.push(segment.text);
    }).toThrow(DbfastError);
    expect(seen).toEqual(['SELECT 1']);
  });

  it('counts the column in characters after multi-byte text', () => {
    expect(syntaxError("SELECT '🐘', 'open")).toMatchObject({ line: 1, column: 13 });
  });
});

describe('lexer details pinned against psqlscan.l', () => {
  const words = (text: string) => statements(text).map((statement) => statement.words);

  it('reads E, B, X, N and U& prefixes as part of the literal, not as words', () => {
    expect(words("SELECT E'a', B'01', X'1f', N'n', U&'d', U&\"i\" FROM t")).toEqual([['select', 'from', 't']]);
    // a word that merely ends next to a quote is still a word
    expect(words("SELECT ab'x', u&1")).toEqual([['select', 'ab', 'u']]);
    expect(words("SELECT x&'1', u '2'")).toEqual([['select', 'x', 'u']]);
  });

  it('keeps an operator that ends a statement in its text, but not a trailing comment', () => {
    expect(texts('SELECT 6 /')).toEqual(['SELECT 6 /']);
    expect(texts('SELECT 6 -')).toEqual(['SELECT 6 -']);
    expect(texts('SELECT 6 * /* c */ ;')).toEqual(['SELECT 6 *']);
    expect(texts('SELECT 6 + -- c\n;')).toEqual(['SELECT 6 +']);
  });

  it('continues only string literals across a newline, never quoted identifiers', () => {
    expect(texts('SELECT "a"\n\';\' AS x; SELECT 2')).toEqual(['SELECT "a"\n\';\' AS x', 'SELECT 2']);
    // in an E string the continuation keeps backslash escapes: \' does not end it
    expect(texts("SELECT E'a'\n'\\';'; SELECT 2")).toEqual(["SELECT E'a'\n'\\';'", 'SELECT 2']);
  });

  it('waits for more text before deciding a string or a :name ends at the window edge', () => {
    const variables = new Map([
      ['ab', 'wrong'],
      ['abc', 'right'],
    ]);
    const cases: [string, string[]][] = [
      ["SELECT E'a'  \n\n'\\';'; SELECT 3", ["SELECT E'a'  \n\n'\\';'", 'SELECT 3']],
      ['SELECT :abc; SELECT 3', ['SELECT right', 'SELECT 3']],
    ];
    for (const [script, expected] of cases) {
      expect(texts(script, variables)).toEqual(expected);
      for (let size = 1; size <= script.length; size++) {
        expect(lex(script, variables, size).map((segment) => (segment as Statement).text)).toEqual(expected);
      }
    }
  });

  it("leaves :'name and :\"name alone when the closing quote is missing or the name is empty", () => {
    const variables = new Map([['a', 'v']]);
    expect(texts("SELECT :'a ', :'a', :\"a\"", variables)).toEqual(["SELECT :'a ', 'v', \"v\""]);
    expect(texts("SELECT :'', :\"\" x", variables)).toEqual(["SELECT :'', :\"\" x"]);
    expect(texts("SELECT :'', :\"\" x", new Map([['', 'v']]))).toEqual(["SELECT :'', :\"\" x"]);
  });

  it('treats only CREATE [OR REPLACE] FUNCTION|PROCEDURE as a routine whose BEGIN holds semicolons', () => {
    expect(texts('CREATE POLICY begin ON t; SELECT 2')).toEqual(['CREATE POLICY begin ON t', 'SELECT 2']);
    expect(texts('CREATE TABLE function AS SELECT 1 AS begin; SELECT 2')).toEqual(['CREATE TABLE function AS SELECT 1 AS begin', 'SELECT 2']);
    expect(texts('CREATE REPLACE OR FUNCTION begin; SELECT 2')).toEqual(['CREATE REPLACE OR FUNCTION begin', 'SELECT 2']);
    expect(texts('CREATE OR OR FUNCTION begin; SELECT 2')).toEqual(['CREATE OR OR FUNCTION begin', 'SELECT 2']);
    expect(texts('CREATE OR REPLACE OR begin; SELECT 2')).toEqual(['CREATE OR REPLACE OR begin', 'SELECT 2']);
    expect(texts('FUNCTION FUNCTION begin; SELECT 2')).toEqual(['FUNCTION FUNCTION begin', 'SELECT 2']);
    expect(texts('CREATE REPLACE REPLACE FUNCTION begin; SELECT 2')).toEqual(['CREATE REPLACE REPLACE FUNCTION begin', 'SELECT 2']);
    expect(texts('CREATE OR REPLACE PROCEDURE begin; SELECT 2; END; SELECT 3')).toEqual([
      'CREATE OR REPLACE PROCEDURE begin; SELECT 2; END',
      'SELECT 3',
    ]);
  });

  it('counts CASE only inside BEGIN ATOMIC, and only words outside parentheses', () => {
    expect(texts('CREATE FUNCTION f() RETURNS int RETURN case; SELECT 2')).toEqual(['CREATE FUNCTION f() RETURNS int RETURN case', 'SELECT 2']);
    expect(texts('CREATE FUNCTION f() BEGIN ATOMIC SELECT (begin); END; SELECT 2')).toEqual([
      'CREATE FUNCTION f() BEGIN ATOMIC SELECT (begin); END',
      'SELECT 2',
    ]);
  });

  it('reads quotes in meta-command arguments as psql does: a backslash inside them does not end the command', () => {
    expect(texts("\\echo 'a\\'b' \\\\ SELECT 1")).toEqual(["\\echo 'a\\'b'", 'SELECT 1']);
    expect(texts('\\echo "a\\" \\\\ SELECT 1')).toEqual(['\\echo "a\\"', 'SELECT 1']);
    expect(texts("\\echo 'a\\b' \"c\\d\" `e\\f` \\\\ SELECT 1")).toEqual(["\\echo 'a\\b' \"c\\d\" `e\\f`", 'SELECT 1']);
  });
});
