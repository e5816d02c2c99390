import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { executeFiles } from '../../../src/core/sql/execute.js';
import { freshDatabase } from '../../helpers/database.js';
import { tempRepo } from '../../helpers/repo.js';

let db: Awaited<ReturnType<typeof freshDatabase>>;
beforeEach(async () => {
  db = await freshDatabase();
});
afterEach(async () => {
  await db.drop();
});

/** Runs the given files (in key order) and returns the execution stats. */
async function run(files: Record<string, string | Buffer>, options: { echo?: string[]; only?: string[] } = {}) {
  const root = await tempRepo(files);
  const paths = (options.only ?? Object.keys(files)).map((relativePath) => ({
    relativePath,
    absolutePath: join(root, relativePath),
  }));
  return executeFiles(db.client, paths, { repositoryRoot: root, onEcho: (text) => options.echo?.push(text) });
}

async function rows(sql: string) {
  return (await db.client.query(sql)).rows;
}

describe('executor: statements', () => {
  it('runs a mix of statements and counts them', async () => {
    const stats = await run({
      'a.sql': `
        CREATE TABLE t (id int primary key, note text); -- trailing comment
        /* block /* nested */ comment; */
        INSERT INTO t VALUES (1, 'it''s; fine'), (2, E'back\\'slash; \\n');
        INSERT INTO t VALUES (3, $$dollar; 'quoted'$$), (4, $tag$ $$ inner ; $$ $tag$);
        CREATE TABLE "semi;colon" ("a;b" int);
        INSERT INTO "semi;colon" VALUES (5)`,
    });
    expect(stats).toEqual({ files: 1, statements: 5, rowsCopied: 0, includedFiles: [] });
    expect(await rows('SELECT id, note FROM t ORDER BY id')).toEqual([
      { id: 1, note: "it's; fine" },
      { id: 2, note: "back'slash; \n" },
      { id: 3, note: "dollar; 'quoted'" },
      { id: 4, note: ' $$ inner ; $$ ' },
    ]);
    expect(await rows('SELECT "a;b" FROM "semi;colon"')).toEqual([{ 'a;b': 5 }]);
  });

  it('runs DO blocks and plpgsql functions with semicolons in their bodies', async () => {
    await run({
      'a.sql': `
        CREATE TABLE log (msg text);
        DO $$ BEGIN INSERT INTO log VALUES ('from do'); END $$;
        CREATE FUNCTION add(a int, b int) RETURNS int LANGUAGE plpgsql AS $body$
        DECLARE r int;
        BEGIN r := a + b; RETURN r; END;
        $body$;
        INSERT INTO log SELECT add(2, 3)::text;`,
    });
    expect(await rows('SELECT msg FROM log ORDER BY msg')).toEqual([{ msg: '5' }, { msg: 'from do' }]);
  });

  it('runs SQL-standard function bodies (BEGIN ATOMIC ... END) with CASE inside', async () => {
    await run({
      'a.sql': `
        CREATE TABLE t (x int);
        CREATE OR REPLACE FUNCTION sign_of(n int) RETURNS text LANGUAGE sql
        BEGIN ATOMIC
          SELECT CASE WHEN n < 0 THEN 'neg' ELSE 'pos' END;
        END;
        CREATE PROCEDURE put(n int) LANGUAGE sql BEGIN ATOMIC INSERT INTO t VALUES (n); INSERT INTO t VALUES (n + 1); END;
        CALL put(10);`,
    });
    expect(await rows(`SELECT sign_of(-1) AS s`)).toEqual([{ s: 'neg' }]);
    expect(await rows('SELECT x FROM t ORDER BY x')).toEqual([{ x: 10 }, { x: 11 }]);
  });

  it('keeps semicolons inside parentheses within one statement', async () => {
    await run({
      'a.sql': `
        CREATE TABLE v (id int);
        CREATE TABLE w (id int);
        CREATE RULE r AS ON INSERT TO v DO INSTEAD (INSERT INTO w VALUES (NEW.id); INSERT INTO w VALUES (NEW.id + 1));
        INSERT INTO v VALUES (1);`,
    });
    expect(await rows('SELECT id FROM w ORDER BY id')).toEqual([{ id: 1 }, { id: 2 }]);
  });

  it('runs statements that cannot run inside a transaction block', async () => {
    await run({
      'a.sql': `
        CREATE TABLE t (id int);
        INSERT INTO t SELECT generate_series(1, 100);
        CREATE INDEX CONCURRENTLY t_id ON t (id);
        VACUUM ANALYZE t;
        CREATE TYPE mood AS ENUM ('sad');
        ALTER TYPE mood ADD VALUE 'happy';
        CREATE TABLE m (v mood DEFAULT 'happy');
        INSERT INTO m DEFAULT VALUES;`,
    });
    expect(await rows(`SELECT indexname FROM pg_indexes WHERE tablename = 't'`)).toEqual([{ indexname: 't_id' }]);
    expect(await rows('SELECT v FROM m')).toEqual([{ v: 'happy' }]);
  });

  it('runs explicit transactions', async () => {
    await run({ 'a.sql': 'BEGIN;\nCREATE TABLE t (id int);\nINSERT INTO t VALUES (1);\nCOMMIT;\n' });
    expect(await rows('SELECT id FROM t')).toEqual([{ id: 1 }]);
  });

  it('accepts a UTF-8 BOM and CRLF line endings', async () => {
    const text = '\uFEFFCREATE TABLE t (name text);\r\nINSERT INTO t VALUES (\'caf\u00e9\');\r\n';
    await run({ 'a.sql': Buffer.from(text, 'utf8') });
    expect(await rows('SELECT name FROM t')).toEqual([{ name: 'caf\u00e9' }]);
  });

  it('sends the last statement even without a semicolon', async () => {
    await run({ 'a.sql': 'CREATE TABLE t (id int);\nINSERT INTO t VALUES (7) -- no semicolon' });
    expect(await rows('SELECT id FROM t')).toEqual([{ id: 7 }]);
  });

  it('batches many small statements across the batch size limit', async () => {
    const inserts = Array.from({ length: 3000 }, (_, i) => `INSERT INTO t VALUES (${i}, '${'x'.repeat(500)}');`);
    const stats = await run({ 'a.sql': `CREATE TABLE t (id int, pad text);\n${inserts.join('\n')}` });
    expect(stats.statements).toBe(3001);
    expect(await rows('SELECT count(*)::int AS n FROM t')).toEqual([{ n: 3000 }]);
  });
});

describe('executor: COPY FROM stdin', () => {
  it('loads inline data up to \\. exactly as pg_dump writes it', async () => {
    const stats = await run({
      'a.sql': [
        'CREATE TABLE actor (id int, name text, note text);',
        'COPY public.actor (id, name, note) FROM stdin;',
        '1\tPENELOPE\t\\N',
        '2\tNICK\tsemi;colon \\\\ tab\\there',
        '\\.',
        'INSERT INTO actor VALUES (3, \'after\', null);',
        '',
      ].join('\n'),
    });
    expect(stats.rowsCopied).toBe(2);
    expect(await rows('SELECT id, name, note FROM actor ORDER BY id')).toEqual([
      { id: 1, name: 'PENELOPE', note: null },
      { id: 2, name: 'NICK', note: 'semi;colon \\ tab\there' },
      { id: 3, name: 'after', note: null },
    ]);
  });

  it('handles CRLF data and an empty data block', async () => {
    await run({ 'a.sql': 'CREATE TABLE t (id int);\r\nCOPY t FROM stdin;\r\n1\r\n2\r\n\\.\r\nCOPY t FROM stdin;\r\n\\.\r\n' });
    expect(await rows('SELECT count(*)::int AS n FROM t')).toEqual([{ n: 2 }]);
  });

  it('reports an error in the data at its line in the file', async () => {
    const file = 'CREATE TABLE t (id int);\nCOPY t FROM stdin;\n1\n2\nnot-a-number\n\\.\n';
    await expect(run({ 'seed.sql': file })).rejects.toMatchObject({
      code: 'SQL_FAILED',
      file: 'seed.sql',
      line: 5,
      message: expect.stringContaining('invalid input syntax for type integer'),
    });
  });

  it('names where an unterminated COPY block started', async () => {
    await expect(run({ 'a.sql': 'SELECT 1;\nCOPY t FROM stdin;\n1\n2\n' })).rejects.toMatchObject({
      code: 'SQL_SYNTAX',
      file: 'a.sql',
      line: 2,
      column: 1,
      message: expect.stringContaining('COPY data never ends'),
    });
  });
});

describe('executor: psql meta-commands', () => {
  it('includes files relative to the including file with \\i, \\ir and \\include', async () => {
    await run(
      {
        'main.sql': 'CREATE TABLE t (v text);\n\\i parts/one.sql\n\\ir parts/two.sql\n\\include parts/three.sql\n',
        'parts/one.sql': "INSERT INTO t VALUES ('one');\n\\ir nested.sql\n",
        'parts/nested.sql': "INSERT INTO t VALUES ('nested');",
        'parts/two.sql': "INSERT INTO t VALUES ('two');",
        'parts/three.sql': "INSERT INTO t VALUES ('three');",
      },
      { only: ['main.sql'] },
    );
    expect((await rows('SELECT v FROM t')).map((r) => r.v)).toEqual(['one', 'nested', 'two', 'three']);
  });

  it('lists every file it included, nested too, once, with the sha256 of the bytes it read', async () => {
    const files = {
      'main.sql': 'CREATE TABLE t (v text);\n\\i parts/one.inc\n\\i parts/one.inc\n',
      'parts/one.inc': "INSERT INTO t VALUES ('one');\n\\ir deeper/two.inc\n",
      'parts/deeper/two.inc': "\uFEFFINSERT INTO t VALUES ('two');",
    };
    const root = await tempRepo(files);
    const stats = await executeFiles(db.client, [{ relativePath: 'main.sql', absolutePath: join(root, 'main.sql') }], { repositoryRoot: root });
    const read = (path: keyof typeof files) => ({ absolutePath: join(root, path), hash: createHash('sha256').update(files[path]).digest('hex') });
    expect(stats.includedFiles).toEqual([read('parts/one.inc'), read('parts/deeper/two.inc')]);
    expect(await rows('SELECT count(*)::int AS n FROM t')).toEqual([{ n: 4 }]);
  });

  it('lists a file whose bytes differ from the hash its caller scanned (edited since)', async () => {
    const root = await tempRepo({ 'a.sql': 'SELECT 1;', 'b.sql': 'SELECT 2;' });
    const scanned = (name: string, content: string) => ({
      relativePath: name,
      absolutePath: join(root, name),
      hash: createHash('sha256').update(content).digest('hex'),
    });
    const stats = await executeFiles(db.client, [scanned('a.sql', 'SELECT 1;'), scanned('b.sql', 'SELECT 1;')], { repositoryRoot: root });
    expect(stats.includedFiles).toEqual([{ absolutePath: join(root, 'b.sql'), hash: createHash('sha256').update('SELECT 2;').digest('hex') }]);
  });

  it('interpolates \\set variables as :var, :\'var\' and :"var", and leaves casts alone', async () => {
    await run({
      'a.sql': [
        "\\set table_name 'my table'",
        '\\set n 42',
        "\\set greeting 'it''s here'",
        'CREATE TABLE :"table_name" (n int, g text, c int);',
        "INSERT INTO :\"table_name\" VALUES (:n, :'greeting', '7'::int);",
        "SELECT ':n' AS not_interpolated_in_quotes;",
      ].join('\n'),
    });
    expect(await rows('SELECT n, g, c FROM "my table"')).toEqual([{ n: 42, g: "it's here", c: 7 }]);
  });

  it('prints \\echo and accepts \\set ON_ERROR_STOP on', async () => {
    const echo: string[] = [];
    await run({ 'a.sql': "\\set ON_ERROR_STOP on\n\\echo hello 'big world'\nSELECT 1;" }, { echo });
    expect(echo).toEqual(['hello big world']);
  });

  it('refuses \\connect with the file and line', async () => {
    await expect(run({ 'a.sql': 'SELECT 1;\n\n\\connect other\n' })).rejects.toMatchObject({
      code: 'SQL_META_COMMAND',
      file: 'a.sql',
      line: 3,
      column: 1,
      message: expect.stringContaining('\\connect is not supported'),
    });
  });

  it('refuses unknown meta-commands', async () => {
    await expect(run({ 'a.sql': '\\gexec\n' })).rejects.toMatchObject({ code: 'SQL_META_COMMAND', line: 1 });
  });

  it('refuses an include loop', async () => {
    await expect(run({ 'a.sql': '\\ir b.sql', 'b.sql': '\\ir a.sql' }, { only: ['a.sql'] })).rejects.toMatchObject({
      code: 'SQL_META_COMMAND',
      file: 'b.sql',
    });
  });

  it('names the including line when an included file is missing', async () => {
    await expect(run({ 'a.sql': 'SELECT 1;\n\\i missing.sql\n' })).rejects.toMatchObject({
      code: 'FILE_UNREADABLE',
      file: 'a.sql',
      line: 2,
    });
  });
});

describe('executor: session state per file', () => {
  it('does not leak SET search_path or statement_timeout into the next file', async () => {
    await run({
      '1.sql': "CREATE SCHEMA app;\nSET search_path TO app;\nSET statement_timeout = '50ms';\nCREATE TABLE inside (id int);",
      '2.sql': 'CREATE TABLE outside (id int);\nSELECT pg_sleep(0.2);',
    });
    expect(await rows(`SELECT table_schema, table_name FROM information_schema.tables WHERE table_name IN ('inside','outside') ORDER BY 2`)).toEqual([
      { table_schema: 'app', table_name: 'inside' },
      { table_schema: 'public', table_name: 'outside' },
    ]);
  });

  it('does not carry \\set variables into the next file', async () => {
    await run({ '1.sql': '\\set v 1\nCREATE TABLE t (c text);', '2.sql': "INSERT INTO t VALUES (':v');" });
    expect(await rows('SELECT c FROM t')).toEqual([{ c: ':v' }]);
  });

  it('refuses a file that leaves a transaction open', async () => {
    await expect(run({ 'a.sql': 'BEGIN;\nCREATE TABLE t (id int);\n' })).rejects.toMatchObject({
      code: 'SQL_FAILED',
      file: 'a.sql',
      message: expect.stringContaining('transaction block'),
    });
    expect(db.client.getTransactionStatus()).toBe('I');
  });
});

describe('executor: errors name file, line and column', () => {
  it('locates a syntax error from the server position', async () => {
    const file = 'CREATE TABLE t (id int);\n\nINSERT INTO t\n  VALUES (1, 2) WHERE;\n';
    await expect(run({ 'db/1_seed/02_users.sql': file })).rejects.toMatchObject({
      code: 'SQL_FAILED',
      file: 'db/1_seed/02_users.sql',
      line: 4,
      column: 17,
      message: 'syntax error at or near "WHERE"',
    });
  });

  it('locates an error without position at the start of the failing statement in a batch', async () => {
    const file = 'CREATE TABLE t (id int primary key);\nINSERT INTO t VALUES (1);\n  INSERT INTO t VALUES (1);\nINSERT INTO t VALUES (2);\n';
    await expect(run({ 'a.sql': file })).rejects.toMatchObject({
      file: 'a.sql',
      line: 3,
      column: 3,
      message: expect.stringContaining('duplicate key'),
      detail: expect.stringContaining('Key (id)=(1) already exists'),
    });
  });

  it('stops at the first error: nothing after it runs', async () => {
    await expect(run({ 'a.sql': 'CREATE TABLE t (id int);\nSELECT 1/0;\n', 'b.sql': 'CREATE TABLE later (id int);' })).rejects.toMatchObject({
      line: 2,
      message: 'division by zero',
    });
    expect(await rows(`SELECT to_regclass('later') AS r`)).toEqual([{ r: null }]);
  });

  it('counts columns in characters after multi-byte text and variables', async () => {
    const file = "\\set v 12345678901234567890\nSELECT ':v', 'é😀', :v, nonexistent_column;\n";
    await expect(run({ 'a.sql': file })).rejects.toMatchObject({ line: 2, column: 24, message: expect.stringContaining('nonexistent_column') });
  });

  it('reports unterminated quotes, dollar quotes and comments where they start', async () => {
    await expect(run({ 'q.sql': "SELECT 1;\nSELECT 'oops;\n" })).rejects.toMatchObject({ code: 'SQL_SYNTAX', file: 'q.sql', line: 2, column: 8 });
    await expect(run({ 'd.sql': 'DO $body$ BEGIN\nEND $bod$;' })).rejects.toMatchObject({ code: 'SQL_SYNTAX', line: 1, column: 4, message: expect.stringContaining('$body$') });
    await expect(run({ 'c.sql': 'SELECT 1; /* a /* b */\n' })).rejects.toMatchObject({ code: 'SQL_SYNTAX', line: 1, column: 11 });
    await expect(run({ 'i.sql': 'SELECT "abc\n' })).rejects.toMatchObject({ code: 'SQL_SYNTAX', line: 1, column: 8 });
  });

  it('reports invalid UTF-8 at its position', async () => {
    const bytes = Buffer.concat([Buffer.from("SELECT 1;\nSELECT 'caf"), Buffer.from([0xe9]), Buffer.from("';\n")]);
    await expect(run({ 'latin1.sql': bytes })).rejects.toMatchObject({ code: 'FILE_ENCODING', file: 'latin1.sql', line: 2, column: 12 });
  });

  it('locates a runtime error inside a DO block at its line in the file', async () => {
    const file = "SELECT 1;\nDO $$\nDECLARE n int := 0;\nBEGIN\n  n := n + 1;\n  RAISE EXCEPTION 'boom %', n;\nEND\n$$;\n";
    await expect(run({ 'do.sql': file })).rejects.toMatchObject({ file: 'do.sql', line: 6, column: 3, message: 'boom 1' });
  });

  it('reports an error inside an included file at its own path', async () => {
    await expect(run({ 'a.sql': '\\ir sub/b.sql', 'sub/b.sql': '\nSELEC 1;' }, { only: ['a.sql'] })).rejects.toMatchObject({
      file: 'sub/b.sql',
      line: 2,
      column: 1,
    });
  });
});
